"""A regular capture file mapped into memory, walked in place with no read copies.

Offers what readers use of ``ChunkedInput`` (``buf``, ``start``, ``end``,
``base``, ``fill``, ``take``, ``peek``, ``consumed``), with the whole file as
the buffer. Pages behind the reading position are handed back to the kernel
as the walk moves on, so resident memory stays bounded however large the
file is. A file shrunk by another process while it is mapped ends the process
with SIGBUS (as for any reader that maps its input); growth after opening is
not seen.
"""

from __future__ import annotations

import contextlib
import mmap
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

RELEASE_BYTES = 8 << 20  # hand pages back in steps of this much, page aligned


class MappedInput:
    """The file is ``buf``; unread bytes are ``buf[start:end]``; file offsets equal positions."""

    def __init__(self, file: BinaryIO, name: str) -> None:
        self.name = name
        # A private mapping gives a writable array type, the same the chunked buffer has,
        # so the walkers are compiled once; nothing ever writes to it.
        self._map = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_COPY)
        self._map.madvise(mmap.MADV_SEQUENTIAL)
        self.buf: npt.NDArray[np.uint8] = np.frombuffer(self._map, np.uint8)
        self.start = 0
        self.end = len(self.buf)
        self.base = 0
        self.at_eof = True
        self._released = 0

    def file_offset(self, pos: int) -> int:
        return pos

    @property
    def unread(self) -> int:
        return self.end - self.start

    def fill(self, at_least: int = 1) -> bool:
        """Nothing more can come: the whole file is already in ``buf``."""
        return False

    def take(self, size: int) -> bytes | None:
        if self.unread < size:
            return None
        data = self.buf[self.start : self.start + size].tobytes()
        self.start += size
        return data

    def peek(self, size: int) -> bytes:
        return self.buf[self.start : self.start + min(size, self.unread)].tobytes()

    def consumed(self, pos: int) -> None:
        """Everything before ``pos`` has been decoded: its pages may leave memory."""
        self.start = pos
        release_to = pos - pos % mmap.PAGESIZE
        if release_to - self._released >= RELEASE_BYTES:
            self._map.madvise(mmap.MADV_DONTNEED, self._released, release_to - self._released)
            self._released = release_to

    def close(self) -> None:
        self.buf = np.empty(0, np.uint8)
        with contextlib.suppress(BufferError):  # a batch still views the map: unmapped with it
            self._map.close()
