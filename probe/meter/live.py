"""The live metering loop: capture -> sampler -> decoder -> cache -> sink, until told to stop.

Waits on the capture descriptor with a timeout, so a stop request or an idle
tick is seen within ``tick_s`` even on a silent link; each idle tick moves the
cache clock to the wall clock so idle flows still end on time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from cache.config import CacheConfig
from cache.flow_cache import FlowCache
from core.packets import FrameBatch
from core.records import RecordTable
from probe.decode.decoder import count_reasons, decode
from probe.live.pcap import READ_TIMEOUT_MS, CaptureStats, LiveCapture
from probe.meter.offline import ClockHook, Counters, RecordSink
from probe.meter.sampling import SamplingConfig, make_sampler

TICK_S = 1.0
DRAIN_WAIT_S = 4 * READ_TIMEOUT_MS / 1000
DRAIN_MAX_S = 2.0


def meter_live(
    capture: LiveCapture,
    config: CacheConfig,
    on_records: RecordSink,
    stop: threading.Event,
    sampling: SamplingConfig | None = None,
    on_tick: Callable[[Counters, CaptureStats, int], None] | None = None,
    tick_s: float = TICK_S,
    on_clock: ClockHook | None = None,
) -> Counters:
    """Meter until ``stop`` is set or the interface goes away; flush every open flow either way.

    A vanished interface ends the run like a stop, after the frames its ring
    still holds, and is reported in ``Counters.damage``. ``on_tick(counters,
    capture_stats, open_flows)`` runs about once per ``tick_s``, for periodic
    statistics.
    """
    counters = Counters()
    cache = FlowCache(config)
    counters.cache_bytes_per_flow = cache.state_bytes_per_flow
    sampler = make_sampler(sampling or SamplingConfig())
    started = time.perf_counter()
    next_tick = time.monotonic() + tick_s

    def emit(records: RecordTable) -> None:
        if len(records):
            counters.add_records(records)
            on_records(records)

    def meter(frames: FrameBatch) -> None:
        counters.frames += len(frames)
        keep = sampler.select(len(frames))
        packets = decode(frames if keep is None else frames.take(keep))
        counters.selected += len(packets)
        counters.by_reason += count_reasons(packets.reason)
        ended = cache.update(packets)
        if len(packets):
            counters.first_ns = min(counters.first_ns, int(packets.ts_ns.min()))
        if on_clock is not None:
            on_clock(counters.first_ns, cache.clock_ns)
        emit(ended)

    lost: str | None = None  # why the capture cannot go on
    try:
        while not stop.is_set() and lost is None:
            readable = capture.wait(min(tick_s, 0.1))
            frames = capture.read() if readable else None
            if frames is not None and len(frames):
                meter(frames)
            elif readable:  # POLLERR without frames: the interface may be going away
                lost = capture.vanished()
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + tick_s
                lost = lost or capture.vanished()  # its one POLLERR may come before it is gone
                idle = cache.expire(time.time_ns())
                if on_clock is not None:
                    on_clock(counters.first_ns, cache.clock_ns)
                emit(idle)
                if on_tick is not None:
                    on_tick(counters, capture.stats(), cache.open_flows)
        drain(capture, meter)
        if lost is not None:
            counters.damage.append(lost)
    finally:
        if on_clock is not None:
            on_clock(counters.first_ns, max(cache.clock_ns, time.time_ns()))
        emit(cache.flush())
        counters.peak_open_flows = cache.peak_open_flows
        counters.elapsed_s = time.perf_counter() - started
    return counters


def drain(capture: LiveCapture, meter: Callable[[FrameBatch], None]) -> None:
    """Meter the frames the kernel already holds: they crossed the wire before the stop.

    The wait outlasts the read timeout, after which libpcap hands over its
    last block; an empty read (the one POLLERR of an interface going down or
    away) does not end it, as that block may still be due. Bounded: on a busy
    mirror port the buffer never runs dry. The ring outlives a vanished
    interface, so what it holds is metered then too.
    """
    drain_until = time.monotonic() + DRAIN_MAX_S
    while time.monotonic() < drain_until and capture.wait(DRAIN_WAIT_S):
        frames = capture.read()
        if frames is not None and len(frames):
            meter(frames)
