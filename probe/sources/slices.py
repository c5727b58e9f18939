"""Byte-range slices of capture files: the units of work of a parallel conversion.

A classic pcap file on disk is cut at nominal byte offsets; a slice holds the
records that start in ``[its start, its nominal end)``. A slice that starts
mid-file finds its first record by checking a chain of plausible record
headers (``kernel.find_pcap_record``); the merge then checks that start
against where the previous slice's walk really ended, so a false match (a
capture inside a captured download) costs a re-read, never a wrong record.
Files that cannot be cut (pcapng, gzip, small files) are one slice each.
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from core.errors import InputError
from core.packets import FrameBatch
from probe.sources import kernel as walk
from probe.sources.capture import GZIP_MAGIC, PCAP_MAGICS, Capture
from probe.sources.mapped import MappedInput
from probe.sources.readers import DEFAULT_BATCH_FRAMES, MAX_PCAP_CAPLEN, PcapReader

PCAP_FILE_HEADER = 24
RESYNC_CHAIN = 8  # consecutive plausible headers that make a record boundary
YEAR_S = 366 * 86_400
MIN_SLICE_BYTES = 16 << 20
MAX_SLICE_BYTES = 512 << 20
SLICES_PER_JOB = 4  # more slices than jobs, so a slow one does not hold the rest


@dataclass(frozen=True, slots=True)
class SliceSpec:
    """One unit of work: records of ``path`` starting in ``[start, end)`` (picklable).

    ``start`` 0 means the file's first record; ``exact`` says ``start`` is a
    record boundary already (no search); ``end`` None means to the end of file.
    """

    path: str
    start: int = 0
    end: int | None = None
    exact: bool = False

    @property
    def whole_file(self) -> bool:
        return self.start == 0 and self.end is None

    def describe(self) -> str:
        if self.whole_file:
            return self.path
        return f"{self.path} bytes {self.start}-{'end' if self.end is None else self.end}"


class FileSlice:
    """A ``FrameSource`` over one slice; after reading, ``end`` is where its walk stopped.

    ``start``: offset of the slice's first record (file size if it has none);
    ``end``: offset of the first record at or after the nominal end, the file
    size, or None when damage ended the walk.
    """

    def __init__(self, spec: SliceSpec, batch_frames: int = DEFAULT_BATCH_FRAMES) -> None:
        self.spec = spec
        self.name = spec.path
        self.may_pause = False
        self.capture = Capture(spec.path, batch_frames, mapped=True)
        self.end: int | None = None
        self._stop: int | None = None
        self.start = 0
        if spec.whole_file:
            return
        try:
            source = self._mapped_pcap()
            self.start = self._first_record(source)
            source.start = self.start
            self._stop = spec.end
        except BaseException:
            self.capture.close()
            raise

    def _mapped_pcap(self) -> MappedInput:
        reader, source = self.capture.reader, self.capture.source
        if not isinstance(reader, PcapReader) or not isinstance(source, MappedInput):
            raise InputError(f"{self.name}: only uncompressed classic pcap files can be sliced")
        return source

    def _first_record(self, source: MappedInput) -> int:
        spec, size = self.spec, len(source.buf)
        if spec.start <= PCAP_FILE_HEADER:
            return PCAP_FILE_HEADER
        if spec.exact or spec.start >= size:
            return min(spec.start, size)
        reader = self.capture.reader
        assert isinstance(reader, PcapReader)
        first_s = _first_record_seconds(source, reader.big_endian)
        return int(
            walk.find_pcap_record(
                source.buf, spec.start, size, reader.big_endian,
                1_000_000_000 if reader.frac_ns == 1 else 1_000_000, MAX_PCAP_CAPLEN,
                max(first_s - YEAR_S, 0), first_s + 30 * YEAR_S, RESYNC_CHAIN,
            )
        )  # fmt: skip

    def first_time_ns(self) -> int | None:
        return self.capture.first_time_ns()

    def batches(self) -> Iterator[FrameBatch]:
        """The slice's frames; sets ``end`` once its walk has passed the nominal end."""
        stop = self._stop
        for frames in self.capture.batches():
            if stop is not None and len(frames):
                record_starts = frames.offset - walk.PCAP_RECORD_HEADER
                cut = int(np.searchsorted(record_starts, stop, "left"))
                if cut < len(frames):
                    self.end = int(record_starts[cut])
                    if cut:
                        yield frames.take(np.arange(cut))
                    return
            yield frames
        self.end = self._size()

    def _size(self) -> int:
        source = self.capture.source
        return len(source.buf) if isinstance(source, MappedInput) else self.capture.bytes_read()

    def bytes_read(self) -> int:
        return max(self.capture.bytes_read() - self.start, 0)

    def close(self) -> None:
        self.capture.close()


def _first_record_seconds(source: MappedInput, big_endian: bool) -> int:
    if len(source.buf) < PCAP_FILE_HEADER + 4:
        return 0
    head = source.buf[PCAP_FILE_HEADER : PCAP_FILE_HEADER + 4].tobytes()
    return int(struct.unpack(">I" if big_endian else "<I", head)[0])


def last_frame_ns(path: str) -> int | None:
    """The time of a classic pcap file's last record, found from its end (None: not known).

    Read near the end of the file only; None for other formats, a file whose
    tail is not a clean chain of records, or one with no records.
    """
    if not can_slice(path):
        return None
    capture = Capture(path, batch_frames=1, mapped=True)
    try:
        source, reader = capture.source, capture.reader
        assert isinstance(source, MappedInput)
        assert isinstance(reader, PcapReader)
        order: Literal["big", "little"] = "big" if reader.big_endian else "little"
        size = len(source.buf)
        tail_start = max(PCAP_FILE_HEADER, size - 2 * (walk.PCAP_RECORD_HEADER + MAX_PCAP_CAPLEN))
        first_s = _first_record_seconds(source, reader.big_endian)
        frac_limit = 1_000_000_000 if reader.frac_ns == 1 else 1_000_000
        at = int(
            walk.find_pcap_record(
                source.buf, tail_start, size, reader.big_endian, frac_limit, MAX_PCAP_CAPLEN,
                max(first_s - YEAR_S, 0), first_s + 30 * YEAR_S, RESYNC_CHAIN,
            )
        )  # fmt: skip
        last = None
        while at + walk.PCAP_RECORD_HEADER <= size:
            last = at
            caplen = int.from_bytes(
                source.buf[at + 8 : at + 12], "big" if reader.big_endian else "little"
            )
            at += walk.PCAP_RECORD_HEADER + caplen
        if last is None or at != size:
            return None
        seconds = int.from_bytes(source.buf[last : last + 4], order)
        fraction = int.from_bytes(source.buf[last + 4 : last + 8], order)
        return seconds * 1_000_000_000 + fraction * reader.frac_ns
    finally:
        capture.close()


def can_slice(path: str) -> bool:
    """An uncompressed classic pcap regular file: the format whose records can be found mid-file."""
    try:
        with open(path, "rb") as file:
            head = file.read(4)
    except OSError:
        return False
    return os.path.isfile(path) and head in PCAP_MAGICS and head[:2] != GZIP_MAGIC


def slice_bytes_for(total_bytes: int, jobs: int) -> int:
    """A slice size giving every job several slices, within sane bounds."""
    wanted = math.ceil(total_bytes / max(jobs * SLICES_PER_JOB, 1))
    return min(max(wanted, MIN_SLICE_BYTES), MAX_SLICE_BYTES)


def plan_slices(paths: Sequence[str], slice_bytes: int) -> list[SliceSpec]:
    """Slices of each file in the given order: pcap files over ``slice_bytes`` are cut."""
    specs: list[SliceSpec] = []
    for path in paths:
        size = os.path.getsize(path)
        if not can_slice(path) or size - PCAP_FILE_HEADER <= slice_bytes:
            specs.append(SliceSpec(path))
            continue
        cuts = list(range(PCAP_FILE_HEADER, size, slice_bytes))
        for i, start in enumerate(cuts):
            end = cuts[i + 1] if i + 1 < len(cuts) else None
            specs.append(SliceSpec(path, 0 if i == 0 else start, end))
    return specs
