"""Run an iterator on a worker thread a few items ahead of its consumer.

The metering loop reads, walks and decodes captures on the worker while the
flow-cache kernel runs on the calling thread; both kernels release the
interpreter lock, so on two cores the stages overlap. Items come out in
order; an exception raised by the iterator is raised to the consumer.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

DEPTH = 2  # items ready ahead: enough to keep both threads busy, little memory
JOIN_TIMEOUT_S = 2.0  # a worker stuck in a read (a silent pipe) is left behind, daemonic


class _End:
    """Marks the end of the items."""


class ReadAhead(Generic[T]):
    """Iterate ``items`` on a worker thread; use as a context manager, then iterate."""

    def __init__(self, items: Iterator[T], depth: int = DEPTH, name: str = "spanflow-decode"):
        self._items = items
        self._queue: queue.Queue[T | _End | BaseException] = queue.Queue(depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)

    def __enter__(self) -> ReadAhead[T]:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _put(self, item: T | _End | BaseException) -> bool:
        """Hand ``item`` over unless the consumer has stopped; False when it has."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        try:
            for item in self._items:
                if not self._put(item):
                    return
        except BaseException as exc:  # raised again on the consuming thread
            self._put(exc)
            return
        self._put(_End())

    def __iter__(self) -> Iterator[T]:
        while True:
            item = self._queue.get()
            if isinstance(item, _End):
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        """Stop the worker after its current item and wait for it (bounded)."""
        self._stop.set()
        self._thread.join(timeout=JOIN_TIMEOUT_S)
