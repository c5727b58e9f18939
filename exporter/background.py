"""Run a record writer on its own thread, so formatting overlaps metering.

The formatting kernel and file writes release the interpreter lock, so on a
second core the writer costs the metering loop almost nothing. A bounded
queue keeps memory flat when the disk is slower than the meter.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from core.records import RecordTable

QUEUE_TABLES = 8


class BackgroundWriter:
    """Calls ``write(records)`` on a worker thread; errors surface on the next call or close."""

    def __init__(self, write: Callable[[RecordTable], None], name: str = "spanflow-write") -> None:
        self._write = write
        self._queue: queue.Queue[RecordTable | None] = queue.Queue(QUEUE_TABLES)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (records := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._write(records)
                except BaseException as exc:  # re-raised on the metering thread
                    self._error = exc

    def _raise_pending(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def write(self, records: RecordTable) -> None:
        self._raise_pending()
        self._queue.put(records)

    def close(self) -> None:
        """Wait until every queued table is written (again: nothing more to wait for)."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._raise_pending()
