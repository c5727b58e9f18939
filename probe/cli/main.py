"""The ``spanflow`` command line: options are checked here, errors end here in one line."""

from __future__ import annotations

import functools
import os
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer

from cache.config import CacheConfig
from core.attributes import FieldGroup, check_fields, parse_fields
from core.errors import ConfigError
from core.records import RecordTable
from exporter.background import BackgroundWriter
from exporter.flowfile import open_flow_file
from exporter.formats import offline_boot_ns
from exporter.session import ExportSession
from exporter.table import table_lines
from probe.cli import options as o
from probe.cli.bench_sampling import bench_sampling
from probe.cli.capture import capture
from probe.cli.collect import collect
from probe.cli.errors import EXIT_DAMAGED, EXIT_INTERRUPTED, EXIT_USAGE, errors_exit, fail, note
from probe.cli.export import (
    DEFAULT_PACE,
    ExportFormat,
    ExportOptions,
    decoded_back,
    fan_out,
    make_exporter,
    open_session,
)
from probe.decode.reasons import DecodeReason
from probe.meter.counters import Counters, RecordSink, end_reason_counts
from probe.meter.offline import meter_captures
from probe.meter.parallel import (
    NO_FRAME,
    ParallelPlan,
    first_frames,
    meter_in_parallel,
    overlapping_files,
)
from probe.meter.sampling import SamplingConfig, SamplingMode
from probe.meter.slice_merge import MergeReport
from probe.meter.warmup import load_kernels
from probe.sources.capture import Capture, first_time_ns, open_captures

app = typer.Typer(
    name="spanflow",
    help="A software NetFlow probe: meter captured packets into flows and export them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

PROGRESS_MIN_BYTES = 4 << 20
COMPILE_NOTE_AFTER_S = 2.0
COMPILE_NOTE = "compiling the packet kernels for first use (cached for later runs)..."


@app.callback()
def _main() -> None:
    """A software NetFlow probe: meter captured packets into flows and export them."""


@app.command()
def convert(
    files: Annotated[
        list[str],
        typer.Argument(help="pcap or pcapng captures (gzip allowed, - for stdin)", metavar="FILE"),
    ],
    flows_out: o.FlowsOut = None,
    flows_format: o.FlowsFormat = None,
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
    jobs: o.Jobs = 1,
    dask: o.Dask = None,
    slice_mib: o.SliceMib = None,
    quiet: o.Quiet = False,
) -> None:
    """Convert captures to flow records with router cache rules, and export them.

    Several files are merged in time order. With --jobs or --dask, files and
    slices of large pcap files are metered in parallel and merged back into
    exactly the records of one pass. With -c, NetFlow goes to each
    collector; with -o, records go to a CSV/JSONL file; with neither (and no
    --pcap-out), the flows are printed as a table decoded back from the
    datagrams just built, in order of their first packet.
    """
    export = ExportOptions(
        collector or [], export_format, source_id, engine_type, engine_id, mtu,
        template_refresh_packets, template_refresh_seconds, pace, pcap_out,
    )  # fmt: skip
    inner = tunnels is o.TunnelView.INNER
    try:
        export.fields = groups = parse_fields(fields)
        check_fields(groups, inner)
        config = CacheConfig(inactive, active, max_flows, key_vlan, inner, bool(groups), key_mac)
        sampling_config = SamplingConfig(sampling, sampling_rate, seed)
        slice_bytes = None if slice_mib is None else max(round(slice_mib * (1 << 20)), 1)
        parallel = ParallelPlan(jobs, dask, slice_bytes)
        in_parallel = jobs > 1 or dask is not None
        if in_parallel:
            _check_parallel(files, sampling_config)
    except ConfigError as exc:
        raise fail(str(exc), EXIT_USAGE) from exc
    for path in files:
        if path != "-" and not Path(path).is_file():
            raise fail(f"{path}: no such file", EXIT_DAMAGED)
    send_errors: list[str] = []
    report: MergeReport | None = None
    with errors_exit(), ExitStack() as stack:
        make_exporter(export, sampling_config)  # every export option checked before any output
        firsts = first_frames(files) if in_parallel else []  # an unreadable file fails here
        if in_parallel and len(files) > 1 and (overlapping := overlapping_files(files, firsts)):
            note(
                f"{overlapping[0]} overlaps an earlier file in time: converting the files merged "
                "by time in one pass (slices would meter them one after another)"
            )
            in_parallel = False
        if in_parallel:
            captures = []
            first_ns = min((t for t in firsts if t != NO_FRAME), default=None)
        else:
            captures = stack.enter_context(open_captures(files))
        _load_kernels(config, quiet, in_parallel)  # after opening: a bad file fails at once
        sinks: list[RecordSink] = []
        memory = None
        if export.wants_export or flows_out is None:
            boot_ns = offline_boot_ns(first_ns if in_parallel else first_time_ns(captures))
            session, memory = open_session(export, sampling_config, boot_ns)
            stack.callback(session.close)
            sinks.append(session)
        if flows_out is not None:
            writer = open_flow_file(flows_out, sys.stdout.buffer, flows_format, groups)
            stack.callback(writer.close)
            background = BackgroundWriter(writer.write)
            stack.callback(background.close)
            sinks.append(background.write)
        if in_parallel:
            counters, report = _run_parallel(files, firsts, config, parallel, fan_out(sinks), quiet)
        else:
            counters = _run(captures, config, sampling_config, fan_out(sinks), quiet)
        if flows_out is not None:
            background.close()  # every record written before the file is described and closed
            writer.describe(_file_metadata(files, config, groups, counters))
        if memory is not None:
            _print_table(decoded_back(memory))
        if export.wants_export:
            send_errors = session.send_errors()
            note_export(session, quiet)
    # The summary's rate is the metering's own: kernels loaded, until the last record is written.
    counters.elapsed_s = time.perf_counter() - counters.started_s
    if not quiet:
        _summary(files, counters)
        if report is not None:
            _parallel_summary(report, parallel)
    for problem in [*counters.damage, *send_errors]:
        typer.echo(f"spanflow: error: {problem}", err=True)
    if counters.interrupted:
        raise fail("interrupted; the flows read so far were exported", EXIT_INTERRUPTED)
    if counters.damage or send_errors:
        raise typer.Exit(EXIT_DAMAGED)


def _file_metadata(
    files: list[str], config: CacheConfig, groups: frozenset[FieldGroup], counters: Counters
) -> dict[str, str]:
    """What produced a flow file, for formats that carry metadata (Parquet)."""
    return {
        "spanflow.inputs": " ".join(files),
        "spanflow.inactive_s": str(config.inactive_timeout_s),
        "spanflow.active_s": str(config.active_timeout_s),
        "spanflow.max_flows": str(config.max_flows),
        "spanflow.key_vlan": str(config.key_vlan).lower(),
        "spanflow.key_mac": str(config.key_mac).lower(),
        "spanflow.tunnels": "inner" if config.inner_tunnels else "outer",
        "spanflow.fields": ",".join(sorted(str(g) for g in groups)),
        "spanflow.frames": str(counters.frames),
        "spanflow.records": str(counters.records),
        "spanflow.packets": str(counters.packets),
        "spanflow.octets": str(counters.octets),
        **{f"spanflow.end.{name}": str(n) for name, n in end_reason_counts(counters).items()},
    }


def note_export(session: ExportSession, quiet: bool) -> None:
    if not quiet:
        stats = session.stats
        note(f"exported {stats.records} records in {stats.datagrams} datagrams")


def _load_kernels(config: CacheConfig, quiet: bool, parallel: bool) -> None:
    """Load the compiled kernels, saying so when that takes long (a first run compiles them)."""
    compiling = threading.Timer(COMPILE_NOTE_AFTER_S, note, [COMPILE_NOTE])
    if not quiet:
        compiling.start()
    try:
        load_kernels(config, parallel=parallel)
    finally:
        compiling.cancel()


def _run(
    captures: list[Capture],
    config: CacheConfig,
    sampling: SamplingConfig,
    sink: RecordSink,
    quiet: bool,
) -> Counters:
    total = sum(os.path.getsize(c.name) for c in captures if c.raw is not sys.stdin.buffer)
    meter = functools.partial(meter_captures, captures, config, sink, sampling=sampling)
    if quiet or not sys.stderr.isatty() or total < PROGRESS_MIN_BYTES:
        return meter()
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    columns = (BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task("reading", total=total)

        def advance(done: int) -> None:
            progress.update(task, completed=done)

        return meter(on_progress=advance)


def _check_parallel(files: list[str], sampling: SamplingConfig) -> None:
    if sampling.mode is not SamplingMode.FULL:
        raise ConfigError(
            "--jobs and --dask convert without sampling: a sampler's count runs across slices"
        )
    if "-" in files:
        raise ConfigError("--jobs and --dask read files, not stdin")


def _run_parallel(
    files: list[str],
    firsts: list[int],
    config: CacheConfig,
    parallel: ParallelPlan,
    sink: RecordSink,
    quiet: bool,
) -> tuple[Counters, MergeReport]:
    run = functools.partial(meter_in_parallel, files, config, sink, parallel, firsts=firsts)
    if quiet or not sys.stderr.isatty():
        return run()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    columns = (BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task("slices", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        return run(on_progress=advance)


def _parallel_summary(report: MergeReport, parallel: ParallelPlan) -> None:
    where = f"Dask at {parallel.dask_address}" if parallel.dask_address else f"{parallel.jobs} jobs"
    note(
        f"parallel: {report.slices} slice(s) on {where}; {report.replayed_packets} packets "
        f"of flows crossing slice boundaries replayed"
    )
    if report.remetered:
        note(f"{len(report.remetered)} slice(s) metered again in order, to stay exact:")
        for line in report.remetered[:5]:
            note(f"  {line}")
    for path in report.overlapping:
        note(
            f"warning: {path} overlaps earlier files in time: --jobs meters files one after "
            "another, one pass merges them by time, so records may differ; convert without --jobs"
        )
    for line in report.notes:
        note(line)


def _print_table(records: RecordTable) -> None:
    order = records.first_ns.argsort(kind="stable")
    for line in table_lines(records.take(order)):
        typer.echo(line)


def _summary(files: list[str], counters: Counters) -> None:
    rate = counters.frames / counters.elapsed_s if counters.elapsed_s > 0 else 0.0
    rate_text = f"{rate / 1e6:.2f} Mpps" if rate >= 1e5 else f"{rate:.0f} pps"
    note(
        f"read {counters.frames} frames from {len(files)} file(s) in {counters.elapsed_s:.2f} s "
        f"({rate_text}): {counters.decoded} decoded, {counters.undecodable} undecodable"
    )
    if counters.selected != counters.frames:
        note(f"sampling kept {counters.selected} of {counters.frames} frames")
    partial = int(counters.by_reason[DecodeReason.L4_TRUNCATED])
    bad = [
        f"{reason.name.lower()} {int(counters.by_reason[reason])}"
        for reason in DecodeReason
        if not reason.metered and counters.by_reason[reason]
    ]
    if bad:
        note("undecodable: " + ", ".join(bad))
    if partial:
        note(f"{partial} frames metered without ports (transport header not captured)")
    by_end = ", ".join(f"{name} {count}" for name, count in end_reason_counts(counters).items())
    note(
        f"{counters.records} records ({by_end}): {counters.packets} packets, "
        f"{counters.octets} octets"
    )
    note(
        f"cache: peak {counters.peak_open_flows} open flows, "
        f"{counters.cache_bytes_per_flow:.0f} bytes of state per flow"
    )


app.command("bench-sampling")(bench_sampling)
app.command("collect")(collect)
app.command("capture")(capture)


def main() -> None:
    """Console entry point."""
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("spanflow: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        # The reader of stdout went away (| head): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
