"""Open captures (file, gzip, stdin) and turn them into decoded packet tables.

Several captures are merged in time order; a damaged one stops at the damage
and the others go on.
"""

from __future__ import annotations

import gzip
import os
import stat
import sys
import zlib
from collections.abc import Callable, Iterator
from typing import BinaryIO, cast

import numpy as np
import numpy.typing as npt

from probe.chunked import ChunkedInput
from probe.decode import decode
from probe.errors import InputError
from probe.mapped import MappedInput
from probe.packets import FrameBatch, PacketTable
from probe.prefetch import PrefetchReader, Readable
from probe.readers import (
    DEFAULT_BATCH_FRAMES,
    CaptureBytes,
    CaptureReader,
    PcapngReader,
    PcapReader,
)

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d",
}  # fmt: skip
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
GZIP_MAGIC = b"\x1f\x8b"
MAP_FILES = True  # walk uncompressed regular files in place; else read them in chunks


class Capture:
    """One opened capture: its reader, and the raw stream to report progress on."""

    def __init__(self, path: str, batch_frames: int = DEFAULT_BATCH_FRAMES) -> None:
        self.name = "<stdin>" if path == "-" else path
        self.raw: BinaryIO
        if path == "-":
            self.raw = sys.stdin.buffer
        else:
            try:
                self.raw = open(path, "rb")  # noqa: SIM115 -- closed by close()
            except OSError as exc:
                raise InputError(f"{path}: {exc.strerror or exc}") from exc
        try:
            self.reader = self._open_reader(batch_frames)
        except BaseException:
            self.close()
            raise

    def _open_reader(self, batch_frames: int) -> CaptureReader:
        stream: BinaryIO = self.raw
        head = _peek(stream, 4)
        if head[:2] == GZIP_MAGIC:
            stream = gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[assignment]
            try:
                head = _peek(stream, 4)
            except (OSError, EOFError, zlib.error) as exc:
                raise InputError(f"{self.name}: damaged gzip stream: {exc}") from exc
        if not head:
            raise InputError(f"{self.name}: empty file, not a capture")
        self.source: CaptureBytes
        if stream is self.raw and MAP_FILES and _is_regular(self.raw):
            self.source = MappedInput(self.raw, self.name)
        else:
            self.prefetch = PrefetchReader(
                cast(Readable, stream), eager=self.raw is sys.stdin.buffer
            )
            self.source = ChunkedInput(self.prefetch, self.name)
        if head in PCAP_MAGICS:
            return PcapReader(self.source, self.name, batch_frames)
        if head == PCAPNG_MAGIC:
            return PcapngReader(self.source, self.name, batch_frames)
        raise InputError(f"{self.name}: not a pcap or pcapng capture (starts with {head.hex()})")

    def bytes_read(self) -> int:
        """Position in the raw file (compressed bytes for gzip), for progress."""
        if isinstance(self.source, MappedInput):
            return self.source.start
        try:
            return self.raw.tell() if self.raw.seekable() else 0
        except OSError:
            return 0

    def close(self) -> None:
        if hasattr(self, "prefetch"):
            self.prefetch.close()
        source = getattr(self, "source", None)
        if isinstance(source, MappedInput):
            source.close()
        if self.raw is not sys.stdin.buffer:
            self.raw.close()


def _is_regular(file: BinaryIO) -> bool:
    try:
        return stat.S_ISREG(os.fstat(file.fileno()).st_mode)
    except (OSError, ValueError):
        return False


def _peek(stream: BinaryIO, size: int) -> bytes:
    peek = getattr(stream, "peek", None)
    if peek is None:  # pragma: no cover - every stream we open is buffered
        raise InputError("input stream cannot be inspected")
    data: bytes = peek(size)
    return data[:size]


def frame_batches(capture: Capture, on_damage: Callable[[str], None]) -> Iterator[FrameBatch]:
    """Frame batches of one capture; damage ends it and is reported, not raised."""
    try:
        yield from capture.reader.batches()
    except InputError as exc:
        on_damage(str(exc))


def decoded_tables(capture: Capture, on_damage: Callable[[str], None]) -> Iterator[PacketTable]:
    """Decoded tables of one capture; damage ends it and is reported, not raised."""
    for frames in frame_batches(capture, on_damage):
        yield decode(frames)


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
