"""sysUptime wrap: nfcapd/nfdump date v5 and v9 records across 2^32 ms (49.7 days) of uptime.

v5 and v9 carry FIRST/LAST_SWITCHED as uptime milliseconds modulo 2^32, and
uptime zero is the probe's boot (offline: the first packet). Here the boot is
on no whole millisecond and the records sit on both sides of the moment the
uptime passes 2^32 ms; nfdump must give every record its absolute first and
last millisecond (``first_ns // 10**6``) and its exact counters. IPFIX, with
absolute times, is the control.

Two nfdump behaviours are asserted as they are, from nfdump's source
(src/netflow/netflow_v9.c, phaag/nfdump):

- nfdump up to 1.7.7 dates a v9 record as ``header unix secs * 1000 -
  sysUptime + FIRST/LAST_SWITCHED`` and undoes a wrap only when FIRST >
  LAST, so a record that ended before the wrap but went out in a datagram
  whose uptime had already wrapped is dated exactly 2^32 ms late. nfdump
  1.7.8 (commit eb252823, "Improve robustness of netflow v9 time overflow
  handling") subtracts modulo 2^32 and gets it right. Its v5 reader has the
  extra check (LAST > sysUptime by over 100 s) and always did.
- nfdump reads FIRST/LAST_SWITCHED only when LAST_SWITCHED is not 0, so a v9
  record whose last packet falls in the millisecond where uptime reads 0
  keeps time 0 (1970-01-01), in every version so far.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dpkt
import pytest

from core.records import RecordTable
from exporter import EXPORTERS
from exporter.formats import OFFLINE_BOOT_LEAD_NS, ExportConfig
from exporter.sinks import UdpSink
from tests.captures import T0_NS, Frame, ethernet, ipv4_udp, pcap_file
from tests.cli_runs import convert, stderr_lines
from tests.collectors import HAVE_NFDUMP, Nfcapd, nfdump_ms, nfdump_version

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(not HAVE_NFDUMP, reason="nfcapd/nfdump not installed (Debian nfdump)"),
]

MS = 1_000_000
S = 1_000 * MS
WRAP = 1 << 32  # uptime milliseconds wrap here
BOOT_NS = T0_NS + 123_956_789  # uptime zero, on no whole millisecond
WRAP_MS = BOOT_NS // MS + WRAP  # the epoch millisecond where uptime reads 0 again
WRAP_NS = WRAP_MS * MS
FIRST_PACKET_NS = BOOT_NS + OFFLINE_BOOT_LEAD_NS  # offline, the boot is this long before it
NFDUMP_V9_WRAP_FIXED = (1, 7, 8)
SRC, DST = "198.18.0.1", "198.18.1.1"
V4_MAPPED = 0xFFFF_0000_0000
NO_TIMEOUT = ["--inactive", "1e7", "--active", "1e7"]  # 115 days: every record ends at the end


@dataclass(frozen=True, slots=True)
class Timed:
    """A record's times and counters, and the export clock of the datagram carrying it."""

    name: str
    first_ns: int
    last_ns: int
    export_ns: int
    packets: int
    octets: int


def nfdump_dates(record: Timed, version: int) -> tuple[int, int]:
    """(first, last) in epoch ms as nfdump must store them: exact but for the two v9 quirks.

    The v9 header clock is the export clock rounded up to a whole second, so
    it is past the wrap whenever the export clock is.
    """
    first_ms, last_ms = record.first_ns // MS, record.last_ns // MS
    if version != 9:
        return first_ms, last_ms
    if last_ms % WRAP == WRAP_MS % WRAP:  # LAST_SWITCHED == 0: nfdump skips both times
        return 0, 0
    wrapped_header = record.export_ns >= WRAP_NS
    if nfdump_version() < NFDUMP_V9_WRAP_FIXED and last_ms < WRAP_MS and wrapped_header:
        return first_ms + WRAP, last_ms + WRAP
    return first_ms, last_ms


def stored(rows: list[dict[str, object]]) -> dict[int, tuple[int, int, int, int]]:
    """Source port -> (first ms, last ms, packets, bytes) of each nfdump row."""
    table = {}
    for row in rows:
        port = int(str(row["src_port"]))
        assert port not in table, f"two rows for source port {port}"
        table[port] = (
            nfdump_ms(str(row["first"])), nfdump_ms(str(row["last"])),
            int(str(row["in_packets"])), int(str(row["in_bytes"])),
        )  # fmt: skip
    return table


def expected(records: list[Timed], version: int, port0: int) -> dict[int, tuple[int, ...]]:
    return {
        port0 + i: (*nfdump_dates(r, version), r.packets, r.octets) for i, r in enumerate(records)
    }


# Export clocks never go back, as in a probe; each record is its own encode call.
AROUND_THE_WRAP = [
    Timed("ends and goes out before the wrap", WRAP_NS - 9 * S - 1, WRAP_NS - 8 * S - 500 * MS,
          WRAP_NS - 6 * S, 3, 180),
    Timed("ends before the wrap, goes out after it", WRAP_NS - 5 * S, WRAP_NS - 4 * S + 3,
          WRAP_NS + 4 * S, 7, 1_400),
    Timed("crosses the wrap", WRAP_NS - 3 * S + 7, WRAP_NS + 2 * S + 999_999,
          WRAP_NS + 4 * S, 11, 16_500),
    Timed("crosses the wrap within 3 ms", WRAP_NS - MS + 1, WRAP_NS + MS + 5,
          WRAP_NS + 4 * S, 2, 80),
    Timed("crosses the wrap over 30 minutes", WRAP_NS - 1_790 * S + 3, WRAP_NS + 9 * S,
          WRAP_NS + 12 * S, 90_000, 120_000_000),
    Timed("after the wrap", WRAP_NS + S, WRAP_NS + 3 * S, WRAP_NS + 12 * S, 5, 5_000),
    Timed("ends in the millisecond uptime reads 0", WRAP_NS - S, WRAP_NS + 700_000,
          WRAP_NS + 12 * S, 4, 400),
]  # fmt: skip


def record_table(record: Timed, port: int) -> RecordTable:
    table = RecordTable.empty(1)
    table.version[:] = 4
    table.src_lo[:] = V4_MAPPED | 0xC6120001  # 198.18.0.1
    table.dst_lo[:] = V4_MAPPED | 0xC6120101  # 198.18.1.1
    table.proto[:], table.sport[:], table.dport[:] = 17, port, 53
    table.first_ns[:], table.last_ns[:] = record.first_ns, record.last_ns
    table.packets[:], table.octets[:] = record.packets, record.octets
    table.end_reason[:] = 1
    return table


@pytest.mark.parametrize("version", [5, 9, 10])
def test_exporter_records_across_the_wrap(tmp_path: Path, version: int) -> None:
    """Records before, across and after the wrap: nfdump dates each to the ms, counters exact."""
    port0 = 1000
    exporter = EXPORTERS[version](ExportConfig(boot_ns=BOOT_NS))
    with Nfcapd(tmp_path / "flows") as nfcapd:
        with UdpSink("127.0.0.1", nfcapd.port) as sink:
            for i, record in enumerate(AROUND_THE_WRAP):
                for datagram in exporter.encode(record_table(record, port0 + i), record.export_ns):
                    sink.send(datagram, record.export_ns)
        assert (sink.sent, sink.errors) == (exporter.datagrams_sent, 0)
        nfcapd.finish()
        rows, summary = nfcapd.rows(), nfcapd.summary()
    assert stored(rows) == expected(AROUND_THE_WRAP, version, port0)
    assert summary == {
        "Flows": len(AROUND_THE_WRAP),
        "Packets": sum(r.packets for r in AROUND_THE_WRAP),
        "Bytes": sum(r.octets for r in AROUND_THE_WRAP),
        # nfdump leaves the IPFIX options record out of the sequence (RFC 7011 3.1 counts
        # it), so it flags the message after the first, which carries the templates.
        "Sequence failures": 1 if version == 10 else 0,
    }


def flow_frames(port: int, times_ns: list[int], payload_bytes: int) -> list[Frame]:
    ip = ipv4_udp(SRC, DST, port, 53, b"w" * payload_bytes)
    return [Frame(ethernet(ip, dpkt.ethernet.ETH_TYPE_IP), t) for t in times_ns]


def wrap_capture() -> tuple[list[Frame], list[Timed]]:
    """A capture starting a second after the boot (offline uptime zero is a second before the
    first packet) whose later flows sit around the wrap, 49.7 days on.

    Every flow ends at the end of input (no timeout fires), so every record is
    exported at the clock of the last packet, which is after the wrap.
    """
    plan = [
        [FIRST_PACKET_NS + k * 10 * S for k in range(21)],  # the first packet, then 200 s
        [WRAP_NS - 8 * S + 17, WRAP_NS - 7 * S + 3],  # ends before the wrap
        [WRAP_NS - 5 * S + 11 + k * S for k in range(11)],  # crosses it, 1 s apart
        [WRAP_NS - MS + 1, WRAP_NS + MS + 2],  # crosses it within 3 ms
        [WRAP_NS + S + 5, WRAP_NS + 6 * S + 999_999],  # after it
    ]
    frames: list[Frame] = []
    records: list[Timed] = []
    end_ns = max(t for times in plan for t in times)
    for i, times in enumerate(plan):
        flow = flow_frames(2000 + i, times, 10 * (i + 1))
        frames += flow
        octets = sum(len(dpkt.ethernet.Ethernet(f.data).data) for f in flow)
        records.append(Timed(f"flow {i}", min(times), max(times), end_ns, len(times), octets))
    frames.sort(key=lambda frame: frame.ts_ns)
    return frames, records


@pytest.mark.parametrize(("export_format", "version"), [("5", 5), ("9", 9), ("ipfix", 10)])
def test_convert_a_capture_across_the_wrap(
    tmp_path: Path, export_format: str, version: int
) -> None:
    """spanflow convert of a capture spanning the wrap: nfdump dates every flow to the ms."""
    frames, records = wrap_capture()
    assert frames[0].ts_ns == FIRST_PACKET_NS
    capture = tmp_path / "wrap.pcap"
    capture.write_bytes(pcap_file(frames, nanos=True))
    with Nfcapd(tmp_path / "flows") as nfcapd:
        result = convert(capture, "-c", f"127.0.0.1:{nfcapd.port}", "--format", export_format,
                         *NO_TIMEOUT, "-q")  # fmt: skip
        assert result.exit_code == 0, stderr_lines(result)
        nfcapd.finish()
        rows, summary = nfcapd.rows(), nfcapd.summary()
    assert stored(rows) == expected(records, version, 2000)
    assert summary["Sequence failures"] == 0  # one datagram in every format
    assert (summary["Packets"], summary["Bytes"]) == (
        sum(r.packets for r in records),
        sum(r.octets for r in records),
    )


@pytest.mark.parametrize(("export_format", "version"), [("5", 5), ("9", 9), ("ipfix", 10)])
def test_flows_of_the_first_millisecond_keep_their_time(
    tmp_path: Path, export_format: str, version: int
) -> None:
    """A flow that ends in the capture's first millisecond is dated to the ms by nfdump (with
    uptime zero at the first packet its LAST_SWITCHED would be 0, which nfdump dates 1970)."""
    frames = flow_frames(3000, [FIRST_PACKET_NS, FIRST_PACKET_NS + 10_000], 20)
    frames += flow_frames(3001, [FIRST_PACKET_NS + 2 * S], 30)
    capture = tmp_path / "first-ms.pcap"
    capture.write_bytes(pcap_file(frames, nanos=True))
    with Nfcapd(tmp_path / "flows") as nfcapd:
        result = convert(capture, "-c", f"127.0.0.1:{nfcapd.port}", "--format", export_format,
                         "-q")  # fmt: skip
        assert result.exit_code == 0, stderr_lines(result)
        nfcapd.finish()
        rows = nfcapd.rows()
    dates = sorted((nfdump_ms(str(row["first"])), nfdump_ms(str(row["last"]))) for row in rows)
    assert dates == [
        (FIRST_PACKET_NS // MS, (FIRST_PACKET_NS + 10_000) // MS),
        ((FIRST_PACKET_NS + 2 * S) // MS, (FIRST_PACKET_NS + 2 * S) // MS),
    ]
