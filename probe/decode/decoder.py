"""Decode a batch of captured frames into header columns (no Python per packet)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from core.attributes import ATTRIBUTE_WORDS
from core.packets import FrameBatch, PacketTable
from probe.decode.attribute_kernel import frame_attributes
from probe.decode.kernel import decode_frames
from probe.decode.linktypes import LT_KIND, LT_L3_OFFSET, LT_TYPE_OFFSET, LT_VERSION
from probe.decode.reasons import DecodeReason


def decode(frames: FrameBatch, inner: bool = False, attributes: bool = False) -> PacketTable:
    """One ``PacketTable`` row per frame, in order; bad frames get a reason, not an error.

    ``inner``: key and count on the innermost IP header of the tunnels the
    kernel knows (``--tunnels inner``), else on the outermost (a router's view).
    ``attributes``: fill ``attrs`` with each frame's ``core.attributes`` words.
    """
    n = len(frames)
    table = PacketTable.empty(n)
    table.ts_ns[:] = frames.ts_ns
    table.ifindex[:] = frames.ifindex
    if attributes:
        table.attrs = np.zeros((n, ATTRIBUTE_WORDS), np.uint64)
    if n == 0:
        return table
    link = (
        frames.buf, frames.offset.astype(np.int64, copy=False),
        frames.caplen.astype(np.uint32, copy=False), frames.wirelen.astype(np.uint32, copy=False),
        frames.linktype.astype(np.uint16, copy=False),
        LT_KIND, LT_TYPE_OFFSET, LT_L3_OFFSET, LT_VERSION, inner,
    )  # fmt: skip
    decode_frames(
        *link, table.version, table.src_hi, table.src_lo, table.dst_hi, table.dst_lo,
        table.sport, table.dport, table.proto, table.tos, table.tcp_flags,
        table.ip_len, table.vlan, table.reason,
    )  # fmt: skip
    if attributes:
        frame_attributes(*link, table.reason, table.attrs)
    return table


def count_reasons(reason: npt.NDArray[np.uint8]) -> npt.NDArray[np.int64]:
    """Frames per ``DecodeReason`` value, indexed by the value."""
    return np.bincount(reason, minlength=len(DecodeReason)).astype(np.int64)
