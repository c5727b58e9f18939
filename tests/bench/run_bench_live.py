"""Live capture at the sender's top rate: spanflow's backends and worker counts against softflowd.

``python tests/bench/run_bench_live.py [--packets N] [--loops L] [--seed S]
[--ladder] [--spanflow CMD]`` (``make bench-live``, root). Everything runs
inside a throwaway network namespace (tests/live_netns.py): a sender transmits
the seeded capture of make_capture.py, MACs rewritten to foreign ones so the
receiving kernel stays silent, from ``sf-tx`` to its veth peer ``sf-rx``,
where one probe at a time captures and exports NetFlow v9 to an nfcapd on the
namespace's loopback.

Probes: ``spanflow capture --backend afpacket --workers 1``, the same with
``--workers 2``, ``--backend pcap``, and softflowd. By default each run sends
the 3,000,000-frame capture (``--loops`` repeats it) at top speed with
afpacket_sender.c, compiled with gcc into the run's temporary directory: the
whole file in memory, an AF_PACKET socket, sendmmsg 256 frames a call. On
this 2-CPU kind of machine the sender (and nfcapd) are pinned to CPU 1
(``taskset -c 1``) and the probe, every process of it, to CPU 0; spanflow
``--workers 2`` is left unpinned: its workers share CPU 0 with each other and
CPU 1 with the busy sender. The veth pair delivers each frame into the
probes' rings in the sender's own context, so that kernel copy is charged to
the sender's CPU, not to any probe. ``--ladder`` instead replays with
tcpreplay (one frame per syscall, pinned to CPU 1) at rising rates, 200,000
frames unless ``--packets`` says otherwise, and reports each probe's highest
lossless rate.

After sending, the probe is given one second, then stopped (spanflow: SIGTERM;
softflowd, which has no SIGTERM handler in the foreground: ``softflowctl
shutdown``), nfcapd drained and stopped, and ``nfdump -I`` read back. A probe
is lossless when it counted every frame sent, the kernel dropped none, and
nfdump holds every packet (every frame is IP). softflowd opens libpcap with a
0 ms timeout, so a partly filled ring block may stay in the kernel after the
traffic: for softflowd a train of non-IP frames (which it ignores) follows.

CPU time is the whole process tree's (spanflow's workers are its forked
children). "While flowing" runs from the moment the sender, its file loaded,
is told to go until just before the stop (the settle second included): the
schedstat of every thread of the probe and of its descendants (found through
the ppid in /proc/*/stat) at both ends; per frame it is per frame the probe
metered (a frame the kernel dropped costs the probe nothing), and one core's
sustainable rate is its inverse. "All" is from the process's start to its
exit, start-up and final flush included: ``wait4`` rusage of the probe, which
on Linux includes the children it reaped (spanflow joins its workers), or the
tree's last schedstat sample if that is larger. Not a cgroup: the bench
touches no system-wide state, and a writable cgroup v2 hierarchy with cpu
accounting is not always there (hybrid hosts keep cpu under v1). Exit status
0 when the runs happened, whatever the numbers; 1 when a tool is missing or
a step failed.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # run as a script: make the tests package importable

from tests.bench.make_capture import write_capture  # noqa: E402
from tests.live_netns import (  # noqa: E402
    Child,
    Namespace,
    namespace,
    outside_sample_networks,
    rewrite_macs,
    wait_until,
)

SPANFLOW = REPO / ".venv" / "bin" / "spanflow"
SENDER_SOURCE = Path(__file__).with_name("afpacket_sender.c")
TOOLS = ("softflowd", "softflowctl", "nfcapd", "nfdump", "ip", "gcc", "taskset")
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
RATES_PPS: tuple[int | None, ...] = (20_000, 50_000, 100_000, 200_000, 400_000, None)  # None: top
TOP_PACKETS, LADDER_PACKETS = 3_000_000, 200_000
SENDER_CPU, PROBE_CPU = "1", "0"
COLLECTOR_PORT = 2055  # the namespace is fresh: nothing else binds in it
FOREIGN_DST, FOREIGN_SRC = bytes.fromhex("025f00000001"), bytes.fromhex("025f00000002")
CAPTURE_BUFFER_MIB = 64  # spanflow's default kernel buffer; softflowd gets the same (-B)
SOFTFLOWD_MAX_FLOWS = 65536  # spanflow's default cache size
SETTLE_S = 1.0  # after the sender returns, before the stop
STARTUP_S = 90.0  # spanflow may compile its kernels on a first run
STOP_S = 30.0  # a probe flushes its whole cache on SIGTERM
SEND_S = 120.0  # the top-speed sender's deadline
OTHERS_NOTED_S = 0.1  # CPU time of others on the probe's CPU worth a note
TARGET_RATIO, MOONSHOT_RATIO = 0.75, 0.5  # spanflow CPU per frame / softflowd's
FILLER_FRAMES, FILLER_ETHERTYPE = 4000, 0x88B5
PACKET_SOCKETS = "/proc/{pid}/net/packet"
SPAN_SUMMARY = re.compile(
    r"^spanflow: capture: (\d+) frames received, (\d+) dropped by the kernel, "
    r"(\d+) dropped by the interface$",
    re.MULTILINE,
)
SPAN_WORKER = re.compile(
    r"^spanflow: worker (\d+): (\d+) frames received, (\d+) dropped by the kernel, "
    r"(\d+) metered, (\d+) decoded$",
    re.MULTILINE,
)
SPAN_METERED = re.compile(r"^spanflow: (\d+) frames metered,", re.MULTILINE)
SENDER_LINE = re.compile(r"^sent (\d+) frames in ([\d.]+) seconds \((\d+) retried calls\)$")


class BenchError(Exception):
    """A tool is missing, failed, or did not finish in time."""


Ready = Callable[[], None]  # called by a sender just before its frames go


@dataclass(frozen=True, slots=True)
class Probe:
    """One probe configuration: its name, which tool, its extra flags, the CPUs it may use."""

    name: str
    tool: str  # "spanflow" or "softflowd"
    flags: tuple[str, ...] = ()
    cpus: str | None = PROBE_CPU  # None: unpinned


PROBES = (
    Probe("afpacket w1", "spanflow", ("--backend", "afpacket", "--workers", "1")),
    Probe("afpacket w2", "spanflow", ("--backend", "afpacket", "--workers", "2"), None),
    Probe("pcap", "spanflow", ("--backend", "pcap")),
    Probe("softflowd", "softflowd"),
)


@dataclass(frozen=True, slots=True)
class Sent:
    """What one sender run sent, and how fast."""

    frames: int
    failed: int
    pps: float
    retried: int = 0  # afpacket_sender: sendmmsg calls retried (ENOBUFS)


@dataclass(frozen=True, slots=True)
class Cpu:
    """A probe tree's CPU seconds: while traffic flows, and from its start to its exit."""

    flowing_s: float
    total_s: float


@dataclass(frozen=True, slots=True)
class Outcome:
    """One probe at one rate: what it saw, what reached nfdump, its CPU time."""

    probe: Probe
    sent: Sent
    received: int | None  # frames the probe's socket received
    metered: int | None  # frames the probe counted (spanflow: metered; softflowd: processed)
    kernel_drops: int | None
    exported_packets: int | None  # packets in the records nfdump read back
    cpu: Cpu
    lossless: bool
    notes: tuple[str, ...] = ()

    def us_per_frame(self) -> float | None:
        """CPU µs while flowing per frame metered (a frame the kernel dropped costs nothing)."""
        return self.cpu.flowing_s / self.metered * 1e6 if self.metered else None

    def core_rate(self) -> float | None:
        """Frames per second one core would sustain at this CPU cost per frame."""
        us = self.us_per_frame()
        return 1e6 / us if us else None


# ----------------------------------------------------------------- set-up


def find_tools(ladder: bool, spanflow: Path) -> None:
    wanted = (*TOOLS, "tcpreplay") if ladder else TOOLS
    missing = [t for t in wanted if not shutil.which(t, path=SYSTEM_PATH)]
    if not os.access(spanflow, os.X_OK):
        missing.append(str(spanflow))
    if missing:
        raise BenchError(f"missing: {', '.join(missing)}; run `make setup` as root")


def build_sender(work: Path) -> Path:
    """afpacket_sender.c compiled into ``work``."""
    binary = work / "afpacket_sender"
    argv = ["gcc", "-O2", "-Wall", "-Wextra", "-o", str(binary), str(SENDER_SOURCE)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise BenchError(f"gcc failed to build the sender: {done.stderr.strip()[-500:]}")
    return binary


def prepare_capture(work: Path, n_packets: int, seed: int) -> tuple[Path, int]:
    """The replayable capture (foreign MACs, documentation addresses only) and its frame count."""
    raw, replay = work / "bench.pcap", work / "replay.pcap"
    print(f"writing a {n_packets:,}-packet capture (seed {seed})...", flush=True)
    truth = write_capture(raw, n_packets, seed)
    rewrite_macs(raw, replay, FOREIGN_DST, FOREIGN_SRC)
    raw.unlink()
    # Also checks every frame is IPv4 or IPv6, so IP packets == frames.
    outside = outside_sample_networks(replay)
    if outside:
        raise BenchError(f"capture holds frames outside the sample networks: {outside[:3]}")
    return replay, truth["frames"]


def write_filler(path: Path) -> None:
    """FILLER_FRAMES full-size non-IP frames (IEEE local experimental ethertype), foreign MACs."""
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    frame = FOREIGN_DST + FOREIGN_SRC + FILLER_ETHERTYPE.to_bytes(2, "big") + bytes(1500)
    record = struct.pack("<IIII", 0, 0, len(frame), len(frame)) + frame
    path.write_bytes(header + record * FILLER_FRAMES)


# ----------------------------------------------------------------- processes


def pinned(cpus: str | None, argv: list[str]) -> list[str]:
    """``argv`` restricted to ``cpus`` (taskset execs it: same PID, inherited by its forks)."""
    return argv if cpus is None else ["taskset", "-c", cpus, *argv]


def thread_cpu_ns(pid: int) -> int:
    """CPU time so far of every thread of ``pid`` (schedstat: ns on CPU); 0 once it is gone."""
    total = 0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return 0
    for task in tasks:
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError):  # the thread ended meanwhile
            continue
    return total


def descendants(root: int) -> list[int]:
    """``root`` and every live process below it (parents from /proc/*/stat)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += children.get(pid, [])
    return tree


def tree_cpu_ns(root: int) -> int:
    """CPU time so far of ``root`` and all its live descendants."""
    return sum(thread_cpu_ns(pid) for pid in descendants(root))


def wait_measured(
    child: Child, signum: int | None = None, deadline_s: float = STOP_S
) -> tuple[int | None, float]:
    """Send ``signum`` (if any), reap ``child`` with ``wait4`` (SIGKILL at the deadline).

    Returns its exit code (None when it had to be killed) and its CPU seconds,
    reaped children included.
    """
    pid = child.pid
    pidfd = os.pidfd_open(pid)
    try:
        if signum is not None:
            signal.pidfd_send_signal(pidfd, signum)
        ready, _, _ = select.select([pidfd], [], [], deadline_s)
        if not ready:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        _, status, usage = os.wait4(pid, 0)
    finally:
        os.close(pidfd)
    code = os.waitstatus_to_exitcode(status)
    child.process.returncode = code  # reaped here: Popen must not wait for it again
    return (code if ready else None), usage.ru_utime + usage.ru_stime


def capturing(pid: int, ifindex: int) -> bool:
    """Whether process ``pid``'s namespace has a packet socket bound to ``ifindex``."""
    try:
        rows = Path(PACKET_SOCKETS.format(pid=pid)).read_text().splitlines()[1:]
    except OSError:
        return False
    return any(int(row.split()[4]) == ifindex for row in rows)


def udp_queue_empty(pid: int, port: int) -> bool:
    """Whether the UDP socket on ``port`` in ``pid``'s namespace has nothing left to read."""
    for line in Path(f"/proc/{pid}/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}"):
            return int(fields[4].split(":")[1], 16) == 0
    return True


def busy_s(cpu: int) -> float:
    """Seconds CPU ``cpu`` has been busy (or stolen by the hypervisor), from /proc/stat."""
    for line in Path("/proc/stat").read_text().splitlines():
        name, *ticks = line.split()
        if name == f"cpu{cpu}":
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, ticks[:8])
            return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    raise BenchError(f"no cpu{cpu} in /proc/stat")


def rx_packets(ns: Namespace) -> int:
    """Frames sf-rx has received so far (its interface counter)."""
    links = json.loads(ns.check("ip", "-j", "-s", "link", "show", "dev", ns.rx))
    return int(links[0]["stats64"]["rx"]["packets"])


# ----------------------------------------------------------------- senders


def send_fast(ns: Namespace, sender: Path, pcap: Path, loops: int, on_ready: Ready) -> Sent:
    """afpacket_sender: ``pcap`` ``loops`` times from sf-tx at top speed, pinned to SENDER_CPU.

    It loads the file, says "ready" and waits: ``on_ready`` runs just before the frames go.
    """
    argv = pinned(SENDER_CPU, ns.argv(sender, "-w", ns.tx, pcap, str(loops)))
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert process.stdin is not None  # PIPE: never None; narrows the type
        assert process.stdout is not None
        if process.stdout.readline() == "ready\n":
            on_ready()
            process.stdin.write("go\n")
            process.stdin.flush()
        out, err = process.communicate(timeout=SEND_S)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"afpacket_sender did not finish within {SEND_S:g} s") from exc
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    line = SENDER_LINE.match(out.strip())
    if process.returncode != 0 or line is None:
        raise BenchError(f"afpacket_sender failed ({process.returncode}): {err.strip()}")
    frames, seconds = int(line[1]), float(line[2])
    return Sent(frames, 0, frames / seconds if seconds > 0 else 0.0, int(line[3]))


def send_paced(
    ns: Namespace, pcap: Path, rate_pps: int | None, frames: int, on_ready: Ready
) -> Sent:
    """tcpreplay ``pcap`` from sf-tx at ``rate_pps`` (None: --topspeed), with a deadline."""
    pace = "--topspeed" if rate_pps is None else f"--pps={rate_pps}"
    deadline_s = frames / (rate_pps or 400_000) * 2 + 30
    argv = pinned(SENDER_CPU, ns.argv("tcpreplay", "-i", ns.tx, pace, "--preload-pcap", pcap))
    on_ready()
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False,
                              timeout=deadline_s)  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"tcpreplay did not finish within {deadline_s:.0f} s") from exc
    sent = re.search(r"Successful packets:\s+(\d+)", done.stdout)
    failed = re.search(r"Failed packets:\s+(\d+)", done.stdout)
    rated = re.search(r"Rated: .*?([\d.]+) pps", done.stdout)
    if done.returncode != 0 or sent is None or failed is None or rated is None:
        raise BenchError(f"tcpreplay failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return Sent(int(sent[1]), int(failed[1]), float(rated[1]))


def nfdump_packets(flow_dir: Path) -> int | None:
    """Packets over every file nfcapd wrote into ``flow_dir``, from ``nfdump -I``."""
    try:
        info = subprocess.run(["nfdump", "-R", str(flow_dir), "-I"], capture_output=True,
                              text=True, timeout=60, check=False)  # fmt: skip
    except subprocess.TimeoutExpired:
        return None
    found = re.search(r"^Packets: (\d+)$", info.stdout, re.MULTILINE)
    return int(found[1]) if found else None


# ----------------------------------------------------------------- one run


@dataclass(frozen=True, slots=True)
class Run:
    """What every probe run shares: the namespace, the work directory, how to send."""

    ns: Namespace
    work: Path
    spanflow: Path
    send: Callable[[Ready], Sent]
    send_filler: Callable[[], Sent]


def probe_argv(probe: Probe, run: Run, label: str) -> list[str]:
    collector, ns = f"127.0.0.1:{COLLECTOR_PORT}", run.ns
    if probe.tool == "spanflow":
        argv = ns.argv(run.spanflow, "capture", "-i", ns.rx, "-c", collector, "--format", "9",
                       "--inactive", "1e6", "--active", "1e6",
                       "--buffer-mib", str(CAPTURE_BUFFER_MIB), *probe.flags)  # fmt: skip
    else:
        # -d (foreground) installs no SIGTERM handler: a control socket asks for the
        # graceful shutdown that exports every flow. Default timeouts outlast the run.
        argv = ns.argv("softflowd", "-i", ns.rx, "-n", collector, "-v", "9", "-d",
                       "-c", run.work / f"{label}.ctl", "-p", run.work / f"{label}.pid",
                       "-m", str(SOFTFLOWD_MAX_FLOWS),
                       "-B", str(CAPTURE_BUFFER_MIB << 20))  # fmt: skip
    return pinned(probe.cpus, argv)


def softflowctl(control: Path, command: str) -> str:
    """Output of ``softflowctl`` talking to the run's control socket (a file, not the network)."""
    argv = ["softflowctl", "-c", str(control), command]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=STOP_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"softflowctl {command} did not answer within {STOP_S:g} s") from exc
    if done.returncode != 0:
        raise BenchError(f"softflowctl {command} failed: {done.stderr.strip()}")
    return done.stdout


def stat(text: str, name: str) -> int | None:
    found = re.search(rf"^{name}: (\d+)", text, re.MULTILINE)
    return int(found[1]) if found else None


def ready_check(probe: Probe, child: Child, run: Run, log_path: Path, rx_ifindex: int) -> bool:
    """Whether ``probe`` has its capture open (spanflow says so; softflowd opens its socket)."""
    if probe.tool == "spanflow":
        return f"spanflow: capturing on {run.ns.rx}\n" in log_path.read_text(errors="replace")
    return capturing(child.pid, rx_ifindex)


def start_nfcapd(stack: ExitStack, ns: Namespace, flow_dir: Path) -> Child:
    """nfcapd on the namespace's loopback, on the sender's CPU: the probe's stays the probe's."""
    argv = ns.argv("nfcapd", "-b", "127.0.0.1", "-p", str(COLLECTOR_PORT), "-w", flow_dir,
                   "-t", "3600", "-B", str(8 << 20))  # fmt: skip
    nfcapd = Child(pinned(SENDER_CPU, argv))
    stack.callback(nfcapd.stop)
    wait_until(lambda: ns.udp_listening(nfcapd.pid, COLLECTOR_PORT) or not nfcapd.running(),
               "nfcapd to listen")  # fmt: skip
    if not nfcapd.running():
        raise BenchError("nfcapd exited at start")
    return nfcapd


def start_probe(stack: ExitStack, probe: Probe, run: Run, label: str) -> Child:
    """``probe`` on sf-rx, its stderr in ``label``.log, once its capture is open."""
    log_path, rx_ifindex = run.work / f"{label}.log", run.ns.ifindex(run.ns.rx)
    log = stack.enter_context(log_path.open("wb"))
    child = Child(probe_argv(probe, run, label), stderr=log)
    stack.callback(child.stop)
    wait_until(
        lambda: not child.running() or ready_check(probe, child, run, log_path, rx_ifindex),
        f"{probe.name} to capture",
        STARTUP_S,
    )
    if not child.running():
        raise BenchError(f"{probe.name} exited at start: {log_path.read_text()[-500:]}")
    time.sleep(0.3)  # the socket is open; let the probe reach its read loop
    return child


def stop_probe(probe: Probe, child: Child, run: Run, label: str) -> tuple[int | None, str, float]:
    """Stop ``probe`` gracefully: its exit code, softflowd's statistics, its CPU s with children."""
    if probe.tool == "spanflow":
        code, total_s = wait_measured(child, signal.SIGTERM)
        return code, "", total_s
    control = run.work / f"{label}.ctl"
    statistics = softflowctl(control, "statistics")
    softflowctl(control, "shutdown")  # graceful: exports every flow, then exits
    code, total_s = wait_measured(child)
    return (0 if code is not None else None), statistics, total_s  # it exits 1 after shutdown


@dataclass(frozen=True, slots=True)
class Mark:
    """One moment of a run: sf-rx's frame count, the probe CPU's busy time, the probe tree's CPU."""

    rx: int
    busy_s: float
    cpu_ns: int


def mark(ns: Namespace, pid: int) -> Mark:
    return Mark(rx_packets(ns), busy_s(int(PROBE_CPU)), tree_cpu_ns(pid))


def run_probe(probe: Probe, run: Run, label: str) -> Outcome:
    """nfcapd, then ``probe`` on sf-rx; send; settle; stop both; read nfdump back."""
    flow_dir = run.work / label
    flow_dir.mkdir()
    with ExitStack() as stack:
        nfcapd = start_nfcapd(stack, run.ns, flow_dir)
        child = start_probe(stack, probe, run, label)
        marks: list[Mark] = []
        sent = run.send(lambda: marks.append(mark(run.ns, child.pid)))
        if not marks:
            raise BenchError("the sender never said it was ready")
        arrived = rx_packets(run.ns) - marks[0].rx
        if probe.tool == "softflowd":
            run.send_filler()
        time.sleep(SETTLE_S)
        marks.append(mark(run.ns, child.pid))
        code, statistics, waited_s = stop_probe(probe, child, run, label)
        wait_until(lambda: udp_queue_empty(nfcapd.pid, COLLECTOR_PORT), "nfcapd to read all")
        nfcapd.stop(signal.SIGTERM)
    first, last = marks
    cpu = Cpu((last.cpu_ns - first.cpu_ns) / 1e9, max(waited_s, last.cpu_ns / 1e9))
    notes = run_notes(probe, sent, arrived, last.busy_s - first.busy_s - cpu.flowing_s)
    stderr = (run.work / f"{label}.log").read_text(errors="replace")
    exported = nfdump_packets(flow_dir)
    if code != 0:
        ended = (
            f"exit {code}"
            if code is not None
            else f"killed, still there {STOP_S:g} s after the stop"
        )
        notes.append(f"{ended}; its stderr ends: {stderr.strip()[-300:]}")
        return Outcome(probe, sent, None, None, None, exported, cpu, False, tuple(notes))
    if probe.tool == "spanflow":
        return spanflow_outcome(probe, sent, stderr, exported, cpu, notes)
    received = stat(statistics, "Packets received by libpcap")
    metered = stat(statistics, "Packets processed")
    drops = stat(statistics, "Packets dropped by libpcap")
    # Every frame is an IP packet (prepare_capture checked), so IP packets sent == frames sent.
    lossless = exported == sent.frames and metered == sent.frames and drops == 0
    return Outcome(probe, sent, received, metered, drops, exported, cpu, lossless, tuple(notes))


def run_notes(probe: Probe, sent: Sent, arrived: int, others_s: float) -> list[str]:
    """What may have skewed a run: frames lost before sf-rx, other load on the probe's CPU."""
    notes = [] if arrived == sent.frames else [f"sf-rx received {arrived:,} frames"]
    if probe.cpus == PROBE_CPU and others_s > OTHERS_NOTED_S:
        notes.append(f"other processes ran {others_s:.2f} s on CPU {PROBE_CPU} while flowing")
    if sent.failed or sent.retried:
        notes.append(f"sender: {sent.failed:,} frames failed, {sent.retried:,} calls retried")
    return notes


def spanflow_outcome(
    probe: Probe, sent: Sent, stderr: str, exported: int | None, cpu: Cpu, notes: list[str]
) -> Outcome:
    """A spanflow run's outcome from its summary on stderr."""
    summary, metered = SPAN_SUMMARY.search(stderr), SPAN_METERED.search(stderr)
    if summary is None or metered is None:
        raise BenchError(f"spanflow printed no summary: {stderr.strip()[-500:]}")
    received, drops, interface_drops = int(summary[1]), int(summary[2]), int(summary[3])
    if interface_drops:
        notes.append(f"{interface_drops:,} dropped by the interface")
    for worker in SPAN_WORKER.finditer(stderr):
        notes.append(f"worker {worker[1]}: {int(worker[2]):,} received, "
                     f"{int(worker[3]):,} kernel drops, {int(worker[4]):,} metered")  # fmt: skip
    count = int(metered[1])
    lossless = count == sent.frames and drops == 0 and exported == sent.frames
    return Outcome(probe, sent, received, count, drops, exported, cpu, lossless, tuple(notes))


# ----------------------------------------------------------------- report


def show(count: int | None) -> str:
    return "?" if count is None else f"{count:,}"


def number(value: float | None, digits: int = 2) -> str:
    return "?" if value is None else f"{value:,.{digits}f}"


def print_table(title: str, outcomes: list[Outcome]) -> None:
    print(f"\n{title}")
    print(f"  {'probe':<12}{'CPUs':>5}{'sent':>11}{'received':>11}{'metered':>11}"
          f"{'k. drops':>11}{'nfdump pkts':>12}{'lossless':>9}{'CPU s flow':>11}"
          f"{'CPU s all':>10}{'µs/frame':>9}{'frames/s/core':>14}")  # fmt: skip
    for o in outcomes:
        print(f"  {o.probe.name:<12}{o.probe.cpus or 'any':>5}{o.sent.frames:>11,}"
              f"{show(o.received):>11}{show(o.metered):>11}{show(o.kernel_drops):>11}"
              f"{show(o.exported_packets):>12}{'yes' if o.lossless else 'no':>9}"
              f"{o.cpu.flowing_s:>11.2f}{o.cpu.total_s:>10.2f}{number(o.us_per_frame()):>9}"
              f"{number(o.core_rate(), 0):>14}")  # fmt: skip
        for note in o.notes:
            print(f"    {o.probe.name}: {note}")
    print("  received: frames that reached the probe's socket, kernel drops included "
          f"(softflowd: and the {FILLER_FRAMES:,} non-IP filler frames)\n"
          "  CPU s: the whole process tree's, flow: while traffic flows, all: start to exit; "
          "µs/frame: CPU s flow per metered frame; frames/s/core: its inverse")  # fmt: skip
    sys.stdout.flush()


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_ratios(outcomes: list[Outcome]) -> None:
    """spanflow afpacket's CPU per frame while flowing over softflowd's, against the targets."""
    by_name = {o.probe.name: o for o in outcomes}
    soft = by_name["softflowd"].us_per_frame()
    print(f"\nCPU per frame while flowing, spanflow / softflowd "
          f"(target <= {TARGET_RATIO:g}, moonshot <= {MOONSHOT_RATIO:g}):")  # fmt: skip
    for name in ("afpacket w1", "afpacket w2"):
        span = by_name[name].us_per_frame()
        ratio = span / soft if span is not None and soft else None
        lossy = [o.probe.name for o in (by_name[name], by_name["softflowd"]) if not o.lossless]
        caveat = f"  (not lossless: {', '.join(lossy)})" if lossy else ""
        target, moonshot = (
            ratio is not None and ratio <= goal for goal in (TARGET_RATIO, MOONSHOT_RATIO)
        )
        print(f"  {name:<12} {number(ratio, 3):>6}  target {verdict(target)}"
              f"  moonshot {verdict(moonshot)}{caveat}")  # fmt: skip


def top_speed(run: Run, frames: int, loops: int) -> None:
    """Every probe once at the sender's top rate: the table and the ratios."""
    outcomes = [run_probe(probe, run, f"top-{i}") for i, probe in enumerate(PROBES)]
    rates = ", ".join(f"{o.sent.pps:,.0f}" for o in outcomes)
    title = (f"top speed: {frames:,} frames x {loops} from afpacket_sender ({rates} frames/s); "
             f"sender and nfcapd on CPU {SENDER_CPU}, probe on CPUs as shown")  # fmt: skip
    print_table(title, outcomes)
    print_ratios(outcomes)


def ladder(run: Run, pcap: Path, frames: int) -> None:
    """Every probe at each tcpreplay rate; then each probe's highest lossless rate."""
    best: dict[str, str] = {probe.name: "none" for probe in PROBES}
    for rate_pps in RATES_PPS:
        send = functools.partial(send_paced, run.ns, pcap, rate_pps, frames)
        paced = Run(run.ns, run.work, run.spanflow, send, run.send_filler)
        label = "top" if rate_pps is None else str(rate_pps)
        outcomes = [run_probe(p, paced, f"{label}-{i}") for i, p in enumerate(PROBES)]
        asked = "top speed" if rate_pps is None else f"{rate_pps:,} pps"
        achieved = ", ".join(f"{o.sent.pps:,.0f}" for o in outcomes)
        print_table(f"tcpreplay {asked} (achieved {achieved} pps)", outcomes)
        for o in outcomes:
            if o.lossless:
                best[o.probe.name] = asked
    print("\nhighest lossless tcpreplay rate: "
          + ", ".join(f"{name} {rate}" for name, rate in best.items()))  # fmt: skip


def bench(args: argparse.Namespace, work: Path, ns: Namespace) -> None:
    sender = build_sender(work)
    n_packets = args.packets or (LADDER_PACKETS if args.ladder else TOP_PACKETS)
    pcap, frames = prepare_capture(work, n_packets, args.seed)
    write_filler(work / "filler.pcap")
    print(f"{frames:,} frames, sent {ns.tx} -> {ns.rx} in namespace {ns.name}; "
          f"{os.cpu_count()} CPUs")  # fmt: skip
    send = functools.partial(send_fast, ns, sender, pcap, args.loops)
    filler = functools.partial(send_fast, ns, sender, work / "filler.pcap", 1, lambda: None)
    run = Run(ns, work, args.spanflow, send, filler)
    if args.ladder:
        ladder(run, pcap, frames)
    else:
        top_speed(run, frames, args.loops)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sizes = f"capture size ({TOP_PACKETS}; --ladder: {LADDER_PACKETS})"
    parser.add_argument("--packets", type=int, default=None, help=sizes)
    parser.add_argument("--loops", type=int, default=1, help="top speed: send it L times (1)")
    parser.add_argument("--seed", type=int, default=1, help="capture seed (1)")
    parser.add_argument("--ladder", action="store_true", help="tcpreplay at rising rates instead")
    parser.add_argument("--spanflow", type=Path, default=SPANFLOW,
                        help="the spanflow command to run (.venv/bin/spanflow)")  # fmt: skip
    args = parser.parse_args(argv)
    if (args.packets is not None and args.packets < 1) or args.loops < 1:
        parser.error("--packets and --loops must be at least 1")
    if os.geteuid() != 0:
        print("run_bench_live: needs root (a network namespace)", file=sys.stderr)
        return 1
    started = time.monotonic()
    try:
        find_tools(args.ladder, args.spanflow)
        with tempfile.TemporaryDirectory(prefix="spanflow-live-") as tmp, namespace() as ns:
            bench(args, Path(tmp), ns)
    except (BenchError, pytest.fail.Exception, pytest.skip.Exception, AssertionError) as exc:
        print(f"run_bench_live: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("run_bench_live: interrupted", file=sys.stderr)
        return 130
    print(f"\n(run took {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
