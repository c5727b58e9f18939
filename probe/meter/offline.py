"""Offline driver of the Meter: capture files, merged in time order, read ahead on a thread.

Python sees batches only; every per-packet step runs in a compiled kernel.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from cache.config import CacheConfig
from core.packets import PacketTable
from probe.meter.counters import Counters, RecordSink
from probe.meter.merge import decoded_tables, merge_in_time
from probe.meter.meter import Meter
from probe.meter.readahead import ReadAhead
from probe.meter.sampling import SamplingConfig
from probe.sources.capture import frame_batches, open_captures
from probe.sources.readers import DEFAULT_BATCH_FRAMES
from probe.sources.source import FrameSource

FULL = SamplingConfig()


def meter_captures(
    captures: Sequence[FrameSource],
    config: CacheConfig,
    on_records: RecordSink,
    on_progress: Callable[[int], None] | None = None,
    sampling: SamplingConfig = FULL,
    batch_rows: int = DEFAULT_BATCH_FRAMES,
) -> Counters:
    """Meter opened captures (merged in time order); hand ended records to ``on_records``.

    Damage found while reading is recorded in ``Counters.damage`` and every
    flow read so far is still flushed. ``on_progress`` gets the bytes read so
    far after each batch; the cache takes at most ``batch_rows`` packets at a time.
    """
    meter = Meter(config, on_records, sampling)
    tables = ReadAhead(_selected_tables(captures, meter, batch_rows))
    try:
        with tables:
            for observed, packets in tables:
                meter.meter(observed, packets)
                if on_progress is not None:
                    on_progress(sum(c.bytes_read() for c in captures))
    except KeyboardInterrupt:
        meter.counters.interrupted = True  # stop reading, but export what was read
    return meter.finish()


def meter_files(
    paths: Sequence[str | Path],
    config: CacheConfig,
    on_records: RecordSink,
    batch_frames: int = DEFAULT_BATCH_FRAMES,
    sampling: SamplingConfig = FULL,
) -> Counters:
    """``meter_captures`` over files it opens; opening errors raise ``InputError`` first."""
    with open_captures(paths, batch_frames) as captures:
        return meter_captures(
            captures, config, on_records, sampling=sampling, batch_rows=batch_frames
        )


def _selected_tables(
    captures: Sequence[FrameSource], meter: Meter, batch_rows: int
) -> Iterator[tuple[int, PacketTable]]:
    """The Meter's first stage over the captures, in time order, on the read-ahead thread.

    One capture is sampled before decoding (unselected frames cost nothing);
    several are decoded, merged in time order, then sampled. Damage goes to
    the counters' list, which the metering thread reads only after the end.
    """
    damage = meter.counters.damage.append
    # A source that may pause hands on every step as it comes.
    rows = 1 if any(capture.may_pause for capture in captures) else batch_rows
    if len(captures) == 1:
        selected = (meter.select(frames) for frames in frame_batches(captures[0], damage))
        yield from gathered(selected, rows)
        return
    config = meter.cache.config
    tables = [
        _joined(decoded_tables(c, damage, config.inner_tunnels, config.attributes), rows)
        for c in captures
    ]  # the merge's cost is per table: it takes each capture's steps joined too
    merged = (meter.select_decoded(packets) for packets in merge_in_time(tables))
    yield from gathered(merged, rows)


def _joined(tables: Iterator[PacketTable], rows: int) -> Iterator[PacketTable]:
    """Decoded tables of one capture joined as ``gathered`` joins steps."""
    for _, table in gathered(((len(t), t) for t in tables), rows):
        yield table


def gathered(
    tables: Iterator[tuple[int, PacketTable]], rows: int
) -> Iterator[tuple[int, PacketTable]]:
    """(frames observed, table) pairs joined in order into tables of at most ``rows`` rows.

    A capture is read and decoded in steps small enough to stay in the core's
    caches; the cache and the export take them a large batch at a time, so
    their cost per batch is spread over many packets.
    """
    observed, held = 0, 0
    parts: list[PacketTable] = []
    for seen, table in tables:
        if parts and held + len(table) > rows:
            yield observed, PacketTable.concat(parts)
            observed, held, parts = 0, 0, []
        observed, held = observed + seen, held + len(table)
        parts.append(table)
        if held >= rows:
            yield observed, PacketTable.concat(parts)
            observed, held, parts = 0, 0, []
    if parts:
        yield observed, PacketTable.concat(parts)
