"""Read a stream ahead in a background thread, so I/O and decompression overlap metering.

The thread fills a small ring of buffers with ``readinto`` (which releases the
interpreter lock, as zlib does while inflating); ``readinto`` on this object
copies from the ring. Errors raised by the stream reach the caller unchanged.
"""

from __future__ import annotations

import queue
import threading
from typing import Protocol

RING_BUFFERS = 3
CHUNK_BYTES = 4 << 20
READ_BYTES = 1 << 20


class Readable(Protocol):
    def readinto(self, buffer: memoryview, /) -> int | None: ...


class PrefetchReader:
    """A ``Readable`` that serves bytes another thread has already read."""

    def __init__(self, stream: Readable, chunk_bytes: int = CHUNK_BYTES, eager: bool = False):
        """``eager``: hand over a chunk as soon as a read comes back short (pipes, where
        data trickles in and records should not wait for a full chunk)."""
        self._stream = stream
        self._eager = eager
        self._free: queue.Queue[bytearray] = queue.Queue()
        self._filled: queue.Queue[tuple[bytearray, int] | BaseException] = queue.Queue()
        for _ in range(RING_BUFFERS):
            self._free.put(bytearray(chunk_bytes))
        self._current: bytearray | None = None
        self._pos = 0
        self._size = 0
        self._done = False
        self._stop = threading.Event()
        self._read = getattr(stream, "readinto1", stream.readinto)
        self._thread = threading.Thread(target=self._read_ahead, name="spanflow-read", daemon=True)
        self._thread.start()

    def _read_ahead(self) -> None:
        while not self._stop.is_set():
            chunk = self._free.get()
            if self._stop.is_set():
                return
            view = memoryview(chunk)
            count, ended = 0, False
            try:
                # Small reads: a stream that fails (a damaged gzip member) then loses
                # only its last read, and everything before it still reaches the meter.
                while count < len(chunk):
                    got = self._read(view[count : count + READ_BYTES])
                    if not got:
                        ended = True
                        break
                    count += got
                    if self._eager and got < READ_BYTES:
                        break  # the pipe holds no more for now: hand over what came
            except BaseException as exc:  # handed to the reading thread, raised there
                if count:
                    self._filled.put((chunk, count))
                self._filled.put(exc)
                return
            self._filled.put((chunk, count))  # a count of 0 is itself the end
            if ended:
                self._filled.put((bytearray(0), 0))
                return

    def readinto(self, buffer: memoryview, /) -> int:
        while self._pos == self._size:
            if self._done:
                return 0
            if self._current is not None:
                self._free.put(self._current)
                self._current = None
            item = self._filled.get()
            if isinstance(item, BaseException):
                self._done = True
                raise item
            self._current, self._size = item
            self._pos = 0
            if self._size == 0:
                self._done = True
                return 0
        count = min(len(buffer), self._size - self._pos)
        assert self._current is not None
        buffer[:count] = memoryview(self._current)[self._pos : self._pos + count]
        self._pos += count
        return count

    def close(self) -> None:
        """Stop the thread (it may be blocked on the stream until its read returns)."""
        self._stop.set()
        self._free.put(bytearray(0))
        self._thread.join(timeout=1.0)
