"""Compiled walk of a TPACKET_V3 receive ring: blocks the kernel handed over, into one frame batch.

Layouts from linux/if_packet.h: a block starts with ``tpacket_block_desc``
(``block_status`` at byte 8, ``num_pkts`` at 12, ``offset_to_first_pkt`` at
16); each frame with ``tpacket3_hdr`` (``tp_next_offset`` 0, ``tp_sec`` 4,
``tp_nsec`` 8, ``tp_snaplen`` 12, ``tp_len`` 16, ``tp_status`` 20, ``tp_mac``
24 (u16), ``tp_vlan_tci`` 32, ``tp_vlan_tpid`` 36 (u16)). Every field is
4-byte aligned. One byte view serves every read and the write that gives a
block back, so the compiler cannot move that write before the copies.

Frames are copied out (headers only, at the snap length) and each block is
given back to the kernel as soon as it is copied. The kernel takes the outer
802.1Q/802.1ad tag off into ``tp_vlan_tci``; the walk puts it back where it
was, so the batch holds frames as the wire carried them (cut at the snap
length again, as libpcap does). Fields are host order: little-endian only.
"""

from __future__ import annotations

import numpy as np

from aot import njit

TP_STATUS_USER = 1
TP_STATUS_VLAN_VALID = 0x10
TP_STATUS_VLAN_TPID_VALID = 0x40
ETH_P_8021Q = 0x8100
FRAME_HEADER_BYTES = 48  # tpacket3_hdr
VLAN_TAG_BYTES = 4
MAC_ADDRESSES = 12  # where a tag goes: after the two MAC addresses


@njit(cache=True, inline="always")
def _u32(ring, at):  # type: ignore[no-untyped-def]
    return (
        np.int64(ring[at])
        | (np.int64(ring[at + 1]) << 8)
        | (np.int64(ring[at + 2]) << 16)
        | (np.int64(ring[at + 3]) << 24)
    )


@njit(cache=True, nogil=True)
def walk_ring(  # type: ignore[no-untyped-def]
    ring,
    block_size,
    block_nr,
    block,
    snaplen,
    out_buf,
    out_offset,
    out_caplen,
    out_wirelen,
    out_ts_ns,
):
    """Copy the user-owned blocks from ``block`` on while the outputs have room.

    Returns ``(frames, next_block)``; a block that does not fit stays with
    the user for the next call (the caller's outputs hold at least one).
    """
    n = 0
    pos = 0
    for _ in range(block_nr):
        base = block * block_size
        if _u32(ring, base + 8) & TP_STATUS_USER == 0:
            break
        count = _u32(ring, base + 12)
        if n + count > len(out_offset) or pos + block_size + count * VLAN_TAG_BYTES > len(out_buf):
            break
        at = base + _u32(ring, base + 16)
        end = base + block_size
        for _i in range(count):
            if at + FRAME_HEADER_BYTES > end:
                break
            snap = _u32(ring, at + 12)
            wire = _u32(ring, at + 16)
            status = _u32(ring, at + 20)
            src = at + (_u32(ring, at + 24) & 0xFFFF)
            snap = max(np.int64(0), min(snap, end - src))
            out_ts_ns[n] = _u32(ring, at + 4) * 1_000_000_000 + _u32(ring, at + 8)
            out_offset[n] = pos
            if status & TP_STATUS_VLAN_VALID and snap >= MAC_ADDRESSES:
                tpid = np.int64(ETH_P_8021Q)
                if status & TP_STATUS_VLAN_TPID_VALID:
                    tpid = _u32(ring, at + 36) & 0xFFFF
                tci = _u32(ring, at + 32) & 0xFFFF
                out_buf[pos : pos + MAC_ADDRESSES] = ring[src : src + MAC_ADDRESSES]
                out_buf[pos + 12] = tpid >> 8
                out_buf[pos + 13] = tpid & 0xFF
                out_buf[pos + 14] = tci >> 8
                out_buf[pos + 15] = tci & 0xFF
                rest = snap - MAC_ADDRESSES
                start = pos + MAC_ADDRESSES + VLAN_TAG_BYTES
                out_buf[start : start + rest] = ring[src + MAC_ADDRESSES : src + snap]
                snap += VLAN_TAG_BYTES
                wire += VLAN_TAG_BYTES
            else:
                out_buf[pos : pos + snap] = ring[src : src + snap]
            out_caplen[n] = min(snap, snaplen)  # a restored tag does not lengthen the snap
            out_wirelen[n] = wire
            pos += min(snap, snaplen)
            n += 1
            step = _u32(ring, at)
            if step == 0:
                break
            at += step
        ring[base + 9 : base + 12] = 0
        ring[base + 8] = 0  # last: TP_STATUS_KERNEL gives the block back
        block = (block + 1) % block_nr
    return n, block
