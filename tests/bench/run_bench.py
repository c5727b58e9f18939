"""Speed and memory of ``spanflow convert`` against softflowd on one seeded capture, as a report.

``python tests/bench/run_bench.py [--packets N] [--seed S] [--runs R] [--keep]``
(``make bench``). The capture is made by make_capture.py under bench-out/ and
reused while its size and seed stay the same. Every tool runs as a child
process; its wall time and peak RSS (``wait4`` rusage of that child) are
measured. spanflow runs once with an empty numba cache (cold: kernels are
compiled) and then R times with the filled cache (warm, best run kept).
The same capture is then converted whole (``convert -o OUT -q``) to each flow
file format, flows.csv, flows.parquet and flows.arrows (Arrow IPC stream), R
times each in turn over the filled cache (best wall time kept, peak RSS the
highest of the R); the three must hold the same number of records.
softflowd reads the file with ``-r`` and exports NetFlow v9 to an nfcapd on
127.0.0.1, best of R. The exit status is 0 whatever the numbers, 1 when a tool
is missing, a run fails or the flow files disagree on their record count.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
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
TARGET_MPPS, TARGET_RATIO, TARGET_RSS_MB = 2.5, 2.0, 400.0
TARGET_HELP_S, TARGET_FIXED_S = 0.15, 0.3  # issue #15: --help, and a tiny capture converted
# Flow file outputs, against CSV: Parquet end to end no slower, its peak RSS within 50 MB.
TARGET_PARQUET_WALL_RATIO, TARGET_PARQUET_RSS_DELTA_MB = 1.00, 50.0
FLOW_FILES = {"CSV": "flows.csv", "Parquet": "flows.parquet", "Arrow IPC stream": "flows.arrows"}
STARTUP_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
DRAIN_TIMEOUT_S = 30.0
NFDUMP_TIMEOUT_S = 60.0


class BenchError(Exception):
    """A tool is missing, failed, or did not finish in time."""


@dataclass(frozen=True, slots=True)
class Run:
    """One finished child process: wall time, peak RSS, exit status, output."""

    wall_s: float
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
    return Run(wall_s, usage.ru_maxrss, os.waitstatus_to_exitcode(status), stdout, stderr)


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


# ----------------------------------------------------------------- spanflow


@dataclass(frozen=True, slots=True)
class SpanflowResult:
    cold: Run
    warm: list[Run]
    fixed: dict[str, Run]  # fixed cost: best wall of --help and of tiny conversions

    @property
    def best(self) -> Run:
        return min(self.warm, key=lambda r: r.wall_s)


def spanflow_env(work: Path) -> dict[str, str]:
    """The environment of every spanflow run: JIT on, numba's cache in ``work``."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(work / "numba-cache")}
    env.pop("NUMBA_DISABLE_JIT", None)
    return env


def bench_spanflow(pcap: Path, runs: int, work: Path, timeout_s: float) -> SpanflowResult:
    """One cold run (empty NUMBA_CACHE_DIR), then ``runs`` warm runs over the filled cache."""
    spanflow = find_tool("spanflow", SPANFLOW)
    (work / "numba-cache").mkdir()
    env = spanflow_env(work)
    argv = [spanflow, "convert", str(pcap), "--flows-out", str(OUT_DIR / "flows.csv")]
    print(f"spanflow: {' '.join(argv)}", flush=True)
    cold = checked(run_measured(argv, env, timeout_s), argv)
    print(f"  cold   {cold.wall_s:7.2f} s", flush=True)
    warm = []
    for i in range(runs):
        warm.append(checked(run_measured(argv, env, timeout_s), argv))
        print(f"  warm {i + 1} {warm[-1].wall_s:7.2f} s", flush=True)
    sample = Path(__file__).resolve().parents[2] / "samples" / "web.pcap"
    fixed_argvs = {
        "spanflow --help": [spanflow, "--help"],
        "web.pcap to CSV": [spanflow, "convert", str(sample), "-o", str(work / "small.csv"), "-q"],
        "web.pcap to v9 (--pcap-out)": [spanflow, "convert", str(sample), "--pcap-out",
                                        str(work / "small-v9.pcap"), "-q"],
    }  # fmt: skip
    fixed = {
        label: min((checked(run_measured(a, env, STARTUP_TIMEOUT_S * 6), a) for _ in range(runs)),
                   key=lambda run: run.wall_s)
        for label, a in fixed_argvs.items()
    }  # fmt: skip
    return SpanflowResult(cold, warm, fixed)


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
    over all of them. Run after ``bench_spanflow``: its numba cache is warm.
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


def report_flow_files(pcap: Path, results: list[FlowFileResult], span: SpanflowResult) -> None:
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
    summary = summary_records(span.best.stderr)
    agrees = "" if summary is None else (
        ", as in the summary of the spanflow warm run" if summary == csv.records
        else f", but {summary:,} in the summary of the spanflow warm run")  # fmt: skip
    print(f"  -> {csv.records:,} records in each of {', '.join(counts)}{agrees}")


# ----------------------------------------------------------------- softflowd -> nfcapd


@dataclass(frozen=True, slots=True)
class Collected:
    """What nfcapd received from one softflowd run (None when unknown)."""

    flows: int | None
    packets: int | None
    octets: int | None
    socket_drops: int | None


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


def bench_softflowd(
    pcap: Path, runs: int, work: Path, timeout_s: float
) -> tuple[list[Run], list[Collected]]:
    """``runs`` softflowd runs, each exporting to a fresh nfcapd; its totals read back with nfdump."""
    softflowd, nfcapd, nfdump = (find_tool(t) for t in ("softflowd", "nfcapd", "nfdump"))
    results: list[Run] = []
    collected: list[Collected] = []
    for i in range(runs):
        flow_dir = work / f"nfcapd-{i + 1}"
        with collector(nfcapd, flow_dir) as (port, process):
            # -r implies the foreground (-d is the default then); -c none: no control socket.
            argv = [softflowd, "-r", str(pcap), "-n", f"127.0.0.1:{port}", "-v", "9", "-d",
                    "-m", str(SOFTFLOWD_MAX_FLOWS), "-p", str(work / "softflowd.pid"),
                    "-c", "none"]  # fmt: skip
            if i == 0:
                print(f"softflowd: {' '.join(argv)}", flush=True)
            results.append(checked(run_measured(argv, dict(os.environ), timeout_s), argv))
            print(f"  run {i + 1}  {results[-1].wall_s:7.2f} s", flush=True)
            drops = drain(port, process)
        collected.append(read_back(nfdump, flow_dir, drops))
    return results, collected


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


def read_back(nfdump: str, flow_dir: Path, drops: int | None) -> Collected:
    """Flows, packets and bytes nfcapd stored, from ``nfdump -I`` (bounded in time)."""
    try:
        info = subprocess.run(
            [nfdump, "-R", str(flow_dir), "-I"], capture_output=True, text=True,
            timeout=NFDUMP_TIMEOUT_S, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return Collected(None, None, None, drops)

    def field(name: str) -> int | None:
        found = re.search(rf"^{name}: (\d+)$", info.stdout, re.MULTILINE)
        return int(found.group(1)) if found else None

    return Collected(field("Flows"), field("Packets"), field("Bytes"), drops)


# ----------------------------------------------------------------- report


def mpps(frames: int, run: Run) -> float:
    return frames / run.wall_s / 1e6


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def spanflow_totals(stderr: str) -> tuple[int, int] | None:
    """(packets, octets) from spanflow's summary line ``... N packets, M octets``."""
    found = re.search(r"(\d+) packets, (\d+) octets", stderr)
    return (int(found.group(1)), int(found.group(2))) if found else None


def metering_mpps(stderr: str) -> float | None:
    """The rate of spanflow's summary line: first read to last record written, start-up excluded."""
    found = re.search(r"frames from \d+ file\(s\) in ([\d.]+) s \(([\d.]+) Mpps\)", stderr)
    return float(found.group(2)) if found else None


def report(
    pcap: Path, truth: dict[str, int], span: SpanflowResult,
    soft: list[Run], collected: list[Collected], load_before: float,
) -> None:  # fmt: skip
    frames = truth["frames"]
    best_soft = min(soft, key=lambda r: r.wall_s)
    soft_at = soft.index(best_soft)
    warm_mpps, soft_mpps = mpps(frames, span.best), mpps(frames, best_soft)
    ratio = warm_mpps / soft_mpps
    span_rss = max(run.rss_mb for run in [span.cold, *span.warm])
    n = len(span.warm)
    print()
    print(f"capture      {pcap.relative_to(REPO)}")
    print(f"frames       {frames:,}")
    print(f"file size    {truth['file_bytes'] / 1e6:,.1f} MB")
    print(f"mean frame   {truth['wire_bytes'] / frames:.1f} bytes")
    print(f"flow keys    {truth['flows']:,} (peak {truth['peak_active_flows']:,} active at once)")
    print(f"IP octets    {truth['ip_octets']:,}")
    print(f"machine      {os.cpu_count()} CPUs, 1-min load average {load_before:.2f} before the runs, "
          f"{os.getloadavg()[0]:.2f} after (other work skews the times)")  # fmt: skip
    print()
    print(f"{'run':<36}{'wall s':>9}{'Mpps':>9}{'peak RSS MB':>14}")
    rows = [
        (f"spanflow warm (best of {n})", span.best),
        ("spanflow cold (empty numba cache)", span.cold),
        (f"softflowd (best of {len(soft)})", best_soft),
    ]
    for label, run in rows:
        print(f"{label:<36}{run.wall_s:>9.2f}{mpps(frames, run):>9.3f}{run.rss_mb:>14.1f}")
    for label, run in span.fixed.items():
        print(f"{'fixed cost: ' + label:<36}{run.wall_s:>9.2f}{'':>9}{run.rss_mb:>14.1f}")
    print()
    print(f"{'targets':<36}{'value':>9}{'target':>14}")
    in_process = max((metering_mpps(run.stderr) or 0.0) for run in span.warm)
    targets = [
        ("spanflow Mpps in process (summary)", in_process, ">=", TARGET_MPPS),
        ("spanflow / softflowd (wall, best)", ratio, ">=", TARGET_RATIO),
        ("spanflow peak RSS MB (all runs)", span_rss, "<=", TARGET_RSS_MB),
        *(
            (
                f"fixed cost s: {label}",
                run.wall_s,
                "<=",
                TARGET_HELP_S if "--help" in label else TARGET_FIXED_S,
            )
            for label, run in span.fixed.items()
        ),
    ]
    for label, value, sense, target in targets:
        ok = value >= target if sense == ">=" else value <= target
        print(f"  {label:<34}{value:>9.2f}{sense:>8} {target:<5g}{verdict(ok):>6}")
    print()
    print(f"spanflow stderr, last 3 lines (warm run {span.warm.index(span.best) + 1}):")
    for line in span.best.stderr.splitlines()[-3:]:
        print(f"  {line}")
    totals = spanflow_totals(span.best.stderr)
    if totals is not None:
        same = totals == (frames, truth["ip_octets"])
        print(f"  -> packets and octets {'equal' if same else 'DIFFER FROM'} the ground truth")
    print()
    processed = re.search(r"Packets processed: (\d+)", best_soft.stdout)
    print(f"softflowd (-m {SOFTFLOWD_MAX_FLOWS}), run {soft_at + 1}: "
          f"{processed.group(1) if processed else '?'} packets processed")  # fmt: skip
    got = collected[soft_at]
    if got.flows is not None:
        print(f"  nfcapd stored {got.flows:,} flows, {got.packets:,} packets, {got.octets:,} bytes"
              f" (socket drops: {'?' if got.socket_drops is None else got.socket_drops}; "
              "softflowd counts wire length minus the L2 header)")  # fmt: skip
    else:
        print("  nfdump could not read nfcapd's files")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=2_000_000, help="capture size (2000000)")
    parser.add_argument("--seed", type=int, default=1, help="capture seed (1)")
    parser.add_argument("--runs", type=int, default=3, help="warm runs per tool, best kept (3)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the flow files, the numba cache and nfcapd's files "
                             "(paths printed)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.packets < 1 or args.runs < 1:
        parser.error("--packets and --runs must be at least 1")
    timeout_s = max(300.0, args.packets / 5_000)
    try:
        become_subreaper()
        with ExitStack() as stack:
            pcap, truth = capture(args.packets, args.seed)
            if args.keep:
                work = Path(tempfile.mkdtemp(prefix="run-", dir=OUT_DIR))
            else:
                work = Path(
                    stack.enter_context(tempfile.TemporaryDirectory(prefix="spanflow-bench-"))
                )
                for name in FLOW_FILES.values():  # flows.csv among them
                    stack.callback((OUT_DIR / name).unlink, missing_ok=True)
            load_before = os.getloadavg()[0]
            span = bench_spanflow(pcap, args.runs, work, timeout_s)
            flow_files = bench_flow_files(pcap, args.runs, work, timeout_s)
            soft, collected = bench_softflowd(pcap, args.runs, work, timeout_s)
            report(pcap, truth, span, soft, collected, load_before)
            report_flow_files(pcap, flow_files, span)
            sampled_conversion(pcap, work)
            encode_rates(pcap)
            if args.keep:
                kept = ", ".join(str(OUT_DIR / name) for name in FLOW_FILES.values())
                print(f"\nkept: {kept}, {work}")
    except BenchError as exc:
        print(f"run_bench: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("run_bench: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
