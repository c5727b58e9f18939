"""What parallel conversion runs and where, without the workers (``parallel`` runs it).

A single-job convert needs the plan's checks (first frames, overlapping files)
but none of the pool, spill and merge machinery; keeping them apart keeps that
machinery out of its start-up.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.errors import ConfigError
from probe.sources.capture import Capture
from probe.sources.slices import SliceSpec, last_frame_ns, plan_slices


@dataclass(frozen=True, slots=True)
class ParallelPlan:
    """Where the slices run: ``jobs`` local processes (1: this one), or a Dask scheduler."""

    jobs: int = 1
    dask_address: str | None = None
    slice_bytes: int | None = None  # None: from the total size and the number of workers

    def __post_init__(self) -> None:
        if self.jobs < 1:
            raise ConfigError(f"--jobs must be at least 1, got {self.jobs}")
        if self.slice_bytes is not None and self.slice_bytes < 1:
            raise ConfigError(f"the slice size must be at least 1 byte, got {self.slice_bytes}")


def plan(paths: Sequence[str], slice_bytes: int, firsts: Sequence[int]) -> list[SliceSpec]:
    """The slices of ``paths`` in capture order: files by their first frame, then by byte."""
    absolute = [os.path.abspath(path) for path in paths]  # a Dask worker has another cwd
    ordered = [p for _, _, p in sorted(zip(firsts, range(len(paths)), absolute, strict=True))]
    return plan_slices(ordered, slice_bytes)


NO_FRAME = np.iinfo(np.int64).max  # the first frame time of a file with none


def first_frames(paths: Sequence[str]) -> list[int]:
    """Each file's first frame time (``NO_FRAME`` if it has none); InputError if one cannot
    be opened. Read once per run: planning, uptime zero and the overlap check share it."""
    return [_first_frame_ns(path) for path in paths]


def overlapping_files(paths: Sequence[str], firsts: Sequence[int]) -> list[str]:
    """Files whose time range (first to last record, where known) overlaps an earlier file's.

    One pass merges such files by time; slices meter files one after another,
    so they cannot give the same records. Ranges are read from the files' ends
    (classic pcap only); the merge still checks what this cannot see.
    """
    spans = []
    for path, first in zip(paths, firsts, strict=True):
        last = last_frame_ns(path)
        spans.append((first, last if last is not None else first, path))
    spans.sort()
    overlapping, latest = [], None
    for first, last, path in spans:
        if latest is not None and first < latest:
            overlapping.append(path)
        latest = last if latest is None else max(latest, last)
    return overlapping


def _first_frame_ns(path: str) -> int:
    capture = Capture(path, batch_frames=1, mapped=True)  # one frame: no read step
    try:
        first = capture.first_time_ns()
    finally:
        capture.close()
    return first if first is not None else NO_FRAME
