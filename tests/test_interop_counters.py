"""Counters past 32 bits through nfcapd/nfdump: v5's split records sum exactly, v9/IPFIX carry 64 bits.

NetFlow v5's dPkts and dOctets are 32-bit; a record with more than 2^32-1
packets or octets goes out as k records with the same key and times, k =
max(ceil(packets / M), ceil(octets / M)) with M = 2^32-1 (docs/design.md,
"Export"). nfdump stores each part; what it sums per flow and in total must
be the true counters. The expected part counts are worked out here with
Python integers from that rule, not taken from the encoder.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from core.records import RecordTable
from exporter import EXPORTERS
from exporter.formats import ExportConfig
from exporter.sinks import UdpSink
from tests.collectors import HAVE_NFDUMP, Nfcapd

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(not HAVE_NFDUMP, reason="nfcapd/nfdump not installed (Debian nfdump)"),
]

M = (1 << 32) - 1  # the largest v5 counter
BOOT_NS = 1_767_225_600_000_000_000  # 2026-01-01 00:00:00 UTC
EXPORT_NS = BOOT_NS + 3_600 * 1_000_000_000
V4_MAPPED = 0xFFFF_0000_0000
# (packets, octets) per flow: octets past 2^32; packets past 2^32-1 (40-byte packets, so
# octets need 41 parts); both exactly 2^32-1 (one part); a small flow.
COUNTERS = [
    (2_000_001, 3 * (1 << 32) + 12_345),
    ((1 << 32) + 6, 40 * ((1 << 32) + 6)),
    (M, M),
    (10, 4_000),
]


def big_records() -> RecordTable:
    """One IPv4 TCP record per COUNTERS entry, source port 3000 + index, 25 minutes long."""
    n = len(COUNTERS)
    table = RecordTable.empty(n)
    table.version[:] = 4
    table.src_lo[:] = V4_MAPPED | 0xC6120001  # 198.18.0.1
    table.dst_lo[:] = V4_MAPPED | 0xC6120101  # 198.18.1.1
    table.proto[:], table.dport[:], table.tcp_flags[:] = 6, 443, 0x18
    table.sport[:] = [3000 + i for i in range(n)]
    table.packets[:] = [packets for packets, _ in COUNTERS]
    table.octets[:] = [octets for _, octets in COUNTERS]
    table.first_ns[:] = BOOT_NS + 1_000_000_000
    table.last_ns[:] = BOOT_NS + 1_501_000_000_000
    table.end_reason[:] = 2
    return table


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def parts(version: int) -> int:
    """Records nfdump must store: v5 splits by the 32-bit rule, v9/IPFIX send one per flow."""
    if version != 5:
        return len(COUNTERS)
    return sum(max(ceil_div(p, M), ceil_div(o, M), 1) for p, o in COUNTERS)


@pytest.mark.parametrize("version", [5, 9, 10])
def test_counters_past_32_bits_sum_exactly(tmp_path: Path, version: int) -> None:
    """nfdump's per-flow and total packets and bytes equal the true counters, past 2^32."""
    records = big_records()
    exporter = EXPORTERS[version](ExportConfig(boot_ns=BOOT_NS))
    with Nfcapd(tmp_path / "flows") as nfcapd:
        with UdpSink("127.0.0.1", nfcapd.port) as sink:
            for datagram in exporter.encode(records, EXPORT_NS):
                sink.send(datagram, EXPORT_NS)
        assert (sink.sent, sink.errors) == (exporter.datagrams_sent, 0)
        nfcapd.finish()
        rows, summary = nfcapd.rows(), nfcapd.summary()
    per_flow: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    times = set()
    for row in rows:
        packets, octets = int(str(row["in_packets"])), int(str(row["in_bytes"]))
        if version == 5:
            assert 1 <= packets <= M, row
            assert octets <= M, row
        per_flow[int(str(row["src_port"]))][0] += packets
        per_flow[int(str(row["src_port"]))][1] += octets
        times.add((row["first"], row["last"]))
    assert dict(per_flow) == {3000 + i: [p, o] for i, (p, o) in enumerate(COUNTERS)}
    assert len(times) == 1  # every part keeps its flow's times
    assert summary["Flows"] == len(rows) == parts(version)
    assert (summary["Packets"], summary["Bytes"]) == (
        sum(p for p, _ in COUNTERS),
        sum(o for _, o in COUNTERS),
    )
