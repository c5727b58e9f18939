"""Speed and memory of ``spanflow convert`` against softflowd, paired in one run, as a report.

``python tests/bench/run_bench.py [--packets N,N] [--seed S] [--runs R] [--keep]``
(``make bench``). Captures are made by make_capture.py under bench-out/ and
reused while size and seed stay the same (default: 2,000,000 and 10,000,000
packets). Every tool runs as a child process; wall time, CPU time and peak RSS
come from the ``wait4`` rusage of that child.

On each capture spanflow and softflowd export NetFlow v9 unpaced to one nfcapd
on 127.0.0.1 (``spanflow convert F -c 127.0.0.1:P --format 9 --pace 0 -q`` and
``softflowd -r F -n 127.0.0.1:P -v 9 -d -m 65536``), one warm-up each, then R
pairs, A B B A A B ... so drifting machine load falls on both; the ratio is
taken pair by pair and its median printed. Then: the fixed cost (``--help``,
the 302-frame web.pcap to the collector and to CSV, median of R), CPU per
packet (the largest capture's CPU minus web.pcap's, per packet), the kernels'
ahead-of-time build and numba's cold first run (the fallback), records of the
compiled kernels against numba's byte for byte on the first capture, the flow
file formats, sampled conversion and the encoders. Exit status 0 whatever the
numbers; 1 when a tool is missing, a run fails or outputs disagree.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import hashlib
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from statistics import median

from bench_export import (
    encode_rates,
    sampled_conversion,
)  # run as a script: its folder is on sys.path

from tests.collectors import free_udp_port, stop_process, udp_socket_state

REPO = Path(__file__).resolve().parents[2]
OUT_DIR = REPO / "bench-out"
SPANFLOW = REPO / ".venv" / "bin" / "spanflow"
SOFTFLOWD_MAX_FLOWS = 65536  # spanflow's default cache size (softflowd's own default is 8192)
COLLECTOR_RCVBUF = 8 << 20  # nfcapd -B; the kernel caps it at net.core.rmem_max
TARGET_RSS_MB = 400.0
# Issue #15: softflowd wall / spanflow wall on 2 M and 10 M packets, --help, a tiny capture
# converted, CPU per packet, seconds compiling on a first run.
TARGET_RATIO = {2_000_000: 2.0, 10_000_000: 3.0}
TARGET_HELP_S, TARGET_FIXED_S, TARGET_CPU_US, TARGET_FIRST_COMPILE_S = 0.15, 0.3, 0.35, 5.0
# Flow file outputs, against CSV: Parquet end to end no slower, its peak RSS within 50 MB.
TARGET_PARQUET_WALL_RATIO, TARGET_PARQUET_RSS_DELTA_MB = 1.00, 50.0
FLOW_FILES = {"CSV": "flows.csv", "Parquet": "flows.parquet", "Arrow IPC stream": "flows.arrows"}
STARTUP_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
DRAIN_TIMEOUT_S = 30.0


class BenchError(Exception):
    """A tool is missing, failed, or did not finish in time."""


@dataclass(frozen=True, slots=True)
class Run:
    """One finished child process: wall time, peak RSS, exit status, output."""

    wall_s: float
    cpu_s: float  # user + system
    max_rss_kib: int
    returncode: int
    stdout: str
    stderr: str

    @property
    def rss_mb(self) -> float:
        return self.max_rss_kib * 1024 / 1e6


# A background subshell waits on fd 4 for our go, then becomes the tool; the shell
# tells us the subshell's PID on fd 3 and exits, so the tool is not its child to reap.
LAUNCHER = '{ exec 3>&-; read _ <&4; exec "$@" 4<&-; } & echo $! >&3'
PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    """Adopt orphaned descendants, so a tool started by LAUNCHER becomes our child to wait4."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def run_measured(argv: list[str], env: dict[str, str], timeout_s: float) -> Run:
    """Run ``argv``, wait with a deadline, and return its wall time and its own rusage.

    A process's ``ru_maxrss`` (KiB) starts at the RSS of the process that
    forked it, so a tool forked from this Python would never show less than
    this Python does. The tool is therefore forked by a small shell that exits
    first; as subreaper we inherit the tool, release it, wait4 it (pidfd: a
    deadline without polling) and read its own peak. The clock starts at the
    release. Call ``become_subreaper`` first.
    """
    with tempfile.TemporaryDirectory(prefix="spanflow-bench-") as tmp:
        out_path, err_path = Path(tmp, "stdout"), Path(tmp, "stderr")
        write = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        pid_r, pid_w = os.pipe()
        go_r, go_w = os.pipe()
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(out_path), write, 0o600),
            (os.POSIX_SPAWN_OPEN, 2, str(err_path), write, 0o600),
            (os.POSIX_SPAWN_DUP2, pid_w, 3),
            (os.POSIX_SPAWN_DUP2, go_r, 4),
        ]
        try:
            shell = os.posix_spawn("/bin/sh", ["sh", "-c", LAUNCHER, "sh", *argv], env,
                                   file_actions=actions)  # fmt: skip
            os.close(pid_w)
            os.close(go_r)
            with os.fdopen(pid_r) as reply:  # EOF when the shell has exited
                announced = reply.read().strip()
            _, shell_status = os.waitpid(shell, 0)
            if not announced.isdigit():
                raise BenchError(f"could not start {argv[0]} (launcher status {shell_status})")
            pid = int(announced)
            pidfd = os.pidfd_open(pid)  # our child now, alive until we let it go
            started = time.perf_counter()
            os.close(go_w)
        except BaseException:
            for fd in (pid_w, go_r, go_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
            raise
        try:
            ready, _, _ = select.select([pidfd], [], [], timeout_s)
        except BaseException:  # interrupted: the tool must not outlive the bench
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            os.wait4(pid, 0)
            os.close(pidfd)
            raise
        if not ready:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        _, status, usage = os.wait4(pid, 0)
        wall_s = time.perf_counter() - started
        os.close(pidfd)
        stdout = out_path.read_text(errors="replace")
        stderr = err_path.read_text(errors="replace")
    if not ready:
        raise BenchError(f"{Path(argv[0]).name} did not finish within {timeout_s:g} s")
    cpu_s = usage.ru_utime + usage.ru_stime
    return Run(wall_s, cpu_s, usage.ru_maxrss, os.waitstatus_to_exitcode(status), stdout, stderr)


def checked(run: Run, argv: list[str]) -> Run:
    if run.returncode != 0:
        tail = "\n".join(run.stderr.splitlines()[-5:])
        raise BenchError(f"{' '.join(argv)} exited with {run.returncode}:\n{tail}")
    return run


def find_tool(name: str, path: Path | None = None) -> str:
    """``path`` if given, else ``name`` on PATH or in /usr/sbin (softflowd lives there)."""
    if path is not None:
        found = str(path) if os.access(path, os.X_OK) else None
    else:
        found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if found is None:
        raise BenchError(f"{name} not found ({path or 'PATH, /usr/sbin'}); run `make setup`")
    return found


# ----------------------------------------------------------------- the capture


def capture(n_packets: int, seed: int) -> tuple[Path, dict[str, int]]:
    """The capture for (size, seed) and its ground truth, generated unless already there."""
    OUT_DIR.mkdir(exist_ok=True)
    path = OUT_DIR / f"bench-{n_packets}p-seed{seed}.pcap"
    truth_path = path.with_suffix(".json")
    if path.is_file() and truth_path.is_file():
        truth: dict[str, int] = json.loads(truth_path.read_text())
        if truth.get("file_bytes") == path.stat().st_size:
            print(f"reusing {path.relative_to(REPO)}", flush=True)
            return path, truth
    print(f"writing {path.relative_to(REPO)} ({n_packets} packets, seed {seed})...", flush=True)
    partial = path.with_suffix(".pcap.partial")
    argv = [sys.executable, "-m", "tests.bench.make_capture", str(partial),
            "--packets", str(n_packets), "--seed", str(seed)]  # fmt: skip
    started = time.perf_counter()
    try:
        made = subprocess.run(
            argv, cwd=REPO, capture_output=True, text=True, timeout=600, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError("make_capture did not finish within 600 s") from exc
    if made.returncode != 0:
        raise BenchError(f"make_capture failed:\n{made.stderr[-2000:]}")
    truth = json.loads(made.stdout)
    partial.replace(path)
    truth_path.write_text(json.dumps(truth, indent=1) + "\n")
    print(f"  written in {time.perf_counter() - started:.1f} s", flush=True)
    return path, truth


# ----------------------------------------------------------------- spanflow alone


def spanflow_env(work: Path, kernels: str = "auto") -> dict[str, str]:
    """The environment of every spanflow run: ``kernels`` (aot, jit), numba's cache in ``work``."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(work / "numba-cache"), "SPANFLOW_KERNELS": kernels}
    env.pop("NUMBA_DISABLE_JIT", None)
    return env


@dataclass(frozen=True, slots=True)
class Compiling:
    """What a first run compiles: the ahead-of-time build (pip install), numba's cold run."""

    aot_build_s: float
    aot_first_run: Run  # a run right after the build: loads the module, compiles nothing
    jit_cold: Run  # SPANFLOW_KERNELS=jit with an empty numba cache (the fallback)


def bench_compiling(work: Path, sample: Path) -> Compiling:
    """Time the kernels' build into a scratch folder, then a first run each way."""
    spanflow = find_tool("spanflow", SPANFLOW)
    argv = [spanflow, "convert", str(sample), "-o", str(work / "first.csv"), "-q"]
    build = [sys.executable, "-c",
             "import sys; from pathlib import Path; from aot.build import build; "
             "build(Path(sys.argv[1]), quiet=True)", str(work / "aot-build")]  # fmt: skip
    (work / "aot-build").mkdir()
    print("compiling: the kernels' ahead-of-time build, then numba's cold first run", flush=True)
    built = checked(run_measured(build, {**os.environ, "PYTHONPATH": str(REPO)}, 900), build)
    first = checked(run_measured(argv, spanflow_env(work, "aot"), 120), argv)
    (work / "numba-cache").mkdir(exist_ok=True)
    cold = checked(run_measured(argv, spanflow_env(work, "jit"), 900), argv)
    print(f"  build {built.wall_s:.1f} s, first run {first.wall_s:.2f} s, numba cold "
          f"{cold.wall_s:.1f} s", flush=True)  # fmt: skip
    return Compiling(built.wall_s, first, cold)


def bench_fixed(port: int, work: Path, runs: int) -> dict[str, list[Run]]:
    """``--help`` and the 302-frame sample converted to the collector and to CSV, ``runs`` each."""
    spanflow = find_tool("spanflow", SPANFLOW)
    sample = str(REPO / "samples" / "web.pcap")
    argvs = {
        "spanflow --help": [spanflow, "--help"],
        "web.pcap to v9 (collector)": [spanflow, "convert", sample, "-c", f"127.0.0.1:{port}",
                                       "--format", "9", "--pace", "0", "-q"],
        "web.pcap to CSV": [spanflow, "convert", sample, "-o", str(work / "small.csv"), "-q"],
    }  # fmt: skip
    env = spanflow_env(work)
    done: dict[str, list[Run]] = {label: [] for label in argvs}
    for _ in range(runs + 1):  # the first round warms the page cache
        for label, argv in argvs.items():
            done[label].append(checked(run_measured(argv, env, STARTUP_TIMEOUT_S * 6), argv))
    return {label: got[1:] for label, got in done.items()}


def same_records(pcap: Path, work: Path, frames: int, ip_octets: int) -> tuple[bool, Run, Run]:
    """The compiled kernels' and numba's CSV of the capture, byte for byte; totals checked."""
    spanflow = find_tool("spanflow", SPANFLOW)
    outputs = {mode: work / f"same-{mode}.csv" for mode in ("aot", "jit")}
    runs = {}
    for mode, out in outputs.items():
        argv = [spanflow, "convert", str(pcap), "-o", str(out)]
        runs[mode] = checked(run_measured(argv, spanflow_env(work, mode), 900), argv)
        totals = spanflow_totals(runs[mode].stderr)
        if totals != (frames, ip_octets):
            raise BenchError(f"{mode}: totals {totals} differ from the ground truth")
    same = digest(outputs["aot"]) == digest(outputs["jit"])
    for out in outputs.values():
        out.unlink()
    return same, runs["aot"], runs["jit"]


def digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 24):
            sha.update(chunk)
    return sha.hexdigest()


# ----------------------------------------------------------------- flow file outputs


@dataclass(frozen=True, slots=True)
class FlowFileResult:
    """The R runs of ``convert -o OUT -q`` for one output, and the records OUT holds."""

    label: str
    path: Path
    runs: list[Run]
    records: int

    @property
    def best(self) -> Run:
        return min(self.runs, key=lambda r: r.wall_s)

    @property
    def peak_rss_mb(self) -> float:
        return max(run.rss_mb for run in self.runs)

    @property
    def records_per_s(self) -> float:
        return self.records / self.best.wall_s


def count_records(path: Path) -> int:
    """Rows in a flow file: CSV lines minus the header, else pyarrow's own count."""
    if path.suffix == ".csv":
        lines, last = 0, b"\n"
        with path.open("rb") as stream:
            while chunk := stream.read(1 << 24):
                lines += chunk.count(b"\n")
                last = chunk[-1:]
        lines += last != b"\n"  # a last line without its newline
        if lines < 1:
            raise BenchError(f"{path} has no header line")
        return lines - 1
    import pyarrow.ipc
    import pyarrow.parquet

    if path.suffix == ".parquet":
        return int(pyarrow.parquet.read_metadata(path).num_rows)
    with pyarrow.ipc.open_stream(path) as reader:
        return int(reader.read_all().num_rows)


def bench_flow_files(pcap: Path, runs: int, work: Path, timeout_s: float) -> list[FlowFileResult]:
    """``runs`` rounds of the whole conversion to each flow file, in turn (csv, parquet, arrow, ...).

    Taking the outputs in turn within each round spreads drifting machine load
    over all of them.
    """
    spanflow = find_tool("spanflow", SPANFLOW)
    env = spanflow_env(work)
    argvs = {label: [spanflow, "convert", str(pcap), "-o", str(OUT_DIR / name), "-q"]
             for label, name in FLOW_FILES.items()}  # fmt: skip
    print(f"flow files: {' '.join(argvs['CSV'][:-3])} -o flows.{{csv,parquet,arrows}} -q, "
          f"{runs} rounds", flush=True)  # fmt: skip
    done: dict[str, list[Run]] = {label: [] for label in FLOW_FILES}
    for i in range(runs):
        for label, argv in argvs.items():
            done[label].append(checked(run_measured(argv, env, timeout_s), argv))
        print(f"  round {i + 1} " + "  ".join(
            f"{Path(argv[4]).suffix[1:]} {done[label][-1].wall_s:.2f} s"
            for label, argv in argvs.items()), flush=True)  # fmt: skip
    return [FlowFileResult(label, OUT_DIR / FLOW_FILES[label], done[label],
                           count_records(OUT_DIR / FLOW_FILES[label]))
            for label in FLOW_FILES]  # fmt: skip


def summary_records(stderr: str) -> int | None:
    """The record count of spanflow's summary line ``spanflow: N records (...``."""
    found = re.search(r"spanflow: (\d+) records \(", stderr)
    return int(found.group(1)) if found else None


def report_flow_files(pcap: Path, results: list[FlowFileResult], csv_run: Run) -> None:
    """Records, wall time, records/s and peak RSS per output, against CSV; counts must agree."""
    csv = results[0]
    n = len(csv.runs)
    print()
    print(f"flow files from {pcap.name} (the capture above), "
          f"convert -o OUT -q: wall best of {n}, peak RSS highest of {n}")  # fmt: skip
    print(f"{'output':<26}{'records':>12}{'wall s':>9}{'records/s':>13}{'peak RSS MB':>13}"
          f"{'wall/CSV':>10}{'RSS-CSV MB':>12}")  # fmt: skip
    for got in results:
        wall_ratio = got.best.wall_s / csv.best.wall_s
        rss_delta = got.peak_rss_mb - csv.peak_rss_mb
        print(f"{got.path.name:<26}{got.records:>12,}{got.best.wall_s:>9.2f}"
              f"{got.records_per_s:>13,.0f}{got.peak_rss_mb:>13.1f}"
              f"{wall_ratio:>10.3f}{rss_delta:>+12.1f}")  # fmt: skip
    parquet = next(got for got in results if got.path.suffix == ".parquet")
    print()
    print(f"{'targets':<36}{'value':>9}{'target':>14}")
    targets = [
        ("Parquet / CSV (wall, best)", parquet.best.wall_s / csv.best.wall_s, "<=",
         TARGET_PARQUET_WALL_RATIO),
        ("Parquet - CSV peak RSS MB", parquet.peak_rss_mb - csv.peak_rss_mb, "<=",
         TARGET_PARQUET_RSS_DELTA_MB),
    ]  # fmt: skip
    for label, value, sense, target in targets:
        ok = value >= target if sense == ">=" else value <= target
        print(f"  {label:<34}{value:>9.2f}{sense:>8} {target:<5g}{verdict(ok):>6}")
    counts = {got.path.name: got.records for got in results}
    if len(set(counts.values())) != 1:
        raise BenchError(f"the flow files disagree on their record count: {counts}")
    summary = summary_records(csv_run.stderr)
    agrees = "" if summary is None else (
        ", as in the summary of the CSV run" if summary == csv.records
        else f", but {summary:,} in the summary of the CSV run")  # fmt: skip
    print(f"  -> {csv.records:,} records in each of {', '.join(counts)}{agrees}")


# ----------------------------------------------------------------- paired against softflowd


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise BenchError(f"{what} (waited {timeout_s:.0f} s)")
        time.sleep(0.02)


@contextmanager
def collector(nfcapd: str, flow_dir: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """An nfcapd on 127.0.0.1 (random free port) writing into ``flow_dir``; stopped on exit."""
    port = free_udp_port()
    flow_dir.mkdir()
    argv = [nfcapd, "-b", "127.0.0.1", "-p", str(port), "-w", str(flow_dir),
            "-B", str(COLLECTOR_RCVBUF)]  # fmt: skip
    with open(flow_dir.parent / f"{flow_dir.name}.log", "wb") as log:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        wait_until(
            lambda: process.poll() is not None or udp_socket_state(port) is not None,
            STARTUP_TIMEOUT_S, f"nfcapd did not bind 127.0.0.1:{port}",
        )  # fmt: skip
        if process.poll() is not None:
            raise BenchError(f"nfcapd exited with {process.returncode}: see {flow_dir}.log")
        yield port, process
    finally:
        stop_process(process, deadline_s=STOP_TIMEOUT_S)


@dataclass(frozen=True, slots=True)
class Pairing:
    """spanflow and softflowd on one capture, to one nfcapd, pair by pair."""

    pcap: Path
    frames: int
    spanflow: list[Run]
    softflowd: list[Run]

    @property
    def ratios(self) -> list[float]:
        """softflowd wall / spanflow wall, pair by pair."""
        return [b.wall_s / a.wall_s for a, b in zip(self.spanflow, self.softflowd, strict=True)]


def bench_paired(
    pcap: Path, frames: int, port: int, runs: int, work: Path, timeout_s: float
) -> Pairing:
    """One warm-up each, then ``runs`` pairs, the order alternating (A B, B A, ...)."""
    spanflow, softflowd = find_tool("spanflow", SPANFLOW), find_tool("softflowd")
    span_argv = [spanflow, "convert", str(pcap), "-c", f"127.0.0.1:{port}", "--format", "9",
                 "--pace", "0", "-q"]  # fmt: skip
    # -r implies the foreground (-d is the default then); -c none: no control socket.
    soft_argv = [softflowd, "-r", str(pcap), "-n", f"127.0.0.1:{port}", "-v", "9", "-d",
                 "-m", str(SOFTFLOWD_MAX_FLOWS), "-p", str(work / "softflowd.pid"), "-c", "none"]  # fmt: skip
    print(
        f"paired on {pcap.name}:\n  A {' '.join(span_argv)}\n  B {' '.join(soft_argv)}", flush=True
    )
    env = spanflow_env(work)
    done: dict[str, list[Run]] = {"A": [], "B": []}
    argvs = {"A": (span_argv, env), "B": (soft_argv, dict(os.environ))}
    for i in range(runs + 1):
        for key in "AB" if i % 2 else "BA":
            argv, run_env = argvs[key]
            done[key].append(checked(run_measured(argv, run_env, timeout_s), argv))
        if i:
            print(f"  pair {i}: A {done['A'][-1].wall_s:6.2f} s  B {done['B'][-1].wall_s:6.2f} s",
                  flush=True)  # fmt: skip
    return Pairing(pcap, frames, done["A"][1:], done["B"][1:])


def drain(port: int, process: subprocess.Popen[bytes]) -> int | None:
    """Wait until nfcapd has read every queued datagram; return the socket's drop count."""
    last: list[int | None] = [None]

    def empty() -> bool:
        state = udp_socket_state(port)
        last[0] = None if state is None else state[1]
        return state is None or state[0] == 0 or process.poll() is not None

    try:
        wait_until(empty, DRAIN_TIMEOUT_S, "nfcapd did not drain its socket")
    except BenchError as exc:
        print(f"  warning: {exc}", flush=True)
    time.sleep(0.2)  # the last datagram read is processed before SIGTERM is looked at
    return last[0]


# ----------------------------------------------------------------- report


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def spanflow_totals(stderr: str) -> tuple[int, int] | None:
    """(packets, octets) from spanflow's summary line ``... N packets, M octets``."""
    found = re.search(r"(\d+) packets, (\d+) octets", stderr)
    return (int(found.group(1)), int(found.group(2))) if found else None


def target_row(label: str, value: float, sense: str, target: float, unit: str = "") -> None:
    ok = value >= target if sense == ">=" else value <= target
    print(f"  {label:<44}{value:>9.2f}{unit:<3}{sense:>4} {target:<6g}{verdict(ok):>6}")


def report(
    pairings: list[Pairing], fixed: dict[str, list[Run]], compiling: Compiling,
    same: tuple[bool, Run, Run], truths: dict[Path, dict[str, int]], load_before: float,
    drops: int | None,
) -> None:  # fmt: skip
    print()
    print(f"machine      {os.cpu_count()} CPUs, 1-min load average {load_before:.2f} before the runs, "
          f"{os.getloadavg()[0]:.2f} after (other work skews the times)")  # fmt: skip
    for pairing in pairings:
        truth = truths[pairing.pcap]
        print(f"capture      {pairing.pcap.relative_to(REPO)}: {pairing.frames:,} frames, "
              f"{truth['file_bytes'] / 1e6:,.0f} MB, {truth['flows']:,} flow keys")  # fmt: skip
    print()
    print(
        f"{'run (median of the pairs)':<40}{'wall s':>9}{'CPU s':>9}{'Mpps':>8}{'peak RSS MB':>13}"
    )
    for pairing in pairings:
        for name, got in (("spanflow", pairing.spanflow), ("softflowd", pairing.softflowd)):
            wall = median([r.wall_s for r in got])
            print(f"{name + ' ' + f'{pairing.frames:,}':<40}{wall:>9.2f}"
                  f"{median([r.cpu_s for r in got]):>9.2f}{pairing.frames / wall / 1e6:>8.2f}"
                  f"{max(r.rss_mb for r in got):>13.1f}")  # fmt: skip
    for label, got in fixed.items():
        print(f"{'fixed cost: ' + label:<40}{median([r.wall_s for r in got]):>9.2f}"
              f"{median([r.cpu_s for r in got]):>9.2f}{'':>8}{max(r.rss_mb for r in got):>13.1f}")  # fmt: skip
    print(f"{'first run after the build (web.pcap)':<40}{compiling.aot_first_run.wall_s:>9.2f}"
          f"{compiling.aot_first_run.cpu_s:>9.2f}{'':>8}{compiling.aot_first_run.rss_mb:>13.1f}")  # fmt: skip
    print(f"{'numba fallback, cold cache (web.pcap)':<40}{compiling.jit_cold.wall_s:>9.2f}"
          f"{compiling.jit_cold.cpu_s:>9.2f}{'':>8}{compiling.jit_cold.rss_mb:>13.1f}")  # fmt: skip
    print(f"{'kernels built ahead of time (install)':<40}{compiling.aot_build_s:>9.2f}")
    print(
        f"nfcapd socket drops over the paired and fixed-cost runs: {'?' if drops is None else drops}"
    )
    largest = max(pairings, key=lambda p: p.frames)
    small_cpu = median([r.cpu_s for r in fixed["web.pcap to v9 (collector)"]])
    cpu_us = (median([r.cpu_s for r in largest.spanflow]) - small_cpu) / largest.frames * 1e6
    soft_us = median([r.cpu_s for r in largest.softflowd]) / largest.frames * 1e6
    print()
    print(f"{'targets':<46}{'value':>9}{'':<3}{'target':>11}")
    for pairing in pairings:
        target = TARGET_RATIO.get(pairing.frames, TARGET_RATIO[min(TARGET_RATIO)])
        ratios = pairing.ratios
        target_row(f"softflowd / spanflow wall, {pairing.frames:,} (median)", median(ratios), ">=",
                   target, "x")  # fmt: skip
        print(f"    pairs: {', '.join(f'{r:.2f}' for r in ratios)}")
    for label, got in fixed.items():
        limit = TARGET_HELP_S if "--help" in label else TARGET_FIXED_S
        target_row(f"fixed cost: {label}", median([r.wall_s for r in got]), "<=", limit, "s")
    target_row(f"CPU per packet, {largest.frames:,} (minus web.pcap's)", cpu_us, "<=",
               TARGET_CPU_US, "us")  # fmt: skip
    print(f"    softflowd: {soft_us:.2f} us per packet")
    target_row("compiling on the first run after install", compiling.aot_first_run.wall_s, "<=",
               TARGET_FIRST_COMPILE_S, "s")  # fmt: skip
    peak = max(r.rss_mb for p in pairings for r in p.spanflow)
    target_row("spanflow peak RSS MB (every paired run)", peak, "<=", TARGET_RSS_MB)
    identical, aot_run, jit_run = same
    print(f"  records of the compiled kernels vs numba's, -o flows.csv on {pairings[0].pcap.name}: "
          f"{'byte-identical' if identical else 'DIFFERENT'} (wall {aot_run.wall_s:.2f} vs "
          f"{jit_run.wall_s:.2f} s, peak RSS {aot_run.rss_mb:.0f} vs {jit_run.rss_mb:.0f} MB)")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", default="2000000,10000000",
                        help="capture sizes, comma-separated (2000000,10000000)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=1, help="capture seed (1)")
    parser.add_argument("--runs", type=int, default=3, help="pairs and repeats per figure (3)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the flow files, the numba cache and nfcapd's files "
                             "(paths printed)")  # fmt: skip
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.packets.split(",") if n]
    if not sizes or min(sizes) < 1 or args.runs < 1:
        parser.error("--packets and --runs must be at least 1")
    timeout_s = max(300.0, max(sizes) / 5_000)
    try:
        become_subreaper()
        with ExitStack() as stack:
            found = [capture(n, args.seed) for n in sizes]
            truths = {path: truth for path, truth in found}
            if args.keep:
                work = Path(tempfile.mkdtemp(prefix="run-", dir=OUT_DIR))
            else:
                work = Path(
                    stack.enter_context(tempfile.TemporaryDirectory(prefix="spanflow-bench-"))
                )
                for name in FLOW_FILES.values():  # flows.csv among them
                    stack.callback((OUT_DIR / name).unlink, missing_ok=True)
            load_before = os.getloadavg()[0]
            compiling = bench_compiling(work, REPO / "samples" / "web.pcap")
            nfcapd = find_tool("nfcapd")
            port, process = stack.enter_context(collector(nfcapd, work / "nfcapd"))
            pairings = [
                bench_paired(path, truth["frames"], port, args.runs, work, timeout_s)
                for path, truth in found
            ]
            fixed = bench_fixed(port, work, args.runs)
            drops = drain(port, process)
            first, first_truth = found[0]
            same = same_records(first, work, first_truth["frames"], first_truth["ip_octets"])
            report(pairings, fixed, compiling, same, truths, load_before, drops)
            flow_files = bench_flow_files(first, args.runs, work, timeout_s)
            report_flow_files(first, flow_files, same[1])
            sampled_conversion(first, work)
            encode_rates(first)
            if args.keep:
                kept = ", ".join(str(OUT_DIR / name) for name in FLOW_FILES.values())
                print(f"\nkept: {kept}, {work}")
            if not same[0]:
                raise BenchError("the compiled kernels' records differ from numba's")
    except BenchError as exc:
        print(f"run_bench: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("run_bench: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
