"""``spanflow collect``: decoding our own exports from pcap files and from a listening socket."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import queue
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import dpkt
import pytest
from typer.testing import CliRunner, Result

from probe.cli.main import app

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "samples" / "web.pcap"
SPANFLOW = Path(sys.executable).parent / "spanflow"
COMPILE_NOTE = "spanflow: compiling the packet kernels"
KEY_FIELDS = ("src", "dst", "sport", "dport", "proto", "packets", "octets")
DEADLINE_S = 30.0
COLLECT_PORT = 2055

Row = dict[str, str]


def invoke(*args: str | Path) -> Result:
    """Run ``spanflow ARGS`` in process; no run may end in an exception or print a traceback."""
    result = CliRunner().invoke(app, [str(arg) for arg in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.stdout + result.stderr
    return result


def stderr_lines(result: Result) -> list[str]:
    """stderr without the note printed when the kernels take long to compile on first use."""
    return [line for line in result.stderr.splitlines() if not line.startswith(COMPILE_NOTE)]


def csv_rows(text: str) -> list[Row]:
    """The rows of a CSV text with a header line."""
    return list(csv.DictReader(io.StringIO(text)))


def key_multiset(rows: list[Row]) -> Counter[tuple[str, ...]]:
    """The rows as a multiset of (src, dst, sport, dport, proto, packets, octets)."""
    return Counter(tuple(row[name] for name in KEY_FIELDS) for row in rows)


def ipv4_only(rows: list[Row]) -> list[Row]:
    """The rows of IPv4 flows (v5 cannot carry the others)."""
    return [row for row in rows if ":" not in row["src"]]


def frames_of(path: Path) -> list[tuple[float, bytes]]:
    """Every (timestamp, frame) of a pcap, read with dpkt."""
    with path.open("rb") as handle:
        return [(ts, bytes(buf)) for ts, buf in dpkt.pcap.Reader(handle)]


def payloads_of(path: Path) -> list[bytes]:
    """The UDP payloads of the Ethernet/IPv4 frames of an export pcap, read with dpkt."""
    return [bytes(dpkt.ethernet.Ethernet(buf).data.data.data) for _, buf in frames_of(path)]


def write_frames(path: Path, frames: list[tuple[float, bytes]]) -> None:
    """A microsecond pcap of Ethernet frames, written with dpkt."""
    with path.open("wb") as handle:
        writer = dpkt.pcap.Writer(handle, linktype=dpkt.pcap.DLT_EN10MB)
        for ts, frame in frames:
            writer.writepkt(frame, ts)


def udp_frame(payload: bytes, sport: int = 50_000) -> bytes:
    """An Ethernet/IPv4/UDP frame from 127.0.0.1:sport to 127.0.0.1:2055, built with dpkt."""
    udp = dpkt.udp.UDP(sport=sport, dport=COLLECT_PORT, data=payload)
    udp.ulen = 8 + len(payload)
    loopback = socket.inet_aton("127.0.0.1")
    ip = dpkt.ip.IP(src=loopback, dst=loopback, p=dpkt.ip.IP_PROTO_UDP, ttl=64, data=udp)
    ip.len = 20 + udp.ulen
    eth = dpkt.ethernet.Ethernet(
        src=b"\x02\0\0\0\0\x01", dst=b"\x02\0\0\0\0\x02", type=dpkt.ethernet.ETH_TYPE_IP, data=ip
    )
    return bytes(eth)


def free_port(family: int = socket.AF_INET, host: str = "127.0.0.1") -> int:
    """A UDP port nothing is bound to right now."""
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def ipv6_loopback_works() -> bool:
    """Whether a UDP socket can bind ::1 here."""
    try:
        free_port(socket.AF_INET6, "::1")
    except OSError:
        return False
    return True


@pytest.fixture(autouse=True)
def _restore_sigterm() -> Iterator[None]:
    """``collect`` installs a SIGTERM handler; in-process runs must not leave it behind."""
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, list[Row]]]:
    """For each format: the pcap of the export datagrams of web.pcap and its -o CSV rows."""
    out = tmp_path_factory.mktemp("exports")
    made: dict[str, tuple[Path, list[Row]]] = {}
    for name in ("5", "9", "ipfix"):
        pcap, flows = out / f"web{name}.pcap", out / f"web{name}.csv"
        result = invoke(
            "convert", WEB, "--pcap-out", pcap, "-o", flows, "--format", name, "-q"
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
        made[name] = (pcap, csv_rows(flows.read_text()))
    return made


class TestFromPcap:
    @pytest.mark.parametrize("name", ["5", "9", "ipfix"])
    def test_decoded_rows_equal_the_converted_flows(
        self, exports: dict[str, tuple[Path, list[Row]]], name: str
    ) -> None:
        """The flows decoded from an export pcap are the flows convert wrote, key and counters."""
        pcap, ours = exports[name]
        expected = ipv4_only(ours) if name == "5" else ours
        result = invoke("collect", "--from-pcap", pcap, "--format", "csv")
        assert result.exit_code == 0, result.stderr
        theirs = csv_rows(result.stdout)
        assert len(expected) > 30  # more than one datagram's worth
        assert key_multiset(theirs) == key_multiset(expected)

    @pytest.mark.parametrize(("name", "tolerance_ms"), [("5", 1), ("9", 1000), ("ipfix", 1)])
    def test_decoded_times_match(
        self, exports: dict[str, tuple[Path, list[Row]]], name: str, tolerance_ms: int
    ) -> None:
        """First and last times survive the round trip to the ms (v9: within a second)."""
        pcap, ours = exports[name]
        expected = ipv4_only(ours) if name == "5" else ours
        theirs = csv_rows(invoke("collect", "--from-pcap", pcap, "--format", "csv").stdout)

        def ordered(rows: list[Row]) -> list[Row]:
            return sorted(rows, key=lambda r: (*(r[f] for f in KEY_FIELDS), int(r["first_ns"])))

        pairs = list(zip(ordered(expected), ordered(theirs), strict=True))
        for mine, decoded in pairs:
            for field in ("first_ns", "last_ns"):
                assert abs(int(mine[field]) - int(decoded[field])) < tolerance_ms * 1_000_000

    @pytest.mark.parametrize("name", ["5", "9", "ipfix"])
    def test_no_sequence_gaps(self, exports: dict[str, tuple[Path, list[Row]]], name: str) -> None:
        """A complete export has no sequence gap (IPFIX: the options record counts, RFC 7011)."""
        pcap, _ = exports[name]
        result = invoke("collect", "--from-pcap", pcap, "--format", "csv")
        datagrams = len(frames_of(pcap))
        summary = [line for line in stderr_lines(result) if "sequence gaps" in line]
        assert summary == [
            f"spanflow: {datagrams} datagrams (0 malformed), {len(csv_rows(result.stdout))} "
            "records, 0 sequence gaps"
        ]

    @pytest.mark.parametrize("name", ["5", "9", "ipfix"])
    def test_dropped_datagram_is_one_gap(
        self, tmp_path: Path, exports: dict[str, tuple[Path, list[Row]]], name: str
    ) -> None:
        """Removing the middle datagram of a stream is counted as one sequence gap."""
        pcap, _ = exports[name]
        frames = frames_of(pcap)
        assert len(frames) == 3
        gapped = tmp_path / "gapped.pcap"
        write_frames(gapped, [frames[0], frames[2]])
        result = invoke("collect", "--from-pcap", gapped, "--format", "csv")
        assert result.exit_code == 0
        assert any(line.endswith(", 1 sequence gaps") for line in stderr_lines(result))

    def test_scale_multiplies_by_the_sampling_interval(self, tmp_path: Path) -> None:
        """--scale multiplies packets and octets by the announced interval, 10."""
        pcap = tmp_path / "sampled.pcap"
        result = invoke(
            "convert", WEB, "--sampling", "deterministic", "--sampling-rate", "10",
            "--format", "9", "--pcap-out", pcap, "-q",
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
        raw = invoke("collect", "--from-pcap", pcap, "--format", "csv")
        scaled = invoke("collect", "--from-pcap", pcap, "--scale", "--format", "csv")
        raw_rows, scaled_rows = csv_rows(raw.stdout), csv_rows(scaled.stdout)
        assert len(raw_rows) > 0
        assert len(scaled_rows) == len(raw_rows)
        for before, after in zip(raw_rows, scaled_rows, strict=True):
            assert int(after["packets"]) == 10 * int(before["packets"])
            assert int(after["octets"]) == 10 * int(before["octets"])
            assert after["src"] == before["src"]
        for result in (raw, scaled):
            assert any(line.endswith("sampling 1 in 10") for line in stderr_lines(result))


class TestGarbage:
    def test_malformed_datagrams_are_counted_and_skipped(
        self, tmp_path: Path, exports: dict[str, tuple[Path, list[Row]]]
    ) -> None:
        """Random bytes and truncated datagrams are counted; a valid v5 datagram still decodes."""
        v5 = payloads_of(exports["5"][0])[0]
        v9 = payloads_of(exports["9"][0])[0]
        rng = random.Random(7)
        noise = [bytes([0xEE, rng.randrange(256)]) + rng.randbytes(n) for n in (0, 10, 200)]
        truncated_v9 = v9[:100]  # the template flowset's length runs past the end
        # v9 header (count 1, sequence 0, source id 99) and one data flowset of template 300.
        unknown_template = struct.pack(">HHIIII", 9, 1, 0, 0, 0, 99) + struct.pack(
            ">HH", 300, 8
        ) + bytes(4)  # fmt: skip
        datagrams = [noise[0], truncated_v9, noise[1], unknown_template, v5, noise[2], b"\x00"]
        path = tmp_path / "garbage.pcap"
        write_frames(path, [(1.0 + i, udp_frame(d)) for i, d in enumerate(datagrams)])

        result = invoke("collect", "--from-pcap", path, "--format", "csv")

        assert result.exit_code == 0, result.stderr
        netflow = dpkt.netflow.Netflow5(v5)
        expected = Counter(
            (
                socket.inet_ntoa(struct.pack(">I", r.src_addr)),
                socket.inet_ntoa(struct.pack(">I", r.dst_addr)),
                str(r.src_port),
                str(r.dst_port),
                str(r.ip_proto),
                str(r.pkts_sent),
                str(r.bytes_sent),
            )
            for r in netflow.data
        )
        assert len(netflow.data) == 30
        assert key_multiset(csv_rows(result.stdout)) == expected
        lines = stderr_lines(result)
        assert lines[0] == "spanflow: 7 datagrams (5 malformed), 30 records, 0 sequence gaps"
        assert lines[1].startswith("spanflow: first malformed datagram: ")


class TestUsage:
    def test_port_in_use(self) -> None:
        """Listening on a port another socket holds is a usage error in one line."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
            holder.bind(("127.0.0.1", 0))
            port = holder.getsockname()[1]
            result = invoke("collect", "--listen", f"127.0.0.1:{port}", "--count", "1")
        assert result.exit_code == 2
        assert stderr_lines(result) == [
            f"spanflow: error: cannot listen on 127.0.0.1:{port}: Address already in use"
        ]
        assert result.stdout == ""


class Spanflow:
    """A ``spanflow collect`` subprocess whose stdout and stderr lines are read by threads."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [str(SPANFLOW), "collect", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        self.stdout: queue.Queue[str] = queue.Queue()
        self.stderr: queue.Queue[str] = queue.Queue()
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        self.pumps = [
            threading.Thread(target=self._pump, args=(stream, sink), daemon=True)
            for stream, sink in (
                (self.process.stdout, self.stdout),
                (self.process.stderr, self.stderr),
            )
        ]
        for pump in self.pumps:
            pump.start()

    @staticmethod
    def _pump(stream: IO[str], sink: queue.Queue[str]) -> None:
        for line in stream:
            sink.put(line.rstrip("\n"))

    def wait_for(self, lines: queue.Queue[str], text: str) -> list[str]:
        """Lines read until one containing ``text``; fails after the deadline."""
        seen: list[str] = []
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                seen.append(lines.get(timeout=0.1))
                if text in seen[-1]:
                    return seen
            if self.process.poll() is not None and lines.empty():
                break
        pytest.fail(f"{text!r} not seen; got {seen}")

    def finish(self) -> tuple[int, list[str], list[str]]:
        """Exit status and the remaining stdout and stderr lines, waiting with a deadline."""
        status = self.process.wait(timeout=DEADLINE_S)
        for pump in self.pumps:
            pump.join(timeout=DEADLINE_S)
        drained: tuple[list[str], list[str]] = ([], [])
        for lines, out in ((self.stdout, drained[0]), (self.stderr, drained[1])):
            while not lines.empty():
                out.append(lines.get_nowait())
        return status, *drained

    def close(self) -> None:
        """Kill the process by PID if it still runs, and close its pipes."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=DEADLINE_S)
        for pump in self.pumps:
            pump.join(timeout=DEADLINE_S)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


class TestListen:
    @pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6])
    def test_receives_an_export(
        self, exports: dict[str, tuple[Path, list[Row]]], family: int
    ) -> None:
        """Datagrams sent to the listening address come out as JSON lines, then it stops."""
        if family == socket.AF_INET6 and not ipv6_loopback_works():
            pytest.skip("IPv6 loopback ::1 is not available here")
        host, shown = ("127.0.0.1", "127.0.0.1") if family == socket.AF_INET else ("::1", "[::1]")
        pcap, ours = exports["9"]
        datagrams = payloads_of(pcap)
        port = free_port(family, host)
        collect = Spanflow(
            "--listen", f"{shown}:{port}", "--format", "jsonl", "--count", str(len(datagrams))
        )
        try:
            collect.wait_for(collect.stderr, "listening on")
            with socket.socket(family, socket.SOCK_DGRAM) as sender:
                for datagram in datagrams:
                    sender.sendto(datagram, (host, port))
            status, stdout, stderr = collect.finish()
        finally:
            collect.close()
        assert status == 0, stderr
        rows = [json.loads(line) for line in stdout]
        decoded = Counter(tuple(str(row[name]) for name in KEY_FIELDS) for row in rows)
        assert decoded == key_multiset(ours)
        assert (
            f"spanflow: {len(datagrams)} datagrams (0 malformed), {len(ours)} records, 0 sequence gaps"
            in stderr
        )

    def test_sigterm_ends_with_a_summary(self, exports: dict[str, tuple[Path, list[Row]]]) -> None:
        """SIGTERM while listening ends the collector with status 0 and its summary."""
        v5 = payloads_of(exports["5"][0])[0]
        port = free_port()
        collect = Spanflow("--listen", f"127.0.0.1:{port}", "--format", "jsonl")
        try:
            collect.wait_for(collect.stderr, "listening on")
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
                sender.sendto(v5, ("127.0.0.1", port))
            collect.wait_for(collect.stdout, '"src"')  # the datagram was decoded
            collect.process.send_signal(signal.SIGTERM)
            status, _, stderr = collect.finish()
        finally:
            collect.close()
        assert status == 0, stderr
        assert "spanflow: 1 datagrams (0 malformed), 30 records, 0 sequence gaps" in stderr
        assert not any("Traceback" in line for line in stderr)
