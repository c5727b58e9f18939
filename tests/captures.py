"""Capture files written byte by byte with struct (pcap, pcapng, gzip), and the frames in them.

Nothing here calls spanflow: the writers follow the libpcap file format and the
pcapng draft (draft-ietf-opsawg-pcapng) field by field, and every expected value
(frame bytes, times, flow totals) is known before the file is written.
"""

from __future__ import annotations

import gzip
import io
import socket
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import dpkt

ETHERNET, RAW, LINUX_SLL, USER0 = 1, 101, 113, 147
NS_PER_S = 1_000_000_000
T0_NS = 1_767_225_600 * NS_PER_S  # 2026-01-01 00:00:00 UTC
PCAP_HEADER_BYTES, PCAP_RECORD_HEADER_BYTES = 24, 16

# (source, destination, source port, destination port, protocol); addresses as text
FlowKey = tuple[str, str, int, int, int]


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame as a reader must give it back: bytes, lengths, time, link type, ifindex."""

    data: bytes
    ts_ns: int
    wirelen: int | None = None  # None: the frame was captured whole
    linktype: int = ETHERNET
    ifindex: int = 0

    @property
    def wire_length(self) -> int:
        return len(self.data) if self.wirelen is None else self.wirelen


@dataclass(frozen=True, slots=True)
class Packet:
    """A frame plus what metering it must count: its flow key and IP-layer length."""

    frame: Frame
    key: FlowKey | None  # None: not an IP packet
    octets: int  # IPv4 total length or 40 + IPv6 payload length; 0 when not IP


# --- frames, crafted with dpkt ---------------------------------------------------------------


def mac(host: int) -> bytes:
    return bytes([0x02, 0, 0, 0, 0, host])


def ethernet(payload: bytes, ethertype: int, src: int = 1, dst: int = 2) -> bytes:
    return bytes(dpkt.ethernet.Ethernet(dst=mac(dst), src=mac(src), type=ethertype, data=payload))


def ipv4_udp(src: str, dst: str, sport: int, dport: int, payload: bytes, tos: int = 0) -> bytes:
    udp = dpkt.udp.UDP(sport=sport, dport=dport, ulen=8 + len(payload), data=payload)
    ip = dpkt.ip.IP(
        src=socket.inet_aton(src), dst=socket.inet_aton(dst), p=dpkt.ip.IP_PROTO_UDP,
        tos=tos, ttl=64, len=20 + len(udp), data=udp,
    )  # fmt: skip
    return bytes(ip)


def ipv4_tcp(src: str, dst: str, sport: int, dport: int, flags: int, payload: bytes) -> bytes:
    tcp = dpkt.tcp.TCP(sport=sport, dport=dport, flags=flags, seq=1000, win=8192, data=payload)
    ip = dpkt.ip.IP(
        src=socket.inet_aton(src), dst=socket.inet_aton(dst), p=dpkt.ip.IP_PROTO_TCP,
        ttl=64, len=20 + len(tcp), data=tcp,
    )  # fmt: skip
    return bytes(ip)


def ipv6_udp(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    udp = dpkt.udp.UDP(sport=sport, dport=dport, ulen=8 + len(payload), data=payload)
    ip6 = dpkt.ip6.IP6(
        src=socket.inet_pton(socket.AF_INET6, src), dst=socket.inet_pton(socket.AF_INET6, dst),
        nxt=dpkt.ip.IP_PROTO_UDP, hlim=64, plen=len(udp), data=udp,
    )  # fmt: skip
    return bytes(ip6)


def arp_request(sender: str, target: str) -> bytes:
    arp = dpkt.arp.ARP(
        sha=mac(1), spa=socket.inet_aton(sender), tha=b"\0" * 6, tpa=socket.inet_aton(target),
        op=dpkt.arp.ARP_OP_REQUEST,
    )  # fmt: skip
    return ethernet(bytes(arp), dpkt.ethernet.ETH_TYPE_ARP, dst=0xFF)


def udp_frames(count: int, ts0_ns: int = T0_NS, step_ns: int = 1_000_123) -> list[Frame]:
    """``count`` distinct Ethernet/IPv4/UDP frames (source port 1000 + i) of 43 + i % 256 bytes."""
    frames = []
    for i in range(count):
        ip = ipv4_udp("192.0.2.1", "192.0.2.2", 1000 + i, 53, bytes(range(1 + i % 256)))
        frames.append(Frame(ethernet(ip, dpkt.ethernet.ETH_TYPE_IP), ts0_ns + i * step_ns))
    return frames


def traffic() -> list[Packet]:
    """A small mixed capture: 3 UDP flows (one IPv6), a TCP flow ended by FIN, one ARP frame.

    Times are 1 ms apart, so no timeout can end a flow early.
    """
    ip_type, ip6_type = dpkt.ethernet.ETH_TYPE_IP, dpkt.ethernet.ETH_TYPE_IP6
    syn, ack, fin = dpkt.tcp.TH_SYN, dpkt.tcp.TH_ACK, dpkt.tcp.TH_FIN
    a: FlowKey = ("10.0.0.1", "10.0.0.2", 1000, 53, 17)
    b: FlowKey = ("10.0.0.2", "10.0.0.1", 53, 1000, 17)
    c: FlowKey = ("10.0.0.3", "10.0.0.4", 40000, 80, 6)
    d: FlowKey = ("2001:db8::1", "2001:db8::2", 5000, 5001, 17)
    plan: list[tuple[FlowKey | None, bytes, int]] = [
        (a, ipv4_udp(*a[:4], b"q" * 10), ip_type),
        (c, ipv4_tcp(*c[:4], syn, b""), ip_type),
        (b, ipv4_udp(*b[:4], b"r" * 100), ip_type),
        (None, arp_request("10.0.0.1", "10.0.0.9"), 0),
        (a, ipv4_udp(*a[:4], b"q" * 20), ip_type),
        (d, ipv6_udp(*d[:4], b"s" * 7), ip6_type),
        (c, ipv4_tcp(*c[:4], ack, b"GET / HTTP/1.0\r\n\r\n"), ip_type),
        (b, ipv4_udp(*b[:4], b"r" * 200), ip_type),
        (d, ipv6_udp(*d[:4], b"s" * 300), ip6_type),
        (a, ipv4_udp(*a[:4], b"q" * 30), ip_type),
        (c, ipv4_tcp(*c[:4], fin | ack, b""), ip_type),
    ]
    packets = []
    for i, (key, payload, ethertype) in enumerate(plan):
        ts_ns = T0_NS + i * 1_000_000 + 7
        if key is None:
            packets.append(Packet(Frame(payload, ts_ns), None, 0))
        else:
            frame = Frame(ethernet(payload, ethertype), ts_ns)
            packets.append(Packet(frame, key, len(payload)))  # no link padding: IP length = bytes
    return packets


def flow_totals(packets: Sequence[Packet]) -> dict[FlowKey, tuple[int, int]]:
    """(packets, octets) per flow key, summed in plain Python."""
    totals: dict[FlowKey, tuple[int, int]] = {}
    for packet in packets:
        if packet.key is not None:
            count, octets = totals.get(packet.key, (0, 0))
            totals[packet.key] = (count + 1, octets + packet.octets)
    return totals


# --- classic pcap ----------------------------------------------------------------------------

PCAP_MAGIC_US, PCAP_MAGIC_NS = 0xA1B2C3D4, 0xA1B23C4D


def pcap_header(
    *, nanos: bool = False, big_endian: bool = False, link_field: int = ETHERNET,
    snaplen: int = 65535,
) -> bytes:  # fmt: skip
    """The 24-byte global header: magic, version 2.4, thiszone, sigfigs, snaplen, link type."""
    order = ">" if big_endian else "<"
    magic = PCAP_MAGIC_NS if nanos else PCAP_MAGIC_US
    return struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, link_field)


def pcap_record(
    frame: Frame, *, nanos: bool = False, big_endian: bool = False, caplen: int | None = None
) -> bytes:
    """One record: seconds, µs or ns fraction (truncated), caplen, wire length, then the bytes."""
    order = ">" if big_endian else "<"
    seconds, fraction_ns = divmod(frame.ts_ns, NS_PER_S)
    fraction = fraction_ns if nanos else fraction_ns // 1000
    length = len(frame.data) if caplen is None else caplen
    header = struct.pack(order + "IIII", seconds, fraction, length, frame.wire_length)
    return header + frame.data


def pcap_file(
    frames: Sequence[Frame], *, nanos: bool = False, big_endian: bool = False,
    link_field: int = ETHERNET,
) -> bytes:  # fmt: skip
    body = b"".join(pcap_record(f, nanos=nanos, big_endian=big_endian) for f in frames)
    return pcap_header(nanos=nanos, big_endian=big_endian, link_field=link_field) + body


def pcap_record_starts(frames: Sequence[Frame]) -> list[int]:
    """Byte offset of every record, and of the end of the file last."""
    starts = [PCAP_HEADER_BYTES]
    for frame in frames:
        starts.append(starts[-1] + PCAP_RECORD_HEADER_BYTES + len(frame.data))
    return starts


# --- pcapng ----------------------------------------------------------------------------------

BYTE_ORDER_MAGIC = 0x1A2B3C4D
SHB, IDB, OPB, SPB, NRB, ISB, EPB = 0x0A0D0D0A, 1, 2, 3, 4, 5, 6
OPT_END, IF_NAME, EPB_FLAGS, IF_TSRESOL, IF_TSOFFSET = 0, 2, 2, 9, 14


def _pad4(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


@dataclass(slots=True)
class Pcapng:
    """Appends pcapng blocks in one section's byte order; remembers where each block starts."""

    order: str = "<"
    out: io.BytesIO = field(default_factory=io.BytesIO)
    block_starts: list[int] = field(default_factory=list)
    packet_block_ends: list[int] = field(default_factory=list)

    def data(self) -> bytes:
        return self.out.getvalue()

    def option(self, code: int, value: bytes) -> bytes:
        return struct.pack(self.order + "HH", code, len(value)) + _pad4(value)

    def options(self, *pairs: tuple[int, bytes]) -> bytes:
        if not pairs:
            return b""
        return b"".join(self.option(c, v) for c, v in pairs) + self.option(OPT_END, b"")

    def block(self, block_type: int, body: bytes, total: int | None = None) -> Pcapng:
        """Type, total length, body (padded to 4), total length again; ``total`` forces a value."""
        body = _pad4(body)
        length = 12 + len(body) if total is None else total
        self.block_starts.append(self.out.tell())
        self.out.write(struct.pack(self.order + "II", block_type, length))
        self.out.write(body)
        self.out.write(struct.pack(self.order + "I", length))
        return self

    def section(self, big_endian: bool = False) -> Pcapng:
        self.order = ">" if big_endian else "<"
        body = struct.pack(self.order + "IHHq", BYTE_ORDER_MAGIC, 1, 0, -1)
        return self.block(SHB, body + self.options((IF_NAME, b"spanflow tests")))

    def interface(
        self, linktype: int, snaplen: int = 0, tsresol: int | None = None,
        tsoffset_s: int | None = None,
    ) -> Pcapng:  # fmt: skip
        """An IDB; ``tsresol`` is the raw if_tsresol byte, ``tsoffset_s`` the if_tsoffset."""
        pairs: list[tuple[int, bytes]] = [(IF_NAME, b"eth0")]
        if tsresol is not None:
            pairs.append((IF_TSRESOL, bytes([tsresol])))
        if tsoffset_s is not None:
            pairs.append((IF_TSOFFSET, struct.pack(self.order + "q", tsoffset_s)))
        body = struct.pack(self.order + "HHI", linktype, 0, snaplen) + self.options(*pairs)
        return self.block(IDB, body)

    def enhanced(
        self, iface: int, ts_units: int, data: bytes, wirelen: int | None = None
    ) -> Pcapng:
        head = struct.pack(
            self.order + "IIIII", iface, ts_units >> 32, ts_units & 0xFFFFFFFF, len(data),
            len(data) if wirelen is None else wirelen,
        )  # fmt: skip
        options = self.options((EPB_FLAGS, struct.pack(self.order + "I", 1)))
        self.block(EPB, head + _pad4(data) + options)
        self.packet_block_ends.append(self.out.tell())
        return self

    def obsolete(
        self, iface: int, ts_units: int, data: bytes, wirelen: int | None = None
    ) -> Pcapng:
        head = struct.pack(
            self.order + "HHIIII", iface, 0, ts_units >> 32, ts_units & 0xFFFFFFFF, len(data),
            len(data) if wirelen is None else wirelen,
        )  # fmt: skip
        self.block(OPB, head + _pad4(data))
        self.packet_block_ends.append(self.out.tell())
        return self

    def simple(self, data: bytes, wirelen: int | None = None) -> Pcapng:
        length = len(data) if wirelen is None else wirelen
        self.block(SPB, struct.pack(self.order + "I", length) + _pad4(data))
        self.packet_block_ends.append(self.out.tell())
        return self

    def raw(self, data: bytes) -> Pcapng:
        self.block_starts.append(self.out.tell())
        self.out.write(data)
        return self


# --- gzip ------------------------------------------------------------------------------------

GzipEnding = Literal["complete", "truncated", "garbage", "bad_crc"]


def gzip_flushed(parts: Sequence[bytes], ending: GzipEnding = "complete") -> bytes:
    """One gzip member (RFC 1952) whose deflate stream is fully flushed after every part.

    ``truncated`` stops right after the last part's flush (no final block, no
    trailer); ``garbage`` follows that flush with a block of reserved type 3;
    ``bad_crc`` writes a complete member with a wrong CRC-32.
    """
    header = b"\x1f\x8b\x08\x00" + b"\0\0\0\0" + b"\x00\xff"  # deflate, no flags, mtime 0
    deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
    body = b"".join(deflate.compress(part) + deflate.flush(zlib.Z_FULL_FLUSH) for part in parts)
    data = b"".join(parts)
    if ending == "truncated":
        return header + body
    if ending == "garbage":
        return header + body + b"\xff" * 16  # BFINAL=1, BTYPE=11: "invalid block type"
    crc = zlib.crc32(data) ^ (0xFFFFFFFF if ending == "bad_crc" else 0)
    return header + body + deflate.flush() + struct.pack("<II", crc, len(data) & 0xFFFFFFFF)


def gzip_members(data: bytes, cut: int) -> bytes:
    """Two concatenated gzip members (as ``cat a.gz b.gz`` makes), split at ``cut``."""
    first = gzip.compress(data[:cut], compresslevel=1, mtime=0)
    return first + gzip.compress(data[cut:], compresslevel=9, mtime=0)
