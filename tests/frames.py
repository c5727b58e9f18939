"""Frames crafted with dpkt, packed into FrameBatches, and the rows dpkt says a decoder must give.

Nothing here calls spanflow's decoder: the builders put dpkt objects on the wire,
and ``expected_row`` takes whole frames apart again with dpkt (header layouts
only, the field rules of docs/design.md written out here), then applies the cut a
snaplen made.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import dpkt
import numpy as np

from core.packets import FrameBatch
from probe.decode.reasons import DecodeReason

# LINKTYPE_ codes (tcpdump.org/linktypes.html).
NULL, ETHERNET, RAW_ALT, RAW, LOOP = 0, 1, 12, 101, 108  # RAW_ALT: DLT_RAW as most BSDs number it
LINUX_SLL, IPV4, IPV6, LINUX_SLL2 = 113, 228, 229, 276
PPP, PPP_HDLC, C_HDLC, IEEE802_11, RADIOTAP, PPI, NFLOG = 9, 50, 104, 105, 127, 192, 239
FRAME_RELAY, IPNET, IPOIB = 107, 226, 242
LINK_TYPES = (
    NULL, ETHERNET, RAW_ALT, RAW, LOOP, LINUX_SLL, IPV4, IPV6, LINUX_SLL2, IPNET, IPOIB,
    PPP, PPP_HDLC, C_HDLC, IEEE802_11, FRAME_RELAY, RADIOTAP, PPI, NFLOG,
)  # fmt: skip
ETH_IP, ETH_IP6, ETH_ARP, ETH_LLDP = 0x0800, 0x86DD, 0x0806, 0x88CC
ETH_8021Q, ETH_8021AD, ETH_QINQ = 0x8100, 0x88A8, 0x9100
ETH_MPLS, ETH_MPLS_MCAST = 0x8847, 0x8848
ETH_PPPOE, ETH_PPPOE_DISCOVERY, ETH_FABRICPATH, ETH_PBB = 0x8864, 0x8863, 0x8903, 0x88E7
ETH_MACSEC, ETH_NSH, ETH_ARISTA = 0x88E5, 0x894F, 0xD28B
PPP_IPV4, PPP_IPV6, PPP_LCP = 0x0021, 0x0057, 0xC021
TAG_TYPES = (ETH_8021Q, ETH_8021AD, ETH_QINQ)
AF_INET, AF_INET6_BSD, AF_INET6_LINUX = 2, 24, 10

HOP_BY_HOP, ICMP, TCP, UDP, ROUTING, FRAGMENT, GRE, ESP, AH, ICMPV6, NO_NEXT, DEST_OPTS, SCTP = (
    0, 1, 6, 17, 43, 44, 47, 50, 51, 58, 59, 60, 132,
)  # fmt: skip
T0_NS = 1_767_225_600_000_000_000  # 2026-01-01 00:00:00 UTC
MAC_DST, MAC_SRC = b"\x02\x00\x00\x00\x00\x02", b"\x02\x00\x00\x00\x00\x01"


# --- FrameBatch ------------------------------------------------------------------------------


def frame_batch(
    frames: Sequence[tuple[int, bytes]],
    ts_ns: Sequence[int] | None = None,
    ifindex: Sequence[int] | int = 0,
    caplens: Sequence[int | None] | None = None,
    *,
    keep_uncaptured: bool = True,
) -> FrameBatch:
    """A FrameBatch of ``(linktype, bytes)`` frames, one after the other in one buffer.

    ``caplens[i]`` (None: whole) cuts frame i as a snaplen would; its wire length
    stays ``len(bytes)``. With ``keep_uncaptured`` the cut-off bytes stay in the
    buffer right after the captured ones, so a decoder reading past ``caplen``
    finds plausible headers there and gives itself away.
    """
    n = len(frames)
    cuts = [len(data) for _, data in frames] if caplens is None else list(caplens)
    if len(cuts) != n:
        raise ValueError(f"{len(cuts)} caplens for {n} frames")
    caplen = [
        len(data) if cut is None else cut for (_, data), cut in zip(frames, cuts, strict=True)
    ]
    stored = [
        data if keep_uncaptured else data[:cut]
        for (_, data), cut in zip(frames, caplen, strict=True)
    ]
    offsets = np.cumsum([0] + [len(part) for part in stored[:-1]], dtype=np.int64)[:n]
    ts = [T0_NS + 1000 * i for i in range(n)] if ts_ns is None else list(ts_ns)
    ifindexes = [ifindex] * n if isinstance(ifindex, int) else list(ifindex)
    return FrameBatch(
        buf=np.frombuffer(b"".join(stored), np.uint8).copy(),
        offset=offsets,
        caplen=np.array(caplen, np.uint32),
        wirelen=np.array([len(data) for _, data in frames], np.uint32),
        ts_ns=np.array(ts, np.int64),
        linktype=np.array([lt for lt, _ in frames], np.uint16),
        ifindex=np.array(ifindexes, np.uint32),
    )


# --- transport --------------------------------------------------------------------------------

TH_FIN, TH_SYN, TH_RST, TH_PUSH, TH_ACK, TH_URG, TH_ECE, TH_CWR, TH_NS = (
    0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x100,
)  # fmt: skip


def tcp(
    sport: int = 40000, dport: int = 443, flags: int = TH_SYN, payload: bytes = b""
) -> dpkt.tcp.TCP:
    """A TCP segment; ``flags`` may use all 9 bits of dpkt's flag field (NS included)."""
    segment = dpkt.tcp.TCP(sport=sport, dport=dport, seq=1000, ack=0, win=8192, data=payload)
    segment.flags = flags
    return segment


def udp(sport: int = 5353, dport: int = 53, payload: bytes = b"q") -> dpkt.udp.UDP:
    return dpkt.udp.UDP(sport=sport, dport=dport, ulen=8 + len(payload), data=payload)


def icmp(type_: int = 8, code: int = 0, payload: bytes = b"\x00\x01\x00\x01ping") -> dpkt.icmp.ICMP:
    return dpkt.icmp.ICMP(type=type_, code=code, data=payload)


def icmp6(
    type_: int = 128, code: int = 0, payload: bytes = b"\x00\x01\x00\x01ping"
) -> dpkt.icmp6.ICMP6:
    return dpkt.icmp6.ICMP6(type=type_, code=code, data=payload)


def sctp(sport: int = 2905, dport: int = 2905, payload: bytes = b"m3ua") -> dpkt.sctp.SCTP:
    """An SCTP packet with one DATA chunk."""
    chunk = dpkt.sctp.Chunk(type=dpkt.sctp.DATA, flags=3, len=4 + len(payload), data=payload)
    chunk.padding = bytes(-len(payload) % 4)  # chunks end on a 4-octet boundary
    packet = dpkt.sctp.SCTP(sport=sport, dport=dport, vtag=0x1234)
    packet.chunks = [chunk]
    return packet


L4: TypeAlias = dpkt.Packet | bytes
_PROTO_OF = {
    dpkt.tcp.TCP: TCP,
    dpkt.udp.UDP: UDP,
    dpkt.icmp.ICMP: ICMP,
    dpkt.icmp6.ICMP6: ICMPV6,
    dpkt.sctp.SCTP: SCTP,
}


def _proto(payload: L4, proto: int | None) -> int:
    if proto is not None:
        return proto
    if type(payload) not in _PROTO_OF:
        raise ValueError("give proto= for a raw payload")
    return _PROTO_OF[type(payload)]


# --- IPv4 and IPv6 ----------------------------------------------------------------------------


def ipv4(
    payload: L4,
    proto: int | None = None,
    *,
    src: str = "192.0.2.1",
    dst: str = "198.51.100.2",
    tos: int = 0,
    options: bytes = b"",
    frag_units: int = 0,
    more_fragments: bool = False,
    ident: int = 0x4242,
) -> bytes:
    """An IPv4 packet; ``options`` (a multiple of 4 bytes) raise the IHL; ``frag_units`` is the
    fragment offset in 8-octet units as on the wire."""
    if len(options) % 4:
        raise ValueError("IPv4 options must fill whole 32-bit words")
    packet = dpkt.ip.IP(
        src=socket.inet_pton(socket.AF_INET, src), dst=socket.inet_pton(socket.AF_INET, dst),
        p=_proto(payload, proto), tos=tos, id=ident, ttl=64, data=payload,
    )  # fmt: skip
    packet.opts = options
    packet.hl = 5 + len(options) // 4
    packet.offset = frag_units
    packet.mf = int(more_fragments)
    return bytes(packet)


@dataclass(frozen=True, slots=True)
class Ext:
    """One IPv6 extension header: its protocol number and the dpkt header (``nxt`` set later)."""

    code: int
    header: dpkt.ip6.IP6ExtensionHeader


def _pad_n(n: int) -> bytes:
    """Option bytes filling ``n`` octets: Pad1 for one, PadN otherwise (RFC 8200 4.2)."""
    return b"\x00" if n == 1 else bytes([1, n - 2]) + bytes(n - 2)


def hop_by_hop(units: int = 0) -> Ext:
    """A Hop-by-Hop Options header of ``(units + 1) * 8`` octets, all padding."""
    return Ext(HOP_BY_HOP, dpkt.ip6.IP6HopOptsHeader(len=units, data=_pad_n((units + 1) * 8 - 2)))


def dest_opts(units: int = 0) -> Ext:
    """A Destination Options header of ``(units + 1) * 8`` octets, all padding."""
    return Ext(DEST_OPTS, dpkt.ip6.IP6DstOptsHeader(len=units, data=_pad_n((units + 1) * 8 - 2)))


def routing(addresses: int = 2) -> Ext:
    """A type-0 Routing header carrying ``addresses`` addresses (8 + 16 each octets)."""
    hops = b"".join(
        socket.inet_pton(socket.AF_INET6, f"2001:db8:0:1::{i + 1}") for i in range(addresses)
    )
    return Ext(
        ROUTING,
        dpkt.ip6.IP6RoutingHeader(len=2 * addresses, type=0, segs_left=addresses, data=hops),
    )


def fragment(units: int = 0, more: bool = True, ident: int = 0xC0FFEE) -> Ext:
    """A Fragment header; ``units`` is the fragment offset in 8-octet units."""
    header = dpkt.ip6.IP6FragmentHeader(id=ident)
    header.frag_off = units
    header.m_flag = int(more)
    return Ext(FRAGMENT, header)


def ah(icv_words: int = 3) -> Ext:
    """An Authentication Header with an ICV of ``icv_words`` 32-bit words (12 + 4*icv octets)."""
    return Ext(
        AH, dpkt.ip6.IP6AHHeader(len=icv_words + 1, spi=0x100, seq=7, data=b"\xaa" * 4 * icv_words)
    )


def esp_payload(size: int = 24) -> bytes:
    """An ESP packet (SPI, sequence, then ciphertext) as a raw payload: use with ``proto=ESP``."""
    return struct.pack(">II", 0x200, 9) + bytes(range(size))


def ipv6(
    payload: L4,
    proto: int | None = None,
    *,
    src: str = "2001:db8::1",
    dst: str = "2001:db8:ffff::2",
    traffic_class: int = 0,
    flow_label: int = 0x12345,
    ext: Sequence[Ext] = (),
) -> bytes:
    """An IPv6 packet; ``ext`` headers are chained in order, the last pointing at ``proto``."""
    final = _proto(payload, proto)
    codes = [e.code for e in ext] + [final]
    for header, next_code in zip(ext, codes[1:], strict=True):
        header.header.nxt = next_code
    packet = dpkt.ip6.IP6(
        src=socket.inet_pton(socket.AF_INET6, src), dst=socket.inet_pton(socket.AF_INET6, dst),
        nxt=codes[0], hlim=64, data=payload,
    )  # fmt: skip
    packet.fc = traffic_class
    packet.flow = flow_label
    packet.all_extension_headers = [e.header for e in ext]
    packet.plen = sum(len(bytes(e.header)) for e in ext) + len(bytes(payload))
    return bytes(packet)


# --- link layers ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tag:
    """An 802.1Q-style tag: the TPID that announces it, then PCP, DEI and VID."""

    vid: int
    tpid: int = ETH_8021Q
    pcp: int = 0
    dei: int = 0


def _ethertype_of(l3: bytes) -> int:
    return {4: ETH_IP, 6: ETH_IP6}[l3[0] >> 4]


def eth(
    l3: bytes,
    ethertype: int | None = None,
    *,
    tags: Sequence[Tag] = (),
    labels: Sequence[int] = (),
    mpls_type: int = ETH_MPLS,
) -> bytes:
    """An Ethernet II frame: tags (outermost first), then an MPLS label stack, then ``l3``.

    ``ethertype`` defaults to IPv4/IPv6 from the version nibble; with ``labels`` it is
    replaced by ``mpls_type`` and the last label carries the bottom-of-stack bit.
    """
    inner = mpls_type if labels else (ethertype if ethertype is not None else _ethertype_of(l3))
    types = [t.tpid for t in tags] + [inner]
    header = bytes(dpkt.ethernet.Ethernet(dst=MAC_DST, src=MAC_SRC, type=types[0]))
    tag_bytes = b"".join(
        bytes(dpkt.ethernet.VLANtag8021Q(pri=t.pcp, cfi=t.dei, id=t.vid, type=next_type))
        for t, next_type in zip(tags, types[1:], strict=True)
    )
    label_bytes = b"".join(
        bytes(dpkt.ethernet.MPLSlabel(val=label, exp=0, s=int(i == len(labels) - 1), ttl=64))
        for i, label in enumerate(labels)
    )
    return header + tag_bytes + label_bytes + l3


def sll(l3: bytes, ethertype: int | None = None) -> bytes:
    """A Linux cooked (v1) frame: 16-byte header, protocol at offset 14."""
    return bytes(
        dpkt.sll.SLL(type=0, hrd=1, hlen=6, hdr=MAC_SRC + b"\x00\x00",
                     ethtype=_ethertype_of(l3) if ethertype is None else ethertype, data=l3)
    )  # fmt: skip


def sll2(l3: bytes, ethertype: int | None = None) -> bytes:
    """A Linux cooked v2 frame: 20-byte header, protocol at offset 0."""
    return bytes(
        dpkt.sll2.SLL2(ethtype=_ethertype_of(l3) if ethertype is None else ethertype,
                       intindex=3, hrd=1, type=0, hlen=6, hdr=MAC_SRC + b"\x00\x00", data=l3)
    )  # fmt: skip


def null(l3: bytes, family: int | None = None) -> bytes:
    """A BSD loopback (LINKTYPE_NULL) frame: address family in host byte order."""
    af = (AF_INET if l3[0] >> 4 == 4 else AF_INET6_BSD) if family is None else family
    return bytes(dpkt.loopback.Loopback(family=af, data=l3))


def ipnet(l3: bytes) -> bytes:
    """A Solaris ipnet frame (LINKTYPE_IPNET): version 1, family (2 IPv4, 26 IPv6), hook type,
    packet length, interface and zone ids: 24 bytes."""
    family = 2 if l3[0] >> 4 == 4 else 26
    return struct.pack(">BBHIIIII", 1, family, 0, len(l3), 2, 0, 0, 0) + l3


def ipoib(l3: bytes, ethertype: int | None = None) -> bytes:
    """An IPoIB frame: 40 bytes of addresses, the ethertype, 2 reserved bytes."""
    kind = _ethertype_of(l3) if ethertype is None else ethertype
    return bytes(range(40)) + struct.pack(">HH", kind, 0) + l3


def loop(l3: bytes, family: int | None = None) -> bytes:
    """An OpenBSD loopback (LINKTYPE_LOOP) frame: address family in network byte order."""
    af = (AF_INET if l3[0] >> 4 == 4 else AF_INET6_BSD) if family is None else family
    return struct.pack(">I", af) + l3


def _ppp_protocol(l3: bytes) -> int:
    return PPP_IPV4 if l3[0] >> 4 == 4 else PPP_IPV6


def ppp(
    l3: bytes, hdlc: bool = True, compressed: bool = False, protocol: int | None = None
) -> bytes:
    """PPP (RFC 1661): RFC 1662's FF 03 when ``hdlc``; a 1-byte protocol when ``compressed``."""
    number = _ppp_protocol(l3) if protocol is None else protocol
    field = bytes([number]) if compressed else number.to_bytes(2, "big")
    return (b"\xff\x03" if hdlc else b"") + field + l3


def chdlc(l3: bytes, ethertype: int | None = None, broadcast: bool = False) -> bytes:
    """Cisco HDLC: address (0x0F unicast, 0x8F broadcast), control 0, an ethertype."""
    kind = _ethertype_of(l3) if ethertype is None else ethertype
    return bytes([0x8F if broadcast else 0x0F, 0]) + kind.to_bytes(2, "big") + l3


def pppoe(l3: bytes, session: int = 0x1234, protocol: int | None = None) -> bytes:
    """A PPPoE session payload (RFC 2516): ver/type 0x11, code 0, session, length, PPP protocol."""
    number = _ppp_protocol(l3) if protocol is None else protocol
    return struct.pack(">BBHHH", 0x11, 0, session, len(l3) + 2, number) + l3


def macsec(
    l3: bytes, sci: bool = True, encrypted: bool = False, ethertype: int | None = None
) -> bytes:
    """A MACsec payload (IEEE 802.1AE-2018 9.3): SecTAG (TCI/AN, short length, packet number,
    the SCI when the SC bit is set), the ethertype and ``l3`` in clear unless ``encrypted``
    (E and C bits), then a 16-byte ICV."""
    tci = (0x20 if sci else 0) | (0x0C if encrypted else 0) | 1  # AN 1
    sectag = struct.pack(">BBI", tci, 0, 7) + (MAC_SRC + b"\x00\x01" if sci else b"")
    inner = _ethertype_of(l3) if ethertype is None else ethertype
    return sectag + inner.to_bytes(2, "big") + l3 + b"\xee" * 16


def nsh(payload: bytes, next_protocol: int, context_words: int = 4) -> bytes:
    """An NSH header (RFC 8300 2.2, MD type 1 with ``context_words`` of context), then
    ``payload`` of ``next_protocol`` (1 IPv4, 2 IPv6, 3 Ethernet, 4 NSH, 5 MPLS)."""
    length = 2 + context_words
    base = struct.pack(">BBBB", 0x0F, 0xC0 | length, 1, next_protocol)  # TTL 63
    return base + struct.pack(">I", 0x000100FF) + bytes(4 * context_words) + payload


def arista(l3: bytes, wide: bool = True) -> bytes:
    """An Arista timestamp header (subtype 1; version 0x0010: 64-bit time, 0x0020: 48-bit),
    then the original ethertype and ``l3``."""
    version, time = (
        (0x0010, struct.pack(">II", 5, 6)) if wide else (0x0020, b"\x00\x05" + b"\0\0\0\6")
    )
    return struct.pack(">HH", 1, version) + time + _ethertype_of(l3).to_bytes(2, "big") + l3


def ieee802_11(l3: bytes, qos: bool = False, four_addresses: bool = False) -> bytes:
    """An 802.11 data frame (IEEE 802.11-2020 9.3.2.1) carrying LLC/SNAP and ``l3``."""
    subtype = 8 if qos else 0
    flags = 0x03 if four_addresses else 0x01  # to DS (and from DS)
    header = bytes([subtype << 4 | 2 << 2, flags]) + b"\x00\x00" + MAC_DST + MAC_SRC + MAC_DST
    header += b"\x10\x00" + (MAC_SRC if four_addresses else b"") + (b"\x00\x00" if qos else b"")
    return header + b"\xaa\xaa\x03\x00\x00\x00" + _ethertype_of(l3).to_bytes(2, "big") + l3


def radiotap(frame: bytes) -> bytes:
    """A minimal radiotap header (version 0, length 8, no fields present) before 802.11."""
    return struct.pack("<BBHI", 0, 0, 8, 0) + frame


def frame_relay(
    l3: bytes, form: str = "nlpid", dlci: int = 100, ethertype: int | None = None
) -> bytes:
    """A Frame Relay frame: a 2-octet Q.922 address (ITU-T Q.922 A.3.2: DLCI, EA in the second
    octet), then by ``form``: RFC 2427's UI control 0x03 and NLPID (0xCC, 0x8E), the same
    with a 0 pad, SNAP (NLPID 0x80, OUI 0, the ethertype), or Cisco's ethertype alone."""
    address = struct.pack(">BB", (dlci >> 4) << 2, ((dlci & 0xF) << 4) | 1)
    inner = _ethertype_of(l3) if ethertype is None else ethertype
    if form == "cisco":
        return address + inner.to_bytes(2, "big") + l3
    if form == "snap":
        return address + b"\x03\x80\x00\x00\x00" + inner.to_bytes(2, "big") + l3
    nlpid = b"\xcc" if l3[0] >> 4 == 4 else b"\x8e"
    return address + b"\x03" + (b"\x00" if form == "padded" else b"") + nlpid + l3


def ppi(linktype: int, frame: bytes) -> bytes:
    """A PPI header (version 0, flags 0, length 8, the inner link type), little-endian."""
    return struct.pack("<BBHI", 0, 0, 8, linktype) + frame


def nflog(l3: bytes) -> bytes:
    """Linux NFLOG: family, version, resource id; an NFULA_PACKET_HDR TLV, then NFULA_PAYLOAD."""
    family = AF_INET if l3[0] >> 4 == 4 else AF_INET6_LINUX
    header = struct.pack(">BBH", family, 0, 0)
    packet_hdr = struct.pack("<HH", 8, 1) + _ethertype_of(l3).to_bytes(2, "big") + b"\x01\x00"
    payload = struct.pack("<HH", 4 + len(l3), 9) + l3
    return header + packet_hdr + payload + bytes(-len(payload) % 4)


def wrap(linktype: int, l3: bytes) -> bytes:
    """``l3`` behind the plain link header of ``linktype`` (no tags)."""
    if linktype in (RAW, RAW_ALT, IPV4, IPV6):
        return l3
    if linktype == RADIOTAP:
        return radiotap(ieee802_11(l3, qos=True))
    if linktype == PPI:
        return ppi(ETHERNET, eth(l3))
    builders: dict[int, Any] = {
        ETHERNET: eth, PPP: ppp, PPP_HDLC: ppp, C_HDLC: chdlc, IEEE802_11: ieee802_11,
        NFLOG: nflog, FRAME_RELAY: frame_relay, IPNET: ipnet, IPOIB: ipoib, LINUX_SLL: sll,
        LINUX_SLL2: sll2, NULL: null, LOOP: loop,
    }  # fmt: skip
    if linktype not in builders:
        raise ValueError(f"no builder for link type {linktype}")
    return bytes(builders[linktype](l3))


# --- the expected decoded row, by dpkt --------------------------------------------------------

ROW_FIELDS = (
    "version",
    "src_hi",
    "src_lo",
    "dst_hi",
    "dst_lo",
    "sport",
    "dport",
    "proto",
    "tos",
    "tcp_flags",
    "ip_len",
    "vlan",
    "reason",
)
IPV4_MAPPED = 0xFFFF << 32
L4_BYTES_NEEDED = {TCP: 14, UDP: 4, SCTP: 4, ICMP: 2, ICMPV6: 2}  # ports / flags / type+code
_L4_CLASS = {
    TCP: dpkt.tcp.TCP,
    UDP: dpkt.udp.UDP,
    SCTP: dpkt.sctp.SCTP,
    ICMP: dpkt.icmp.ICMP,
    ICMPV6: dpkt.icmp6.ICMP6,
}
_WALKED_EXT = {HOP_BY_HOP, ROUTING, DEST_OPTS, FRAGMENT, AH}


class _EthernetHeader(dpkt.Packet):  # type: ignore[misc]  # dpkt is untyped
    """dpkt's Ethernet II layout without its decapsulation heuristics."""

    __hdr__ = dpkt.ethernet.Ethernet.__hdr__


class _SllHeader(dpkt.Packet):  # type: ignore[misc]  # dpkt is untyped
    __hdr__ = dpkt.sll.SLL.__hdr__


class _Sll2Header(dpkt.Packet):  # type: ignore[misc]  # dpkt is untyped
    __hdr__ = dpkt.sll2.SLL2.__hdr__


class _IpoibHeader(dpkt.Packet):  # type: ignore[misc]  # dpkt is untyped
    """LINKTYPE_IPOIB as libpcap and tcpdump read it: 40 bytes of addresses, the ethertype,
    2 reserved bytes (RFC 4391 4)."""

    __hdr__ = (("addresses", "40s", b""), ("type", "H", 0), ("reserved", "H", 0))


_ETHERTYPE_LINKS: dict[int, tuple[Any, str]] = {
    ETHERNET: (_EthernetHeader, "type"),
    LINUX_SLL: (_SllHeader, "ethtype"),
    LINUX_SLL2: (_Sll2Header, "ethtype"),
    IPOIB: (_IpoibHeader, "type"),
}
# link header bytes
_NIBBLE_LINKS = {NULL: 4, LOOP: 4, RAW: 0, RAW_ALT: 0, IPV4: 0, IPV6: 0, IPNET: 24}


def undecodable(reason: DecodeReason) -> dict[str, int]:
    """The row of a frame that is not metered: every field 0 but the reason."""
    return {**dict.fromkeys(ROW_FIELDS, 0), "reason": int(reason)}


@dataclass(frozen=True, slots=True)
class Dissection:
    """A whole frame taken apart by dpkt: where each layer ends and the row it decodes to."""

    reason: DecodeReason  # OK, NOT_IP or UNKNOWN_LINKTYPE for the whole frame
    l3_start: int = 0  # first byte after the link header, tags and labels
    l3_end: int = 0  # first byte after the IP header (IPv6: and its extension chain)
    l4_needed: int = 0  # transport bytes the row's ports/flags/type need
    needs_nibble: bool = False  # MPLS: the L3 version nibble decides IP or not
    row: dict[str, int] = field(default_factory=dict)
    chain: tuple[tuple[int, int], ...] = ()  # IPv6 extension headers: (type, where it ends)


_PPP_ETHERTYPES = {PPP_IPV4: ETH_IP, PPP_IPV6: ETH_IP6, 0x0281: ETH_MPLS, 0x0283: ETH_MPLS_MCAST}
_OWN_HEADER_LINKS = (PPP, PPP_HDLC, C_HDLC, IEEE802_11, FRAME_RELAY, RADIOTAP, PPI, NFLOG)
Link = tuple[int, int, int | None, bool]


def _ppp_header(data: bytes, pos: int) -> tuple[int, int]:
    """(ethertype the PPP protocol stands for, 0 if none; payload start)."""
    if data[pos : pos + 2] == b"\xff\x03":
        pos += 2
    if data[pos] & 1:
        return _PPP_ETHERTYPES.get(data[pos], 0), pos + 1
    return _PPP_ETHERTYPES.get(struct.unpack_from(">H", data, pos)[0], 0), pos + 2


def _own_header_link(linktype: int, data: bytes) -> Link:
    """Link layers with a header of their own, read with struct from their specifications."""
    if linktype == PPI:
        (length,), (inner,) = struct.unpack_from("<H", data, 2), struct.unpack_from("<I", data, 4)
        pos, vlan, announced, mpls = _link(inner, data[length:])
        return pos + length, vlan, announced, mpls
    if linktype == RADIOTAP:
        (length,) = struct.unpack_from("<H", data, 2)
        pos, vlan, announced, mpls = _link(IEEE802_11, data[length:])
        return pos + length, vlan, announced, mpls
    if linktype == NFLOG:
        pos = 4
        while struct.unpack_from("<H", data, pos + 2)[0] != 9:
            pos += (struct.unpack_from("<H", data, pos)[0] + 3) & ~3
        return pos + 4, 0, {AF_INET: 4, AF_INET6_LINUX: 6}.get(data[0]), False
    if linktype == IEEE802_11:
        subtype, flags = data[0] >> 4, data[1]
        header = (30 if flags & 3 == 3 else 24) + (2 if subtype & 8 else 0)
        header += 4 if subtype & 8 and flags & 0x80 else 0
        assert data[header : header + 3] == b"\xaa\xaa\x03", "LLC/SNAP expected"
        return _after_ethertype(data, struct.unpack_from(">H", data, header + 6)[0], header + 8)
    if linktype == FRAME_RELAY:  # address octets up to EA, then RFC 2427 or Cisco
        pos = next(i for i, octet in enumerate(data) if octet & 1) + 1
        if data[pos] != 0x03:
            return _after_ethertype(data, struct.unpack_from(">H", data, pos)[0], pos + 2)
        pos += 2 if data[pos + 1] == 0 else 1
        if data[pos] == 0x80:  # SNAP, OUI 0
            assert data[pos + 1 : pos + 4] == bytes(3), "bridged SNAP is not judged here"
            return _after_ethertype(data, struct.unpack_from(">H", data, pos + 4)[0], pos + 6)
        return pos + 1, 0, {0xCC: 4, 0x8E: 6}.get(data[pos], 0), False
    if linktype == C_HDLC or data[0] in (0x0F, 0x8F):
        return _after_ethertype(data, struct.unpack_from(">H", data, 2)[0], 4)
    ethertype, pos = _ppp_header(data, 0)
    return _after_ethertype(data, ethertype, pos)


def _link(linktype: int, data: bytes) -> Link:
    """(L3 start, outermost VLAN id, the version the link layer announces, MPLS?)."""
    if linktype in _NIBBLE_LINKS:
        return _NIBBLE_LINKS[linktype], 0, None, False
    if linktype in _OWN_HEADER_LINKS:
        return _own_header_link(linktype, data)
    header_class, type_field = _ETHERTYPE_LINKS[linktype]
    header = header_class(data)
    return _after_ethertype(data, getattr(header, type_field), header_class.__hdr_len__)


def _after_ethertype(data: bytes, ethertype: int, pos: int) -> Link:
    """Tags, PPPoE (RFC 2516), FabricPath, 802.1ah I-TAGs, MPLS: what the ethertype leads to.

    Below an MPLS stack, a first nibble of 0 is an RFC 4385 control word and
    an RFC 4448 Ethernet pseudowire, as tshark reads it.
    """
    vlan = None
    while True:
        if ethertype in (ETH_MPLS, ETH_MPLS_MCAST) and _pseudowire_below(data, pos):
            pos = _bottom_of_stack(data, pos) + 4  # the control word
            ethertype, pos = struct.unpack_from(">H", data, pos + 12)[0], pos + 14
        elif ethertype in TAG_TYPES:
            tag = dpkt.ethernet.VLANtag8021Q(data[pos : pos + 4])
            vlan = tag.id if vlan is None else vlan
            ethertype, pos = tag.type, pos + 4
        elif ethertype == ETH_PPPOE:
            ethertype, pos = _ppp_header(data, pos + 6)[0], pos + 8
        elif ethertype == ETH_FABRICPATH:  # FTag and TTL, inner MAC addresses, ethertype
            ethertype, pos = struct.unpack_from(">H", data, pos + 14)[0], pos + 16
        elif ethertype == ETH_PBB:  # I-TAG, customer MAC addresses, ethertype
            ethertype, pos = struct.unpack_from(">H", data, pos + 16)[0], pos + 18
        elif ethertype == ETH_MACSEC:  # SecTAG: TCI/AN, SL, PN, SCI if SC; E or C: encrypted
            if data[pos] & 0x0C:  # known once the TCI byte is read
                return pos + 1, vlan or 0, 0, False
            sectag = 6 + (8 if data[pos] & 0x20 else 0)
            ethertype, pos = struct.unpack_from(">H", data, pos + sectag)[0], pos + sectag + 2
        elif ethertype == ETH_NSH:  # length in 4-byte words (low 6 bits of byte 1)
            length, following = (data[pos + 1] & 0x3F) * 4, data[pos + 3]
            pos += length
            if following == 3:  # Ethernet
                ethertype, pos = struct.unpack_from(">H", data, pos + 12)[0], pos + 14
            else:
                ethertype = {1: ETH_IP, 2: ETH_IP6, 4: ETH_NSH, 5: ETH_MPLS}.get(following, 0)
        elif ethertype == ETH_ARISTA:  # subtype, version, a 64-bit (0x10) or 48-bit time
            time = 8 if data[pos + 3] == 0x10 else 6
            ethertype, pos = struct.unpack_from(">H", data, pos + 4 + time)[0], pos + 6 + time
        else:
            break
    if ethertype in (ETH_MPLS, ETH_MPLS_MCAST):
        while True:
            label = dpkt.ethernet.MPLSlabel(data[pos : pos + 4])
            pos += 4
            if label.s:
                return pos, vlan or 0, None, True
    return pos, vlan or 0, {ETH_IP: 4, ETH_IP6: 6}.get(ethertype, 0), False


def _bottom_of_stack(data: bytes, pos: int) -> int:
    """Where the payload below the MPLS label stack at ``pos`` starts."""
    while not dpkt.ethernet.MPLSlabel(data[pos : pos + 4]).s:
        pos += 4
    return pos + 4


def _pseudowire_below(data: bytes, pos: int) -> bool:
    """Is the stack at ``pos`` whole, followed by a control word and a whole Ethernet header?"""
    try:
        below = _bottom_of_stack(data, pos)
    except dpkt.NeedData:
        return False
    return len(data) >= below + 18 and data[below] >> 4 == 0


def _address(raw: bytes) -> tuple[int, int]:
    value = int.from_bytes(raw, "big") | (IPV4_MAPPED if len(raw) == 4 else 0)
    return value >> 64, value & ((1 << 64) - 1)


class _IPv6Header(dpkt.Packet):  # type: ignore[misc]  # dpkt is untyped
    """dpkt's fixed IPv6 header alone: dpkt's IP6 walks the chain itself, and trips on a
    first-position Fragment header followed by more headers (its issue 575 check)."""

    __hdr__ = dpkt.ip6.IP6.__hdr__
    __bit_fields__ = dpkt.ip6.IP6.__bit_fields__


def _ipv6_chain(first: int, chain: bytes) -> tuple[int, int, bool, list[tuple[int, int]]]:
    """(protocol, chain octets, non-first fragment, each header's (type, end)), walking with
    dpkt's extension headers."""
    proto, octets, walked = first, 0, []
    while proto in _WALKED_EXT:
        header = dpkt.ip6.EXT_HDRS_CLS[proto](chain[octets:])
        octets += header.length
        walked.append((proto, octets))
        proto = header.nxt
        if isinstance(header, dpkt.ip6.IP6FragmentHeader) and header.frag_off:
            return proto, octets, True, walked
    return proto, octets, False, walked


def dissect(linktype: int, data: bytes, wirelen: int | None = None) -> Dissection:
    """Take a whole, well-formed frame apart with dpkt (raises on frames it cannot judge)."""
    known = (*_NIBBLE_LINKS, *_ETHERTYPE_LINKS, *_OWN_HEADER_LINKS)
    if linktype not in known:
        return Dissection(DecodeReason.UNKNOWN_LINKTYPE)
    l3, vlan, announced, mpls = _link(linktype, data)
    version = data[l3] >> 4 if announced is None else announced
    if announced is None and not mpls and version not in (4, 6):
        raise ValueError("no IP version nibble behind a nibble link type: not judged here")
    if version not in (4, 6):
        return Dissection(DecodeReason.NOT_IP, l3, l3, needs_nibble=mpls)
    if data[l3] >> 4 != version:
        raise ValueError("link layer and IP header disagree on the version: not judged here")
    if version == 4:
        packet = dpkt.ip.IP(data[l3:])
        proto, l4, later_fragment = packet.p, l3 + packet.hl * 4, packet.offset != 0
        transport = packet.data
        ip_len = packet.len or (len(data) if wirelen is None else wirelen) - l3  # 0: TSO
        tos, src, dst, walked = packet.tos, packet.src, packet.dst, []
    else:
        header = _IPv6Header(data[l3:])
        payload = header.data[: header.plen]
        proto, chain, later_fragment, walked = _ipv6_chain(header.nxt, payload)
        transport = payload[chain:]  # dpkt takes it apart below if the row needs it
        l4, ip_len = l3 + 40 + chain, 40 + header.plen
        tos, src, dst = header.fc, header.src, header.dst
    (src_hi, src_lo), (dst_hi, dst_lo) = _address(src), _address(dst)
    row = {
        "version": version, "src_hi": src_hi, "src_lo": src_lo, "dst_hi": dst_hi, "dst_lo": dst_lo,
        "sport": 0, "dport": 0, "proto": proto, "tos": tos, "tcp_flags": 0, "ip_len": ip_len,
        "vlan": vlan, "reason": int(DecodeReason.OK),
    }  # fmt: skip
    needed = 0 if later_fragment else L4_BYTES_NEEDED.get(proto, 0)
    if needed:
        if version == 6:
            transport = _L4_CLASS[proto](transport)
        if not isinstance(transport, _L4_CLASS[proto]):
            raise ValueError(f"dpkt did not decode protocol {proto}: not judged here")
        if proto in (ICMP, ICMPV6):
            row["dport"] = transport.type * 256 + transport.code
        else:
            row["sport"], row["dport"] = transport.sport, transport.dport
        if proto == TCP:
            row["tcp_flags"] = transport.flags & 0xFF  # NS (bit 8) is not a flag the row keeps
    chain = tuple((kind, l3 + 40 + end) for kind, end in walked)
    return Dissection(DecodeReason.OK, l3, l4, needed, mpls, row, chain)


def expected_row(
    linktype: int, data: bytes, caplen: int | None = None, wirelen: int | None = None
) -> dict[str, int]:
    """The row a decoder must give for the first ``caplen`` bytes of the whole frame ``data``."""
    whole = dissect(linktype, data, wirelen)
    cut = len(data) if caplen is None else caplen
    if whole.reason == DecodeReason.UNKNOWN_LINKTYPE:
        return undecodable(whole.reason)
    if cut < whole.l3_start:
        return undecodable(DecodeReason.L2_TRUNCATED)
    if whole.needs_nibble and cut == whole.l3_start:  # no nibble: IP or a pseudowire below
        return undecodable(DecodeReason.L2_TRUNCATED)
    if whole.reason == DecodeReason.NOT_IP:
        return undecodable(whole.reason)
    zeroed = dict.fromkeys(("sport", "dport", "tcp_flags"), 0)
    if cut < whole.l3_end:
        if not whole.chain or cut < whole.l3_start + 40:
            return undecodable(DecodeReason.IP_TRUNCATED)
        # IPv6 cut inside its extension chain: metered, the protocol the header it stops at
        stopped_at = next(kind for kind, end in whole.chain if cut < end)
        return {
            **whole.row,
            **zeroed,
            "proto": stopped_at,
            "reason": int(DecodeReason.L4_TRUNCATED),
        }
    if cut < whole.l3_end + whole.l4_needed:
        return {**whole.row, **zeroed, "reason": int(DecodeReason.L4_TRUNCATED)}
    return dict(whole.row)
