"""The metering loop: captures -> decoded tables -> flow cache -> record sink.

Python sees batches only; every per-packet step runs in a compiled kernel.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from cache.config import CacheConfig
from cache.flow_cache import FlowCache
from core.packets import PacketTable
from core.records import EndReason, RecordTable
from probe.decode.decoder import count_reasons, decode
from probe.decode.reasons import DecodeReason
from probe.meter.merge import decoded_tables, merge_in_time
from probe.meter.readahead import ReadAhead
from probe.meter.sampling import Sampler, SamplingConfig, make_sampler
from probe.sources.capture import Capture, frame_batches
from probe.sources.readers import DEFAULT_BATCH_FRAMES

FULL = SamplingConfig()

RecordSink = Callable[[RecordTable], None]
ClockHook = Callable[[int, int], None]
NO_TIME = 2**63 - 1


def _zeros(size: int) -> npt.NDArray[np.int64]:
    return np.zeros(size, np.int64)


@dataclass(slots=True)
class Counters:
    """What one metering run saw and produced, printed by the CLI at exit."""

    frames: int = 0  # observed, before sampling
    selected: int = 0  # kept by the sampler and decoded
    by_reason: npt.NDArray[np.int64] = field(default_factory=lambda: _zeros(len(DecodeReason)))
    records: int = 0
    records_by_end: npt.NDArray[np.int64] = field(default_factory=lambda: _zeros(6))
    packets: int = 0
    octets: int = 0
    peak_open_flows: int = 0
    first_ns: int = NO_TIME  # earliest packet time metered
    cache_bytes_per_flow: float = 0.0
    started_s: float = 0.0  # perf_counter() when metering began
    elapsed_s: float = 0.0
    damage: list[str] = field(default_factory=list)
    interrupted: bool = False

    @property
    def decoded(self) -> int:
        metered = self.by_reason[DecodeReason.OK] + self.by_reason[DecodeReason.L4_TRUNCATED]
        return int(metered)

    @property
    def undecodable(self) -> int:
        return self.selected - self.decoded

    def add_records(self, records: RecordTable) -> None:
        self.records += len(records)
        self.records_by_end += np.bincount(records.end_reason, minlength=6)[:6]
        self.packets += int(records.packets.sum())
        self.octets += int(records.octets.sum())


def meter_captures(
    paths: Sequence[str | Path],
    config: CacheConfig,
    on_records: RecordSink,
    batch_frames: int = DEFAULT_BATCH_FRAMES,
    on_progress: Callable[[int], None] | None = None,
    sampling: SamplingConfig = FULL,
    on_clock: ClockHook | None = None,
    prepare: Callable[[], None] | None = None,
) -> Counters:
    """Meter every capture (merged in time order) and hand ended records to ``on_records``.

    Opening errors raise ``InputError`` before any work; damage found while
    reading is recorded in ``Counters.damage`` and every flow read so far is
    still flushed. ``on_clock(first_ns, clock_ns)`` runs before records are
    handed on: the earliest packet time so far and the cache clock (exporters
    anchor their uptime on the first and stamp datagrams with the second).
    ``prepare`` runs once every capture is open and before ``started_s`` (the
    CLI loads the kernels there, so a file that is no capture fails at once).
    """
    counters = Counters()
    captures: list[Capture] = []
    try:
        for path in paths:
            captures.append(Capture(str(path), batch_frames))
        if prepare is not None:
            prepare()
        counters.started_s = started = time.perf_counter()
        cache = FlowCache(config)
        counters.cache_bytes_per_flow = cache.state_bytes_per_flow

        def emit(records: RecordTable) -> None:
            if len(records):
                counters.add_records(records)
                on_records(records)

        def meter(packets: PacketTable) -> None:
            counters.selected += len(packets)
            counters.by_reason += count_reasons(packets.reason)
            ended = cache.update(packets)
            if len(packets):
                counters.first_ns = min(counters.first_ns, int(packets.ts_ns.min()))
            if on_clock is not None and counters.first_ns != NO_TIME:
                on_clock(counters.first_ns, cache.clock_ns)
            emit(ended)
            if on_progress is not None:
                on_progress(sum(c.bytes_read() for c in captures))

        tables = ReadAhead(_sampled_tables(captures, make_sampler(sampling), counters.damage))
        try:
            with tables:
                for observed, packets in tables:
                    counters.frames += observed
                    meter(packets)
        except KeyboardInterrupt:
            counters.interrupted = True  # stop reading, but export what was read
        emit(cache.flush())
        counters.peak_open_flows = cache.peak_open_flows
        counters.elapsed_s = time.perf_counter() - started
    finally:
        for capture in captures:
            capture.close()
    return counters


def _sampled_tables(
    captures: list[Capture], sampler: Sampler, damage: list[str]
) -> Iterator[tuple[int, PacketTable]]:
    """(frames observed, decoded table of the frames the sampler keeps), in time order.

    One capture is sampled before decoding (unselected frames cost nothing);
    several are decoded, merged in time order, then sampled. Runs on the
    read-ahead thread: it touches nothing the metering thread uses.
    """
    if len(captures) == 1:
        for frames in frame_batches(captures[0], damage.append):
            keep = sampler.select(len(frames))
            yield len(frames), decode(frames if keep is None else frames.take(keep))
        return
    streams = [decoded_tables(c, damage.append) for c in captures]
    for packets in merge_in_time(streams):
        keep = sampler.select(len(packets))
        yield len(packets), packets if keep is None else packets.take(keep)


def end_reason_counts(counters: Counters) -> dict[str, int]:
    return {reason.name.lower(): int(counters.records_by_end[reason]) for reason in EndReason}
