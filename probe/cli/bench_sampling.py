"""``spanflow bench-sampling``: measure how sampling modes distort flow statistics."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from core.choices import SamplingMode
from probe.cli.errors import errors_exit

if TYPE_CHECKING:
    from probe.bench.sampling import TrialResult


def _numbers(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise typer.BadParameter(f"expected comma-separated integers, got {text!r}") from exc
    if not values or min(values) < 2:
        raise typer.BadParameter("rates are integers >= 2")
    return values


def _modes(text: str) -> list[SamplingMode]:
    try:
        modes = [SamplingMode(part.strip()) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise typer.BadParameter(
            f"modes are deterministic, random, probabilistic: {text!r}"
        ) from exc
    if not modes or SamplingMode.FULL in modes:
        raise typer.BadParameter("give one or more of deterministic, random, probabilistic")
    return modes


def bench_sampling(
    files: Annotated[list[str], typer.Argument(help="pcap or pcapng captures", metavar="FILE...")],
    rates: Annotated[
        str, typer.Option(metavar="N,N,...", help="Comma-separated N of 1-in-N.")
    ] = "10,100,1000",
    modes: Annotated[
        str,
        typer.Option(
            metavar="MODE,...",
            help="Comma-separated sampling modes: deterministic, random, probabilistic.",
        ),
    ] = "deterministic,random,probabilistic",
    trials: Annotated[
        int,
        typer.Option(min=1, metavar="N", help="Trials (seeds 0..trials-1) per mode and rate."),
    ] = 10,
    report: Annotated[
        Path | None,
        typer.Option(metavar="DIR", help="Directory for report.json and PNG plots."),
    ] = None,
    inactive: Annotated[
        float, typer.Option(metavar="SECONDS", help="Inactive timeout, seconds.")
    ] = 15.0,
    active: Annotated[
        float, typer.Option(metavar="SECONDS", help="Active timeout, seconds.")
    ] = 1800.0,
    max_flows: Annotated[int, typer.Option(metavar="N", help="Flow cache size.")] = 65536,
) -> None:
    """Compare sampled flow statistics with the full-capture truth, mode by mode.

    Counters are scaled by N, as a collector would. Deterministic sampling has no
    seed, so it runs once per rate.
    """
    from rich.console import Console
    from rich.progress import Progress

    from cache.config import CacheConfig
    from probe.bench.sampling import as_json, run_trials, summarize

    err = Console(stderr=True)
    with errors_exit():
        rate_list, mode_list = _numbers(rates), _modes(modes)
        cache = CacheConfig(inactive, active, max_flows)
    total = sum(
        len(rate_list) * (1 if m is SamplingMode.DETERMINISTIC else trials) for m in mode_list
    )
    with errors_exit(OSError):
        with Progress(console=err, transient=True, disable=not sys.stderr.isatty()) as progress:
            task = progress.add_task("sampling trials", total=total)

            def advance(_: TrialResult) -> None:
                progress.advance(task)

            truth, results = run_trials(files, cache, mode_list, rate_list, trials, advance)
        summary = summarize(results)
        _print_table(summary, truth)
        if report is not None:
            report.mkdir(parents=True, exist_ok=True)
            (report / "report.json").write_text(json.dumps(as_json(truth, results), indent=2))
            from probe.bench.plots import write_plots

            for path in [report / "report.json", *write_plots(summary, report)]:
                err.print(f"spanflow: wrote {path}", markup=False)


def _percent(row: dict[str, object], name: str) -> str:
    return f"{100 * float(str(row[name])):+.1f}%±{100 * float(str(row[name + '_sd'])):.1f}"


def _share(row: dict[str, object], name: str) -> str:
    return f"{100 * float(str(row[name])):.0f}%"


def _print_table(summary: list[dict[str, object]], truth: dict[str, bool]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Sampling error against the full capture (mean ± sd over trials)")
    for column in ("mode", "N", "packets err", "octets err", "flows seen", "top-10 src recall",
                   "top-10 flows octets err", "flood", "fast scan", "slow scan"):  # fmt: skip
        table.add_column(column, justify="left" if column == "mode" else "right")
    for row in summary:
        pct = functools.partial(_percent, row)
        share = functools.partial(_share, row)
        table.add_row(
            str(row["mode"]), str(row["rate"]), pct("packets_error"), pct("octets_error"),
            share("flows_seen"), share("top_sources_recall"), pct("top_flows_octets_error"),
            share("detect_flood"), share("detect_fast_scan"), share("detect_slow_scan"),
        )  # fmt: skip
    console = Console(width=None if sys.stdout.isatty() else 132)
    console.print(table)
    seen = ", ".join(f"{name} {'yes' if hit else 'no'}" for name, hit in truth.items())
    console.print(f"full capture: {seen} (detection shares are of trials)", markup=False)
