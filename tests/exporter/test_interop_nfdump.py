"""Interop: nfcapd/nfdump and tshark decode what spanflow exports, record for record.

nfcapd listens on a free loopback port and writes to a temporary directory;
it is stopped with SIGTERM (so it flushes its file) and read back with
``nfdump -o json``, ``-I`` (sequence failures) and ``-E`` (exporters and
samplers). tshark dissects a pcap of the same datagrams written by PcapSink.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from core.records import RecordTable
from exporter import EXPORTERS
from exporter.formats import ExportConfig
from exporter.sinks import PcapSink, UdpSink
from tests.collectors import (
    HAVE_NFDUMP,
    TOOL_ENV,
    Nfcapd,
    nfdump_ms,
    nfdump_version,
    run_nfdump,
)
from tests.exporter.vectors import V4_MAPPED, walk_sets

pytestmark = pytest.mark.interop

TSHARK = shutil.which("tshark")
needs_nfdump = pytest.mark.skipif(
    not HAVE_NFDUMP, reason="nfcapd/nfdump not installed (Debian package nfdump)"
)
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark not installed")

BOOT_NS = 1_767_225_600_000_000_000  # 2026-01-01 00:00:00 UTC
EXPORT_NS = BOOT_NS + 600_437_000_123  # after every record ends, not on a whole second
RECORDS = 360
BATCH = 45  # records per encode call, so sequence numbers run across calls
REFRESH = 4  # templates every 4 datagrams, so refreshes happen mid-stream
HEADER_SIZE = {5: 24, 9: 20, 10: 16}


def generated_records(n: int = RECORDS, seed: int = 2055) -> RecordTable:
    """TCP, UDP and ICMP records over IPv4 and IPv6 with varied counters and times."""
    rng = np.random.default_rng(seed)
    table = RecordTable.empty(n)
    six = np.arange(n) % 3 == 2
    table.version[:] = np.where(six, 6, 4)
    for side in ("src", "dst"):
        v4 = rng.integers(0x0A000000, 0x0AFFFFFF, n, np.uint64) | np.uint64(V4_MAPPED)
        lo = rng.integers(1, 2**63, n, np.uint64)
        getattr(table, side + "_hi")[:] = np.where(six, np.uint64(0x2001_0DB8_0000_0000), 0)
        getattr(table, side + "_lo")[:] = np.where(six, lo, v4)
    table.proto[:] = rng.choice([6, 17, 1], n, p=[0.6, 0.3, 0.1])
    icmp = table.proto == 1
    table.sport[:] = np.where(icmp, 0, rng.integers(1024, 65535, n))
    table.dport[:] = np.where(icmp, 8 * 256, rng.choice([53, 80, 443, 8080], n))
    table.tos[:] = rng.choice([0, 0x28, 0xB8], n)
    table.tcp_flags[:] = np.where(table.proto == 6, rng.integers(1, 64, n), 0)
    table.ifindex[:] = rng.integers(1, 8, n)
    table.vlan[:] = rng.integers(0, 4095, n)
    table.packets[:] = rng.integers(1, 100_000, n)
    table.octets[:] = table.packets * rng.integers(40, 1500, n).astype(np.uint64)
    table.first_ns[:] = BOOT_NS + rng.integers(0, 300_000, n) * 1_000_000 + rng.integers(0, 999, n)
    table.last_ns[:] = table.first_ns + rng.integers(0, 200_000, n) * 1_000_000
    table.end_reason[:] = rng.integers(1, 5, n, endpoint=True)
    return table


def encode(version: int, records: RecordTable, **config: int) -> list[bytes]:
    exporter = EXPORTERS[version](
        ExportConfig(source_id=7, template_refresh_packets=REFRESH, boot_ns=BOOT_NS, **config)
    )
    datagrams: list[bytes] = []
    for start in range(0, len(records), BATCH):
        datagrams += exporter.encode(records.take(slice(start, start + BATCH)), EXPORT_NS)
    return datagrams


def run(*args: str) -> str:
    done = subprocess.run(
        args, capture_output=True, text=True, timeout=60, env=TOOL_ENV, check=True
    )
    return done.stdout


def collect(tmp_path: Path, datagrams: list[bytes]) -> tuple[list[dict[str, object]], str, str]:
    """(flow records as nfdump's JSON, `nfdump -I` summary, `nfdump -E` exporters)."""
    with Nfcapd(tmp_path / "flows") as collector:
        with UdpSink("127.0.0.1", collector.port) as sink:
            for datagram in datagrams:
                sink.send(datagram, EXPORT_NS)
        collector.finish()  # every datagram read, then SIGTERM so it writes its file
    assert (sink.sent, sink.errors) == (len(datagrams), 0)
    flows = collector.directory
    [capture] = flows.glob("nfcapd.2*")
    records = json.loads(run_nfdump("-R", str(flows), "-o", "json") or "[]")
    return records, run_nfdump("-R", str(flows), "-I"), run_nfdump("-E", str(capture))


def expected_flows(records: RecordTable, with_vlan: bool) -> Counter[tuple[object, ...]]:
    flows: Counter[tuple[object, ...]] = Counter()
    for i in range(len(records)):
        six = records.version[i] == 6
        address = [
            ipaddress.ip_address((int(hi) << 64 | int(lo)) if six else int(lo) & 0xFFFFFFFF)
            for hi, lo in (
                (records.src_hi[i], records.src_lo[i]),
                (records.dst_hi[i], records.dst_lo[i]),
            )
        ]
        flows[(*address, int(records.sport[i]), int(records.dport[i]), int(records.proto[i]),
               int(records.tos[i]), int(records.packets[i]), int(records.octets[i]),
               int(records.first_ns[i]) // 1_000_000, int(records.last_ns[i]) // 1_000_000,
               int(records.ifindex[i]), int(records.vlan[i]) if with_vlan else 0)] += 1  # fmt: skip
    return flows


def nfdump_flows(rows: list[dict[str, object]], with_vlan: bool) -> Counter[tuple[object, ...]]:
    flows: Counter[tuple[object, ...]] = Counter()
    for row in rows:
        src = row.get("src4_addr", row.get("src6_addr"))
        dst = row.get("dst4_addr", row.get("dst6_addr"))
        if "icmp_type" in row:  # nfdump splits ICMP's dport = type * 256 + code
            ports = (0, int(str(row["icmp_type"])) * 256 + int(str(row["icmp_code"])))
        else:
            ports = (row["src_port"], row["dst_port"])
        flows[(ipaddress.ip_address(str(src)), ipaddress.ip_address(str(dst)), *ports,
               row["proto"], row["src_tos"], row["in_packets"], row["in_bytes"],
               nfdump_ms(str(row["first"])), nfdump_ms(str(row["last"])), row["input_snmp"],
               row["src_vlan"] if with_vlan else 0)] += 1  # fmt: skip
    return flows


def sequence_failures(exporters: str) -> int:
    found = re.findall(r"Sequence failures: (\d+)", exporters)
    assert len(found) == 1, exporters
    return int(found[0])


def refreshes_before_more(version: int, datagrams: list[bytes]) -> int:
    """Datagrams carrying the sampling options data record that another datagram follows."""
    options = [
        any(set_id == 258 for set_id, _, _ in walk_sets(d, HEADER_SIZE[version])) for d in datagrams
    ]
    return sum(options[:-1])


@needs_nfdump
class TestNfdump:
    @pytest.mark.parametrize("version", [5, 9, 10])
    def test_nfdump_reads_every_record_exactly(self, tmp_path: Path, version: int) -> None:
        """nfdump gets every record (v5: the IPv4 ones) with exact fields, counters and ms times."""
        records = generated_records()
        datagrams = encode(version, records)
        rows, summary, _ = collect(tmp_path, datagrams)
        sent = records.take(records.version == 4) if version == 5 else records
        with_vlan = version != 5
        assert len(rows) == len(sent)
        assert nfdump_flows(rows, with_vlan) == expected_flows(sent, with_vlan)
        assert f"Packets: {int(sent.packets.sum())}\n" in summary
        assert f"Bytes: {int(sent.octets.sum())}\n" in summary
        if version != 5:
            assert sum("src6_addr" in row for row in rows) == int((records.version == 6).sum()) > 0

    @pytest.mark.parametrize("version", [5, 9])
    def test_no_sequence_failures(self, tmp_path: Path, version: int) -> None:
        """v5 (records before) and v9 (datagrams before) sequence numbers all check out."""
        datagrams = encode(version, generated_records())
        _, summary, exporters = collect(tmp_path, datagrams)
        assert "Sequence failures: 0\n" in summary
        assert sequence_failures(exporters) == 0

    def test_ipfix_sequence_failures_only_after_options_records(self, tmp_path: Path) -> None:
        """nfdump leaves options data records out of the IPFIX sequence, unlike RFC 7011 3.1.

        It reports one failure for each message after one carrying the sampling options
        record, and none otherwise: the flow records themselves are all in order.
        """
        datagrams = encode(10, generated_records())
        expected = refreshes_before_more(10, datagrams)
        assert expected >= 3
        _, summary, exporters = collect(tmp_path, datagrams)
        assert f"Sequence failures: {expected}\n" in summary
        assert sequence_failures(exporters) == expected

    def test_v5_sampling_is_shown_and_scaled(self, tmp_path: Path) -> None:
        """nfdump reads the v5 header's 1-in-10 and scales the counters by 10."""
        records = generated_records()
        rows, summary, exporters = collect(tmp_path, encode(5, records, sampling_interval=10))
        assert "packet interval: 1, packet space: 9" in exporters
        ipv4 = records.take(records.version == 4)
        assert f"Packets: {10 * int(ipv4.packets.sum())}\n" in summary
        assert len(rows) == len(ipv4)

    @pytest.mark.xfail(
        nfdump_version() <= (1, 7, 1),
        reason="nfdump 1.7.1 takes a sampling options template only with 34 but not 35, or "
        "306 without 302 and 304 (flag masks compared for equality); fixed in nfdump 1.7.2",
        strict=True,
    )
    @pytest.mark.parametrize("version", [9, 10])
    def test_v9_and_ipfix_sampling_is_shown(self, tmp_path: Path, version: int) -> None:
        """nfdump shows the 1-in-10 sampler announced in the options data record."""
        _, _, exporters = collect(
            tmp_path, encode(version, generated_records(), sampling_interval=10)
        )
        assert "packet interval: 1, packet space: 9" in exporters


def tshark(path: Path, *args: str) -> str:
    assert TSHARK is not None
    return run(TSHARK, "-r", str(path), "-d", "udp.port==2055,cflow", *args)


@needs_tshark
class TestTshark:
    @pytest.mark.parametrize("version", [5, 9, 10])
    def test_tshark_decodes_without_expert_findings(self, tmp_path: Path, version: int) -> None:
        """tshark finds no malformed packet or expert item and sums the same counters."""
        records = generated_records()
        path = tmp_path / f"v{version}.pcap"
        with PcapSink(path, ("127.0.0.1", 2055)) as sink:
            for datagram in encode(version, records, sampling_interval=10):
                sink.send(datagram, EXPORT_NS)
        assert tshark(path, "-q", "-z", "expert").strip() == ""
        assert tshark(path, "-Y", "_ws.malformed or _ws.expert") == ""
        fields = tshark(
            path, "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,",
            "-e", "cflow.packets", "-e", "cflow.octets", "-e", "cflow.srcaddr",
            "-e", "cflow.srcaddrv6",
        )  # fmt: skip
        columns = [[], [], [], []]  # type: list[list[str]]
        for line in fields.splitlines():
            for column, text in zip(columns, line.split("\t"), strict=True):
                column += [value for value in text.split(",") if value]
        sent = records.take(records.version == 4) if version == 5 else records
        assert sum(map(int, columns[0])) == int(sent.packets.sum())
        assert sum(map(int, columns[1])) == int(sent.octets.sum())
        assert (len(columns[2]), len(columns[3])) == (
            int((sent.version == 4).sum()),
            int((sent.version == 6).sum()),
        )

    @pytest.mark.parametrize("version", [9, 10])
    def test_tshark_reads_each_records_end_reason(self, tmp_path: Path, version: int) -> None:
        """tshark shows flowEndReason (IE 136) on every v9 and IPFIX record, equal to ours."""
        records = generated_records()
        path = tmp_path / f"v{version}.pcap"
        with PcapSink(path) as sink:
            for datagram in encode(version, records):
                sink.send(datagram, EXPORT_NS)
        fields = tshark(
            path, "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,",
            "-e", "cflow.packets", "-e", "cflow.octets", "-e", "cflow.flow_end_reason",
        )  # fmt: skip
        seen: Counter[tuple[int, ...]] = Counter()
        for line in fields.splitlines():
            packets, octets, reasons = (
                [int(v) for v in text.split(",") if v] for text in line.split("\t")
            )
            seen.update(zip(packets, octets, reasons, strict=True))
        expected = zip(
            records.packets.tolist(),
            records.octets.tolist(),
            records.end_reason.tolist(),
            strict=True,
        )
        assert len(set(records.end_reason.tolist())) == 5
        assert seen == Counter(expected)

    @pytest.mark.parametrize(
        ("version", "fields", "expected"),
        [
            (5, ("cflow.samplingmode", "cflow.samplerate"), "1\t10"),
            (9, ("cflow.sampling_interval", "cflow.sampling_algorithm"), "10\t1"),
            (10, ("cflow.selector_algorithm", "cflow.sampling_packet_space"), "1\t9"),
        ],
    )
    def test_tshark_reads_the_sampling_we_announce(
        self, tmp_path: Path, version: int, fields: tuple[str, str], expected: str
    ) -> None:
        """Deterministic 1-in-10 shows as v5 mode 1 rate 10, v9 34/35, IPFIX 304/306."""
        path = tmp_path / f"v{version}.pcap"
        with PcapSink(path) as sink:
            for datagram in encode(version, generated_records(30), sampling_interval=10):
                sink.send(datagram, EXPORT_NS)
        out = tshark(path, "-T", "fields", "-e", fields[0], "-e", fields[1], "-c", "1")
        assert out.strip() == expected
