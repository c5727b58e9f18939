"""``spanflow capture``: its options; the engine is imported when it runs (capturing.py)."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer

from core.choices import DEFAULT_BACKEND, Backend, ExportFormat, SamplingMode, TunnelView
from core.errors import ConfigError
from probe.cli import options as o
from probe.cli.config_file import load_defaults
from probe.cli.errors import errors_exit
from probe.cli.options import DEFAULT_PACE


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
    tunnels: o.Tunnels = TunnelView.OUTER,
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
    from cache.config import CacheConfig
    from core.attributes import check_fields, parse_fields
    from exporter.flowfile import open_flow_file
    from probe.cli.capturing import StatsTicker, drop_privileges, exclude_exports, summary
    from probe.cli.endpoints import parse_endpoint
    from probe.cli.export import ExportOptions, fan_out, open_session
    from probe.cli.metrics import ProbeMetrics, serve_metrics
    from probe.live.backends import check_workers, close_live, open_live
    from probe.live.pcap import LiveConfig
    from probe.meter.counters import RecordSink
    from probe.meter.live_workers import meter_capture
    from probe.meter.sampling import SamplingConfig
    from probe.meter.warmup import load_kernels

    logging.basicConfig(format="spanflow: %(message)s", level=logging.INFO)
    collectors = collector or []
    export = ExportOptions(
        collectors, export_format, source_id, engine_type, engine_id, mtu,
        template_refresh_packets, template_refresh_seconds, pace, pcap_out,
    )  # fmt: skip
    inner = tunnels is TunnelView.INNER
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
