"""Compiled header decoder: one pass over the frames of a batch, one row each.

Trusts its input (``probe.decode.decoder.decode`` checks dtypes once). Writes only
decoded rows' fields; the caller passes zeroed columns, so an undecodable
frame keeps every key field 0 and gets a nonzero ``reason``.

Three steps per frame, each a function below: the link layer down to the
first IP header (``_link_l3``, with ``_ethertype_l3`` for everything an
ethertype can announce), the IP header (``_ip_header``), and with ``inner``
the tunnels (``_tunnel_l3``): while the IP payload is a tunnel, the header
inside it is taken instead (an inner header cut short leaves the packet on
the last whole one). Every read is checked against the frame's captured end.
Specifications are cited where each layout is read.
"""

from __future__ import annotations

import numpy as np

from aot import njit
from cache.prefetch import prefetch

# DecodeReason values (probe.decode.reasons), repeated as plain ints for the compiler.
OK, L4_TRUNCATED, UNKNOWN_LINKTYPE, L2_TRUNCATED, NOT_IP, IP_TRUNCATED, IP_BAD_HEADER = range(7)
# Link kinds (probe.decode.linktypes).
ETHERTYPE, NIBBLE, PPP, PPP_HDLC, IEEE802_11, RADIOTAP, PPI, NFLOG, FRAME_RELAY = range(1, 10)
LINKTYPE_ETHERNET, LINKTYPE_IEEE802_11 = 1, 105
UNKNOWN_LINK = 0
ETH_IPV4, ETH_IPV6, ETH_MPLS_UC, ETH_MPLS_MC = 0x0800, 0x86DD, 0x8847, 0x8848
ETH_8021Q, ETH_8021AD, ETH_QINQ_OLD = 0x8100, 0x88A8, 0x9100
ETH_PPPOE_SESSION, ETH_FABRICPATH, ETH_PBB = 0x8864, 0x8903, 0x88E7
ETH_TEB, ETH_ERSPAN_2, ETH_ERSPAN_3, ETH_PPP = 0x6558, 0x88BE, 0x22EB, 0x880B
ETH_MACSEC, ETH_NSH, ETH_ARISTA = 0x88E5, 0x894F, 0xD28B
NSH_IPV4, NSH_IPV6, NSH_ETHERNET, NSH_NSH, NSH_MPLS = 1, 2, 3, 4, 5  # RFC 8300 next protocols
NO_ETHERTYPE = -1  # the link layer gives the IP header directly
NOT_FOUND = -1  # a tunnel function's answer when the payload is no tunnel it knows
MAX_TUNNELS = 4  # nested tunnels followed; each takes bytes, so the frame bounds it anyway
# Frames of a mapped slice or a live ring are not in the CPU's caches (a file's read step,
# just copied, is): the headers of the frame this many frames on are hinted meanwhile.
PREFETCH_FRAMES = 16
IPIP, IPV6_IN_IP, GRE = 4, 41, 47
VXLAN_PORT, GENEVE_PORT, GTPU_PORT, TEREDO_PORT = 4789, 6081, 2152, 3544
IPV4_MAPPED = np.uint64(0xFFFF00000000)

ICMP, TCP, UDP, ICMPV6, SCTP = 1, 6, 17, 58, 132
HOP_BY_HOP, ROUTING, FRAGMENT, AH, DEST_OPTS = 0, 43, 44, 51, 60


@njit(cache=True, inline="always")
def _be16(buf, pos):  # type: ignore[no-untyped-def]
    return (np.int64(buf[pos]) << 8) | np.int64(buf[pos + 1])


@njit(cache=True, inline="always")
def _be32(buf, pos):  # type: ignore[no-untyped-def]
    return (_be16(buf, pos) << 16) | _be16(buf, pos + 2)


@njit(cache=True, inline="always")
def _le16(buf, pos):  # type: ignore[no-untyped-def]
    return (np.int64(buf[pos + 1]) << 8) | np.int64(buf[pos])


@njit(cache=True, inline="always")
def _le32(buf, pos):  # type: ignore[no-untyped-def]
    return (_le16(buf, pos + 2) << 16) | _le16(buf, pos)


@njit(cache=True, inline="always")
def _be64(buf, pos):  # type: ignore[no-untyped-def]
    return (np.uint64(_be32(buf, pos)) << np.uint64(32)) | np.uint64(_be32(buf, pos + 4))


@njit(cache=True)
def _ppp_ethertype(protocol):  # type: ignore[no-untyped-def]
    """The ethertype of a PPP protocol number (RFC 1332 IPv4, RFC 5072 IPv6, RFC 3032 MPLS)."""
    if protocol == 0x0021:
        return ETH_IPV4
    if protocol == 0x0057:
        return ETH_IPV6
    if protocol == 0x0281:
        return ETH_MPLS_UC
    if protocol == 0x0283:
        return ETH_MPLS_MC
    return 0


@njit(cache=True)
def _ppp(buf, pos, end):  # type: ignore[no-untyped-def]
    """A PPP header at ``pos``: (reason, payload start, ethertype; 0: not IP or MPLS).

    RFC 1662 address and control (FF 03) may lead; RFC 1661 6.5 lets the
    protocol field shrink to one byte, whose low bit is then set.
    """
    if pos < end and buf[pos] == 0xFF:  # all-stations address: no protocol is 0xFF
        if pos + 2 > end:
            return L2_TRUNCATED, pos, 0
        if buf[pos + 1] != 0x03:
            return NOT_IP, pos, 0
        pos += 2
    if pos >= end:
        return L2_TRUNCATED, pos, 0
    if buf[pos] & 1:
        return OK, pos + 1, _ppp_ethertype(np.int64(buf[pos]))
    if pos + 2 > end:
        return L2_TRUNCATED, pos, 0
    return OK, pos + 2, _ppp_ethertype(_be16(buf, pos))


@njit(cache=True)
def _ethertype_l3(buf, l3, end, etype):  # type: ignore[no-untyped-def]
    """From an ethertype announcing ``l3``: (reason, IP start, IP version expected, outer
    VLAN, inner VLAN or -1, start of the MPLS label stack or -1).

    Walks any depth of 802.1Q/802.1ad tags, PPPoE session headers (RFC 2516:
    6 bytes, then the PPP protocol), Cisco FabricPath (2 bytes of FTag and
    TTL, then the inner MAC addresses and ethertype), 802.1ah I-TAGs (4
    bytes, then the customer MAC addresses and ethertype), MACsec SecTAGs
    of integrity-only frames (IEEE 802.1AE-2018 9.3: 6 bytes, 8 more with the
    SC bit, then the ethertype in clear; E or C set: encrypted, not IP),
    NSH (RFC 8300 2.2: its length in 4-byte words, then the next protocol
    it names), Arista timestamp headers (subtype 1: 4 bytes, a 64- or 48-bit
    time by version, then the original ethertype) and MPLS label stacks
    (RFC 3032) with IP below, or a control word and an Ethernet pseudowire
    (first nibble 0, as tshark reads it); each step takes bytes, so the
    frame bounds the loop.
    """
    vlan_id = 0
    inner_vlan = -1
    tags = 0
    mpls_at = -1
    while True:
        if etype == ETH_IPV4 or etype == ETH_IPV6:
            break
        skip = 0  # a header whose last two bytes are the next ethertype: its length
        if etype == ETH_8021Q or etype == ETH_8021AD or etype == ETH_QINQ_OLD:
            if l3 + 4 > end:
                return L2_TRUNCATED, l3, 0, vlan_id, inner_vlan, mpls_at
            if tags == 0:
                vlan_id = _be16(buf, l3) & 0x0FFF
            elif tags == 1:
                inner_vlan = _be16(buf, l3) & 0x0FFF
            tags += 1
            etype = _be16(buf, l3 + 2)
            l3 += 4
        elif etype == ETH_PPPOE_SESSION:
            if l3 + 8 > end:
                return L2_TRUNCATED, l3, 0, vlan_id, inner_vlan, mpls_at
            etype = _ppp_ethertype(_be16(buf, l3 + 6))
            l3 += 8
        elif etype == ETH_FABRICPATH:
            skip = 16
        elif etype == ETH_PBB:
            skip = 18
        elif etype == ETH_MACSEC:
            if l3 + 1 > end:
                return L2_TRUNCATED, l3, 0, vlan_id, inner_vlan, mpls_at
            tci = buf[l3]
            if tci & 0x0C:  # E (encrypted) or C (changed text): the payload is not readable
                return NOT_IP, l3, 0, vlan_id, inner_vlan, mpls_at
            skip = (14 if tci & 0x20 else 6) + 2
        elif etype == ETH_NSH:
            if l3 + 8 > end:
                return L2_TRUNCATED, l3, 0, vlan_id, inner_vlan, mpls_at
            length = np.int64(buf[l3 + 1] & 0x3F) * 4
            following = buf[l3 + 3]
            if length < 8 or buf[l3] >> 6 != 0:  # version 0 only, base and path headers at least
                return NOT_IP, l3, 0, vlan_id, inner_vlan, mpls_at
            if l3 + length > end:
                return L2_TRUNCATED, l3, 0, vlan_id, inner_vlan, mpls_at
            l3 += length
            if following == NSH_ETHERNET:
                skip = 14
            elif following == NSH_IPV4:
                etype = ETH_IPV4
            elif following == NSH_IPV6:
                etype = ETH_IPV6
            elif following == NSH_NSH:
                etype = ETH_NSH
            elif following == NSH_MPLS:
                etype = ETH_MPLS_UC
            else:
                return NOT_IP, l3, 0, vlan_id, inner_vlan, mpls_at
        elif etype == ETH_ARISTA:
            if l3 + 4 > end:
                return L2_TRUNCATED, l3, 0, vlan_id, inner_vlan, mpls_at
            version = _be16(buf, l3 + 2) & 0xFF
            if _be16(buf, l3) != 1 or (version != 0x10 and version != 0x20):
                return NOT_IP, l3, 0, vlan_id, inner_vlan, mpls_at
            skip = 4 + (8 if version == 0x10 else 6) + 2
        elif etype == ETH_MPLS_UC or etype == ETH_MPLS_MC:
            if mpls_at < 0:
                mpls_at = l3
            bottom = False
            while not bottom and l3 + 4 <= end:
                bottom = (buf[l3 + 2] & 1) == 1
                l3 += 4
            if not bottom or l3 >= end:  # nothing below the labels says IP or pseudowire
                return L2_TRUNCATED, l3, 0, vlan_id, inner_vlan, mpls_at
            nibble = buf[l3] >> 4
            if nibble == 4 or nibble == 6:
                return OK, l3, np.int64(nibble), vlan_id, inner_vlan, mpls_at
            if nibble != 0:
                return NOT_IP, l3, 0, vlan_id, inner_vlan, mpls_at
            skip = 18  # RFC 4385 control word (nibble 0), then Ethernet (RFC 4448)
        else:
            break
        if skip:
            if l3 + skip > end:
                return L2_TRUNCATED, l3, 0, vlan_id, inner_vlan, mpls_at
            etype = _be16(buf, l3 + skip - 2)
            l3 += skip
    if etype == ETH_IPV4:
        return OK, l3, 4, vlan_id, inner_vlan, mpls_at
    if etype == ETH_IPV6:
        return OK, l3, 6, vlan_id, inner_vlan, mpls_at
    return NOT_IP, l3, 0, vlan_id, inner_vlan, mpls_at


@njit(cache=True)
def _ieee802_11(buf, pos, end):  # type: ignore[no-untyped-def]
    """An 802.11 data frame at ``pos`` (IEEE 802.11-2020 9.2.4): (reason, payload, ethertype).

    Header: 24 bytes, 30 with four addresses, +2 for QoS data, +4 for an HT
    control field; then LLC/SNAP (AA AA 03, OUI, ethertype). Null-function
    and protected (encrypted) frames carry no readable IP.
    """
    if pos + 2 > end:
        return L2_TRUNCATED, pos, 0
    control, flags = buf[pos], buf[pos + 1]
    subtype = control >> 4
    if (control >> 2) & 3 != 2 or subtype & 4 or flags & 0x40:
        return NOT_IP, pos, 0
    header = 30 if flags & 3 == 3 else 24
    if subtype & 8:
        header += 2
        if flags & 0x80:
            header += 4
    snap = pos + header
    if snap + 8 > end:
        return L2_TRUNCATED, pos, 0
    if buf[snap] != 0xAA or buf[snap + 1] != 0xAA or buf[snap + 2] != 0x03:
        return NOT_IP, pos, 0
    return OK, snap + 8, _be16(buf, snap + 6)


@njit(cache=True)
def _nflog(buf, pos, end):  # type: ignore[no-untyped-def]
    """Linux NFLOG (LINKTYPE 239): the NFULA_PAYLOAD TLV holds the IP packet.

    A 4-byte header (address family, version, resource id), then TLVs of
    host-order length (header included) and type, each padded to 4 bytes.
    """
    if pos + 4 > end:
        return L2_TRUNCATED, pos, NO_ETHERTYPE, 0
    family = buf[pos]
    version = 4 if family == 2 else (6 if family == 10 else 0)
    tlv = pos + 4
    while tlv + 4 <= end:
        length = _le16(buf, tlv)
        if length < 4:
            return L2_TRUNCATED, tlv, NO_ETHERTYPE, 0
        if _le16(buf, tlv + 2) == 9:
            return OK, tlv + 4, NO_ETHERTYPE, version
        tlv += (length + 3) & ~3
    return L2_TRUNCATED, tlv, NO_ETHERTYPE, 0  # the captured bytes end before the payload TLV


@njit(cache=True)
def _frame_relay(buf, pos, end):  # type: ignore[no-untyped-def]
    """Frame Relay (LINKTYPE 107): (reason, L3 start, ethertype or NO_ETHERTYPE, version).

    A Q.922 address (octets up to the one with the EA bit set), then either
    RFC 2427 (control 0x03, an optional 0 pad, an NLPID: 0xCC IPv4, 0x8E
    IPv6, 0x80 SNAP: OUI 0 and an ethertype) or Cisco's encapsulation (an
    ethertype right after the address), as tshark tells them apart.
    """
    p = pos
    while p < end and not buf[p] & 1:
        p += 1
    p += 1
    if p + 2 > end:
        return L2_TRUNCATED, pos, NO_ETHERTYPE, 0
    if buf[p] != 0x03:
        return OK, p + 2, _be16(buf, p), 0
    p += 1 + (buf[p + 1] == 0)
    if p >= end:
        return L2_TRUNCATED, pos, NO_ETHERTYPE, 0
    nlpid = buf[p]
    if nlpid == 0xCC or nlpid == 0x8E:
        return OK, p + 1, NO_ETHERTYPE, 4 if nlpid == 0xCC else 6
    if nlpid != 0x80:
        return NOT_IP, p, NO_ETHERTYPE, 0
    if p + 6 > end:
        return L2_TRUNCATED, pos, NO_ETHERTYPE, 0
    if buf[p + 1] or buf[p + 2] or buf[p + 3]:  # an OUI other than 0: bridged frames, not opened
        return NOT_IP, p, NO_ETHERTYPE, 0
    return OK, p + 6, _be16(buf, p + 4), 0


@njit(cache=True)
def _link_l3(buf, base, end, kind):  # type: ignore[no-untyped-def]
    """(reason, L3 start, ethertype announcing it or NO_ETHERTYPE, IP version expected).

    With an ethertype the caller walks on (``_ethertype_l3``); without one the
    IP header starts at L3, of the version given (0: read it). One place
    follows the ethertype, so the compiled loop stays small; called for every
    link type but the fixed-offset ones, which the loop reads itself.
    """
    pos = base
    if kind == PPI:  # PPI header: version, flags, length (LE), inner link type (LE)
        if pos + 8 > end:
            return L2_TRUNCATED, pos, NO_ETHERTYPE, 0
        inner = _le32(buf, pos + 4)
        pos += _le16(buf, pos + 2)
        kind = IEEE802_11 if inner == LINKTYPE_IEEE802_11 else UNKNOWN_LINK
        if inner == LINKTYPE_ETHERNET:  # PPI wraps 802.11 or Ethernet in practice
            if pos + 14 > end:
                return L2_TRUNCATED, pos, NO_ETHERTYPE, 0
            return OK, pos + 14, _be16(buf, pos + 12), 0
    if kind == RADIOTAP:  # radiotap header: version, pad, length (LE), then 802.11
        if pos + 4 > end:
            return L2_TRUNCATED, pos, NO_ETHERTYPE, 0
        pos += _le16(buf, pos + 2)
        kind = IEEE802_11
    if kind == IEEE802_11:
        reason, l3, etype = _ieee802_11(buf, pos, end)
        return reason, l3, etype, 0
    if kind == PPP_HDLC and pos < end and (buf[pos] == 0x0F or buf[pos] == 0x8F):
        if pos + 4 > end:  # Cisco HDLC inside a PPP-in-HDLC capture: address, control, ethertype
            return L2_TRUNCATED, pos, NO_ETHERTYPE, 0
        return OK, pos + 4, _be16(buf, pos + 2), 0
    if kind == PPP or kind == PPP_HDLC:
        reason, l3, etype = _ppp(buf, pos, end)
        return reason, l3, etype, 0
    if kind == NFLOG:
        return _nflog(buf, pos, end)
    if kind == FRAME_RELAY:
        return _frame_relay(buf, pos, end)
    return UNKNOWN_LINKTYPE, pos, NO_ETHERTYPE, 0


@njit(cache=True, inline="always")
def _no_ip(reason, l3):  # type: ignore[no-untyped-def]
    """``_ip_header``'s answer for a header it cannot read (typed as on success)."""
    zero = np.uint64(0)
    return (
        reason,
        np.int64(0),
        l3,
        True,
        False,
        np.int64(0),
        zero,
        zero,
        zero,
        zero,
        np.int64(0),
        np.int64(0),
    )


@njit(cache=True, inline="always")
def _ip_header(buf, l3, end, after_l3, expected_version):  # type: ignore[no-untyped-def]
    """The IP header at ``l3``: (reason, protocol, L4 start, first fragment, fragment,
    version, src hi, src lo, dst hi, dst lo, tos, IP length).

    ``after_l3``: the frame's wire length from ``l3`` on, for an IPv4 total
    length of 0 (TCP segmentation offload: the NIC fills it in later).
    """
    if l3 >= end:
        return _no_ip(IP_TRUNCATED, l3)
    ip_version = buf[l3] >> 4
    if (ip_version != 4 and ip_version != 6) or (
        expected_version != 0 and ip_version != expected_version
    ):
        return _no_ip(IP_BAD_HEADER, l3)
    if ip_version == 4:
        if end - l3 < 20:
            return _no_ip(IP_TRUNCATED, l3)
        header_len = np.int64(buf[l3] & 0x0F) * 4
        total_len = _be16(buf, l3 + 2)
        if header_len < 20 or (total_len != 0 and total_len < header_len):
            return _no_ip(IP_BAD_HEADER, l3)
        if end - l3 < header_len:
            return _no_ip(IP_TRUNCATED, l3)
        if total_len == 0:
            total_len = max(after_l3, header_len)
        flags_offset = _be16(buf, l3 + 6)
        return (
            OK, np.int64(buf[l3 + 9]), l3 + header_len, (flags_offset & 0x1FFF) == 0,
            (flags_offset & 0x3FFF) != 0, np.int64(4), np.uint64(0),
            IPV4_MAPPED | np.uint64(_be32(buf, l3 + 12)), np.uint64(0),
            IPV4_MAPPED | np.uint64(_be32(buf, l3 + 16)), np.int64(buf[l3 + 1]), total_len,
        )  # fmt: skip
    if end - l3 < 40:
        return _no_ip(IP_TRUNCATED, l3)
    l4_proto = np.int64(buf[l3 + 6])
    l4 = l3 + 40
    first_fragment = True
    fragment = False
    cut = False
    while True:  # each extension header takes at least 8 bytes: bounded by the frame
        if l4_proto == HOP_BY_HOP or l4_proto == ROUTING or l4_proto == DEST_OPTS:
            ext_len = (np.int64(buf[l4 + 1]) + 1) * 8 if l4 + 2 <= end else 8
        elif l4_proto == AH:
            ext_len = (np.int64(buf[l4 + 1]) + 2) * 4 if l4 + 2 <= end else 8
        elif l4_proto == FRAGMENT:
            ext_len = 8
        else:
            break
        if l4 + ext_len > end:  # the snaplen cut the chain: metered, its protocol this header
            cut = True
            break
        if l4_proto == FRAGMENT:
            fragment = True
            first_fragment = (_be16(buf, l4 + 2) >> 3) == 0
        l4_proto = np.int64(buf[l4])
        l4 += ext_len
        if not first_fragment:
            break
    return (
        L4_TRUNCATED if cut else OK, l4_proto, l4, first_fragment and not cut, fragment,
        np.int64(6), _be64(buf, l3 + 8),
        _be64(buf, l3 + 16), _be64(buf, l3 + 24), _be64(buf, l3 + 32),
        ((np.int64(buf[l3]) & 0x0F) << 4) | (np.int64(buf[l3 + 1]) >> 4),
        40 + _be16(buf, l3 + 4),
    )  # fmt: skip


@njit(cache=True)
def _ethernet_l3(buf, pos, end):  # type: ignore[no-untyped-def]
    """An Ethernet frame inside a tunnel: (reason, IP start, version expected)."""
    if pos + 14 > end:
        return L2_TRUNCATED, pos, 0
    reason, l3, version, _, _, _ = _ethertype_l3(buf, pos + 14, end, _be16(buf, pos + 12))
    return reason, l3, version


@njit(cache=True)
def _gre(buf, pos, end):  # type: ignore[no-untyped-def]
    """A GRE payload: (reason, inner IP start, version; NOT_FOUND: not one we open).

    RFC 2784/2890 (version 0: checksum, key, sequence words by flag), RFC 2637
    (version 1, PPTP: key always, sequence and acknowledgement by flag, PPP
    inside); ERSPAN type II (0x88BE with a sequence number: 8-byte header;
    without one, type I: none) and type III (0x22EB: 12 bytes, 8 more when
    the O bit, the last bit of byte 11, is set), then Ethernet.
    """
    if pos + 4 > end:
        return NOT_FOUND, pos, 0
    flags = _be16(buf, pos)
    protocol = _be16(buf, pos + 2)
    version = flags & 7
    p = pos + 4
    if version == 0:
        if flags & 0x4000:  # source routing (RFC 1701): not opened
            return NOT_FOUND, pos, 0
        p += 4 * (((flags >> 15) & 1) + ((flags >> 13) & 1) + ((flags >> 12) & 1))
    elif version == 1:
        p += 4 + 4 * (((flags >> 12) & 1) + ((flags >> 7) & 1))
    else:
        return NOT_FOUND, pos, 0
    if p > end:
        return NOT_FOUND, pos, 0
    if protocol == ETH_IPV4:
        return OK, p, 4
    if protocol == ETH_IPV6:
        return OK, p, 6
    if protocol == ETH_TEB:
        return _ethernet_l3(buf, p, end)
    if protocol == ETH_ERSPAN_2:
        return _ethernet_l3(buf, p + 8 if flags & 0x1000 else p, end)
    if protocol == ETH_ERSPAN_3:
        if p + 12 > end:
            return L2_TRUNCATED, p, 0
        return _ethernet_l3(buf, p + 12 + 8 * (buf[p + 11] & 1), end)
    if protocol == ETH_PPP:
        reason, l3, etype = _ppp(buf, p, end)
        if reason != OK:
            return reason, l3, 0
        reason, l3, expected, _, _, _ = _ethertype_l3(buf, l3, end, etype)
        return reason, l3, expected
    if protocol == ETH_MPLS_UC:
        reason, l3, expected, _, _, _ = _ethertype_l3(buf, p, end, protocol)
        return reason, l3, expected
    return NOT_FOUND, pos, 0


@njit(cache=True)
def _udp_tunnel(buf, pos, end):  # type: ignore[no-untyped-def]
    """A UDP datagram at ``pos`` on a tunnel port: (reason, inner IP start, version).

    VXLAN (RFC 7348: 8 bytes, I flag, then Ethernet), Geneve (RFC 8926: 8
    bytes plus options, then the protocol it names), GTP-U (3GPP TS 29.281:
    a G-PDU's 8 bytes, 4 more when any of E, S, PN is set, then extension
    headers of 4-byte units, then IP), Teredo (RFC 4380: optional
    authentication and origin indications, then IPv6).
    """
    if pos + 8 > end:
        return NOT_FOUND, pos, 0
    sport, dport = _be16(buf, pos), _be16(buf, pos + 2)
    u = pos + 8
    if dport == VXLAN_PORT:
        if u + 8 > end or not buf[u] & 0x08:
            return NOT_FOUND, pos, 0
        return _ethernet_l3(buf, u + 8, end)
    if dport == GENEVE_PORT:
        if u + 8 > end or buf[u] >> 6 != 0:
            return NOT_FOUND, pos, 0
        p = u + 8 + np.int64(buf[u] & 0x3F) * 4
        protocol = _be16(buf, u + 2)
        if protocol == ETH_TEB:
            return _ethernet_l3(buf, p, end)
        if protocol == ETH_IPV4 or protocol == ETH_IPV6:
            return OK, p, 4 if protocol == ETH_IPV4 else 6
        return NOT_FOUND, pos, 0
    if dport == GTPU_PORT or sport == GTPU_PORT:
        if u + 8 > end or buf[u] >> 4 != 3 or buf[u + 1] != 0xFF:  # version 1, GTP, G-PDU
            return NOT_FOUND, pos, 0
        p = u + 8
        if buf[u] & 0x07:
            if u + 12 > end:
                return NOT_FOUND, pos, 0
            p = u + 12
            following = buf[u + 11] if buf[u] & 0x04 else 0
            while following != 0:
                if p >= end or buf[p] == 0:
                    return NOT_FOUND, pos, 0
                p += np.int64(buf[p]) * 4
                if p > end:
                    return NOT_FOUND, pos, 0
                following = buf[p - 1]
        return OK, p, 0
    if dport == TEREDO_PORT or sport == TEREDO_PORT:
        p = u
        if p + 4 <= end and _be16(buf, p) == 0x0001:  # authentication indicator
            p += 4 + np.int64(buf[p + 2]) + np.int64(buf[p + 3]) + 9
        if p + 2 <= end and _be16(buf, p) == 0x0000:  # origin indication
            p += 8
        if p >= end or buf[p] >> 4 != 6:
            return NOT_FOUND, pos, 0
        return OK, p, 6
    return NOT_FOUND, pos, 0


@njit(cache=True)
def _tunnel_l3(buf, l4, end, proto):  # type: ignore[no-untyped-def]
    """The IP header a tunnel payload carries: (reason, start, version); NOT_FOUND if none."""
    if proto == IPIP:
        return OK, l4, 4
    if proto == IPV6_IN_IP:
        return OK, l4, 6
    if proto == GRE:
        return _gre(buf, l4, end)
    if proto == UDP:
        return _udp_tunnel(buf, l4, end)
    return NOT_FOUND, l4, 0


@njit(cache=True, nogil=True)
def _open_tunnels(buf, header, end, wire_end):  # type: ignore[no-untyped-def]
    """While the payload after ``header`` is a tunnel, the IP header inside it instead.

    ``header`` and the result are ``_ip_header`` tuples. Not inlined, and
    given no output arrays: the common path of ``decode_frames`` stays fast.
    """
    for _depth in range(MAX_TUNNELS):
        if header[4]:  # what a fragment carries is not whole
            break
        found, inner_l3, inner_version = _tunnel_l3(buf, header[2], end, header[1])
        if found != OK:
            break
        inside = _ip_header(buf, inner_l3, end, wire_end - inner_l3, inner_version)
        if inside[0] != OK:
            break  # cut short: the packet stays on the header around it
        header = inside
    return header


@njit(cache=True, nogil=True)
def decode_frames(  # type: ignore[no-untyped-def]
    buf,
    offset,
    caplen,
    wirelen,
    linktype,
    lt_kind,
    lt_type_offset,
    lt_l3_offset,
    lt_version,
    inner,
    version,
    src_hi,
    src_lo,
    dst_hi,
    dst_lo,
    sport,
    dport,
    proto,
    tos,
    tcp_flags,
    ip_len,
    vlan,
    reason,
):
    """``inner``: key and count on the innermost IP header of known tunnels."""
    for i in range(len(offset)):
        if i + PREFETCH_FRAMES < len(offset):
            ahead = offset[i + PREFETCH_FRAMES]
            prefetch(buf, ahead)
            prefetch(buf, ahead + 64)
        base = offset[i]
        end = base + np.int64(caplen[i])
        lt = linktype[i]
        kind = lt_kind[lt] if lt < len(lt_kind) else UNKNOWN_LINK
        etype, expected = NO_ETHERTYPE, np.int64(0)
        if kind == ETHERTYPE or kind == NIBBLE:  # fixed offsets: read here
            l3 = base + lt_l3_offset[lt]
            status = OK if l3 <= end else L2_TRUNCATED
            if status == OK and kind == ETHERTYPE:
                etype = _be16(buf, base + lt_type_offset[lt])
            expected = np.int64(lt_version[lt])
        else:
            status, l3, etype, expected = _link_l3(buf, base, end, kind)
        vlan_id = 0
        if status == OK and etype != NO_ETHERTYPE:
            status, l3, expected, vlan_id, _, _ = _ethertype_l3(buf, l3, end, etype)
        if status != OK:
            reason[i] = status
            continue
        wire_end = base + np.int64(wirelen[i])
        header = _ip_header(buf, l3, end, wire_end - l3, expected)
        if header[0] != OK:
            reason[i] = header[0]
            if header[0] != L4_TRUNCATED:
                continue
        if inner and (header[1] == IPIP or header[1] == IPV6_IN_IP or header[1] == GRE
                      or header[1] == UDP):  # fmt: skip
            header = _open_tunnels(buf, header, end, wire_end)
        _, l4_proto, l4, first_fragment, _, version[i] = header[:6]
        src_hi[i], src_lo[i], dst_hi[i], dst_lo[i], tos[i], ip_len[i] = header[6:]
        proto[i] = l4_proto
        vlan[i] = vlan_id

        # Transport layer: ports, ICMP type/code, TCP flags (never for later fragments).
        if not first_fragment:
            continue
        available = end - l4
        if l4_proto == TCP:
            if available < 14:
                reason[i] = L4_TRUNCATED
            else:
                sport[i] = _be16(buf, l4)
                dport[i] = _be16(buf, l4 + 2)
                tcp_flags[i] = buf[l4 + 13]
        elif l4_proto == UDP or l4_proto == SCTP:
            if available < 4:
                reason[i] = L4_TRUNCATED
            else:
                sport[i] = _be16(buf, l4)
                dport[i] = _be16(buf, l4 + 2)
        elif l4_proto == ICMP or l4_proto == ICMPV6:
            if available < 2:
                reason[i] = L4_TRUNCATED
            else:
                dport[i] = _be16(buf, l4)
