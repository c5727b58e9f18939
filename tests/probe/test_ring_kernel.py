"""The TPACKET_V3 ring walk on rings built byte by byte from linux/if_packet.h.

A block: ``tpacket_block_desc`` (version, offset_to_priv, then
``tpacket_hdr_v1``: block_status, num_pkts, offset_to_first_pkt, blk_len,
seq_num, two timestamps); each frame: ``tpacket3_hdr`` (next_offset, sec,
nsec, snaplen, len, status, mac, net, then rxhash, vlan_tci, vlan_tpid).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import pytest

from probe.live.ring_kernel import TP_STATUS_VLAN_TPID_VALID, TP_STATUS_VLAN_VALID, walk_ring

BLOCK = 4096
FIRST_FRAME = 48  # after the block descriptor
MAC_OFFSET = 66  # where the kernel puts frame bytes after the header: any offset works


@dataclass(frozen=True)
class Frame:
    data: bytes
    wirelen: int
    sec: int = 1_700_000_000
    nsec: int = 123_456_789
    tci: int | None = None  # the outer tag the kernel took off
    tpid: int | None = None


def build_ring(blocks: list[list[Frame] | None]) -> np.ndarray:
    """One block per entry; None: a block still owned by the kernel (status 0)."""
    ring = bytearray(BLOCK * len(blocks))
    for index, frames in enumerate(blocks):
        base = index * BLOCK
        if frames is None:
            continue
        struct.pack_into("<IIIII", ring, base, 3, 0, 1, len(frames), FIRST_FRAME)
        at = base + FIRST_FRAME
        for number, frame in enumerate(frames):
            step = (MAC_OFFSET + len(frame.data) + 15) // 16 * 16
            last = number == len(frames) - 1
            status = 1
            if frame.tci is not None:
                status |= TP_STATUS_VLAN_VALID
            if frame.tpid is not None:
                status |= TP_STATUS_VLAN_TPID_VALID
            struct.pack_into("<IIIIIIHHIIHH", ring, at, 0 if last else step, frame.sec,
                             frame.nsec, len(frame.data), frame.wirelen, status, MAC_OFFSET,
                             MAC_OFFSET + 14, 0, frame.tci or 0, frame.tpid or 0, 0)  # fmt: skip
            ring[at + MAC_OFFSET : at + MAC_OFFSET + len(frame.data)] = frame.data
            at += step
    return np.frombuffer(ring, np.uint8).copy()


def walk(ring: np.ndarray, block: int = 0, snaplen: int = 65535, capacity: int = 64):  # type: ignore[no-untyped-def]
    out_buf = np.zeros(2 * (BLOCK + capacity * 4), np.uint8)  # frames, not bytes, run out
    outs = (np.zeros(capacity, np.int64), np.zeros(capacity, np.uint32),
            np.zeros(capacity, np.uint32), np.zeros(capacity, np.int64))  # fmt: skip
    n, next_block = walk_ring(ring, BLOCK, len(ring) // BLOCK, block, snaplen, out_buf, *outs)
    offset, caplen, wirelen, ts = (column[:n] for column in outs)
    frames = [bytes(out_buf[o : o + c]) for o, c in zip(offset, caplen, strict=True)]
    return frames, list(wirelen), list(ts), next_block


def frame(size: int, seed: int = 0) -> bytes:
    return bytes((seed + i) % 251 for i in range(size))


def test_frames_come_out_in_order_and_blocks_go_back() -> None:
    a, b, c = Frame(frame(60), 60), Frame(frame(100, 1), 1514, nsec=5), Frame(frame(70, 2), 70)
    ring = build_ring([[a, b], [c], None])
    frames, wirelen, ts, next_block = walk(ring)
    assert frames == [a.data, b.data, c.data]
    assert wirelen == [60, 1514, 70]
    assert ts[1] == 1_700_000_000 * 10**9 + 5
    assert next_block == 2  # stopped at the block the kernel still owns
    assert (ring[8], ring[BLOCK + 8]) == (0, 0)  # both handed back: TP_STATUS_KERNEL
    assert walk(ring, next_block)[0] == []


def test_the_outer_tag_is_put_back_after_the_mac_addresses() -> None:
    untagged = frame(64)
    tagged = Frame(untagged, 64, tci=0x2064)  # PCP 1, VID 100; no TPID: 802.1Q
    qinq = Frame(untagged, 64, tci=0x000A, tpid=0x88A8)
    frames, wirelen, _, _ = walk(build_ring([[tagged, qinq]]))
    assert frames[0] == untagged[:12] + bytes.fromhex("81002064") + untagged[12:]
    assert frames[1] == untagged[:12] + bytes.fromhex("88a8000a") + untagged[12:]
    assert wirelen == [68, 68]


def test_a_restored_tag_does_not_lengthen_the_snap() -> None:
    tagged = Frame(frame(128), 1514, tci=7)
    frames, wirelen, _, _ = walk(build_ring([[tagged]]), snaplen=128)
    assert len(frames[0]) == 128
    assert frames[0][12:16] == bytes.fromhex("81000007")
    assert wirelen == [1518]


def test_a_block_that_does_not_fit_stays_for_the_next_read() -> None:
    ring = build_ring([[Frame(frame(60), 60)] * 3, [Frame(frame(60, 9), 60)] * 3])
    frames, _, _, next_block = walk(ring, capacity=4)
    assert (len(frames), next_block) == (3, 1)
    assert ring[BLOCK + 8] == 1  # still the user's
    frames, _, _, next_block = walk(ring, block=1, capacity=4)
    assert (len(frames), next_block) == (3, 0)  # wrapped around


@pytest.mark.parametrize("snap", [0, 5, 11])
def test_frames_shorter_than_the_mac_addresses_get_no_tag(snap: int) -> None:
    frames, _, _, _ = walk(build_ring([[Frame(frame(snap), 60, tci=3)]]))
    assert frames == [frame(snap)]
