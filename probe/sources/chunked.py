"""A binary stream read in steps into one reusable numpy buffer.

Works the same for files, gzip streams and pipes, and keeps memory bounded:
the capture is never held whole, only the step being walked.
"""

from __future__ import annotations

import zlib

import numpy as np
import numpy.typing as npt

from core.errors import InputError
from probe.sources.prefetch import Readable

# Small enough that a step, once read, is walked and decoded from the core's own cache
# (its frames are decoded before the next fill reuses the buffer).
DEFAULT_CHUNK_BYTES = 2 << 20


class ChunkedInput:
    """Unread bytes live in ``buf[start:end]``; ``buf[0]`` is at file offset ``base``."""

    def __init__(self, stream: Readable, name: str, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> None:
        self.stream = stream
        self.name = name
        self.buf: npt.NDArray[np.uint8] = np.empty(chunk_bytes, np.uint8)
        self.start = 0
        self.end = 0
        self.base = 0
        self.at_eof = False

    def file_offset(self, pos: int) -> int:
        return self.base + pos

    @property
    def unread(self) -> int:
        return self.end - self.start

    def fill(self, at_least: int = 1) -> bool:
        """Move unread bytes to the front and read more; False when nothing more came.

        Grows the buffer when ``at_least`` unread bytes would not fit.
        """
        if self.at_eof:
            return False
        if self.start:
            kept = self.unread
            self.buf[:kept] = self.buf[self.start : self.end]
            self.base += self.start
            self.start, self.end = 0, kept
        if at_least > len(self.buf):
            grown = np.empty(max(at_least, 2 * len(self.buf)), np.uint8)
            grown[: self.end] = self.buf[: self.end]
            self.buf = grown
        before = self.end
        view = memoryview(self.buf)  # type: ignore[arg-type]
        while self.end < len(self.buf):
            try:
                count = self.stream.readinto(view[self.end :])
            except (OSError, EOFError, zlib.error) as exc:
                where = self.file_offset(self.end)
                raise InputError(f"{self.name}: read failed at byte offset {where}: {exc}") from exc
            if not count:
                self.at_eof = True
                break
            self.end += count
            if self.end - self.start >= at_least:
                break
        return self.end > before

    def take(self, size: int) -> bytes | None:
        """The next ``size`` bytes as a copy (reading more if needed), or None at EOF."""
        while self.unread < size:
            if not self.fill(size):
                return None
        data = self.buf[self.start : self.start + size].tobytes()
        self.start += size
        return data

    def peek(self, size: int) -> bytes:
        while self.unread < size and self.fill(size):
            pass
        return self.buf[self.start : self.start + min(size, self.unread)].tobytes()

    def consumed(self, pos: int) -> None:
        """Everything before ``pos`` has been decoded: the next fill may reuse its room."""
        self.start = pos
