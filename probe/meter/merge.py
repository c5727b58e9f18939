"""Decode several captures and merge them in time order, exactly, whatever the batch cuts."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import numpy.typing as npt

from core.packets import PacketTable
from probe.decode.decoder import decode
from probe.sources.capture import frame_batches
from probe.sources.source import FrameSource


def decoded_tables(
    capture: FrameSource,
    on_damage: Callable[[str], None],
    inner_tunnels: bool = False,
    attributes: bool = False,
) -> Iterator[PacketTable]:
    """Decoded tables of one capture; damage ends it and is reported, not raised."""
    for frames in frame_batches(capture, on_damage):
        yield decode(frames, inner_tunnels, attributes)


def merge_in_time(streams: list[Iterator[PacketTable]]) -> Iterator[PacketTable]:
    """Merge several captures' tables in time order, exactly and whatever the batch cuts.

    Each capture keeps its own frame order: its merge key is the running maximum
    of its timestamps. Rows are emitted once no capture can still bring a row
    with a smaller key; ties go to the capture named first.
    """
    if len(streams) == 1:
        yield from streams[0]
        return
    pending: list[PacketTable] = [PacketTable.empty(0) for _ in streams]
    keys: list[npt.NDArray[np.int64]] = [np.empty(0, np.int64) for _ in streams]
    live = list(range(len(streams)))
    while live or any(len(p) for p in pending):
        for s in list(live):
            if len(pending[s]) == 0 and not _pull(streams, pending, keys, s):
                live.remove(s)
        bound = min((int(keys[s][-1]) for s in live), default=None)
        chosen = [s for s in range(len(streams)) if len(pending[s])]
        parts, part_keys, part_src = [], [], []
        for s in chosen:
            cut = len(keys[s]) if bound is None else int(np.searchsorted(keys[s], bound, "left"))
            if cut:
                parts.append(pending[s].take(slice(0, cut)))
                part_keys.append(keys[s][:cut])
                part_src.append(np.full(cut, s, np.int64))
                pending[s] = pending[s].take(slice(cut, None))
                keys[s] = keys[s][cut:]
        if parts:
            merged = PacketTable.concat(parts)
            order = np.lexsort((np.concatenate(part_src), np.concatenate(part_keys)))
            yield merged.take(order)
        elif bound is not None:
            limiting = min(live, key=lambda s: int(keys[s][-1]))
            if not _pull(streams, pending, keys, limiting):
                live.remove(limiting)


def _pull(
    streams: list[Iterator[PacketTable]],
    pending: list[PacketTable],
    keys: list[npt.NDArray[np.int64]],
    s: int,
) -> bool:
    """Append the next table of capture ``s`` to its pending rows; False when it has ended."""
    table = next(streams[s], None)
    while table is not None and len(table) == 0:
        table = next(streams[s], None)
    if table is None:
        return False
    start = int(keys[s][-1]) if len(keys[s]) else np.iinfo(np.int64).min
    new_keys = np.maximum.accumulate(np.maximum(table.ts_ns, start))
    pending[s] = PacketTable.concat([pending[s], table])
    keys[s] = np.concatenate([keys[s], new_keys])
    return True
