"""Live driver of the Meter: frames from a capture and idle ticks, until told to stop.

Waits on the capture descriptor with a timeout, so a stop request or an idle
tick is seen within ``tick_s`` even on a silent link; each idle tick moves the
cache clock to the wall clock so idle flows still end on time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from cache.config import CacheConfig
from core.packets import FrameBatch
from probe.live.source import CaptureStats, LiveSource
from probe.meter.counters import Counters, RecordSink
from probe.meter.meter import Meter
from probe.meter.sampling import SamplingConfig

TICK_S = 1.0
DRAIN_MAX_S = 2.0


def meter_live(
    capture: LiveSource,
    config: CacheConfig,
    on_records: RecordSink,
    stop: threading.Event,
    sampling: SamplingConfig | None = None,
    on_tick: Callable[[Counters, CaptureStats, int], None] | None = None,
    tick_s: float = TICK_S,
) -> Counters:
    """Meter until ``stop`` is set or the interface goes away; flush every open flow either way.

    A vanished interface ends the run like a stop, after the frames its ring
    still holds, and is reported in ``Counters.damage``. ``on_tick(counters,
    capture_stats, open_flows)`` runs about once per ``tick_s``, for periodic
    statistics.
    """
    meter = Meter(config, on_records, sampling)
    next_tick = time.monotonic() + tick_s
    lost: str | None = None  # why the capture cannot go on
    try:
        while not stop.is_set() and lost is None:
            readable = capture.wait(min(tick_s, 0.1))
            frames = capture.read() if readable else None
            if frames is not None and len(frames):
                meter.feed(frames)
            elif readable:  # POLLERR without frames: the interface may be going away
                lost = capture.vanished()
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + tick_s
                lost = lost or capture.vanished()  # its one POLLERR may come before it is gone
                meter.tick(time.time_ns())
                if on_tick is not None:
                    on_tick(meter.counters, capture.stats(), meter.cache.open_flows)
        drain(capture, meter.feed)
        if lost is not None:
            meter.counters.damage.append(lost)
    finally:
        counters = meter.finish(time.time_ns())
    return counters


def drain(capture: LiveSource, meter: Callable[[FrameBatch], None]) -> None:
    """Meter the frames the kernel already holds: they crossed the wire before the stop.

    The wait outlasts the read timeout, after which libpcap hands over its
    last block; an empty read (the one POLLERR of an interface going down or
    away) does not end it, as that block may still be due. Bounded: on a busy
    mirror port the buffer never runs dry. The ring outlives a vanished
    interface, so what it holds is metered then too.
    """
    drain_until = time.monotonic() + DRAIN_MAX_S
    while time.monotonic() < drain_until and capture.wait(capture.drain_wait_s):
        frames = capture.read()
        if frames is not None and len(frames):
            meter(frames)
