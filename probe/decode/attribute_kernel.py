"""Compiled pass for ``--fields``: each decoded frame's ``core.attributes`` words.

A second walk over the frames, run only when records carry attributes, so
the decoder's own loop (``kernel.decode_frames``) stays as fast as without
them. It uses the decoder's own steps (link layer, ethertype walk, IP header,
tunnels), so both walks agree on every frame.
"""

from __future__ import annotations

import numpy as np

from aot import njit
from core.attributes import (
    DST_MAC,
    INNER_VLAN,
    MAC_BITS,
    MPLS1,
    MPLS_BITS,
    MPLS_WORDS,
    OUTER_DST_HI,
    OUTER_DST_LO,
    OUTER_SRC_HI,
    OUTER_SRC_LO,
    OUTER_VERSION,
    SRC_MAC,
    VLAN_BITS,
)
from probe.decode.kernel import (
    ETHERTYPE,
    GRE,
    IPIP,
    IPV6_IN_IP,
    L4_TRUNCATED,
    NIBBLE,
    NO_ETHERTYPE,
    OK,
    UDP,
    UNKNOWN_LINK,
    _be16,
    _be32,
    _ethertype_l3,
    _ip_header,
    _link_l3,
    _open_tunnels,
)

LINKTYPE_ETHERNET = 1
MPLS_ENTRIES = len(MPLS_WORDS)
MAC_PRESENT, VLAN_PRESENT = np.uint64(1 << MAC_BITS), np.uint64(1 << VLAN_BITS)
MPLS_PRESENT = np.uint64(1 << MPLS_BITS)


@njit(cache=True, inline="always")
def _mac(buf, pos):  # type: ignore[no-untyped-def]
    return (np.uint64(_be16(buf, pos)) << np.uint64(32)) | np.uint64(_be32(buf, pos + 2))


@njit(cache=True, nogil=True)
def frame_attributes(  # type: ignore[no-untyped-def]
    buf, offset, caplen, wirelen, linktype, lt_kind, lt_type_offset, lt_l3_offset, lt_version,
    inner, reason, attrs,
):  # fmt: skip
    """Fill ``attrs`` (zeroed, a row per frame) for the frames ``reason`` says decoded.

    MACs come from an Ethernet link header (RFC 894: destination, then
    source); the inner VLAN from a frame's second tag; MPLS entries are the
    top three of the stack (RFC 3032: 4 bytes each, the TTL byte dropped);
    the outer header only when ``inner`` took the key from inside a tunnel.
    """
    for i in range(len(offset)):
        if reason[i] != OK and reason[i] != L4_TRUNCATED:  # metered frames only
            continue
        base = offset[i]
        end = base + np.int64(caplen[i])
        lt = linktype[i]
        kind = lt_kind[lt] if lt < len(lt_kind) else UNKNOWN_LINK
        etype, expected = NO_ETHERTYPE, np.int64(0)
        if kind == ETHERTYPE or kind == NIBBLE:
            l3 = base + lt_l3_offset[lt]
            if kind == ETHERTYPE:
                etype = _be16(buf, base + lt_type_offset[lt])
            expected = np.int64(lt_version[lt])
        else:
            _, l3, etype, expected = _link_l3(buf, base, end, kind)
        if lt == LINKTYPE_ETHERNET:
            attrs[i, DST_MAC] = MAC_PRESENT | _mac(buf, base)
            attrs[i, SRC_MAC] = MAC_PRESENT | _mac(buf, base + 6)
        if etype != NO_ETHERTYPE:
            _, l3, expected, _, inner_vlan, mpls_at = _ethertype_l3(buf, l3, end, etype)
            if inner_vlan >= 0:
                attrs[i, INNER_VLAN] = VLAN_PRESENT | np.uint64(inner_vlan)
            if mpls_at >= 0:
                for k in range(MPLS_ENTRIES):
                    at = mpls_at + 4 * k
                    entry = (np.uint64(_be16(buf, at)) << np.uint64(8)) | np.uint64(buf[at + 2])
                    attrs[i, MPLS1 + k] = MPLS_PRESENT | entry
                    if buf[at + 2] & 1:  # bottom of stack
                        break
        if not inner:
            continue
        wire_end = base + np.int64(wirelen[i])
        outer = _ip_header(buf, l3, end, wire_end - l3, expected)
        if not (outer[1] == IPIP or outer[1] == IPV6_IN_IP or outer[1] == GRE or outer[1] == UDP):
            continue
        innermost = _open_tunnels(buf, outer, end, wire_end)
        if innermost[2] != outer[2]:  # the key came from a header inside the tunnel
            attrs[i, OUTER_VERSION] = outer[5]
            attrs[i, OUTER_SRC_HI], attrs[i, OUTER_SRC_LO] = outer[6], outer[7]
            attrs[i, OUTER_DST_HI], attrs[i, OUTER_DST_LO] = outer[8], outer[9]
