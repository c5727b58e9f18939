"""``spanflow convert`` export faults: dead collectors, IPv6 collectors, usage errors up front."""

from __future__ import annotations

import csv
import io
import re
import socket
import time
from pathlib import Path

import dpkt
import pytest
from typer.testing import Result

from tests.cli_runs import convert, stderr_lines

WEB = Path(__file__).resolve().parent.parent / "samples" / "web.pcap"
DEADLINE_S = 10.0
WEB_RECORDS = 48  # samples/README.md: web.pcap gives 48 records with the default timeouts
EXPORTED = re.compile(r"^spanflow: exported (\d+) records in (\d+) datagrams$")


def error_lines(result: Result) -> list[str]:
    """The ``spanflow: error:`` lines of stderr."""
    return [line for line in stderr_lines(result) if line.startswith("spanflow: error:")]


def exported(result: Result) -> tuple[int, int]:
    """(records, datagrams) from the summary line."""
    found = [m for m in map(EXPORTED.match, stderr_lines(result)) if m]
    assert len(found) == 1, result.stderr
    return int(found[0][1]), int(found[0][2])


def free_port(family: int = socket.AF_INET, host: str = "127.0.0.1") -> int:
    """A UDP port nothing is bound to right now (the probe socket is closed again)."""
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def receive_all(sock: socket.socket, idle_s: float = 0.5) -> list[bytes]:
    """Every datagram queued on ``sock``, until none arrives for ``idle_s`` (overall deadline)."""
    received: list[bytes] = []
    sock.settimeout(idle_s)
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        try:
            received.append(sock.recv(65535))
        except TimeoutError:
            break
    return received


def pcap_payloads(path: Path) -> list[bytes]:
    """The UDP payloads of an export pcap, read with dpkt."""
    with path.open("rb") as handle:
        frames = [bytes(buf) for _, buf in dpkt.pcap.Reader(handle)]
    return [bytes(dpkt.ethernet.Ethernet(f).data.data.data) for f in frames]


def csv_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV flow file."""
    return list(csv.DictReader(io.StringIO(path.read_text())))


def dead_collector_line(port: int, host: str = "127.0.0.1") -> re.Pattern[str]:
    """The one error line for a collector that refused datagrams."""
    return re.compile(
        rf"^spanflow: error: collector {re.escape(host)}:{port}: [1-9]\d* datagrams not sent "
        r"\(\[Errno 111\] Connection refused\)$"
    )


class TestDeadCollector:
    def test_conversion_completes_and_flows_are_written(self, tmp_path: Path) -> None:
        """A collector nobody listens for costs one error line and status 1, not the flows."""
        port = free_port()
        out, reference = tmp_path / "out.csv", tmp_path / "reference.csv"
        result = convert(WEB, "-c", f"127.0.0.1:{port}", "-o", out)
        alone = convert(WEB, "-o", reference, "-q")
        assert result.exit_code == 1
        errors = error_lines(result)
        assert len(errors) == 1
        assert dead_collector_line(port).match(errors[0]), errors
        assert exported(result) == (WEB_RECORDS, 3)
        assert alone.exit_code == 0
        rows = csv_rows(out)
        assert len(rows) == WEB_RECORDS
        assert rows == csv_rows(reference)

    def test_one_live_one_dead(self, tmp_path: Path) -> None:
        """The live collector receives every datagram; the dead one makes the status 1."""
        dead = free_port()
        pcap = tmp_path / "export.pcap"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as live:
            live.bind(("127.0.0.1", 0))
            port = live.getsockname()[1]
            result = convert(
                WEB, "-c", f"127.0.0.1:{port}", "-c", f"127.0.0.1:{dead}", "--pcap-out", pcap
            )
            received = receive_all(live)
        assert result.exit_code == 1
        records, datagrams = exported(result)
        assert records == WEB_RECORDS
        assert len(received) == datagrams
        assert received == pcap_payloads(pcap)
        errors = error_lines(result)
        assert len(errors) == 1
        assert dead_collector_line(dead).match(errors[0]), errors

    def test_ipv6_collector(self) -> None:
        """An IPv6 collector [::1]:PORT receives every datagram."""
        try:
            live = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            live.bind(("::1", 0))
        except OSError as exc:
            pytest.skip(f"IPv6 loopback ::1 is not available here: {exc}")
        with live:
            port = live.getsockname()[1]
            result = convert(WEB, "-c", f"[::1]:{port}", "--format", "ipfix")
            received = receive_all(live)
        assert result.exit_code == 0, result.stderr
        assert error_lines(result) == []
        records, datagrams = exported(result)
        assert records == WEB_RECORDS
        assert len(received) == datagrams
        assert all(d[:2] == b"\x00\x0a" for d in received)


class TestUsageErrors:
    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["-c", "127.0.0.1:0"], "127.0.0.1:0: port must be a number from 1 to 65535"),
            (["-c", "127.0.0.1:x"], "127.0.0.1:x: port must be a number from 1 to 65535"),
            (["-c", "127.0.0.1"], "127.0.0.1: expected HOST:PORT"),
            (
                ["--mtu", "40", "--format", "9", "-c", "127.0.0.1:9"],
                "MTU 40 is too small for the templates and one record (NetFlow v9)",
            ),
            (
                ["--format", "5", "--sampling", "random", "--sampling-rate", "20000",
                 "-c", "127.0.0.1:9"],
                "NetFlow v5 carries a sampling interval up to 16383, got 20000",
            ),
        ],
        ids=["port-0", "port-x", "no-port", "mtu-40", "v5-interval"],
    )  # fmt: skip
    def test_refused_before_work(self, args: list[str], message: str, tmp_path: Path) -> None:
        """A bad export option is a usage error in one line, with nothing sent."""
        result = convert(WEB, "-o", tmp_path / "out.csv", *args)
        assert result.exit_code == 2
        assert stderr_lines(result) == [f"spanflow: error: {message}"]

    def test_no_flow_file_on_usage_error(self, tmp_path: Path) -> None:
        """A usage error in the export options creates no flow file."""
        out = tmp_path / "out.csv"
        result = convert(WEB, "-o", out, "-c", "127.0.0.1:0")
        assert result.exit_code == 2
        assert not out.exists()

    def test_unresolvable_name(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A collector name that does not resolve is a usage error in one line (no real DNS)."""
        asked: list[object] = []

        def fail(host: object, *args: object, **kwargs: object) -> list[object]:
            asked.append(host)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

        monkeypatch.setattr(socket, "getaddrinfo", fail)
        result = convert(WEB, "-o", tmp_path / "out.csv", "-c", "collector.invalid:2055")
        assert result.exit_code == 2
        assert stderr_lines(result) == [
            "spanflow: error: collector.invalid:2055: cannot resolve 'collector.invalid': "
            "Name or service not known"
        ]
        assert set(asked) == {"collector.invalid"}


def test_export_options_checked_without_export(tmp_path: Path) -> None:
    """An impossible MTU is refused even when only a flow file is written."""
    result = convert(WEB, "-o", tmp_path / "out.csv", "--mtu", "40")
    assert result.exit_code == 2
    assert not (tmp_path / "out.csv").exists()
