"""``spanflow capture``: live capture on a SPAN/mirror port, metered and exported."""

from __future__ import annotations

import logging
import os
import pwd
import signal
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer

from cache.config import CacheConfig
from core.attributes import check_fields, parse_fields
from core.errors import ConfigError
from exporter.flowfile import open_flow_file
from probe.cli import options as o
from probe.cli.config_file import load_defaults
from probe.cli.endpoints import parse_endpoint
from probe.cli.errors import errors_exit
from probe.cli.export import DEFAULT_PACE, ExportFormat, ExportOptions, fan_out, open_session
from probe.cli.metrics import ProbeMetrics, serve_metrics
from probe.live.backends import DEFAULT_BACKEND, Backend, check_workers, close_live, open_live
from probe.live.pcap import LiveConfig
from probe.live.source import CaptureStats
from probe.meter.counters import Counters, RecordSink, end_reason_counts
from probe.meter.live_workers import WorkerState, meter_capture, total_counters, total_stats
from probe.meter.sampling import SamplingConfig, SamplingMode
from probe.meter.warmup import load_kernels

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


def capture(
    interface: Annotated[
        str, typer.Option("--interface", "-i", metavar="IFACE", help="Interface to capture on.")
    ],
    config: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="TOML file of option defaults (keys are option names); flags win.",
            callback=load_defaults,
            is_eager=True,
        ),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option(metavar="USER", help="Drop root to this user once the capture is open."),
    ] = None,
    bpf_filter: Annotated[
        str,
        typer.Option(
            "--filter",
            "-f",
            metavar="FILTER",
            help="BPF filter. The probe's own export datagrams are always excluded.",
        ),
    ] = "",
    collector: o.Collectors = None,
    export_format: o.Format = ExportFormat.V9,
    source_id: o.SourceId = 0,
    engine_type: o.EngineType = 0,
    engine_id: o.EngineId = 0,
    mtu: o.Mtu = 1472,
    template_refresh_packets: o.RefreshPackets = 20,
    template_refresh_seconds: o.RefreshSeconds = 1800.0,
    pace: o.Pace = DEFAULT_PACE,
    pcap_out: o.PcapOut = None,
    flows_out: o.FlowsOut = None,
    flows_format: o.FlowsFormat = None,
    snaplen: Annotated[
        int, typer.Option(metavar="BYTES", help="Bytes captured per frame (headers only).")
    ] = 128,
    promisc: Annotated[
        bool, typer.Option(help="Promiscuous mode (a mirror port needs it).")
    ] = True,
    buffer_mib: Annotated[
        int, typer.Option(metavar="MIB", help="Kernel capture buffer (each worker's ring), MiB.")
    ] = 64,
    backend: Annotated[
        Backend,
        typer.Option(
            metavar="afpacket|pcap",
            help="afpacket: TPACKET_V3 ring (Linux); pcap: libpcap through pypcap.",
        ),
    ] = DEFAULT_BACKEND,
    workers: Annotated[
        int,
        typer.Option(metavar="N", help="Metering processes in one fanout group (afpacket)."),
    ] = 1,
    metrics: Annotated[
        str | None,
        typer.Option(metavar="HOST:PORT", help="Serve Prometheus metrics here (off by default)."),
    ] = None,
    inactive: o.Inactive = 15.0,
    active: o.Active = 1800.0,
    max_flows: o.MaxFlows = 65536,
    key_vlan: o.KeyVlan = False,
    key_mac: o.KeyMac = False,
    tunnels: o.Tunnels = o.TunnelView.OUTER,
    fields: o.Fields = "",
    sampling: o.Sampling = SamplingMode.FULL,
    sampling_rate: o.SamplingRate = None,
    seed: o.Seed = 0,
    stats_interval: Annotated[
        float,
        typer.Option(metavar="SECONDS", help="Log statistics every S seconds (0: never)."),
    ] = 0,
    quiet: o.Quiet = False,
) -> None:
    """Capture on a SPAN/mirror port and export flows until SIGINT or SIGTERM.

    On SIGINT/SIGTERM every open flow is flushed and sent before exit (status
    0); so it is when the interface goes away, which then exits with status 1.
    SIGUSR1 logs statistics. The probe's own export datagrams are
    excluded from the capture with a BPF clause added to --filter.
    """
    logging.basicConfig(format="spanflow: %(message)s", level=logging.INFO)
    collectors = collector or []
    export = ExportOptions(
        collectors, export_format, source_id, engine_type, engine_id, mtu,
        template_refresh_packets, template_refresh_seconds, pace, pcap_out,
    )  # fmt: skip
    inner = tunnels is o.TunnelView.INNER
    stop = threading.Event()
    with errors_exit():
        if not export.wants_export and flows_out is None:
            raise ConfigError("nowhere to send flows: give -c HOST:PORT, --pcap-out or -o FILE")
        export.fields = groups = parse_fields(fields)
        check_fields(groups, inner)
        cache = CacheConfig(inactive, active, max_flows, key_vlan, inner, bool(groups), key_mac)
        sampling_config = SamplingConfig(sampling, sampling_rate, seed)
        live = LiveConfig(
            interface, exclude_exports(bpf_filter, collectors), snaplen, promisc, buffer_mib
        )
        check_workers(backend, workers)
        metrics_at = parse_endpoint(metrics) if metrics is not None else None
        with ExitStack() as stack:
            session, _ = open_session(export, sampling_config, boot_ns=time.time_ns())
            stack.callback(session.close)
            sinks: list[RecordSink] = [session] if export.wants_export else []
            if flows_out is not None:
                writer = open_flow_file(flows_out, sys.stdout.buffer, flows_format, groups)
                stack.callback(writer.close)
                sinks.append(writer.write)
            probe_metrics = ProbeMetrics(session)
            ticker = StatsTicker(stats_interval, probe_metrics)

            def started() -> None:
                if metrics_at is not None:
                    serve_metrics(metrics_at, probe_metrics)
                if not quiet:
                    typer.echo(f"spanflow: capturing on {interface}", err=True)

            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: stop.set())
            signal.signal(signal.SIGUSR1, lambda *_: ticker.request())
            load_kernels(cache, readers=False, ring=backend is Backend.AFPACKET)
            sources = open_live(live, backend, workers)
            stack.callback(close_live, sources)
            if user is not None:
                drop_privileges(user)
            counters, stats, per_worker = meter_capture(
                sources, cache, fan_out(sinks), stop, sampling_config, ticker.tick, started
            )
            send_errors = session.send_errors()  # while its sockets are open
    if not quiet:
        summary(counters, stats, per_worker)
    errors = [*counters.damage, *send_errors]  # damage: the interface went away
    for problem in errors:
        typer.echo(f"spanflow: error: {problem}", err=True)
    if errors:
        raise typer.Exit(1)


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
