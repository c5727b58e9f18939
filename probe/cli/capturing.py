"""What ``spanflow capture`` does around the metering: statistics lines, privileges, filter."""

from __future__ import annotations

import logging
import os
import pwd

import typer

from core.errors import ConfigError
from probe.cli.endpoints import parse_endpoint
from probe.cli.metrics import ProbeMetrics
from probe.live.source import CaptureStats
from probe.meter.counters import Counters, end_reason_counts
from probe.meter.live_workers import WorkerState, total_counters, total_stats

log = logging.getLogger("spanflow")


def exclude_exports(bpf_filter: str, collectors: list[str]) -> str:
    """The user's filter, minus the probe's own export datagrams."""
    own = [
        f"(udp and dst host {e.address} and dst port {e.port})"
        for e in (parse_endpoint(text) for text in collectors)
    ]
    if not own:
        return bpf_filter
    exclusion = "not (" + " or ".join(own) + ")"
    return f"({bpf_filter}) and {exclusion}" if bpf_filter else exclusion


def drop_privileges(user: str) -> None:
    """Become ``user`` (its uid, primary gid, no supplementary groups); root needed."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError as exc:
        raise ConfigError(f"--user: no such user {user!r}") from exc
    try:
        os.setgroups([])
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
    except PermissionError as exc:
        raise ConfigError(f"--user {user}: dropping privileges needs root") from exc


class StatsTicker:
    """Logs statistics every ``interval_s`` and whenever SIGUSR1 asked; feeds the metrics."""

    def __init__(self, interval_s: float, metrics: ProbeMetrics) -> None:
        self.interval_s = interval_s
        self.metrics = metrics
        self.asked = False
        self.since_s = 0.0

    def request(self) -> None:
        self.asked = True

    def _due(self) -> bool:
        self.since_s += 1.0
        due = (self.interval_s > 0 and self.since_s >= self.interval_s) or self.asked
        if due:
            self.asked, self.since_s = False, 0.0
        return due

    def tick(self, workers: list[WorkerState]) -> None:
        for worker in workers:
            self.metrics.update(worker.index, worker.stats, worker.counters, worker.open_flows)
        if not self._due():
            return
        counters = total_counters([worker.counters for worker in workers])
        stats = total_stats([worker.stats for worker in workers])
        log.info(statistics_line(counters, stats, sum(w.open_flows for w in workers)))
        for worker in workers if len(workers) > 1 else []:
            log.info(f"worker {worker.index}: " + statistics_line(
                worker.counters, worker.stats, worker.open_flows
            ))  # fmt: skip


def statistics_line(counters: Counters, stats: CaptureStats, open_flows: int) -> str:
    ends = ", ".join(f"{name} {count}" for name, count in end_reason_counts(counters).items())
    return (
        f"{stats.received} frames received, {stats.dropped_kernel} dropped by the kernel, "
        f"{stats.dropped_interface} by the interface; {counters.decoded} decoded; "
        f"{open_flows} flows open; records {ends}; ring froze {stats.ring_freezes} times"
    )


def summary(counters: Counters, stats: CaptureStats, workers: list[WorkerState]) -> None:
    typer.echo(
        f"spanflow: capture: {stats.received} frames received, {stats.dropped_kernel} dropped by "
        f"the kernel, {stats.dropped_interface} dropped by the interface",
        err=True,
    )
    for worker in workers:
        typer.echo(
            f"spanflow: worker {worker.index}: {worker.stats.received} frames received, "
            f"{worker.stats.dropped_kernel} dropped by the kernel, "
            f"{worker.counters.frames} metered, {worker.counters.decoded} decoded",
            err=True,
        )
    ends = ", ".join(f"{name} {count}" for name, count in end_reason_counts(counters).items())
    typer.echo(
        f"spanflow: {counters.frames} frames metered, {counters.decoded} decoded; "
        f"{counters.records} records ({ends}): "
        f"{counters.packets} packets, {counters.octets} octets",
        err=True,
    )
