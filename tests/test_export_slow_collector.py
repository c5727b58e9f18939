"""A collector slower than the export: unpaced or paced too fast, datagrams are lost and
spanflow goes on; with ``--pace`` low enough, every flow arrives.

The collector reads on 127.0.0.1 with a small receive buffer (about 14
datagrams of 1.5 kB) and sleeps 2 ms after every datagram, so it drains at
most 500 a second. Unpaced, all of a conversion's datagrams leave in one
burst of a millisecond or two (measured: 556 datagrams before the reader's
first 2 ms sleep ended), so the collector keeps the first buffer-full and the
rest is dropped: a tail loss that sequence numbers cannot show, since no
later datagram arrives. At 2,000 a second the loss is spread over the run and
the sequence numbers count it exactly. At 100 a second (5 times under the
reader's best rate, and its buffer rides out a 140 ms stall) all arrive.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import dpkt
import pytest

from exporter import IpfixDecoder, V9Decoder
from tests.captures import T0_NS, Frame, ethernet, ipv4_udp, pcap_file
from tests.cli_runs import convert, stderr_lines
from tests.collectors import SlowCollector

FLOWS = 6_000  # one packet each: about 200 v9 or 240 IPFIX datagrams
RCVBUF_BYTES = 16_384  # Linux doubles it: about 14 loopback datagrams of 1.5 kB
READ_SLEEP_S = 0.002
TOO_FAST_PER_S = 2_000
SLOW_ENOUGH_PER_S = 100
TEMPLATE_REFRESH = 20  # default: the template block goes in every 20th datagram
EXPORTED = re.compile(r"^spanflow: exported (\d+) records in (\d+) datagrams$")


def one_packet_flows(path: Path) -> None:
    """FLOWS single-packet UDP flows (source ports 1024...), 10 µs apart: no timeout fires."""
    frames = [
        Frame(ethernet(ipv4_udp("198.18.0.1", "198.18.1.1", 1024 + i, 53, b"q"),
                       dpkt.ethernet.ETH_TYPE_IP), T0_NS + i * 10_000)
        for i in range(FLOWS)
    ]  # fmt: skip
    path.write_bytes(pcap_file(frames, nanos=True))


def export_to_slow_collector(
    capture: Path, export_format: str, pace_per_s: int
) -> tuple[int, int, list[bytes]]:
    """Convert into a fresh slow collector: (records, datagrams) spanflow reports, what arrived."""
    with SlowCollector(RCVBUF_BYTES, READ_SLEEP_S) as collector:
        result = convert(capture, "-c", f"127.0.0.1:{collector.port}",
                         "--format", export_format, "--pace", str(pace_per_s))  # fmt: skip
        collector.wait_idle()
        received = list(collector.datagrams)
    lines = stderr_lines(result)
    assert result.exit_code == 0, lines
    assert not [line for line in lines if "error" in line], lines
    found = [m for m in map(EXPORTED.match, lines) if m]
    assert len(found) == 1, lines
    return int(found[0][1]), int(found[0][2]), received


def sent_sequence(export_format: str, datagrams: int) -> int:
    """The sequence number after the last datagram sent: v9 counts datagrams, IPFIX data
    records (the flows and one options record per template block)."""
    if export_format == "9":
        return datagrams
    return FLOWS + math.ceil(datagrams / TEMPLATE_REFRESH)


def sequence_view(export_format: str, datagrams: list[bytes]) -> tuple[int, int, int]:
    """(flow records decoded, lost as the sequence numbers count them, last sequence seen + 1).

    v9 numbers datagrams, so the loss is in datagrams; IPFIX numbers data
    records (options records too), so it is in records. Datagrams arrive in
    order on loopback; what is lost after the last one seen is invisible.
    """
    decoder = V9Decoder() if export_format == "9" else IpfixDecoder()
    flows = lost = expected = 0
    for datagram in datagrams:
        decoded = decoder.decode(datagram, "spanflow")
        sequence = int(decoded.header["sequence_number"])
        assert sequence >= expected, f"sequence {sequence} went back from {expected}"
        lost += sequence - expected
        expected = sequence + (1 if export_format == "9" else decoded.data_records)
        flows += len(decoded.records)
    return flows, lost, expected


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("slow") / "flows.pcap"
    one_packet_flows(path)
    return path


@pytest.mark.parametrize("export_format", ["9", "ipfix"])
def test_unpaced_burst_loses_its_tail_and_spanflow_goes_on(
    capture: Path, export_format: str
) -> None:
    """Unpaced, the collector keeps about a buffer-full; spanflow exits 0 with every flow sent."""
    records, datagrams, received = export_to_slow_collector(capture, export_format, 0)
    assert records == FLOWS
    assert 0 < len(received) < datagrams // 2
    flows, lost, after_last = sequence_view(export_format, received)
    assert flows < FLOWS // 2
    # What the collector can count (gaps before its last datagram) and the invisible tail
    # make up exactly what was sent and not received.
    unseen = sent_sequence(export_format, datagrams) - after_last
    assert unseen > 0
    if export_format == "9":
        assert lost + unseen == datagrams - len(received)


@pytest.mark.parametrize("export_format", ["9", "ipfix"])
def test_pace_too_fast_loss_is_counted_by_sequence(capture: Path, export_format: str) -> None:
    """Paced faster than the collector reads, the loss falls between datagrams it gets: the
    sequence numbers count it, and with the tail they account for every record sent."""
    records, datagrams, received = export_to_slow_collector(capture, export_format, TOO_FAST_PER_S)
    assert records == FLOWS
    assert len(received) < datagrams
    flows, lost, after_last = sequence_view(export_format, received)
    assert lost > 0
    unseen = sent_sequence(export_format, datagrams) - after_last
    if export_format == "9":
        assert lost + unseen == datagrams - len(received)
    else:
        options_received = sum(1 for d in received if IpfixDecoder().decode(d).template_ids)
        assert lost + unseen == sent_sequence(export_format, datagrams) - flows - options_received


@pytest.mark.parametrize("export_format", ["9", "ipfix"])
def test_paced_export_reaches_the_slow_collector_whole(capture: Path, export_format: str) -> None:
    """At --pace 100 the slow collector gets every datagram and every flow, with no gap."""
    records, datagrams, received = export_to_slow_collector(
        capture, export_format, SLOW_ENOUGH_PER_S
    )
    assert records == FLOWS
    assert len(received) == datagrams
    flows, lost, after_last = sequence_view(export_format, received)
    assert (flows, lost) == (FLOWS, 0)
    assert after_last == sent_sequence(export_format, datagrams)
