"""The metering pipeline, built in this one place: sampler -> decoder -> cache -> counters -> sink.

Offline conversion (``offline.meter_captures``) and live capture
(``live.meter_live``) are drivers of one ``Meter``: they bring frames and
clock ticks and decide when it ends; the Meter owns everything in between.

It runs in two stages so a driver may put them on two threads: ``select``
(sample, then decode) touches only the sampler, ``meter`` (cache, counters,
sink) only the rest. ``feed`` runs both in line.
"""

from __future__ import annotations

import time

from cache.config import CacheConfig
from cache.flow_cache import FlowCache
from core.packets import FrameBatch, PacketTable
from core.records import RecordTable
from probe.decode.decoder import count_reasons, decode
from probe.meter.counters import NO_TIME, ClockHook, Counters, RecordSink
from probe.meter.sampling import SamplingConfig, make_sampler


class Meter:
    """Meters one time-ordered stream of frames into records handed to ``sink``.

    ``on_clock(first_ns, clock_ns)`` runs before records are handed on, once a
    packet has been metered: the earliest packet time so far and the export
    clock (exporters anchor their uptime on the first when not configured, and
    stamp datagrams with the second).
    """

    def __init__(
        self,
        config: CacheConfig,
        sink: RecordSink,
        sampling: SamplingConfig | None = None,
        on_clock: ClockHook | None = None,
    ) -> None:
        self.counters = Counters()
        self.cache = FlowCache(config)
        self.counters.cache_bytes_per_flow = self.cache.state_bytes_per_flow
        self.counters.started_s = time.perf_counter()
        self._sampler = make_sampler(sampling or SamplingConfig())
        self._sink = sink
        self._on_clock = on_clock

    def select(self, frames: FrameBatch) -> tuple[int, PacketTable]:
        """Stage one: (frames observed, decoded table of the frames the sampler keeps)."""
        keep = self._sampler.select(len(frames))
        return len(frames), decode(frames if keep is None else frames.take(keep))

    def select_decoded(self, packets: PacketTable) -> tuple[int, PacketTable]:
        """Stage one for tables decoded already (captures merged in time order): sample only."""
        keep = self._sampler.select(len(packets))
        return len(packets), packets if keep is None else packets.take(keep)

    def meter(self, observed: int, packets: PacketTable) -> None:
        """Stage two: the cache meters ``packets``; the records they end go to the sink."""
        counters = self.counters
        counters.frames += observed
        counters.selected += len(packets)
        counters.by_reason += count_reasons(packets.reason)
        ended = self.cache.update(packets)
        if len(packets):
            counters.first_ns = min(counters.first_ns, int(packets.ts_ns.min()))
        self._emit(ended, self.cache.clock_ns)

    def feed(self, frames: FrameBatch) -> None:
        """Both stages in line."""
        self.meter(*self.select(frames))

    def tick(self, now_ns: int) -> None:
        """Move the cache clock to ``now_ns`` (never back) and end the records gone idle."""
        idle = self.cache.expire(now_ns)
        self._emit(idle, self.cache.clock_ns)

    def finish(self, now_ns: int | None = None) -> Counters:
        """End every open record (exported at ``now_ns`` if later than the cache clock)."""
        self._emit(self.cache.flush(), max(self.cache.clock_ns, now_ns or 0))
        self.counters.peak_open_flows = self.cache.peak_open_flows
        self.counters.elapsed_s = time.perf_counter() - self.counters.started_s
        return self.counters

    def _emit(self, records: RecordTable, clock_ns: int) -> None:
        # No packet metered yet means no time to anchor on, and no records either.
        if self._on_clock is not None and self.counters.first_ns != NO_TIME:
            self._on_clock(self.counters.first_ns, clock_ns)
        if len(records):
            self.counters.add_records(records)
            self._sink(records)
