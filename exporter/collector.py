"""A small collector: decodes v5, v9 and IPFIX datagrams from any exporter.

Decoders and sequence rules come from exporter.registry.FORMATS, so nothing
here knows a version number or a wire layout. Templates are kept per exporter
address and source id / observation domain (in the decoders); sequence
numbers are checked per exporter, version and domain with each format's own
rule; garbage (unknown versions too) is counted, never raised.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import numpy as np

from core.records import RecordTable
from exporter.errors import DecodeError
from exporter.formats import Decoded
from exporter.registry import FORMATS, Decoder, WireFormat

SEQUENCE_MODULUS = 1 << 32


@dataclass(slots=True)
class CollectorStats:
    datagrams: int = 0
    bad_datagrams: int = 0
    records: int = 0
    sequence_gaps: int = 0  # datagrams whose sequence number was not the one expected
    lost_estimate: int = 0  # units of the version's sequence (v5/IPFIX records, v9 datagrams)
    unknown_template_sets: int = 0  # data sets skipped because their template was not seen
    first_error: str = ""
    sampling: dict[tuple[object, int, int], int] = field(default_factory=dict)


class Collector:
    """Feed it datagrams with their sender; it returns the decoded records."""

    def __init__(self, scale: bool = False) -> None:
        self.scale = scale
        self._decoders: dict[int, Decoder] = {v: f.decoder() for v, f in FORMATS.items()}
        self.stats = CollectorStats()
        self._expected: dict[tuple[object, int, int], int] = {}
        self._interval: dict[tuple[object, int, int], int] = {}

    def feed(self, datagram: bytes, sender: object = None) -> RecordTable:
        """Records of one datagram (scaled by the announced sampling interval if asked)."""
        self.stats.datagrams += 1
        try:
            wire, decoded = self._decode(datagram, sender)
        except DecodeError as exc:
            self.stats.bad_datagrams += 1
            self.stats.first_error = self.stats.first_error or str(exc)
            return RecordTable.empty(0)
        self.stats.unknown_template_sets += decoded.skipped_sets
        stream = (sender, decoded.version, _domain(decoded))
        self._check_sequence(stream, wire, decoded)
        if decoded.sampling is not None:
            self._interval[stream] = max(decoded.sampling.interval, 1)
            self.stats.sampling[stream] = self._interval[stream]
        records = decoded.records
        self.stats.records += len(records)
        interval = self._interval.get(stream, 1)
        if self.scale and interval > 1 and len(records):
            records = records.take(slice(None))
            records.packets = records.packets * np.uint64(interval)
            records.octets = records.octets * np.uint64(interval)
        return records

    def _decode(self, datagram: bytes, sender: object) -> tuple[WireFormat, Decoded]:
        if len(datagram) < 2:
            raise DecodeError(f"{len(datagram)}-byte datagram")
        version = int.from_bytes(datagram[:2], "big")
        wire = FORMATS.get(version)
        if wire is None:
            raise DecodeError(f"unknown export version {version}")
        return wire, self._decoders[version].decode(datagram, sender)

    def _check_sequence(
        self, stream: tuple[object, int, int], wire: WireFormat, decoded: Decoded
    ) -> None:
        sequence, advance = wire.sequence(decoded), wire.advance(decoded)
        expected = self._expected.get(stream)
        if expected is not None and sequence != expected:
            self.stats.sequence_gaps += 1
            self.stats.lost_estimate += (sequence - expected) % SEQUENCE_MODULUS
        self._expected[stream] = (sequence + advance) % SEQUENCE_MODULUS


def _domain(decoded: Decoded) -> int:
    names = decoded.header.dtype.names or ()
    for name in ("source_id", "observation_domain_id"):
        if name in names:
            return int(decoded.header[name])
    return int(decoded.header["engine_type"]) << 8 | int(decoded.header["engine_id"])


def udp_payload(frame: bytes, linktype: int) -> tuple[str, int, bytes] | None:
    """(source address, source port, payload) of a UDP datagram in an Ethernet or raw IP frame.

    Per datagram, not per captured packet: this reads export pcaps (spanflow's
    ``--pcap-out``), whose frames are datagrams of a few per second.
    """
    offset = 0
    if linktype == 1:
        ethertype = int.from_bytes(frame[12:14], "big")
        offset = 14
        while ethertype in (0x8100, 0x88A8) and len(frame) >= offset + 4:
            ethertype = int.from_bytes(frame[offset + 2 : offset + 4], "big")
            offset += 4
    elif linktype not in (12, 101, 228, 229):
        return None
    if len(frame) < offset + 1:
        return None
    version = frame[offset] >> 4
    if version == 4 and len(frame) >= offset + 20 and frame[offset + 9] == 17:
        source = ".".join(str(b) for b in frame[offset + 12 : offset + 16])
        udp = offset + (frame[offset] & 0x0F) * 4
    elif version == 6 and len(frame) >= offset + 40 and frame[offset + 6] == 17:
        source = str(ipaddress.IPv6Address(frame[offset + 8 : offset + 24]))
        udp = offset + 40
    else:
        return None
    if len(frame) < udp + 8:
        return None
    length = int.from_bytes(frame[udp + 4 : udp + 6], "big")
    return (
        source,
        int.from_bytes(frame[udp : udp + 2], "big"),
        frame[udp + 8 : udp + max(length, 8)],
    )
