"""The live probe from Python: records of a capture interface, in batches as they end.

    import spanflow
    with spanflow.capture("eth1", inactive=15, duration=60) as live:
        for flows in live:                 # each batch as it leaves the cache
            print(len(flows), flows.to_polars().head())

The capture runs on a thread (its workers, with ``workers`` > 1, in
processes of their own) with the command's back ends and flow rules. It ends
after ``duration`` seconds, on ``stop()``, or when the interface goes away;
every open flow is then flushed, and the last batch has no records and the
run's counters in ``stats`` (the capture's ``received`` and ``dropped``
among them) and any fault in ``damage``.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator, Sequence
from types import TracebackType

from cache.config import CacheConfig
from core.attributes import FieldGroup
from core.choices import Backend
from core.errors import ConfigError
from core.records import EndedRecords, RecordTable
from probe.live.afpacket import RingCapture
from probe.live.backends import check_workers, close_live, open_live
from probe.live.pcap import LiveConfig
from probe.live.source import CaptureStats, LiveSource
from probe.meter.counters import Counters
from probe.meter.live_workers import meter_capture
from probe.meter.sampling import SamplingConfig
from probe.meter.warmup import load_kernels
from spanflow.api import Flows, _configs, _field_groups, _stats

QUEUE_DEPTH = (
    64  # batches ahead of the consumer; past it the rings fill and the kernel counts drops
)


class LiveFlows:
    """A running capture: iterate for batches of ended records; ``stop`` ends it."""

    def __init__(
        self, live: LiveConfig, backend: str, workers: int, duration: float | None,
        cache_and_sampling: tuple[CacheConfig, SamplingConfig],
        fields: frozenset[FieldGroup] = frozenset(),
    ) -> None:  # fmt: skip
        if backend not in list(Backend):
            raise ConfigError(f"backend must be one of {', '.join(Backend)}, got {backend!r}")
        config, sampling = cache_and_sampling
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._batches: queue.Queue[EndedRecords | tuple[Counters, CaptureStats] | BaseException]
        self._batches = queue.Queue(QUEUE_DEPTH)
        self._done = False
        self._fields = fields
        check_workers(Backend(backend), workers)
        load_kernels(config, readers=False, ring=backend == Backend.AFPACKET)
        sources = open_live(live, Backend(backend), workers)
        self._thread = threading.Thread(
            target=self._run, args=(sources, config, sampling), name="spanflow-capture",
            daemon=True,
        )  # fmt: skip
        self._thread.start()
        if duration is not None:
            timer = threading.Timer(duration, self._stop.set)
            timer.daemon = True
            timer.start()

    def _run(
        self, sources: LiveSource | list[RingCapture], config: CacheConfig, sampling: SamplingConfig
    ) -> None:
        try:
            counters, stats, _ = meter_capture(
                sources, config, self._batches.put, self._stop, sampling,
                on_started=self._ready.set,
            )  # fmt: skip
            self._batches.put((counters, stats))
        except BaseException as exc:  # handed to the consumer
            self._batches.put(exc)
        finally:
            close_live(sources)

    def wait_ready(self, timeout_s: float = 30.0) -> bool:
        """Whether frames are being captured (workers forked and let in) within ``timeout_s``."""
        return self._ready.wait(timeout_s)

    def stop(self) -> None:
        """End the capture: open flows are flushed into the last batches."""
        self._stop.set()

    def __iter__(self) -> Iterator[Flows]:
        while not self._done:
            item = self._batches.get()
            if isinstance(item, BaseException):
                self._done = True
                raise item
            if isinstance(item, tuple):
                self._done = True
                counters, stats = item
                figures = {**_stats(counters), "received": stats.received,
                           "dropped": stats.dropped_kernel}  # fmt: skip
                yield Flows(RecordTable.empty(0), figures, counters.damage, self._fields)
                return
            yield Flows(item.records(), fields=self._fields)

    def __enter__(self) -> LiveFlows:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop, and wait for the capture to end (batches not taken are dropped)."""
        self.stop()
        deadline = time.monotonic() + 60
        while self._thread.is_alive() and time.monotonic() < deadline:
            try:
                self._batches.get(timeout=0.1)  # let a blocked put finish
            except queue.Empty:
                continue


def capture(
    interface: str,
    *,
    inactive: float = 15.0,
    active: float = 1800.0,
    max_flows: int = 65536,
    key_vlan: bool = False,
    key_mac: bool = False,
    tunnels: str = "outer",
    fields: str | Sequence[str] = (),
    sampling: str = "full",
    sampling_rate: int | None = None,
    seed: int = 0,
    bpf_filter: str = "",
    snaplen: int = 128,
    promiscuous: bool = True,
    buffer_mib: int = 64,
    backend: str = "afpacket",
    workers: int = 1,
    duration: float | None = None,
) -> LiveFlows:
    """Capture on ``interface`` (root or CAP_NET_RAW) with the command's back ends and rules.

    ``fields`` and ``key_mac`` as in ``spanflow.convert``. Raises
    ``ConfigError`` for bad options and ``InputError`` when the interface
    cannot be captured, before returning.
    """
    live = LiveConfig(interface, bpf_filter, snaplen, promiscuous, buffer_mib)
    groups = _field_groups(fields)
    configs = _configs(
        inactive, active, max_flows, key_vlan, sampling, sampling_rate, seed, tunnels, groups,
        key_mac,
    )  # fmt: skip
    return LiveFlows(live, backend, workers, duration, configs, groups)
