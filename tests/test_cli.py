"""`spanflow convert`: flow files, the table, the summary, and one-line errors with exit codes."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import dpkt
import pytest

from tests.captures import (
    ETHERNET,
    FlowKey,
    Packet,
    Pcapng,
    flow_totals,
    gzip_flushed,
    pcap_file,
    pcap_record_starts,
    traffic,
)
from tests.cli_runs import convert as run
from tests.cli_runs import stderr_lines

HEADER = "first_ns,last_ns,src,dst,sport,dport,proto,tos,tcp_flags,packets,octets,end_reason,ifindex,vlan"


def write_traffic(tmp_path: Path, packets: list[Packet], cut: int | None = None) -> Path:
    path = tmp_path / "traffic.pcap"
    path.write_bytes(pcap_file([p.frame for p in packets], nanos=True)[:cut])
    return path


def ends_flow(packet: Packet) -> bool:
    """A TCP packet with FIN or RST (read back with dpkt) ends its record (rule 5)."""
    l4 = dpkt.ethernet.Ethernet(packet.frame.data).data.data
    return isinstance(l4, dpkt.tcp.TCP) and bool(l4.flags & (dpkt.tcp.TH_FIN | dpkt.tcp.TH_RST))


def expected_rows(packets: list[Packet], ifindex: int = 0) -> dict[FlowKey, dict[str, object]]:
    """What each flow's row must say, from the packets as written (no timeout fires: 1 ms apart)."""
    rows: dict[FlowKey, dict[str, object]] = {}
    for key, (count, octets) in flow_totals(packets).items():
        times = [p.frame.ts_ns for p in packets if p.key == key]
        last = [p for p in packets if p.key == key][-1]
        rows[key] = {
            "first_ns": min(times), "last_ns": max(times), "packets": count, "octets": octets,
            "end_reason": "end_of_flow" if ends_flow(last) else "forced", "ifindex": ifindex,
        }  # fmt: skip
    return rows


def rows_by_key(rows: list[dict[str, object]]) -> dict[FlowKey, dict[str, object]]:
    by_key: dict[FlowKey, dict[str, object]] = {}
    for row in rows:
        key = (
            str(row["src"]),
            str(row["dst"]),
            int(row["sport"]),
            int(row["dport"]),
            int(row["proto"]),
        )  # type: ignore[call-overload]
        assert key not in by_key
        by_key[key] = {
            name: row[name]
            for name in ("first_ns", "last_ns", "packets", "octets", "end_reason", "ifindex")
        }
    return by_key


def csv_rows(text: str) -> dict[FlowKey, dict[str, object]]:
    assert text.splitlines()[0] == HEADER
    rows: list[dict[str, object]] = []
    for row in csv.DictReader(io.StringIO(text)):
        rows.append(
            {k: (v if k in ("src", "dst", "end_reason") else int(v)) for k, v in row.items()}
        )
    return rows_by_key(rows)


class TestFlowFiles:
    def test_csv_file(self, tmp_path: Path) -> None:
        """-o FILE.csv writes the exact header and one row per flow with the packets' totals."""
        packets = traffic()
        out = tmp_path / "flows.csv"
        result = run(write_traffic(tmp_path, packets), "-o", out)
        assert result.exit_code == 0, result.stderr
        assert result.stdout == ""
        assert csv_rows(out.read_text()) == expected_rows(packets)

    def test_jsonl_file(self, tmp_path: Path) -> None:
        """-o FILE.jsonl writes one JSON object per flow with the same values as the CSV."""
        packets = traffic()
        out = tmp_path / "flows.jsonl"
        result = run(write_traffic(tmp_path, packets), "-o", out)
        assert result.exit_code == 0, result.stderr
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert all(list(row) == HEADER.split(",") for row in rows)
        assert rows_by_key(rows) == expected_rows(packets)

    def test_csv_on_stdout(self, tmp_path: Path) -> None:
        """-o - writes the CSV on stdout and nothing else; the summary stays on stderr."""
        packets = traffic()
        result = run(write_traffic(tmp_path, packets), "-o", "-")
        assert result.exit_code == 0, result.stderr
        assert csv_rows(result.stdout) == expected_rows(packets)
        assert "spanflow:" not in result.stdout

    def test_dev_null_is_accepted(self, tmp_path: Path) -> None:
        """-o /dev/null (a device, no .csv suffix) is written to and the run exits 0."""
        packets = traffic()
        result = run(write_traffic(tmp_path, packets), "-o", os.devnull)
        assert result.exit_code == 0, result.stderr
        read = f"spanflow: read {len(packets)} frames"
        assert any(line.startswith(read) for line in stderr_lines(result))

    def test_unknown_suffix_is_written_as_csv(self, tmp_path: Path) -> None:
        """-o with a suffix that names no format writes CSV, header first."""
        packets = traffic()
        out = tmp_path / "out.txt"
        result = run(write_traffic(tmp_path, packets), "-o", out)
        assert result.exit_code == 0, result.stderr
        assert csv_rows(out.read_text()) == expected_rows(packets)

    @pytest.mark.parametrize("name", ["out.txt", "out.csv"])
    def test_flows_format_overrides_the_suffix(self, tmp_path: Path, name: str) -> None:
        """--flows-format jsonl writes JSON lines whatever the file's suffix says."""
        packets = traffic()
        out = tmp_path / name
        result = run(write_traffic(tmp_path, packets), "--flows-format", "jsonl", "-o", out)
        assert result.exit_code == 0, result.stderr
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert rows_by_key(rows) == expected_rows(packets)

    def test_flows_format_applies_to_stdout(self, tmp_path: Path) -> None:
        """-o - with --flows-format jsonl puts JSON lines, not CSV, on stdout."""
        packets = traffic()
        result = run(write_traffic(tmp_path, packets), "-o", "-", "--flows-format", "jsonl", "-q")
        assert result.exit_code == 0, result.stderr
        rows = [json.loads(line) for line in result.stdout.splitlines()]
        assert rows_by_key(rows) == expected_rows(packets)

    def test_pcapng_rows_carry_the_interface(self, tmp_path: Path) -> None:
        """Flows read from pcapng interface 1 have ifindex 2."""
        packets = traffic()
        w = Pcapng().section().interface(ETHERNET, 0).interface(ETHERNET, 0, tsresol=9)
        for p in packets:
            w.enhanced(1, p.frame.ts_ns, p.frame.data)
        path = tmp_path / "traffic.pcapng"
        path.write_bytes(w.data())
        result = run(path, "-o", "-")
        assert result.exit_code == 0, result.stderr
        assert csv_rows(result.stdout) == expected_rows(packets, ifindex=2)


class TestTableAndSummary:
    @pytest.mark.parametrize("export_format", ["ipfix", "9"])
    def test_table_on_stdout(self, tmp_path: Path, export_format: str) -> None:
        """With no sink, the table decoded back from the datagrams: one line per flow, in order
        of first packet, each with the end reason both IPFIX and v9 carry (IE 136)."""
        packets = traffic()
        result = run(write_traffic(tmp_path, packets), "--format", export_format)
        assert result.exit_code == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0].startswith("start (UTC)")
        expected = expected_rows(packets)
        assert len(lines) == 1 + len(expected)
        in_time_order = sorted(expected, key=lambda key: int(expected[key]["first_ns"]))  # type: ignore[call-overload]
        for line, key in zip(lines[1:], in_time_order, strict=True):
            src, dst, sport, dport, _proto = key
            ends = [
                f"[{a}]:{p}" if ":" in a else f"{a}:{p}" for a, p in ((src, sport), (dst, dport))
            ]
            row = expected[key]
            pattern = rf"2026-01-01 00:00:00\.0\d\d .* {re.escape(ends[0])} +{re.escape(ends[1])} +{row['packets']} +{row['octets']} .* {row['end_reason']}"
            assert re.fullmatch(pattern, line), line

    def test_end_reasons_follow_the_packets(self) -> None:
        """The sample traffic ends exactly one flow by FIN, so the expectations test both reasons."""
        reasons = [row["end_reason"] for row in expected_rows(traffic()).values()]
        assert sorted(reasons) == ["end_of_flow", "forced", "forced", "forced"]

    def test_summary_on_stderr(self, tmp_path: Path) -> None:
        """The summary counts frames read, decoded and undecodable, and records by end reason."""
        packets = traffic()
        result = run(write_traffic(tmp_path, packets), "-o", tmp_path / "flows.csv")
        lines = stderr_lines(result)
        ip = [p for p in packets if p.key is not None]
        flows = flow_totals(packets)
        assert re.fullmatch(
            rf"spanflow: read {len(packets)} frames from 1 file\(s\) in \d+\.\d\d s \(\d+(\.\d\d M)? ?pps\): "
            rf"{len(ip)} decoded, {len(packets) - len(ip)} undecodable",
            lines[0],
        ), lines[0]
        assert "spanflow: undecodable: not_ip 1" in lines
        assert (
            f"spanflow: {len(flows)} records (idle 0, active 0, end_of_flow 1, forced {len(flows) - 1}, "
            f"cache_full 0): {len(ip)} packets, {sum(p.octets for p in ip)} octets"
        ) in lines
        assert any(
            re.fullmatch(r"spanflow: cache: peak \d+ open flows, \d+ bytes of state per flow", x)
            for x in lines
        )

    def test_quiet_prints_no_summary(self, tmp_path: Path) -> None:
        """--quiet leaves stderr empty on a clean run."""
        result = run(write_traffic(tmp_path, traffic()), "-o", tmp_path / "flows.csv", "--quiet")
        assert result.exit_code == 0
        assert result.stderr == ""


class TestErrors:
    def test_damaged_file_keeps_the_flows_before_the_damage(self, tmp_path: Path) -> None:
        """A truncated capture exits 1 naming the offset, after writing the flows read before it."""
        packets = traffic()
        starts = pcap_record_starts([p.frame for p in packets])
        path = write_traffic(tmp_path, packets, cut=starts[7] + 10)
        out = tmp_path / "flows.csv"
        result = run(path, "-o", out)
        assert result.exit_code == 1
        assert (
            f"spanflow: error: {path}: truncated last record (10 of 16 bytes) at byte offset {starts[7]}"
            in stderr_lines(result)
        )
        assert any(line.startswith("spanflow: read 7 frames") for line in stderr_lines(result))
        assert csv_rows(out.read_text()) == expected_rows(packets[:7])

    def test_missing_file(self, tmp_path: Path) -> None:
        """A missing file exits 1 with one line naming it."""
        path = tmp_path / "absent.pcap"
        result = run(path)
        assert result.exit_code == 1
        assert result.stderr == f"spanflow: error: {path}: no such file\n"
        assert result.stdout == ""

    @pytest.mark.parametrize(
        ("content", "message"),
        [
            (b"time,src,dst\n", "not a pcap or pcapng capture (starts with 74696d65)"),
            (b"", "empty file, not a capture"),
        ],
        ids=["text", "empty"],
    )
    def test_not_a_capture(self, tmp_path: Path, content: bytes, message: str) -> None:
        """A file that is not a capture exits 1 with one line saying so."""
        path = tmp_path / "notes.pcap"
        path.write_bytes(content)
        result = run(path)
        assert result.exit_code == 1
        assert stderr_lines(result) == [f"spanflow: error: {path}: {message}"]

    def test_corrupt_gzip(self, tmp_path: Path) -> None:
        """A gzip capture with an invalid deflate block exits 1 with one line naming the file."""
        path = tmp_path / "traffic.pcap.gz"
        path.write_bytes(gzip_flushed([pcap_file([p.frame for p in traffic()])], "garbage"))
        result = run(path, "-o", tmp_path / "flows.csv")
        assert result.exit_code == 1
        errors = [line for line in stderr_lines(result) if line.startswith("spanflow: error: ")]
        assert len(errors) == 1
        assert errors[0].startswith(f"spanflow: error: {path}: ")

    def test_zero_max_flows_is_a_usage_error(self, tmp_path: Path) -> None:
        """--max-flows 0 exits 2 with one line naming the bound."""
        result = run(write_traffic(tmp_path, traffic()), "--max-flows", "0")
        assert result.exit_code == 2
        assert result.stderr == "spanflow: error: max flows must be between 1 and 67108864, got 0\n"

    def test_unknown_flows_format_is_a_usage_error(self, tmp_path: Path) -> None:
        """--flows-format with a value other than csv/jsonl exits 2 naming the option."""
        out = tmp_path / "flows.txt"
        result = run(write_traffic(tmp_path, traffic()), "--flows-format", "xml", "-o", out)
        assert result.exit_code == 2
        assert "--flows-format" in result.stderr
        assert not out.exists()

    def test_unknown_option(self, tmp_path: Path) -> None:
        """An unknown option exits 2 with click's usage message."""
        result = run(write_traffic(tmp_path, traffic()), "--no-such-option")
        assert result.exit_code == 2
        assert "No such option: --no-such-option" in result.stderr
        assert result.stdout == ""


class TestStdinPipe:
    def test_records_ended_by_fin_leave_while_the_pipe_stays_open(self, tmp_path: Path) -> None:
        """Records that FIN/RST ended come out while stdin is still open: a slow pipe
        (``tcpdump -w - | spanflow convert -``) is not held until a read chunk fills."""
        sample = Path(__file__).resolve().parents[1] / "samples" / "web.pcap"
        spanflow = Path(sys.executable).with_name("spanflow")
        child = subprocess.Popen(
            [str(spanflow), "convert", "-", "-o", "-", "-q"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        assert child.stdin is not None
        assert child.stdout is not None
        try:
            child.stdin.write(sample.read_bytes())
            child.stdin.flush()
            received = b""
            deadline = time.monotonic() + 60.0  # a cold numba cache compiles first
            while received.count(b"\n") < 2 and time.monotonic() < deadline:
                ready, _, _ = select.select([child.stdout], [], [], 1.0)
                if ready:
                    received += os.read(child.stdout.fileno(), 65536)
            assert received.startswith(HEADER.encode() + b"\n")
            assert received.count(b"\n") >= 2, "no record before the end of input"
        finally:
            child.stdin.close()
            try:
                child.wait(timeout=30)
            finally:
                if child.poll() is None:
                    child.kill()
                    child.wait()
                child.stdout.close()
