"""An hour of mixed traffic, compressed in time, through ``spanflow convert - -o -``: flat memory.

``python tests/bench/run_soak.py [--max-flows M] [--seed S] [--span-s T] [--burst-frames B]``
(``make soak``). Streams tests/bench/soak_stream.py's traffic (long-lived flows
that cross the active timeout, short flows ending by FIN, RST or idleness,
10 % IPv6, one burst of new keys that overfills the cache) into spanflow's
stdin while a thread sums the CSV it writes, and samples the child's VmRSS
every few hundred thousand frames. Checks, against the generator's own
columns: packets summed == frames decoded == frames written, octets summed ==
the IP lengths written, end_of_flow records == FIN/RST packets (each ends
exactly the record it joins), every end reason present (cache_full only with
a burst; without one, none), long-lived flows <= forced records <= M, peak
open flows <= M, and RSS growth after warm-up within RSS_GROWTH_LIMIT_MB.
Exit status 1 when a check fails or the run fails.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # run as a script: make the tests package importable

from tests.bench.soak_stream import SoakConfig, SoakStream, Truth  # noqa: E402
from tests.bench.stream_run import (  # noqa: E402
    END_REASONS,
    FRAMES_LINE,
    PEAK_LINE,
    ChildStream,
    CsvTally,
    Finished,
    Memory,
    StreamError,
    load_average,
    table_row,
)

DEFAULT_MAX_FLOWS = 6144  # the generator's steady population is about 5,000 open flows
SAMPLE_EVERY_FRAMES = 250_000
WARMUP_SHARE = 0.4  # of the frames: the allocator settles within about 4 M frames (measured)
RSS_GROWTH_LIMIT_MB = 8.0  # a leak of 4 bytes per record of the 2 M would show
FINISH_TIMEOUT_S = 600.0


@dataclass(frozen=True, slots=True)
class Sample:
    """The child's memory and the records received when ``frames`` frames had been written."""

    frames: int
    stream_s: float
    memory: Memory
    records: int


@dataclass(frozen=True, slots=True)
class SoakRun:
    config: SoakConfig
    max_flows: int
    samples: list[Sample]
    truth: Truth
    finished: Finished
    tally: CsvTally
    wall_s: float

    def after_warmup(self) -> list[Sample]:
        warm = WARMUP_SHARE * self.truth.frames
        return [s for s in self.samples if s.frames >= warm] or self.samples[-1:]

    def rss_growth_mb(self) -> float:
        steady = self.after_warmup()
        return steady[-1].memory.rss_mb - steady[0].memory.rss_mb


def run(config: SoakConfig, max_flows: int) -> SoakRun:
    """Stream the soak into spanflow, sampling its memory, and wait for it to finish."""
    started = time.perf_counter()
    stream = SoakStream(config)
    child = ChildStream(["--max-flows", str(max_flows)])
    samples: list[Sample] = []
    next_sample = SAMPLE_EVERY_FRAMES
    try:
        for chunk in stream.chunks():
            child.write(chunk)
            if stream.truth.frames >= next_sample:
                memory, records = child.sample(), child.records()
                samples.append(Sample(stream.truth.frames, stream.stream_s, memory, records))
                next_sample += SAMPLE_EVERY_FRAMES
        finished = child.finish(FINISH_TIMEOUT_S)
    finally:
        child.kill()
    wall_s = time.perf_counter() - started
    return SoakRun(config, max_flows, samples, stream.truth, finished, child.tally, wall_s)


def failed_checks(soak: SoakRun) -> list[str]:
    """Every invariant the run broke, as one line each."""
    truth, tally, done, m = soak.truth, soak.tally, soak.finished, soak.max_flows
    reasons = tally.by_reason
    expected = {
        "exit status": (done.returncode, 0),
        "frames decoded": (done.summary_figure(FRAMES_LINE, 2), truth.frames),
        "packets summed": (tally.packets, truth.frames),
        "octets summed": (tally.octets, truth.octets),
        "end_of_flow records": (reasons["end_of_flow"], truth.fin_rst_packets),
        "records by end reason summed": (sum(reasons.values()), tally.records),
    }
    problems = [f"{what}: {got} != {want}" for what, (got, want) in expected.items() if got != want]
    for reason in END_REASONS:
        if reason == "cache_full" and soak.config.burst_frames == 0:
            if max(truth.open_flows_by_window) < m and reasons[reason]:
                problems.append(
                    f"{reasons[reason]} cache_full records, though the cache never filled"
                )
        elif reasons[reason] == 0:
            problems.append(f"no {reason} record")
    if not truth.long_flows <= reasons["forced"] <= m:
        problems.append(f"forced records {reasons['forced']} not in [{truth.long_flows}, {m}]")
    peak = done.summary_figure(PEAK_LINE)
    if peak > m:
        problems.append(f"peak open flows {peak} > --max-flows {m}")
    if soak.rss_growth_mb() > RSS_GROWTH_LIMIT_MB:
        problems.append(
            f"RSS grew {soak.rss_growth_mb():.1f} MB after warm-up (limit {RSS_GROWTH_LIMIT_MB})"
        )
    return problems


def report(soak: SoakRun) -> None:
    c, truth, done = soak.config, soak.truth, soak.finished
    print(
        f"soak: {truth.frames:,} frames over {c.span_s:.0f} s of stream time; "
        f"{c.long_flows} long-lived "
        f"flows, {c.short_per_s:.0f} short flows/s, a burst of {c.burst_frames} new keys at "
        f"{c.burst_at_s:.0f} s; --max-flows {soak.max_flows}"
    )
    print()
    print("| frames written | stream s | VmRSS MB | VmHWM MB | records received |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for s in soak.samples:
        memory = s.memory
        cells = (
            f"{s.frames:,}",
            f"{s.stream_s:.0f}",
            f"{memory.rss_mb:.1f}",
            f"{memory.hwm_mb:.1f}",
            f"{s.records:,}",
        )
        print(table_row(*cells))
    print()
    steady = [s.memory.rss_mb for s in soak.after_warmup()]
    print(
        f"RSS after warm-up ({WARMUP_SHARE:.0%} of the frames): first {steady[0]:.1f} MB, "
        f"last {steady[-1]:.1f} MB, max {max(steady):.1f} MB, "
        f"growth {soak.rss_growth_mb():+.1f} MB; peak (VmHWM) {done.peak.hwm_mb:.1f} MB"
    )
    by_end = ", ".join(f"{name} {soak.tally.by_reason[name]:,}" for name in END_REASONS)
    print(f"records {soak.tally.records:,} ({by_end})")
    print(
        f"packets {soak.tally.packets:,}, octets {soak.tally.octets:,}; "
        f"FIN/RST packets {truth.fin_rst_packets:,}"
    )
    model = truth.open_flows_by_window
    print(
        f"open flows: spanflow peak {done.summary_figure(PEAK_LINE):,} of {soak.max_flows:,}; "
        f"generator's model at window ends: max {max(model):,}, last {model[-1]:,}"
    )
    rate = truth.frames / done.wall_s / 1e6
    print(
        f"spanflow: {done.wall_s:.1f} s wall ({rate:.2f} Mpps end to end), {done.cpu_s:.1f} s CPU"
    )
    print(f"whole run: {soak.wall_s:.1f} s wall")
    for line in done.stderr.splitlines():
        print(f"  {line}")


CONFIG_HELP = {
    "span_s": "stream time, s",
    "long_flows": "long-lived flows",
    "short_per_s": "short flows per second",
    "burst_frames": "one-packet flows in the burst, 0 for none",
    "burst_at_s": "burst start, s",
    "seed": "random seed",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--max-flows", type=int, default=DEFAULT_MAX_FLOWS, help="cache size")
    defaults = SoakConfig()
    for name, text in CONFIG_HELP.items():
        value = getattr(defaults, name)
        parser.add_argument(
            "--" + name.replace("_", "-"), type=type(value), default=value, help=text
        )
    args = parser.parse_args(argv)
    config = SoakConfig(**{name: getattr(args, name) for name in CONFIG_HELP})
    print(f"load average before: {load_average()}")
    try:
        soak = run(config, args.max_flows)
    except StreamError as exc:
        print(f"run_soak: {exc}", file=sys.stderr)
        return 1
    report(soak)
    print(f"load average after: {load_average()}")
    problems = failed_checks(soak)
    for problem in problems:
        print(f"FAIL {problem}")
    print("all checks passed" if not problems else f"{len(problems)} check(s) failed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
