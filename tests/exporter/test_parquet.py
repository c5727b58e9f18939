"""spanflow's own Parquet writer: pyarrow, DuckDB and Polars read back what the CSV says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import polars
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import spanflow
from core.attributes import parse_fields
from core.errors import ExportError
from core.records import RecordTable
from exporter.parquet import ParquetFlowWriter
from tests.bench.make_capture import write_capture

SAMPLES = sorted(p for p in (Path(__file__).resolve().parents[2] / "samples").iterdir()
                 if p.suffix in (".pcap", ".pcapng"))  # fmt: skip
SPANFLOW = Path(sys.executable).parent / "spanflow"
ALL_FIELDS = "vlan,mac,mpls,tunnel"


def written(path: Path, flows: spanflow.Flows, row_group_rows: int = 1 << 16) -> None:
    writer = ParquetFlowWriter(str(path), flows.fields, row_group_rows)
    for start in range(0, len(flows), 5):  # batches as the cache hands them over
        writer.write(flows.records.take(slice(start, start + 5)))
    writer.describe({"spanflow.records": str(len(flows))})
    writer.close()


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_every_sample_reads_back_as_the_library_columns(sample: Path, tmp_path: Path) -> None:
    flows = spanflow.convert(sample, fields=ALL_FIELDS, tunnels="inner")
    path = tmp_path / "flows.parquet"
    written(path, flows, row_group_rows=16)
    table = pq.read_table(path)
    want = flows.to_arrow()
    assert table.column_names == want.column_names
    assert table.to_pylist() == want.to_pylist()
    for name in ("first_ns", "last_ns", "packets", "vlan", "inner_vlan", "mpls1", "src_mac"):
        assert table.schema.field(name).type == want.schema.field(name).type, name
    assert pq.ParquetFile(path).metadata.num_row_groups == max(1, -(-len(flows) // 16))
    (counts,) = duckdb.sql(f"select count(*), sum(octets), count(src_mac) from '{path}'").fetchall()
    assert counts == (len(flows), int(flows.records.octets.sum()),
                      len(flows) - want.column("src_mac").null_count)  # fmt: skip
    assert polars.read_parquet(path)["packets"].sum() == int(flows.records.packets.sum())


def test_an_empty_run_is_a_valid_file_with_its_schema_and_metadata(tmp_path: Path) -> None:
    path = tmp_path / "empty.parquet"
    writer = ParquetFlowWriter(str(path), parse_fields("mac"))
    writer.describe({"spanflow.records": "0"})
    writer.close()
    table = pq.read_table(path)
    assert table.num_rows == 0
    assert table.schema.field("src_mac").type == pa.string()
    assert pq.read_metadata(path).metadata[b"spanflow.records"] == b"0"


def test_a_row_group_boundary_inside_a_batch_keeps_every_row(tmp_path: Path) -> None:
    records = RecordTable.empty(1000)
    records.version[:] = 4
    records.src_lo[:] = 0xFFFF_0000_0000 | np.arange(1000, dtype=np.uint64)
    records.packets[:] = np.arange(1000) + 2**40
    records.first_ns[:] = records.last_ns[:] = -5 + np.arange(1000)  # before 1970 too
    path = tmp_path / "many.parquet"
    writer = ParquetFlowWriter(str(path), frozenset(), row_group_rows=300)
    writer.write(records)
    writer.close()
    table = pq.read_table(path)
    assert pq.ParquetFile(path).metadata.num_row_groups == 4
    assert table.column("packets").to_pylist() == (np.arange(1000) + 2**40).tolist()
    assert table.column("src").to_pylist()[:2] == ["0.0.0.0", "0.0.0.1"]
    assert table.column("first_ns").cast(pa.int64()).to_pylist()[0] == -5


def test_a_file_that_cannot_be_written_is_one_export_error(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="No such file or directory"):
        ParquetFlowWriter(str(tmp_path / "missing" / "x.parquet"))
    with pytest.raises(ExportError, match="not stdout"):
        ParquetFlowWriter("-")


def _peak_rss_mb(*args: str) -> float:
    with subprocess.Popen([str(SPANFLOW), *args], stderr=subprocess.PIPE) as process:
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        assert process.stderr is not None
        assert process.returncode == 0, process.stderr.read()
    return usage.ru_maxrss / 1024


def test_parquet_peak_rss_stays_within_50_mb_of_csv(tmp_path: Path) -> None:
    """Issue #14's memory bar, on a capture of 400,000 packets (about 60,000 records)."""
    capture = tmp_path / "gen.pcap"
    write_capture(capture, 400_000, seed=3)
    convert = ["convert", str(capture), "-q", "-o"]
    csv_mb = _peak_rss_mb(*convert, str(tmp_path / "x.csv"))
    parquet_mb = _peak_rss_mb(*convert, str(tmp_path / "x.parquet"))
    assert parquet_mb - csv_mb <= 50, (csv_mb, parquet_mb)
    assert pq.read_metadata(tmp_path / "x.parquet").num_rows > 10_000
