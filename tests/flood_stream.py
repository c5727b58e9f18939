"""A seeded spoofed-source TCP SYN flood written as pcap bytes, chunk by chunk, with numpy.

Frame ``i`` of the flood is a SYN from a source key (address in 198.18.0.0/15,
source port) that no other frame uses, to one server (198.19.0.10 port 80),
sent at ``i`` µs after ``EPOCH_S``. The keys are the frame numbers passed
through a seeded bijection of the 2**33 possible keys, so they come in random
order and never repeat, and no chunk needs to know the others. The frame and
record layouts are numpy structured dtypes, also used by the soak benchmark.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

EPOCH_S = 1_767_603_600  # 2026-01-05 09:00:00 UTC, as tests/bench/make_capture.py
SNAPLEN = 65535
LINKTYPE_ETHERNET = 1
PCAP_FILE_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET)
CHUNK_FRAMES = 100_000
MIN_FRAME = 60  # Ethernet minimum without FCS: shorter frames are zero-padded

TCP, UDP = 6, 17
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
ETH_IPV4, ETH_IPV6 = 0x0800, 0x86DD
MAC_ROUTER, MAC_HOST = (0x02, 0, 0, 0, 0, 1), (0x02, 0, 0, 0, 0, 2)
V4_BASE = 0xC6120000  # 198.18.0.0/15: the spoofed sources
V4_HOST_BITS = 17
PORT_BITS = 16
KEY_BITS = V4_HOST_BITS + PORT_BITS  # 2**33 distinct (source address, source port) keys
SERVER_V4 = 0xC613000A  # 198.19.0.10, in 198.19.0.0/16
SERVER_PORT = 80

PCAP_RECORD = [("ts_s", "<u4"), ("ts_us", "<u4"), ("caplen", "<u4"), ("wirelen", "<u4")]
ETHERNET = [("eth_dst", "u1", (6,)), ("eth_src", "u1", (6,)), ("ethertype", ">u2")]
IPV4 = [
    ("ver_ihl", "u1"), ("tos", "u1"), ("ip_len", ">u2"), ("ip_id", ">u2"), ("frag", ">u2"),
    ("ttl", "u1"), ("proto", "u1"), ("ip_sum", ">u2"), ("ip_src", ">u4"), ("ip_dst", ">u4"),
]  # fmt: skip
IPV6 = [
    ("ver_tc_label", ">u4"), ("payload_len", ">u2"), ("next_header", "u1"), ("hop_limit", "u1"),
    ("src_hi", ">u8"), ("src_lo", ">u8"), ("dst_hi", ">u8"), ("dst_lo", ">u8"),
]  # fmt: skip
TCP_HEADER = [
    ("sport", ">u2"), ("dport", ">u2"), ("seq", ">u4"), ("ack", ">u4"),
    ("data_offset", "u1"), ("tcp_flags", "u1"), ("window", ">u2"), ("tcp_sum", ">u2"),
    ("urgent", ">u2"),
]  # fmt: skip
# One pcap record each: IPv4 frames are padded to the 60-byte minimum; IPv6 ones need no pad.
V4_TCP_RECORD = np.dtype(PCAP_RECORD + ETHERNET + IPV4 + TCP_HEADER + [("pad", "u1", (6,))])
V6_TCP_RECORD = np.dtype(PCAP_RECORD + ETHERNET + IPV6 + TCP_HEADER)
assert V4_TCP_RECORD.itemsize == 16 + MIN_FRAME
assert V6_TCP_RECORD.itemsize == 16 + 14 + 40 + 20
V4_HEADER_AT = 16 + 14  # the IPv4 header's offset in a V4_TCP_RECORD

U64 = npt.NDArray[np.uint64]


def key_permutation(seed: int) -> npt.NDArray[np.uint64]:
    """The seeded constants of ``permuted_keys``: an offset and three odd multipliers."""
    rng = np.random.default_rng(seed)
    constants = rng.integers(0, 1 << KEY_BITS, 4, dtype=np.uint64)
    constants[1:] |= np.uint64(1)
    return constants


def permuted_keys(index: U64, constants: npt.NDArray[np.uint64]) -> U64:
    """A bijection of [0, 2**33): add, then multiply by odd numbers and xor-shift, mod 2**33.

    Each step is invertible modulo 2**33, so distinct indices give distinct keys.
    """
    mask = np.uint64((1 << KEY_BITS) - 1)
    x: U64 = (index + constants[0]) & mask
    for multiplier, shift in zip(constants[1:], (16, 13, 17), strict=True):
        x = (x * multiplier) & mask
        x ^= x >> np.uint64(shift)
    return x


def ipv4_checksums(records: npt.NDArray[np.void]) -> npt.NDArray[np.uint16]:
    """The IPv4 header checksum of every V4_TCP_RECORD row (its ``ip_sum`` taken as 0)."""
    rows = records.view(np.uint8).reshape(len(records), V4_TCP_RECORD.itemsize)
    header = rows[:, V4_HEADER_AT : V4_HEADER_AT + 20].astype(np.uint32)
    header[:, 10:12] = 0
    total = (header[:, 0::2] << 8 | header[:, 1::2]).sum(axis=1, dtype=np.uint32)
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    checksums: npt.NDArray[np.uint16] = (~total & 0xFFFF).astype(np.uint16)
    return checksums


def set_times(records: npt.NDArray[np.void], ts_us: npt.NDArray[np.int64]) -> None:
    """Fill the pcap record header times from µs since ``EPOCH_S``."""
    records["ts_s"] = EPOCH_S + ts_us // 1_000_000
    records["ts_us"] = ts_us % 1_000_000


def flood_records(begin: int, end: int, constants: npt.NDArray[np.uint64]) -> npt.NDArray[np.void]:
    """Frames ``begin`` to ``end - 1`` of the flood as V4_TCP_RECORD rows."""
    index = np.arange(begin, end, dtype=np.uint64)
    key = permuted_keys(index, constants)
    records = np.zeros(end - begin, V4_TCP_RECORD)
    set_times(records, index.astype(np.int64))
    records["caplen"] = records["wirelen"] = MIN_FRAME
    records["eth_dst"], records["eth_src"] = MAC_ROUTER, MAC_HOST
    records["ethertype"] = ETH_IPV4
    records["ver_ihl"], records["ip_len"], records["ttl"], records["proto"] = 0x45, 40, 64, TCP
    records["ip_id"] = index & np.uint64(0xFFFF)
    records["ip_src"] = np.uint64(V4_BASE) + (key >> np.uint64(PORT_BITS))
    records["ip_dst"] = SERVER_V4
    records["sport"] = key & np.uint64((1 << PORT_BITS) - 1)
    records["dport"] = SERVER_PORT
    records["seq"] = (key * np.uint64(0x9E3779B1)) & np.uint64(0xFFFFFFFF)
    records["data_offset"], records["tcp_flags"], records["window"] = 0x50, SYN, 1024
    records["ip_sum"] = ipv4_checksums(records)
    return records


def flood_chunks(frames: int, seed: int, chunk_frames: int = CHUNK_FRAMES) -> Iterator[bytes]:
    """The flood as a classic µs pcap stream: the file header, then ``chunk_frames`` at a time.

    The bytes depend only on ``frames`` and ``seed``, not on ``chunk_frames``.
    """
    if not 0 < frames <= 1 << KEY_BITS:
        raise ValueError(f"frames must be in 1..2**{KEY_BITS}")
    constants = key_permutation(seed)
    yield PCAP_FILE_HEADER
    for begin in range(0, frames, chunk_frames):
        yield flood_records(begin, min(frames, begin + chunk_frames), constants).tobytes()
