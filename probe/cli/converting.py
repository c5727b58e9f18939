"""What ``spanflow convert`` does once its options are read: run, report, describe.

Imported when the command runs (probe/cli/main.py), with the engine.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from typing import TYPE_CHECKING

import typer

from cache.config import CacheConfig
from core.attributes import FieldGroup
from core.choices import SamplingMode
from core.errors import ConfigError
from core.records import RecordTable
from exporter.session import ExportSession
from exporter.table import table_lines
from probe.cli.errors import note
from probe.decode.reasons import DecodeReason
from probe.meter.counters import Counters, RecordSink, end_reason_counts
from probe.meter.offline import meter_captures
from probe.meter.parallel_plan import ParallelPlan
from probe.meter.sampling import SamplingConfig
from probe.meter.warmup import load_kernels
from probe.sources.capture import Capture

if TYPE_CHECKING:
    from probe.meter.slice_merge import MergeReport

PROGRESS_MIN_BYTES = 4 << 20
COMPILE_NOTE_AFTER_S = 2.0
COMPILE_NOTE = "compiling the packet kernels for first use (cached for later runs)..."


def file_metadata(
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


def load_kernels_noting(config: CacheConfig, quiet: bool, parallel: bool) -> None:
    """Load the compiled kernels, saying so when that takes long (a first run compiles them)."""
    compiling = threading.Timer(COMPILE_NOTE_AFTER_S, note, [COMPILE_NOTE])
    if not quiet:
        compiling.start()
    try:
        load_kernels(config, parallel=parallel)
    finally:
        compiling.cancel()


def run_single(
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


def check_parallel(files: list[str], sampling: SamplingConfig) -> None:
    if sampling.mode is not SamplingMode.FULL:
        raise ConfigError(
            "--jobs and --dask convert without sampling: a sampler's count runs across slices"
        )
    if "-" in files:
        raise ConfigError("--jobs and --dask read files, not stdin")


def run_parallel(
    files: list[str],
    firsts: list[int],
    config: CacheConfig,
    parallel: ParallelPlan,
    sink: RecordSink,
    quiet: bool,
) -> tuple[Counters, MergeReport]:
    from probe.meter.parallel import meter_in_parallel  # the pool and the merge: only here

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


def parallel_summary(report: MergeReport, parallel: ParallelPlan) -> None:
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


def print_table(records: RecordTable) -> None:
    order = records.first_ns.argsort(kind="stable")
    for line in table_lines(records.take(order)):
        typer.echo(line)


def summary(files: list[str], counters: Counters) -> None:
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
