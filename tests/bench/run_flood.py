"""Spoofed-source SYN flood through ``spanflow convert - --max-flows M -o -``: memory and counts.

``python tests/bench/run_flood.py [--frames N] [--max-flows M] [--seed S]``
(``make flood``). Generates N SYN frames, each from a source key no other
frame uses (tests/flood_stream.py), and streams them into spanflow's stdin
while a thread sums the CSV it writes to stdout. Every 0.5 M frames written it
samples the child's VmRSS and VmHWM and the records received so far: with
every key new, the cache is full after M frames and each further frame ends
the least recently updated record ("cache_full"), so records must flow out
while the input is still coming. At the end it checks, from the generator's
parameters alone: records == frames, packets summed == frames, cache_full ==
N - M, forced == M, no other end reason, peak open flows == M. Exit status 1
when a check fails or the run fails.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # run as a script: make the tests package importable

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
from tests.flood_stream import CHUNK_FRAMES, flood_chunks  # noqa: E402

SAMPLE_EVERY_FRAMES = 500_000
CHECKPOINTS = (1_000_000, 5_000_000, 10_000_000)
STREAMING_MIN_FRAMES = 1_000_000  # larger than every buffer between us and the CSV (~25 MB)
FINISH_TIMEOUT_S = 600.0


@dataclass(frozen=True, slots=True)
class Sample:
    """The child's memory and the records received when ``frames`` frames had been written."""

    frames: int
    memory: Memory
    records: int


@dataclass(frozen=True, slots=True)
class FloodRun:
    frames: int
    max_flows: int
    samples: list[Sample]
    records_at_end_of_input: int
    finished: Finished
    tally: CsvTally
    wall_s: float


def run(frames: int, max_flows: int, seed: int) -> FloodRun:
    """Stream the flood into spanflow, sampling its memory, and wait for it to finish."""
    started = time.perf_counter()
    child = ChildStream(["--max-flows", str(max_flows)])
    samples: list[Sample] = []
    try:
        chunks = flood_chunks(frames, seed, CHUNK_FRAMES)
        child.write(next(chunks))  # the pcap file header
        for begin, chunk in zip(range(0, frames, CHUNK_FRAMES), chunks, strict=True):
            child.write(chunk)
            written = min(frames, begin + CHUNK_FRAMES)
            if written % SAMPLE_EVERY_FRAMES == 0 or written == frames:
                samples.append(Sample(written, child.sample(), child.records()))
        at_end_of_input = child.records()
        finished = child.finish(FINISH_TIMEOUT_S)
    finally:
        child.kill()
    wall_s = time.perf_counter() - started
    return FloodRun(frames, max_flows, samples, at_end_of_input, finished, child.tally, wall_s)


def failed_checks(flood: FloodRun) -> list[str]:
    """Every invariant the run broke, as one line each (expected values from the parameters)."""
    n, m, tally, done = flood.frames, flood.max_flows, flood.tally, flood.finished
    evicted = max(0, n - m)
    expected = {
        "exit status": (done.returncode, 0),
        "frames decoded": (done.summary_figure(FRAMES_LINE, 2), n),
        "records": (tally.records, n),
        "packets summed": (tally.packets, n),
        "cache_full records": (tally.by_reason["cache_full"], evicted),
        "forced records": (tally.by_reason["forced"], n - evicted),
        "idle + active + end_of_flow records": (
            sum(tally.by_reason[name] for name in ("idle", "active", "end_of_flow")),
            0,
        ),
        "peak open flows": (done.summary_figure(PEAK_LINE), min(n, m)),
    }
    problems = [f"{what}: {got} != {want}" for what, (got, want) in expected.items() if got != want]
    if n >= STREAMING_MIN_FRAMES and flood.records_at_end_of_input == 0:
        problems.append("no record arrived before the end of input")
    return problems


def report(flood: FloodRun) -> None:
    done = flood.finished
    print(
        f"spoofed-source flood: {flood.frames} SYN frames, each a new key, "
        f"--max-flows {flood.max_flows}"
    )
    print()
    print("| frames written | VmRSS MB | VmHWM MB | records received |")
    print("| ---: | ---: | ---: | ---: |")
    for s in flood.samples:
        mark = " **" if s.frames in CHECKPOINTS else ""
        cells = (
            f"{s.frames:,}{mark}",
            f"{s.memory.rss_mb:.1f}",
            f"{s.memory.hwm_mb:.1f}",
            f"{s.records:,}",
        )
        print(table_row(*cells))
    print()
    by_end = ", ".join(f"{name} {flood.tally.by_reason[name]}" for name in END_REASONS)
    print(f"records {flood.tally.records:,} ({by_end}); packets {flood.tally.packets:,}")
    print(f"records received before the input ended: {flood.records_at_end_of_input:,}")
    print(
        f"peak RSS (VmHWM) {done.peak.hwm_mb:.1f} MB; peak VmRSS sampled {done.peak.rss_mb:.1f} MB"
    )
    rate = flood.frames / done.wall_s / 1e6
    print(
        f"spanflow: {done.wall_s:.1f} s wall ({rate:.2f} Mpps end to end), {done.cpu_s:.1f} s CPU"
    )
    print(f"whole run: {flood.wall_s:.1f} s wall")
    for line in done.stderr.splitlines():
        print(f"  {line}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10_000_000, help="frames (default 10000000)")
    parser.add_argument("--max-flows", type=int, default=65536, help="cache size (default 65536)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    args = parser.parse_args(argv)
    print(f"load average before: {load_average()}")
    try:
        flood = run(args.frames, args.max_flows, args.seed)
    except StreamError as exc:
        print(f"run_flood: {exc}", file=sys.stderr)
        return 1
    report(flood)
    print(f"load average after: {load_average()}")
    problems = failed_checks(flood)
    for problem in problems:
        print(f"FAIL {problem}")
    print("all checks passed" if not problems else f"{len(problems)} check(s) failed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
