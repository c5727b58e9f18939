"""Tunnel packets built byte by byte from their specifications (cited per builder)."""

from __future__ import annotations

import struct

from tests import frames as f

ETH_TEB, ETH_ERSPAN_2, ETH_ERSPAN_3, ETH_PPP = 0x6558, 0x88BE, 0x22EB, 0x880B

V4_TCP = f.ipv4(f.tcp(40000, 443, f.TH_SYN), src="198.18.5.1", dst="198.18.6.1", tos=0x28)
V6_UDP = f.ipv6(f.udp(5353, 53, b"inner"), src="2001:db8:5::1", dst="2001:db8:6::1")
OUTER = {"src": "198.19.0.1", "dst": "198.19.0.2"}


def gre(payload: bytes, protocol: int, key: int | None = None, seq: int | None = None) -> bytes:
    """GRE version 0 (RFC 2784, RFC 2890): K and S flags add a word each."""
    flags = (0x2000 if key is not None else 0) | (0x1000 if seq is not None else 0)
    words = b"".join(struct.pack(">I", w) for w in (key, seq) if w is not None)
    return f.ipv4(struct.pack(">HH", flags, protocol) + words + payload, proto=f.GRE, **OUTER)


def pptp_gre(ppp_frame: bytes) -> bytes:
    """Enhanced GRE (RFC 2637 4.1): version 1, K always (length, call id), S and A set."""
    header = struct.pack(">HHHHII", 0x3081, ETH_PPP, len(ppp_frame), 7, 1, 0)
    return f.ipv4(header + ppp_frame, proto=f.GRE, **OUTER)


def erspan2(inner_frame: bytes) -> bytes:
    """ERSPAN type II: GRE with a sequence number, then 8 bytes (version 1, VLAN, session)."""
    return gre(struct.pack(">HHI", 0x1000 | 10, 0x0001, 0) + inner_frame, ETH_ERSPAN_2, seq=1)


def erspan3(inner_frame: bytes, subheader: bool) -> bytes:
    """ERSPAN type III: 12 bytes (version 2 ... O bit last), 8 more when O is set."""
    header = struct.pack(">HHIHH", 0x2000 | 10, 0x0001, 12345, 0, 1 if subheader else 0)
    return gre(header + (bytes(8) if subheader else b"") + inner_frame, ETH_ERSPAN_3, seq=1)


def udp_tunnel(dport: int, payload: bytes, sport: int = 49152) -> bytes:
    return f.ipv4(f.udp(sport, dport, payload), **OUTER)


def vxlan(inner_frame: bytes) -> bytes:
    """RFC 7348 5: flags with I set, 24 reserved bits, VNI, 8 reserved bits."""
    return udp_tunnel(4789, struct.pack(">II", 0x08000000, 5000 << 8) + inner_frame)


def geneve(payload: bytes, protocol: int, option_words: int = 0) -> bytes:
    """RFC 8926 3.4: version 0, option length in 4-byte words, protocol type, VNI; options."""
    header = struct.pack(">BBHI", option_words, 0, protocol, 77 << 8) + bytes(4 * option_words)
    return udp_tunnel(6081, header + payload)


def gtpu(inner_ip: bytes, extension: bool) -> bytes:
    """3GPP TS 29.281 5.1: version 1, PT, E/S/PN; G-PDU; with E, one PDU session container."""
    flags = 0x30 | (0x04 if extension else 0)
    body = inner_ip
    if extension:
        body = struct.pack(">HBB", 0, 0, 0x85) + bytes([1, 0x00, 0x09, 0x00]) + inner_ip
    return udp_tunnel(2152, struct.pack(">BBHI", flags, 0xFF, len(body), 0xABCD) + body, 2152)


def teredo(inner_ip6: bytes, origin: bool) -> bytes:
    """RFC 4380 5.1.1: an origin indication (0x0000, port, address, obfuscated) may lead."""
    prefix = struct.pack(">HH4s", 0, 0xFFFF ^ 3544, bytes(4)) if origin else b""
    return udp_tunnel(3544, prefix + inner_ip6, 40000)


def ip_in_ip(inner_ip: bytes, outer_version: int) -> bytes:
    proto = 4 if inner_ip[0] >> 4 == 4 else 41
    if outer_version == 4:
        return f.ipv4(inner_ip, proto=proto, **OUTER)
    return f.ipv6(inner_ip, proto=proto, src="2001:db8:9::1", dst="2001:db8:9::2")
