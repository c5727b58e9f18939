"""Open captures (file, gzip, stdin) as frame batches; damage ends a capture, reported, not raised.

No decoding here: sources hand raw frames to the meter."""

from __future__ import annotations

import gzip
import os
import stat
import sys
import zlib
from collections.abc import Callable, Iterator
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
