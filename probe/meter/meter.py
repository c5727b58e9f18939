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
from core.records import EndedRecords
from probe.decode.decoder import count_reasons, decode
from probe.meter.counters import Counters, RecordSink
from probe.meter.sampling import SamplingConfig, make_sampler


class Meter:
    """Meters one time-ordered stream of frames into records handed to ``sink``.

    Records leave with the clock each ended at (``EndedRecords.export_ns``), so
    the sink needs nothing else to encode them.
    """

    def __init__(
        self,
        config: CacheConfig,
        sink: RecordSink,
        sampling: SamplingConfig | None = None,
        cache: FlowCache | None = None,
    ) -> None:
        """``cache``: one holding records already (a merge continuing a slice), else a new one."""
        self.counters = Counters()
        self.cache = cache if cache is not None else FlowCache(config)
        self.counters.cache_bytes_per_flow = self.cache.state_bytes_per_flow
        self.counters.started_s = time.perf_counter()
        self._sampler = make_sampler(sampling or SamplingConfig())
        self._sink = sink

    def select(self, frames: FrameBatch) -> tuple[int, PacketTable]:
        """Stage one: (frames observed, decoded table of the frames the sampler keeps)."""
        keep = self._sampler.select(len(frames))
        selected = frames if keep is None else frames.take(keep)
        config = self.cache.config
        return len(frames), decode(selected, config.inner_tunnels, config.attributes)

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
        self._emit(ended)

    def feed(self, frames: FrameBatch) -> None:
        """Both stages in line."""
        self.meter(*self.select(frames))

    def tick(self, now_ns: int) -> None:
        """Move the cache clock to ``now_ns`` (never back) and end the records gone idle."""
        idle = self.cache.expire(now_ns)
        self._emit(idle)

    def finish(self, now_ns: int | None = None) -> Counters:
        """End every open record (exported at ``now_ns`` if later than the cache clock)."""
        self._emit(self.cache.flush(now_ns))
        self.counters.peak_open_flows = self.cache.peak_open_flows
        self.counters.elapsed_s = time.perf_counter() - self.counters.started_s
        return self.counters

    def _emit(self, records: EndedRecords) -> None:
        if len(records):
            self.counters.add_records(records)
            self._sink(records)
