"""``import spanflow``: the command's records as columns, Arrow, pandas, Polars, Parquet, DuckDB."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import spanflow
from exporter.flowfile import RowFormat
from probe.cli.main import app
from tests.bench.make_capture import write_capture
from tests.cli_runs import convert as cli_convert
from tests.cli_runs import stderr_lines

SAMPLES = sorted(p for p in (Path(__file__).parent.parent / "samples").iterdir()
                 if p.suffix in (".pcap", ".pcapng"))  # fmt: skip


def csv_rows(text: bytes) -> list[bytes]:
    return sorted(line for line in text.splitlines()[1:] if line)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_convert_gives_the_rows_of_the_command(sample: Path, tmp_path: Path) -> None:
    out = tmp_path / "flows.csv"
    assert cli_convert(sample, "-o", out, "-q").exit_code == 0
    flows = spanflow.convert(sample)
    assert csv_rows(RowFormat.csv().header + RowFormat.csv().render(flows.records)) == csv_rows(
        out.read_bytes()
    )
    assert flows.stats["records"] == len(flows)
    assert flows.stats["packets"] == int(flows.records.packets.sum())


def test_stream_in_small_batches_gives_the_records_of_convert() -> None:
    sample = next(p for p in SAMPLES if p.name == "web.pcap")
    whole = spanflow.convert(sample)
    batches = list(spanflow.stream(sample, batch_frames=7))
    assert len(batches) > 3
    assert sum(len(b) for b in batches) == len(whole)
    render = RowFormat.csv().render
    streamed = b"".join(render(b.records) for b in batches)
    assert sorted(streamed.splitlines()) == sorted(render(whole.records).splitlines())
    assert batches[-1].stats == whole.stats


def test_frames_and_arrow_have_the_flow_file_columns() -> None:
    flows = spanflow.convert(SAMPLES[0])
    table = flows.to_arrow()
    assert table.schema.field("first_ns").type == pa.timestamp("ns", tz="UTC")
    assert table.column_names == RowFormat.csv().header.decode().strip().split(",")
    assert flows.to_pandas()["packets"].sum() == flows.stats["packets"]
    assert flows.to_polars()["octets"].sum() == flows.stats["octets"]


def test_parquet_reads_back_as_the_csv_and_duckdb_agrees(tmp_path: Path) -> None:
    capture = tmp_path / "gen.pcap"
    write_capture(capture, 50_000, seed=4)
    parquet, csv = tmp_path / "flows.parquet", tmp_path / "flows.csv"
    assert cli_convert(capture, "-o", parquet, "-q").exit_code == 0
    assert cli_convert(capture, "-o", csv, "-q").exit_code == 0
    table = pq.read_table(parquet)
    library = spanflow.convert(capture).to_arrow()  # same engine, same rows in order
    assert table.column_names == library.column_names
    assert table.to_pylist() == library.to_pylist()
    assert table.schema.field("first_ns").type == pa.timestamp("ns", tz="UTC")
    assert table.schema.field("octets").type == pa.uint64()
    (totals,) = duckdb.sql(
        f"select count(*), sum(packets), sum(octets) from '{parquet}'"
    ).fetchall()
    lines = csv.read_text().splitlines()[1:]
    packets = sum(int(line.split(",")[9]) for line in lines)
    octets = sum(int(line.split(",")[10]) for line in lines)
    assert totals == (len(lines), packets, octets)
    assert packets == 50_000
    metadata = pq.read_metadata(parquet).metadata
    assert int(metadata[b"spanflow.records"]) == len(lines)
    assert int(metadata[b"spanflow.packets"]) == 50_000


def test_a_missing_optional_library_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in [m for m in sys.modules if m == "pyarrow" or m.startswith("pyarrow.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(
        spanflow.ConfigError, match=r"pyarrow is not installed: pip install 'spanflow\[arrow\]'"
    ):
        spanflow.convert(SAMPLES[0]).to_arrow()
    result = cli_convert(SAMPLES[0], "-o", tmp_path / "x.arrows")
    assert result.exit_code == 2
    assert stderr_lines(result) == [
        "spanflow: error: pyarrow is not installed: pip install 'spanflow[arrow]'"
    ]
    parquet = tmp_path / "x.parquet"  # spanflow writes Parquet itself: no pyarrow needed
    assert cli_convert(SAMPLES[0], "-o", parquet, "-q").exit_code == 0
    data = parquet.read_bytes()
    assert data[:4] == data[-4:] == b"PAR1"


def test_the_public_names_are_what_all_says() -> None:
    assert sorted(spanflow.__all__) == sorted(
        name for name in vars(spanflow) if not name.startswith("_") and name not in ("api", "live")
    )
    for name in spanflow.__all__:
        assert getattr(spanflow, name).__doc__


def test_bench_sampling_returns_the_report_the_command_writes(tmp_path: Path) -> None:
    sample = next(p for p in SAMPLES if p.name == "synflood.pcap")
    result = CliRunner().invoke(
        app, ["bench-sampling", str(sample), "--rates", "10,100", "--trials", "2",
              "--report", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = spanflow.bench_sampling(sample, rates=(10, 100), trials=2)
    assert json.dumps(report.report, indent=2) == (tmp_path / "report.json").read_text()
    trials = report.to_pandas()
    assert len(trials) == 2 * (1 + 2 + 2)  # deterministic once; random, probabilistic twice
    assert set(trials["mode"]) == {"deterministic", "random", "probabilistic"}


def test_arrow_stream_reads_back_as_the_library_table(tmp_path: Path) -> None:
    """-o flows.arrows (and - to stdout with --flows-format arrow) is the same table as convert."""
    capture = tmp_path / "gen.pcap"
    write_capture(capture, 20_000, seed=5)
    stream = tmp_path / "flows.arrows"
    assert cli_convert(capture, "-o", stream, "-q").exit_code == 0
    with ipc.open_stream(stream.read_bytes()) as reader:
        table = reader.read_all()
    assert table.equals(spanflow.convert(capture).to_arrow())
    piped = subprocess.run(
        [str(Path(sys.executable).parent / "spanflow"), "convert", str(capture), "-o", "-",
         "--flows-format", "arrow", "-q"],
        capture_output=True, check=True, timeout=120,
    )  # fmt: skip
    with ipc.open_stream(piped.stdout) as reader:
        assert reader.read_all().equals(table)


def test_fields_reach_the_library_columns_and_arrow_as_in_the_command(tmp_path: Path) -> None:
    """fields=: the same columns and values as `convert --fields`; absent values are null."""
    sample = next(p for p in SAMPLES if p.name == "erspan_vxlan.pcap")
    options = ("--fields", "vlan,mac,mpls,tunnel", "--tunnels", "inner")
    out = tmp_path / "flows.csv"
    assert cli_convert(sample, "-o", out, "-q", *options).exit_code == 0
    flows = spanflow.convert(sample, fields="vlan,mac,mpls,tunnel", tunnels="inner")
    row_format = RowFormat.csv(flows.fields)
    assert csv_rows(row_format.header + row_format.render(flows.records)) == csv_rows(
        out.read_bytes()
    )
    table = flows.to_arrow()
    assert table.column_names == out.read_text().splitlines()[0].split(",")
    assert table.schema.field("inner_vlan").type == pa.uint16()
    assert table.column("mpls1").null_count == len(flows)  # no MPLS in this sample
    assert table.column("outer_src").null_count < len(flows)  # its tunnels were opened
    assert set(table.column("src_mac").to_pylist()) >= {"02:00:c6:12:78:01"}
    arrows = tmp_path / "flows.arrows"
    assert cli_convert(sample, "-o", arrows, "-q", *options).exit_code == 0
    assert ipc.open_stream(arrows).read_all().equals(table)
