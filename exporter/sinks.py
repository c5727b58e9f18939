"""Where export datagrams go: UDP collectors, a pcap file of the datagrams, memory (tests).

Every sink has ``send(datagram, export_ns)`` and ``close()`` and is a context
manager. ``export_ns`` is the export clock the datagram was encoded at (the
``export_ns`` given to ``encode``): the pcap sink stamps frames with it, so a
file converted offline carries the capture's times; the others ignore it.
Sinks know nothing about wire formats.
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from types import TracebackType
from typing import IO, Protocol, Self

import numpy as np

from core.errors import ConfigError, ExportError
from exporter.formats import NS_PER_S


class Sink(Protocol):
    def send(self, datagram: bytes, export_ns: int) -> None:
        """Deliver one datagram encoded at export clock ``export_ns``."""
        ...

    def close(self) -> None: ...


class _Closing:
    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class MemorySink(_Closing):
    """Keeps every datagram and its export clock, for tests and the decoded table view."""

    def __init__(self) -> None:
        self.datagrams: list[bytes] = []
        self.export_ns: list[int] = []
        self.closed = False

    def send(self, datagram: bytes, export_ns: int) -> None:
        self.datagrams.append(bytes(datagram))
        self.export_ns.append(export_ns)

    def close(self) -> None:
        self.closed = True


class UdpSink(_Closing):
    """Sends to one collector (IPv4 or IPv6) over one connected UDP socket.

    A failed send is counted, never raised: after an ICMP port unreachable the
    next send fails with ECONNREFUSED and the export must go on. ``errors``
    counts failures and ``first_error`` keeps the first one's message.
    Opening the socket (a bad host, no route) raises ExportError.
    """

    def __init__(self, host: str, port: int) -> None:
        if not 0 < port < 65536:
            raise ConfigError(f"collector port must be between 1 and 65535, got {port}")
        try:
            family, kind, proto, _, address = socket.getaddrinfo(
                host, port, type=socket.SOCK_DGRAM
            )[0]
            self.socket = socket.socket(family, kind, proto)
        except OSError as exc:
            raise ExportError(f"cannot open a UDP socket to {host} port {port}: {exc}") from exc
        try:
            self.socket.connect(address)
        except OSError as exc:
            self.socket.close()
            raise ExportError(f"cannot reach collector {host} port {port}: {exc}") from exc
        self.address = address
        self.sent = 0
        self.bytes_sent = 0
        self.errors = 0
        self.first_error: str | None = None

    def send(self, datagram: bytes, export_ns: int = 0) -> None:
        try:
            self.socket.send(datagram)
        except OSError as exc:
            self.errors += 1
            if self.first_error is None:
                self.first_error = str(exc)
            return
        self.sent += 1
        self.bytes_sent += len(datagram)

    def close(self) -> None:
        self.socket.close()


PCAP_FILE_HEADER = np.dtype(
    [
        ("magic_number", "<u4"),
        ("version_major", "<u2"),
        ("version_minor", "<u2"),
        ("thiszone", "<i4"),
        ("sigfigs", "<u4"),
        ("snaplen", "<u4"),
        ("network", "<u4"),
    ]
)
assert PCAP_FILE_HEADER.itemsize == 24
PCAP_RECORD_HEADER = np.dtype(
    [("ts_sec", "<u4"), ("ts_nsec", "<u4"), ("incl_len", "<u4"), ("orig_len", "<u4")]
)
assert PCAP_RECORD_HEADER.itemsize == 16
ETHERNET = np.dtype([("dst", "V6"), ("src", "V6"), ("ethertype", ">u2")])
assert ETHERNET.itemsize == 14
IPV4 = np.dtype(
    [
        ("version_ihl", "u1"),
        ("tos", "u1"),
        ("total_length", ">u2"),
        ("identification", ">u2"),
        ("flags_fragment_offset", ">u2"),
        ("ttl", "u1"),
        ("protocol", "u1"),
        ("header_checksum", ">u2"),
        ("src", "V4"),
        ("dst", "V4"),
    ]
)
assert IPV4.itemsize == 20
IPV6 = np.dtype(
    [
        ("version_class_label", ">u4"),
        ("payload_length", ">u2"),
        ("next_header", "u1"),
        ("hop_limit", "u1"),
        ("src", "V16"),
        ("dst", "V16"),
    ]
)
assert IPV6.itemsize == 40
UDP = np.dtype([("src_port", ">u2"), ("dst_port", ">u2"), ("length", ">u2"), ("checksum", ">u2")])
assert UDP.itemsize == 8

PCAP_NS_MAGIC = 0xA1B23C4D  # classic pcap, nanosecond timestamps
LINKTYPE_ETHERNET = 1
SNAPLEN = 262_144
UDP_PROTOCOL = 17
DONT_FRAGMENT = 0x4000
SOURCE_MAC = bytes.fromhex("020000000001")  # locally administered
COLLECTOR_MAC = bytes.fromhex("020000000002")


def internet_checksum(data: bytes) -> int:
    """RFC 1071 ones' complement sum of 16-bit words."""
    words = np.frombuffer(data + b"\0" * (len(data) % 2), ">u2")
    total = int(words.sum(dtype=np.uint64))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


class PcapSink(_Closing):
    """Writes each datagram as an Ethernet/IP/UDP frame to a classic pcap (ns timestamps).

    The frames go from ``source`` to ``collector`` (numeric addresses of one
    family); the timestamp of each is the export clock given with it.
    """

    def __init__(
        self,
        path: str | Path,
        collector: tuple[str, int] = ("127.0.0.1", 2055),
        source: tuple[str, int] | None = None,
    ) -> None:
        try:
            dst = ipaddress.ip_address(collector[0])
            src = ipaddress.ip_address(source[0]) if source else None
        except ValueError as exc:
            raise ConfigError(f"pcap sink addresses must be numeric: {exc}") from exc
        if src is None:
            src = ipaddress.ip_address("127.0.0.1" if dst.version == 4 else "::1")
        if src.version != dst.version:
            raise ConfigError("pcap sink source and collector addresses differ in IP version")
        self.src, self.dst = src.packed, dst.packed
        self.src_port = source[1] if source else 50_000
        self.dst_port = collector[1]
        self.ip_version = dst.version
        self.datagrams = 0
        self._identification = 0
        try:
            self._file: IO[bytes] = open(path, "wb")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise ExportError(f"cannot write {path}: {exc}") from exc
        head = np.zeros(1, PCAP_FILE_HEADER)
        head["magic_number"] = PCAP_NS_MAGIC
        head["version_major"], head["version_minor"] = 2, 4
        head["snaplen"] = SNAPLEN
        head["network"] = LINKTYPE_ETHERNET
        self._file.write(head.tobytes())

    def send(self, datagram: bytes, export_ns: int) -> None:
        frame = self._frame(bytes(datagram))
        record = np.zeros(1, PCAP_RECORD_HEADER)
        record["ts_sec"], record["ts_nsec"] = divmod(export_ns, NS_PER_S)
        record["incl_len"] = record["orig_len"] = len(frame)
        try:
            self._file.write(record.tobytes() + frame)
        except OSError as exc:
            raise ExportError(f"cannot write the pcap sink: {exc}") from exc
        self.datagrams += 1

    def close(self) -> None:
        self._file.close()

    def _frame(self, payload: bytes) -> bytes:
        udp_length = UDP.itemsize + len(payload)
        if udp_length > 0xFFFF - IPV4.itemsize:
            raise ExportError(f"a {len(payload)}-byte datagram does not fit one UDP packet")
        ethernet = np.zeros(1, ETHERNET)
        ethernet["dst"], ethernet["src"] = np.void(COLLECTOR_MAC), np.void(SOURCE_MAC)
        udp = np.zeros(1, UDP)
        udp["src_port"], udp["dst_port"], udp["length"] = self.src_port, self.dst_port, udp_length
        # Pseudo-header: addresses, then protocol and UDP length as two 32-bit words, which sum
        # the same as the IPv4 (RFC 768) and IPv6 (RFC 8200 section 8.1) layouts.
        pseudo = self.src + self.dst + np.array([UDP_PROTOCOL, udp_length], ">u4").tobytes()
        checksum = internet_checksum(pseudo + udp.tobytes() + payload)
        udp["checksum"] = checksum or 0xFFFF  # 0 means "no checksum" (RFC 768)
        if self.ip_version == 4:
            ethernet["ethertype"] = 0x0800
            ip = np.zeros(1, IPV4)
            ip["version_ihl"], ip["ttl"], ip["protocol"] = 0x45, 64, UDP_PROTOCOL
            ip["total_length"] = IPV4.itemsize + udp_length
            ip["identification"] = self._identification
            ip["flags_fragment_offset"] = DONT_FRAGMENT
            ip["src"], ip["dst"] = np.void(self.src), np.void(self.dst)
            ip["header_checksum"] = internet_checksum(ip.tobytes())
            self._identification = (self._identification + 1) & 0xFFFF
        else:
            ethernet["ethertype"] = 0x86DD
            ip = np.zeros(1, IPV6)
            ip["version_class_label"] = 6 << 28
            ip["payload_length"], ip["next_header"], ip["hop_limit"] = udp_length, 17, 64
            ip["src"], ip["dst"] = np.void(self.src), np.void(self.dst)
        return ethernet.tobytes() + ip.tobytes() + udp.tobytes() + payload
