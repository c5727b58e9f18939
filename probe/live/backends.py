"""Choosing and opening a live back end: one ring, N rings in a fanout group, or pypcap.

The command and the library open captures here, so both check options and
open back ends the same way.
"""

from __future__ import annotations

from core.choices import Backend
from core.errors import ConfigError
from probe.live.afpacket import RingCapture, open_fanout
from probe.live.pcap import LiveCapture, LiveConfig
from probe.live.source import LiveSource

MAX_WORKERS = 64


def check_workers(backend: Backend, workers: int) -> None:
    """ConfigError for a worker count the back end cannot serve."""
    if not 1 <= workers <= MAX_WORKERS:
        raise ConfigError(f"--workers must be 1 to {MAX_WORKERS}, got {workers}")
    if workers > 1 and backend is not Backend.AFPACKET:
        raise ConfigError("--workers needs --backend afpacket")


def open_live(live: LiveConfig, backend: Backend, workers: int) -> LiveSource | list[RingCapture]:
    """One source, or with ``workers`` > 1 the rings of a fanout group (frames held out).

    ``check_workers`` first: callers check before the slow kernel warm-up.
    """
    if workers > 1:
        return open_fanout(live, workers)
    return RingCapture(live) if backend is Backend.AFPACKET else LiveCapture(live)


def close_live(sources: LiveSource | list[RingCapture]) -> None:
    """Close what ``open_live`` opened (closing twice is harmless)."""
    for source in sources if isinstance(sources, list) else [sources]:
        source.close()
