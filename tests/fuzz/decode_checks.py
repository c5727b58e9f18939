"""What any decoded batch must satisfy, whatever its frames held; raises AssertionError if not.

The expectations come from the contract (docs/design.md, PacketTable's docstring) and
from the frame bytes read here with ``struct`` where the link layer puts the IP
header at a fixed place, never from the decoder under test. Every frame is also
decoded alone by the interpreted kernel, over a buffer that ends where its
capture ends: a read past ``caplen`` raises ``IndexError`` there.
"""

from __future__ import annotations

import struct

import numpy as np

from core.packets import FrameBatch, PacketTable
from probe.decode.decoder import count_reasons, decode
from probe.decode.reasons import DecodeReason
from tests.frames import LINK_TYPES, PPI, ROW_FIELDS
from tests.fuzz.interpreted import decode_interpreted

ICMP, TCP, UDP, ICMPV6, SCTP, FRAGMENT = 1, 6, 17, 58, 132, 44
# Bytes before the IP header, per LINKTYPE_ code (tcpdump.org/linktypes.html).
FIXED_L3 = {0: 4, 12: 0, 101: 0, 108: 4, 226: 24, 228: 0, 229: 0}  # NULL, RAW x2, LOOP, IPNET...
LINK_HEADER = {**FIXED_L3, 1: 14, 113: 16, 242: 44, 276: 20}  # + Ethernet, SLL, IPoIB, SLL2
ETHERTYPE_LINKS = (1, 113, 242, 276, 50, 104, 105, 107, 127, 192)  # an ethertype may announce tags
UNSUPPORTED_LINK_TYPES = (2, 10, 147, 300, 0xFFFF)  # AX.25 code, FDDI, USER0, past the table, none
Row = dict[str, int]


def rows(table: PacketTable) -> list[Row]:
    return [dict(zip(ROW_FIELDS, values, strict=True)) for values in zip(
        *(getattr(table, name).tolist() for name in ROW_FIELDS), strict=True
    )]  # fmt: skip


def frame_bytes(frames: FrameBatch, i: int) -> bytes:
    start = int(frames.offset[i])
    return frames.buf[start : start + int(frames.caplen[i])].tobytes()


def alone(frames: FrameBatch, i: int) -> FrameBatch:
    """Frame ``i`` in a buffer of its own that ends where its captured bytes end."""
    data = np.frombuffer(frame_bytes(frames, i), np.uint8).copy()
    return FrameBatch(
        data, np.zeros(1, np.int64), frames.caplen[i : i + 1], frames.wirelen[i : i + 1],
        frames.ts_ns[i : i + 1], frames.linktype[i : i + 1], frames.ifindex[i : i + 1],
    )  # fmt: skip


def check_decode(
    frames: FrameBatch, interpreted: bool = True, inner: bool = False, attributes: bool = False
) -> PacketTable:
    """Decode ``frames`` (compiled; ``inner``: opening tunnels; ``attributes``: with the
    --fields words, which only metered frames have) and check every row."""
    table = decode(frames, inner, attributes)
    if attributes:
        carried = table.attrs.any(axis=1)
        assert not (carried & (table.version == 0)).any()
    n = len(frames)
    assert len(table) == n
    assert table.ts_ns.tolist() == frames.ts_ns.tolist()
    assert table.ifindex.tolist() == frames.ifindex.tolist()
    assert all(r in iter(DecodeReason) for r in table.reason.tolist())
    by_reason = count_reasons(table.reason)
    assert len(by_reason) == len(DecodeReason)
    metered = int(by_reason[DecodeReason.OK] + by_reason[DecodeReason.L4_TRUNCATED])
    assert metered + int(by_reason[2:].sum()) == n  # decoded + undecodable == frames read
    assert int(np.count_nonzero(table.version)) == metered
    for i, row in enumerate(rows(table)):
        data = frame_bytes(frames, i)
        context = f"frame {i}: linktype {int(frames.linktype[i])} bytes {data.hex()}"
        check_row(int(frames.linktype[i]), data, row, context, inner)
        if interpreted:
            by_python = decode_interpreted(alone(frames, i), inner, attributes)
            [alone_row] = rows(by_python)
            assert alone_row == row, f"{context}: compiled {row} != interpreted {alone_row}"
            if attributes:
                assert by_python.attrs[0].tolist() == table.attrs[i].tolist(), context
    return table


def check_row(linktype: int, data: bytes, row: Row, context: str, inner: bool = False) -> None:
    """The contract's invariants for one row, and the fields readable from fixed offsets."""
    reason = DecodeReason(row["reason"])
    # PPI names the link type inside it, which may be one not in the table.
    unknown = linktype not in LINK_TYPES or linktype == PPI
    assert (reason == DecodeReason.UNKNOWN_LINKTYPE) <= unknown, context
    assert (linktype not in LINK_TYPES) <= (reason == DecodeReason.UNKNOWN_LINKTYPE), context
    if linktype in LINK_HEADER and len(data) < LINK_HEADER[linktype]:
        assert reason == DecodeReason.L2_TRUNCATED, context
    if not reason.metered:
        assert row == {**dict.fromkeys(ROW_FIELDS, 0), "reason": reason}, context
        return
    assert row["version"] in (4, 6), context
    if row["version"] == 4:
        assert row["src_hi"] == row["dst_hi"] == 0, context
        assert row["src_lo"] >> 32 == row["dst_lo"] >> 32 == 0xFFFF, context
        assert row["ip_len"] >= 20, context
    else:
        assert 40 <= row["ip_len"] <= 40 + 0xFFFF, context
    if linktype not in ETHERTYPE_LINKS:
        assert row["vlan"] == 0, context
    if reason == DecodeReason.L4_TRUNCATED or row["proto"] != TCP:
        assert row["tcp_flags"] == 0, context
    if reason == DecodeReason.L4_TRUNCATED or row["proto"] not in (TCP, UDP, SCTP):
        assert row["sport"] == 0, context
    if reason == DecodeReason.L4_TRUNCATED or row["proto"] not in (TCP, UDP, SCTP, ICMP, ICMPV6):
        assert row["dport"] == 0, context
    l3 = FIXED_L3.get(linktype)
    if l3 is None and linktype == 1 and data[12:14] in (b"\x08\x00", b"\x86\xdd"):
        l3 = 14  # untagged Ethernet II
    if l3 is not None and not inner:  # inner: the fields may come from a header further in
        check_fixed_l3(data[l3:], row, context)


def check_fixed_l3(ip: bytes, row: Row, context: str) -> None:
    """Fields of a row against the IP header bytes, read with struct."""
    assert row["version"] == ip[0] >> 4, context
    if row["version"] == 4:
        (total_len,), (frag,) = struct.unpack_from(">H", ip, 2), struct.unpack_from(">H", ip, 6)
        assert total_len == 0 or row["ip_len"] == total_len, context
        assert (row["tos"], row["proto"]) == (ip[1], ip[9]), context
        assert (row["src_lo"] & 0xFFFFFFFF, row["dst_lo"] & 0xFFFFFFFF) == struct.unpack_from(
            ">II", ip, 12
        ), context
        later_fragment = frag & 0x1FFF != 0
    else:
        (payload_len,) = struct.unpack_from(">H", ip, 4)
        assert row["ip_len"] == 40 + payload_len, context
        assert row["tos"] == (struct.unpack_from(">I", ip)[0] >> 20) & 0xFF, context
        src = (row["src_hi"] << 64 | row["src_lo"]).to_bytes(16, "big")
        dst = (row["dst_hi"] << 64 | row["dst_lo"]).to_bytes(16, "big")
        assert (src, dst) == (ip[8:24], ip[24:40]), context
        later_fragment = ip[6] == FRAGMENT and struct.unpack_from(">H", ip, 42)[0] >> 3 != 0
    if later_fragment:  # non-first fragments: ports 0 (docs/design.md)
        assert row["sport"] == row["dport"] == row["tcp_flags"] == 0, context
