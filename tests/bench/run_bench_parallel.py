"""``convert --jobs 1`` against ``--jobs 2`` on one capture and on it split in files (``make bench-parallel``).

``python tests/bench/run_bench_parallel.py [--packets N] [--files K] [--rounds R]``.
The capture is the seeded bench capture (make_capture.py) under bench-out/,
split with ``editcap -c`` into K files. Each round runs both commands one after
the other (paired, alternating which goes first); wall time is the child's,
CPU is that of every process it started (a cpuacct cgroup per run, so worker
processes count; without cgroups, only waited-for children count and the
report says so). Both runs use one --max-flows large enough that no cache
fills, so both are exact and their record counts must agree. The exit status
is 0 whatever the numbers, 1 when a run fails or the records differ.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from make_capture import write_capture  # run as a script: its folder is on sys.path

REPO = Path(__file__).resolve().parents[2]
OUT_DIR = REPO / "bench-out"
SPANFLOW = REPO / ".venv" / "bin" / "spanflow"
CPUACCT = Path("/sys/fs/cgroup/cpuacct")
MAX_FLOWS = 524288  # above the capture's peak of open flows: no cache fills, both runs exact
TARGET_SPEEDUP, TARGET_CPU_RATIO = 1.2, 1.15
RUN_TIMEOUT_S = 900


@dataclass(frozen=True, slots=True)
class Run:
    wall_s: float
    cpu_s: float
    records: str  # the summary's records line: counts by end reason, packets, octets
    slices: int


def run_convert(files: list[Path], jobs: int) -> Run:
    command = [str(SPANFLOW), "convert", *map(str, files), "--max-flows", str(MAX_FLOWS),
               "-o", "/dev/null", "--jobs", str(jobs)]  # fmt: skip
    group = CPUACCT / f"spanflow-bench-{uuid.uuid4().hex[:8]}" if _cgroups() else None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    if group is not None:
        group.mkdir()
        command = ["sh", "-c", f'echo $$ > {group}/cgroup.procs && exec "$@"', "sh", *command]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
        wall = time.perf_counter() - started
        if group is not None:
            cpu = int((group / "cpuacct.usage").read_text()) / 1e9
        else:
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    finally:
        if group is not None:
            _remove_group(group)
    if done.returncode != 0:
        raise SystemExit(f"run failed ({done.returncode}): {' '.join(command)}\n{done.stderr}")
    records = next(line for line in done.stderr.splitlines() if " records (" in line)
    slices = re.search(r"parallel: (\d+) slice", done.stderr)
    return Run(wall, cpu, records.split(": ", 1)[1], int(slices.group(1)) if slices else 1)


def _cgroups() -> bool:
    return CPUACCT.is_dir() and os.access(CPUACCT, os.W_OK)


def _remove_group(group: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            group.rmdir()
            return
        except OSError:  # its last processes are still exiting
            time.sleep(0.05)


def split(capture: Path, files: int, packets: int) -> list[Path]:
    folder = OUT_DIR / f"{capture.stem}-split{files}"
    parts = sorted(folder.glob("part*.pcap"))
    if len(parts) == files:
        return parts
    editcap = shutil.which("editcap")
    if editcap is None:
        raise SystemExit("editcap (Debian package wireshark-common or tshark) is needed")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    per_file = -(-packets // files)
    subprocess.run([editcap, "-F", "pcap", "-c", str(per_file), capture, folder / "part.pcap"],
                   check=True, timeout=RUN_TIMEOUT_S)  # fmt: skip
    return sorted(folder.glob("part*.pcap"))


def compare(name: str, files: list[Path], rounds: int) -> tuple[Run, Run]:
    ones: list[Run] = []
    twos: list[Run] = []
    for i in range(rounds):
        order = [1, 2] if i % 2 == 0 else [2, 1]
        for jobs in order:
            (ones if jobs == 1 else twos).append(run_convert(files, jobs))
    one, two = _median(ones), _median(twos)
    speedup, cpu_ratio = one.wall_s / two.wall_s, two.cpu_s / one.cpu_s
    print(f"\n{name}: {len(files)} file(s), {rounds} paired rounds (median)")
    print(f"  {'':10} {'wall s':>8} {'cpu s':>8} {'slices':>7}")
    print(f"  {'--jobs 1':10} {one.wall_s:8.2f} {one.cpu_s:8.2f} {one.slices:7}")
    print(f"  {'--jobs 2':10} {two.wall_s:8.2f} {two.cpu_s:8.2f} {two.slices:7}")
    verdict = "PASS" if speedup >= TARGET_SPEEDUP else "MISS"
    print(f"  wall speed-up {speedup:.2f} (target >= {TARGET_SPEEDUP}) {verdict}")
    verdict = "PASS" if cpu_ratio <= TARGET_CPU_RATIO else "MISS"
    print(
        f"  total CPU --jobs 2 / --jobs 1 {cpu_ratio:.2f} (target <= {TARGET_CPU_RATIO}) {verdict}"
    )
    print(f"  records: {one.records}")
    if {r.records for r in ones + twos} != {one.records}:
        raise SystemExit(f"records differ between runs: {sorted({r.records for r in ones + twos})}")
    return one, two


def _median(runs: list[Run]) -> Run:
    walls = sorted(runs, key=lambda r: r.wall_s)
    middle = walls[len(walls) // 2]
    return Run(statistics.median(r.wall_s for r in runs), statistics.median(r.cpu_s for r in runs),
               middle.records, middle.slices)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=10_000_000)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    OUT_DIR.mkdir(exist_ok=True)
    capture = OUT_DIR / f"bench-{args.packets}p-seed{args.seed}.pcap"
    if not capture.exists():
        print(f"writing {capture} ...", flush=True)
        write_capture(capture, args.packets, args.seed)
    parts = split(capture, args.files, args.packets)
    size = capture.stat().st_size
    print(f"capture {capture.name}: {args.packets:,} frames, {size / 1e9:.2f} GB; "
          f"{os.cpu_count()} CPUs; CPU {'per cgroup' if _cgroups() else 'of waited-for children only'}")  # fmt: skip
    one, two = compare("one file", [capture], args.rounds)
    compare("split", parts, args.rounds)
    per_worker = size / two.cpu_s * 2 / 1e6  # MB of capture per CPU second, two workers' share
    print(f"\nthroughput: {size / one.wall_s / 1e6:.0f} MB/s with one job, "
          f"{size / two.wall_s / 1e6:.0f} MB/s with two; {per_worker / 2:.0f} MB per CPU-second")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
