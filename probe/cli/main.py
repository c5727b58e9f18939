"""The ``spanflow`` command line: options are checked here, errors end here in one line.

Only typer and the option choices are imported at start: each command imports
the engine when it runs, so ``spanflow --help`` loads neither numpy nor numba.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

# numpy's OpenBLAS starts a thread per core at import; spanflow does no linear algebra.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import typer

from core.choices import ExportFormat, SamplingMode, TunnelView
from core.errors import ConfigError
from probe.cli import options as o
from probe.cli.bench_sampling import bench_sampling
from probe.cli.capture import capture
from probe.cli.collect import collect
from probe.cli.errors import EXIT_DAMAGED, EXIT_INTERRUPTED, EXIT_USAGE, errors_exit, fail, note
from probe.cli.options import DEFAULT_PACE

if TYPE_CHECKING:
    from probe.meter.slice_merge import MergeReport

app = typer.Typer(
    name="spanflow",
    help="A software NetFlow probe: meter captured packets into flows and export them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _main() -> None:
    """A software NetFlow probe: meter captured packets into flows and export them."""


@app.command()
def convert(
    files: Annotated[
        list[str],
        typer.Argument(
            help="pcap or pcapng captures (gzip allowed, - for stdin)", metavar="FILE..."
        ),
    ],
    flows_out: o.FlowsOut = None,
    flows_format: o.FlowsFormat = None,
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
    from cache.config import CacheConfig
    from core.attributes import check_fields, parse_fields
    from exporter.background import BackgroundWriter
    from exporter.flowfile import open_flow_file
    from exporter.formats import offline_boot_ns
    from probe.cli.converting import (
        check_parallel,
        file_metadata,
        load_kernels_noting,
        note_export,
        parallel_summary,
        print_table,
        run_parallel,
        run_single,
        summary,
    )
    from probe.cli.export import ExportOptions, decoded_back, fan_out, make_exporter, open_session
    from probe.meter.counters import RecordSink
    from probe.meter.parallel_plan import NO_FRAME, ParallelPlan, first_frames, overlapping_files
    from probe.meter.sampling import SamplingConfig
    from probe.sources.capture import first_time_ns, open_captures

    export = ExportOptions(
        collector or [], export_format, source_id, engine_type, engine_id, mtu,
        template_refresh_packets, template_refresh_seconds, pace, pcap_out,
    )  # fmt: skip
    inner = tunnels is TunnelView.INNER
    try:
        export.fields = groups = parse_fields(fields)
        check_fields(groups, inner)
        config = CacheConfig(inactive, active, max_flows, key_vlan, inner, bool(groups), key_mac)
        sampling_config = SamplingConfig(sampling, sampling_rate, seed)
        slice_bytes = None if slice_mib is None else max(round(slice_mib * (1 << 20)), 1)
        parallel = ParallelPlan(jobs, dask, slice_bytes)
        in_parallel = jobs > 1 or dask is not None
        if in_parallel:
            check_parallel(files, sampling_config)
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
        load_kernels_noting(config, quiet, in_parallel)  # after opening: a bad file fails at once
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
            counters, report = run_parallel(files, firsts, config, parallel, fan_out(sinks), quiet)
        else:
            counters = run_single(captures, config, sampling_config, fan_out(sinks), quiet)
        if flows_out is not None:
            background.close()  # every record written before the file is described and closed
            writer.describe(file_metadata(files, config, groups, counters))
        if memory is not None:
            print_table(decoded_back(memory))
        if export.wants_export:
            send_errors = session.send_errors()
            note_export(session, quiet)
    # The summary's rate is the metering's own: kernels loaded, until the last record is written.
    counters.elapsed_s = time.perf_counter() - counters.started_s
    if not quiet:
        summary(files, counters)
        if report is not None:
            parallel_summary(report, parallel)
    for problem in [*counters.damage, *send_errors]:
        typer.echo(f"spanflow: error: {problem}", err=True)
    if counters.interrupted:
        raise fail("interrupted; the flows read so far were exported", EXIT_INTERRUPTED)
    if counters.damage or send_errors:
        raise typer.Exit(EXIT_DAMAGED)


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
