"""The export formats, one row each: encoder, decoder factory and sequence rule; no wire layout."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from exporter.formats import Decoded
from exporter.ipfix import IpfixDecoder, IpfixExporter
from exporter.v5 import V5Exporter, decode_v5
from exporter.v9 import V9Decoder, V9Exporter

ExporterClass = type[V5Exporter] | type[V9Exporter] | type[IpfixExporter]


class Decoder(Protocol):
    """Reads datagrams of one version; keeps whatever state (templates) it needs per sender."""

    def decode(self, datagram: bytes, exporter: object = None) -> Decoded:
        """One datagram from ``exporter``; raises DecodeError (only) when it cannot be read."""
        ...


class V5Decoder:
    """v5 needs no state: every datagram is read alone."""

    def decode(self, datagram: bytes, exporter: object = None) -> Decoded:
        return decode_v5(datagram)


@dataclass(frozen=True, slots=True)
class WireFormat:
    """One export format: its names, its encoder, a decoder factory and its sequence rule.

    ``decoder`` makes a fresh decoder (one per collector: v9/IPFIX templates
    live on it, per exporter and domain). The header field ``sequence_field``
    of the next datagram is expected at this one's plus ``advance(decoded)``,
    modulo 2^32.
    """

    name: str  # as the command line's --format spells it
    version: int  # the header's version field
    exporter: ExporterClass
    decoder: Callable[[], Decoder]
    sequence_field: str
    advance: Callable[[Decoded], int]

    def sequence(self, decoded: Decoded) -> int:
        """The datagram's sequence number."""
        return int(decoded.header[self.sequence_field])


def _flows_in(decoded: Decoded) -> int:
    """v5: flows sent before this datagram, so it advances by the records it holds."""
    return int(decoded.header["count"])


def _one_datagram(decoded: Decoded) -> int:
    """v9 (RFC 3954 section 5.1): export packets sent before this one."""
    return 1


def _data_records_in(decoded: Decoded) -> int:
    """IPFIX (RFC 7011 section 3.1): data records before this message, options data included."""
    return decoded.data_records


FORMATS: dict[int, WireFormat] = {
    f.version: f
    for f in (
        WireFormat("5", 5, V5Exporter, V5Decoder, "flow_sequence", _flows_in),
        WireFormat("9", 9, V9Exporter, V9Decoder, "sequence_number", _one_datagram),
        WireFormat("ipfix", 10, IpfixExporter, IpfixDecoder, "sequence_number", _data_records_in),
    )
}

FORMATS_BY_NAME: dict[str, WireFormat] = {f.name: f for f in FORMATS.values()}


def format_named(name: str) -> WireFormat:
    """The format the command line calls ``name`` ("5", "9", "ipfix"); KeyError if none."""
    return FORMATS_BY_NAME[name]
