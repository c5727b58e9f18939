"""The seam every offline frame source fits: what the offline driver of the Meter reads.

A source yields its frames in capture order as ``FrameBatch`` columns (no
per-packet Python objects) and raises ``InputError`` where it is damaged.
A capture file (``capture.Capture``) is one; a time slice of a file, for
parallel conversion, is another. Live back ends have their own seam
(``probe.live.source.LiveSource``): they wait for the kernel instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from core.packets import FrameBatch


class FrameSource(Protocol):
    name: str  # how errors and the summary name it
    # Frames may stop coming for a while before the end (a pipe): what is read is then
    # metered at once, not held back to fill a larger batch.
    may_pause: bool

    def first_time_ns(self) -> int | None:
        """The earliest frame time of its first batch (for uptime zero); None if empty.

        Reading it must not lose that batch: ``batches`` still yields it.
        """
        ...

    def batches(self) -> Iterator[FrameBatch]:
        """Every frame batch in order; a batch may be a view of a buffer reused by the next."""
        ...

    def bytes_read(self) -> int:
        """How far into its input it has read, for progress."""
        ...

    def close(self) -> None: ...
