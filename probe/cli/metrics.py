"""``--metrics HOST:PORT``: the live probe's counters as a Prometheus endpoint (prometheus_client).

Every figure is read at scrape time from the latest per-worker reports the
capture loop stores here (about once a second), so serving costs the
metering nothing. Names follow Prometheus conventions: ``_total`` counters,
one label ``worker`` for what each worker counts.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from core.errors import ConfigError
from exporter.session import ExportSession
from exporter.sinks import UdpSink
from probe.cli.endpoints import Endpoint
from probe.live.source import CaptureStats
from probe.meter.counters import Counters, end_reason_counts


@dataclass(frozen=True, slots=True)
class WorkerFigures:
    stats: CaptureStats
    counters: Counters
    open_flows: int


class ProbeMetrics:
    """The latest figures of each worker and of the export session, served on scrape."""

    def __init__(self, session: ExportSession) -> None:
        self._session = session
        self._workers: dict[int, WorkerFigures] = {}
        self._lock = threading.Lock()

    def update(self, worker: int, stats: CaptureStats, counters: Counters, open_flows: int) -> None:
        with self._lock:
            self._workers[worker] = WorkerFigures(stats, counters, open_flows)

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        with self._lock:
            workers = dict(self._workers)
        worker = ["worker"]
        received = CounterMetricFamily(
            "spanflow_frames_received",
            "Frames the kernel delivered (drops included).",
            labels=worker,
        )
        dropped = CounterMetricFamily(
            "spanflow_frames_dropped",
            "Frames the kernel dropped: the ring was full.",
            labels=worker,
        )
        open_flows = GaugeMetricFamily("spanflow_open_flows", "Flows in the cache.", labels=worker)
        records = CounterMetricFamily(
            "spanflow_records", "Flow records ended, by end reason.", labels=["reason"]
        )
        by_reason: dict[str, int] = {}
        for index, figures in sorted(workers.items()):
            label = [str(index)]
            received.add_metric(label, figures.stats.received)
            dropped.add_metric(label, figures.stats.dropped_kernel)
            open_flows.add_metric(label, figures.open_flows)
            for reason, count in end_reason_counts(figures.counters).items():
                by_reason[reason] = by_reason.get(reason, 0) + count
        for reason, count in by_reason.items():
            records.add_metric([reason], count)
        yield from (received, dropped, open_flows, records)
        sent = CounterMetricFamily("spanflow_datagrams_sent", "Export datagrams sent.")
        sent.add_metric([], self._session.stats.datagrams)
        errors = CounterMetricFamily(
            "spanflow_send_errors", "Export datagrams a collector did not get (send failed)."
        )
        errors.add_metric(
            [], sum(sink.errors for sink in self._session.sinks if isinstance(sink, UdpSink))
        )
        yield from (sent, errors)


def serve_metrics(endpoint: Endpoint, metrics: ProbeMetrics) -> None:
    """Serve ``metrics`` on ``endpoint`` from a daemon thread."""
    try:
        from prometheus_client import start_http_server
        from prometheus_client.core import CollectorRegistry
    except ImportError as exc:
        raise ConfigError(
            "--metrics needs prometheus_client: pip install 'spanflow[live]'"
        ) from exc
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics)
    try:
        start_http_server(endpoint.port, addr=endpoint.address, registry=registry)
    except OSError as exc:
        raise ConfigError(f"--metrics {endpoint}: cannot listen: {exc}") from exc
