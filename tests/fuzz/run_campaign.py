"""Coverage-guided fuzzing campaign: each atheris target, kernels uncompiled and compiled.

    python tests/fuzz/run_campaign.py [--seconds 600] [--runs N] [--jobs 2]
                                      [--targets decode,readers] [--modes uncompiled,compiled]
                                      [--work-dir DIR]

``--seconds`` is the wall-clock budget of the whole campaign, shared by the
target x mode runs, ``--jobs`` at a time. A run that crashes is restarted on
the same corpus until its time is used (at most 20 restarts); crash inputs are
kept in WORK_DIR/crashes/. Prints, per run: cases tried, crashes, coverage
(atheris edge counter, libFuzzer features) and corpus size. Exit status 1 if
any run crashed.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TARGETS = {"decode": "fuzz_decode.py", "readers": "fuzz_readers.py"}
MAX_LEN = {"decode": 4096, "readers": 1024}
MODES = ("uncompiled", "compiled")
MAX_RESTARTS = 20
STATUS = re.compile(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/(\S+)", re.MULTILINE)
EXECUTED = re.compile(r"stat::number_of_executed_units: (\d+)")
CRASH_FILE = re.compile(r"Test unit written to (\S+)")


@dataclass(slots=True)
class RunResult:
    target: str
    mode: str
    cases: int = 0
    crashes: int = 0
    coverage: int = 0
    features: int = 0
    corpus_units: int = 0
    corpus_size: str = "0b"
    seconds: float = 0.0
    crash_files: tuple[str, ...] = ()


def libfuzzer_args(
    target: str, corpus: Path, crashes: Path, seconds: int, runs: int | None
) -> list[str]:
    limit = f"-runs={runs}" if runs is not None else f"-max_total_time={max(seconds, 1)}"
    return [
        str(corpus), limit, f"-max_len={MAX_LEN[target]}", "-len_control=0", "-timeout=120",
        "-rss_limit_mb=6144", "-print_final_stats=1", f"-artifact_prefix={crashes}/",
    ]  # fmt: skip


def run_one(target: str, mode: str, seconds: float, runs: int | None, work: Path) -> RunResult:
    """Fuzz one target in one mode until its time (or case count) is used up."""
    result = RunResult(target, mode)
    corpus = work / "corpus" / f"{target}-{mode}"
    crashes = work / "crashes" / f"{target}-{mode}"
    logs = work / "logs"
    for folder in (corpus, crashes, logs):
        folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("NUMBA_DISABLE_JIT", None)
    if mode == "uncompiled":
        env["NUMBA_DISABLE_JIT"] = "1"  # read by numba at import, before any kernel exists
    started = time.monotonic()
    found: list[str] = []
    for attempt in range(MAX_RESTARTS + 1):
        left = seconds - (time.monotonic() - started)
        if runs is None and left < 1:
            break
        if runs is not None and result.cases >= runs:
            break
        remaining_runs = None if runs is None else runs - result.cases
        command = [sys.executable, str(Path(__file__).with_name(TARGETS[target]))]
        command += libfuzzer_args(target, corpus, crashes, math.ceil(left), remaining_runs)
        log = logs / f"{target}-{mode}-{attempt}.log"
        with log.open("w") as out:
            subprocess.run(
                command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, check=False
            )
        text = log.read_text(errors="replace")
        executed = EXECUTED.findall(text)
        statuses = STATUS.findall(text)
        if executed:
            result.cases += int(executed[-1])
        elif statuses:
            result.cases += int(statuses[-1][0])
        if statuses:
            _, cov, ft, units, size = statuses[-1]
            result.coverage, result.features = int(cov), int(ft)
            result.corpus_units, result.corpus_size = int(units), size
        crashed = CRASH_FILE.findall(text)
        found += crashed
        if not crashed:
            break
    result.crashes = len(found)
    result.crash_files = tuple(found)
    result.seconds = time.monotonic() - started
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="wall-clock budget in total")
    parser.add_argument("--runs", type=int, default=None, help="cases per run instead of a time")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time")
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--work-dir", type=Path, default=None)
    options = parser.parse_args()
    targets = [t for t in options.targets.split(",") if t]
    modes = [m for m in options.modes.split(",") if m]
    unknown = sorted(set(targets) - set(TARGETS)) + sorted(set(modes) - set(MODES))
    if unknown:
        parser.error(f"unknown target or mode: {', '.join(unknown)}")
    work = options.work_dir or Path(tempfile.mkdtemp(prefix="spanflow-fuzz-"))
    plan = [(t, m) for t in targets for m in modes]
    jobs = max(1, min(options.jobs, len(plan)))
    per_run = options.seconds / math.ceil(len(plan) / jobs)
    print(
        f"fuzz: {len(plan)} runs, {jobs} at a time, {per_run:.0f} s each; work dir {work}",
        flush=True,
    )
    with ThreadPoolExecutor(jobs) as pool:
        results = list(
            pool.map(lambda tm: run_one(tm[0], tm[1], per_run, options.runs, work), plan)
        )
    print(
        f"{'target':<8} {'mode':<10} {'cases':>8} {'crashes':>7} {'cov':>5} {'ft':>6} {'corpus':>14} {'s':>5}"
    )
    for r in results:
        corpus = f"{r.corpus_units}/{r.corpus_size}"
        print(
            f"{r.target:<8} {r.mode:<10} {r.cases:>8} {r.crashes:>7} {r.coverage:>5} {r.features:>6} {corpus:>14} {r.seconds:>5.0f}"
        )
        for name in r.crash_files:
            print(f"  crash input: {name}")
    total = sum(r.crashes for r in results)
    print(f"fuzz: {sum(r.cases for r in results)} cases, {total} crashes")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
