"""Offline driver of the Meter: capture files, merged in time order, read ahead on a thread.

Python sees batches only; every per-packet step runs in a compiled kernel.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from cache.config import CacheConfig
from core.packets import PacketTable
from probe.meter.counters import ClockHook, Counters, RecordSink
from probe.meter.merge import decoded_tables, merge_in_time
from probe.meter.meter import Meter
from probe.meter.readahead import ReadAhead
from probe.meter.sampling import SamplingConfig
from probe.sources.capture import Capture, frame_batches
from probe.sources.readers import DEFAULT_BATCH_FRAMES

FULL = SamplingConfig()


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
    captures: list[Capture] = []
    try:
        for path in paths:
            captures.append(Capture(str(path), batch_frames))
        if prepare is not None:
            prepare()
        meter = Meter(config, on_records, sampling, on_clock)
        tables = ReadAhead(_selected_tables(captures, meter))
        try:
            with tables:
                for observed, packets in tables:
                    meter.meter(observed, packets)
                    if on_progress is not None:
                        on_progress(sum(c.bytes_read() for c in captures))
        except KeyboardInterrupt:
            meter.counters.interrupted = True  # stop reading, but export what was read
        return meter.finish()
    finally:
        for capture in captures:
            capture.close()


def _selected_tables(captures: list[Capture], meter: Meter) -> Iterator[tuple[int, PacketTable]]:
    """The Meter's first stage over the captures, in time order, on the read-ahead thread.

    One capture is sampled before decoding (unselected frames cost nothing);
    several are decoded, merged in time order, then sampled. Damage goes to
    the counters' list, which the metering thread reads only after the end.
    """
    damage = meter.counters.damage.append
    if len(captures) == 1:
        for frames in frame_batches(captures[0], damage):
            yield meter.select(frames)
        return
    for packets in merge_in_time([decoded_tables(c, damage) for c in captures]):
        yield meter.select_decoded(packets)
