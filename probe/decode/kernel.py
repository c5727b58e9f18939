"""Compiled header decoder: one pass over the frames of a batch, one row each.

Trusts its input (``probe.decode.decoder.decode`` checks dtypes once). Writes only
decoded rows' fields; the caller passes zeroed columns, so an undecodable
frame keeps every key field 0 and gets a nonzero ``reason``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# DecodeReason values (probe.decode.reasons), repeated as plain ints for the compiler.
OK, L4_TRUNCATED, UNKNOWN_LINKTYPE, L2_TRUNCATED, NOT_IP, IP_TRUNCATED, IP_BAD_HEADER = range(7)
ETHERTYPE, NIBBLE = 1, 2
ETH_IPV4, ETH_IPV6, ETH_MPLS_UC, ETH_MPLS_MC = 0x0800, 0x86DD, 0x8847, 0x8848
ETH_8021Q, ETH_8021AD, ETH_QINQ_OLD = 0x8100, 0x88A8, 0x9100
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
def _be64(buf, pos):  # type: ignore[no-untyped-def]
    return (np.uint64(_be32(buf, pos)) << np.uint64(32)) | np.uint64(_be32(buf, pos + 4))


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
    for i in range(len(offset)):
        base = offset[i]
        end = base + np.int64(caplen[i])
        lt = linktype[i]
        kind = lt_kind[lt] if lt < len(lt_kind) else 0
        if kind == 0:
            reason[i] = UNKNOWN_LINKTYPE
            continue
        l3 = base + lt_l3_offset[lt]
        if l3 > end:
            reason[i] = L2_TRUNCATED
            continue

        # Link layer: find the IP version the frame claims and the L3 start.
        expected_version = lt_version[lt]
        vlan_id = 0
        if kind == ETHERTYPE:
            etype = _be16(buf, base + lt_type_offset[lt])
            tagged = False
            # Any depth of tags: each takes 4 bytes, so the frame length bounds the loop.
            while etype == ETH_8021Q or etype == ETH_8021AD or etype == ETH_QINQ_OLD:
                if l3 + 4 > end:
                    break
                if not tagged:
                    vlan_id = _be16(buf, l3) & 0x0FFF
                    tagged = True
                etype = _be16(buf, l3 + 2)
                l3 += 4
            if etype == ETH_8021Q or etype == ETH_8021AD or etype == ETH_QINQ_OLD:
                reason[i] = L2_TRUNCATED
                continue
            if etype == ETH_MPLS_UC or etype == ETH_MPLS_MC:
                bottom = False
                while not bottom and l3 + 4 <= end:
                    bottom = (buf[l3 + 2] & 1) == 1
                    l3 += 4
                if not bottom:
                    reason[i] = L2_TRUNCATED
                    continue
                if l3 >= end:
                    reason[i] = IP_TRUNCATED
                    continue
                expected_version = buf[l3] >> 4
                if expected_version != 4 and expected_version != 6:
                    reason[i] = NOT_IP
                    continue
            elif etype == ETH_IPV4:
                expected_version = 4
            elif etype == ETH_IPV6:
                expected_version = 6
            else:
                reason[i] = NOT_IP
                continue
        if l3 >= end:
            reason[i] = IP_TRUNCATED
            continue
        ip_version = buf[l3] >> 4
        if ip_version != 4 and ip_version != 6:
            reason[i] = IP_BAD_HEADER
            continue
        if expected_version != 0 and ip_version != expected_version:
            reason[i] = IP_BAD_HEADER
            continue

        # Network layer.
        first_fragment = True
        if ip_version == 4:
            if end - l3 < 20:
                reason[i] = IP_TRUNCATED
                continue
            header_len = np.int64(buf[l3] & 0x0F) * 4
            total_len = _be16(buf, l3 + 2)
            if header_len < 20 or (total_len != 0 and total_len < header_len):
                reason[i] = IP_BAD_HEADER
                continue
            if end - l3 < header_len:
                reason[i] = IP_TRUNCATED
                continue
            if total_len == 0:  # TCP segmentation offload: the NIC fills it in later
                total_len = max(np.int64(wirelen[i]) - (l3 - base), header_len)
            l4_proto = buf[l3 + 9]
            first_fragment = (_be16(buf, l3 + 6) & 0x1FFF) == 0
            tos[i] = buf[l3 + 1]
            ip_len[i] = total_len
            src_lo[i] = IPV4_MAPPED | np.uint64(_be32(buf, l3 + 12))
            dst_lo[i] = IPV4_MAPPED | np.uint64(_be32(buf, l3 + 16))
            l4 = l3 + header_len
        else:
            if end - l3 < 40:
                reason[i] = IP_TRUNCATED
                continue
            tos[i] = ((buf[l3] & 0x0F) << 4) | (buf[l3 + 1] >> 4)
            ip_len[i] = 40 + _be16(buf, l3 + 4)
            src_hi[i] = _be64(buf, l3 + 8)
            src_lo[i] = _be64(buf, l3 + 16)
            dst_hi[i] = _be64(buf, l3 + 24)
            dst_lo[i] = _be64(buf, l3 + 32)
            l4_proto = buf[l3 + 6]
            l4 = l3 + 40
            chain_complete = False
            while True:  # each extension header takes at least 8 bytes: bounded by the frame
                if l4_proto == HOP_BY_HOP or l4_proto == ROUTING or l4_proto == DEST_OPTS:
                    ext_len = (np.int64(buf[l4 + 1]) + 1) * 8 if l4 + 2 <= end else 8
                elif l4_proto == AH:
                    ext_len = (np.int64(buf[l4 + 1]) + 2) * 4 if l4 + 2 <= end else 8
                elif l4_proto == FRAGMENT:
                    ext_len = 8
                else:
                    chain_complete = True
                    break
                if l4 + ext_len > end:
                    break
                if l4_proto == FRAGMENT:
                    first_fragment = (_be16(buf, l4 + 2) >> 3) == 0
                l4_proto = buf[l4]
                l4 += ext_len
                if not first_fragment:
                    chain_complete = True
                    break
            if not chain_complete:
                src_hi[i] = src_lo[i] = dst_hi[i] = dst_lo[i] = 0
                tos[i] = 0
                ip_len[i] = 0
                reason[i] = IP_TRUNCATED
                continue
        version[i] = ip_version
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
