"""Open captures (file, gzip, stdin) as frame batches; damage ends a capture, reported, not raised.

No decoding here: sources hand raw frames to the meter."""

from __future__ import annotations

import contextlib
import gzip
import os
import stat
import sys
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, cast

from core.errors import InputError
from core.packets import FrameBatch
from probe.sources.chunked import ChunkedInput
from probe.sources.mapped import MappedInput
from probe.sources.prefetch import PrefetchReader, Readable
from probe.sources.readers import (
    DEFAULT_BATCH_FRAMES,
    CaptureBytes,
    CaptureReader,
    PcapngReader,
    PcapReader,
)
from probe.sources.source import FrameSource

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d",
}  # fmt: skip
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
GZIP_MAGIC = b"\x1f\x8b"
MAP_FILES = False  # map every regular file whole, not only those asked (tests try both)


class Capture:
    """One opened capture file (a ``FrameSource``): its reader, and the raw stream for progress.

    An uncompressed regular file is read in order into one small reused buffer
    (``ChunkedInput``): each step is walked and decoded while it is still in
    the core's caches, with no page mapping per step. ``mapped`` maps it
    whole instead, for readers that seek (byte-range slices).
    """

    def __init__(
        self, path: str, batch_frames: int = DEFAULT_BATCH_FRAMES, mapped: bool = False
    ) -> None:
        self.name = "<stdin>" if path == "-" else path
        self._rest: Iterator[FrameBatch] | None = None  # the batches after a peeked first
        self._peeked: list[FrameBatch] = []
        self._peek_error: InputError | None = None
        self.raw: BinaryIO
        if path == "-":
            self.raw = sys.stdin.buffer
        else:
            try:
                self.raw = open(path, "rb")  # noqa: SIM115 -- closed by close()
            except OSError as exc:
                raise InputError(f"{path}: {exc.strerror or exc}") from exc
        self.may_pause = not _is_regular(self.raw)  # a pipe: frames may stop for a while
        try:
            self.reader = self._open_reader(batch_frames, mapped)
        except BaseException:
            self.close()
            raise

    def _open_reader(self, batch_frames: int, mapped: bool) -> CaptureReader:
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
        if stream is self.raw and _is_regular(self.raw):
            if mapped or MAP_FILES:
                self.source = MappedInput(self.raw, self.name)
            else:
                _read_in_order(self.raw)
                self.source = ChunkedInput(cast(Readable, self.raw), self.name)
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

    def first_time_ns(self) -> int | None:
        """The earliest frame time of the capture's first batch; None if it has no frames.

        Reads that batch and keeps a copy for ``batches``; damage met on the way
        is kept too and raised there, where it is reported like any other.
        """
        if self._rest is None:
            self._rest = self.reader.batches()
            try:
                first = next(self._rest, None)
            except InputError as exc:
                self._peek_error = exc
                first = None
            self._peeked = [] if first is None else [first.owned()]
        return int(self._peeked[0].ts_ns.min()) if self._peeked else None

    def batches(self) -> Iterator[FrameBatch]:
        """Every frame batch, the one ``first_time_ns`` read included; raises InputError."""
        if self._rest is None:
            yield from self.reader.batches()
            return
        yield from self._peeked
        self._peeked = []
        if self._peek_error is not None:
            raise self._peek_error
        yield from self._rest

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


def _read_in_order(file: BinaryIO) -> None:
    """Tell the kernel the file is read once, front to back (deeper read-ahead)."""
    with contextlib.suppress(OSError, AttributeError):
        os.posix_fadvise(file.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)


def _peek(stream: BinaryIO, size: int) -> bytes:
    peek = getattr(stream, "peek", None)
    if peek is None:  # pragma: no cover - every stream we open is buffered
        raise InputError("input stream cannot be inspected")
    data: bytes = peek(size)
    return data[:size]


def frame_batches(capture: FrameSource, on_damage: Callable[[str], None]) -> Iterator[FrameBatch]:
    """Frame batches of one capture; damage ends it and is reported, not raised."""
    try:
        yield from capture.batches()
    except InputError as exc:
        on_damage(str(exc))


def first_time_ns(captures: Sequence[FrameSource]) -> int | None:
    """The earliest frame time at the head of any of the captures (each read one batch in)."""
    times = [t for t in (capture.first_time_ns() for capture in captures) if t is not None]
    return min(times, default=None)


@contextmanager
def open_captures(
    paths: Sequence[str | Path], batch_frames: int = DEFAULT_BATCH_FRAMES
) -> Iterator[list[Capture]]:
    """Every capture opened (InputError before any is read), all closed at the end."""
    captures: list[Capture] = []
    try:
        for path in paths:
            captures.append(Capture(str(path), batch_frames))
        yield captures
    finally:
        for capture in captures:
            capture.close()
