"""Live capture at rising replay rates: the highest lossless rate of spanflow and softflowd.

``python tests/bench/run_bench_live.py [--packets N] [--seed S]`` (``make
bench-live``, root). Everything runs inside a throwaway network namespace
(tests/live_netns.py): tcpreplay sends the seeded capture of make_capture.py,
MACs rewritten to foreign ones so the receiving kernel stays silent, from
``sf-tx`` to its veth peer ``sf-rx``, where one probe at a time captures and
exports NetFlow v9 to an nfcapd on the namespace's loopback. At each rate the
probe is stopped one second after the replay (spanflow: SIGTERM; softflowd,
which has no SIGTERM handler in the foreground: ``softflowctl shutdown``),
nfcapd drained and stopped, and ``nfdump -I`` read back. A probe is lossless
when it counted every frame sent, the kernel dropped none, and nfdump holds
every packet (every frame is IP). CPU time is the probe's own from "ready":
"meter" until just before the stop, "+ flush" until its exit (schedstat of its
threads, then ``wait4`` rusage). tcpreplay sends one frame per syscall, so it
tops out at a few hundred thousand frames per second. Exit status 0 when the
runs happened, whatever the numbers; 1 when a tool is missing or a step failed.
"""

from __future__ import annotations

import argparse
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
TOOLS = ("softflowd", "nfcapd", "nfdump", "tcpreplay", "ip")
RATES_PPS: tuple[int | None, ...] = (20_000, 50_000, 100_000, 200_000, 400_000, None)  # None: top
COLLECTOR_PORT = 2055  # the namespace is fresh: nothing else binds in it
FOREIGN_DST, FOREIGN_SRC = bytes.fromhex("025f00000001"), bytes.fromhex("025f00000002")
CAPTURE_BUFFER_MIB = 64  # spanflow's default kernel buffer; softflowd gets the same (-B)
SOFTFLOWD_MAX_FLOWS = 65536  # spanflow's default cache size
SETTLE_S = 1.0  # after tcpreplay returns, before SIGTERM
STARTUP_S = 90.0  # spanflow may compile its kernels on a first run
STOP_S = 30.0  # a probe flushes its whole cache on SIGTERM
TARGET_CPU_US = 1.0
# softflowd opens libpcap with a 0 ms timeout, so a partly filled TPACKET_V3 ring
# block may stay in the kernel after the replay; for softflowd, a train of non-IP
# frames (which it ignores, counted as non-IP) pushes the last block out.
FILLER_FRAMES, FILLER_ETHERTYPE = 4000, 0x88B5
PACKET_SOCKETS = "/proc/{pid}/net/packet"
SPAN_SUMMARY = re.compile(
    r"^spanflow: capture: (\d+) frames received, (\d+) dropped by the kernel, "
    r"(\d+) dropped by the interface$",
    re.MULTILINE,
)
SPAN_METERED = re.compile(r"^spanflow: (\d+) frames metered,", re.MULTILINE)


class BenchError(Exception):
    """A tool is missing, failed, or did not finish in time."""


@dataclass(frozen=True, slots=True)
class Replay:
    """What one tcpreplay run sent."""

    sent: int
    failed: int
    achieved_pps: float


@dataclass(frozen=True, slots=True)
class Cpu:
    """A probe's CPU time from "ready": until just before it is stopped, and until its exit."""

    meter_s: float
    total_s: float


@dataclass(frozen=True, slots=True)
class Outcome:
    """One probe at one rate: what it saw, what reached nfdump, its CPU time."""

    probe: str
    replay: Replay
    captured: int | None  # frames the probe counted (spanflow: metered; softflowd: processed)
    kernel_drops: int | None
    exported_packets: int | None  # packets in the records nfdump read back
    cpu: Cpu
    lossless: bool
    notes: str = ""

    def us_per_packet(self, cpu_s: float) -> float | None:
        return cpu_s / self.replay.sent * 1e6 if self.replay.sent else None


def write_filler(path: Path) -> None:
    """FILLER_FRAMES full-size non-IP frames (IEEE local experimental ethertype), foreign MACs."""
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    frame = FOREIGN_DST + FOREIGN_SRC + FILLER_ETHERTYPE.to_bytes(2, "big") + bytes(1500)
    record = struct.pack("<IIII", 0, 0, len(frame), len(frame)) + frame
    path.write_bytes(header + record * FILLER_FRAMES)


def find_tools() -> None:
    missing = [t for t in TOOLS if not shutil.which(t, path="/usr/sbin:/usr/bin:/sbin:/bin")]
    if not os.access(SPANFLOW, os.X_OK):
        missing.append(str(SPANFLOW))
    if missing:
        raise BenchError(f"missing: {', '.join(missing)}; run `make setup` as root")


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


# ----------------------------------------------------------------- processes


def cpu_ns(pid: int) -> int:
    """CPU time so far of every thread of ``pid`` (schedstat: ns on CPU)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError):  # the thread ended meanwhile
            continue
    return total


def wait_measured(
    child: Child, signum: int | None = None, deadline_s: float = STOP_S
) -> tuple[int | None, float]:
    """Send ``signum`` (if any), reap ``child`` with ``wait4`` (SIGKILL at the deadline).

    Returns its exit code (None when it had to be killed) and its total CPU seconds.
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


def replay_capture(ns: Namespace, pcap: Path, rate_pps: int | None, frames: int) -> Replay:
    """tcpreplay ``pcap`` from sf-tx at ``rate_pps`` (None: --topspeed), with a deadline."""
    pace = "--topspeed" if rate_pps is None else f"--pps={rate_pps}"
    expected_s = frames / (rate_pps or 400_000)
    argv = ns.argv("tcpreplay", "-i", ns.tx, pace, "--preload-pcap", pcap)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False,
                              timeout=expected_s * 2 + 30)  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"tcpreplay did not finish within {expected_s * 2 + 30:.0f} s") from exc
    sent = re.search(r"Successful packets:\s+(\d+)", done.stdout)
    failed = re.search(r"Failed packets:\s+(\d+)", done.stdout)
    rated = re.search(r"Rated: .*?([\d.]+) pps", done.stdout)
    if done.returncode != 0 or sent is None or failed is None or rated is None:
        raise BenchError(f"tcpreplay failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return Replay(int(sent[1]), int(failed[1]), float(rated[1]))


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


def probe_argv(probe: str, ns: Namespace, work: Path) -> list[str]:
    collector = f"127.0.0.1:{COLLECTOR_PORT}"
    if probe == "spanflow":
        return ns.argv(SPANFLOW, "capture", "-i", ns.rx, "-c", collector, "--format", "9",
                       "--inactive", "1e6", "--active", "1e6",
                       "--buffer-mib", str(CAPTURE_BUFFER_MIB))  # fmt: skip
    # -d (foreground) installs no SIGTERM handler: a control socket asks for the
    # graceful shutdown that exports every flow. Default timeouts outlast the run.
    return ns.argv("softflowd", "-i", ns.rx, "-n", collector, "-v", "9", "-d",
                   "-c", work / "softflowd.ctl", "-p", work / "softflowd.pid",
                   "-m", str(SOFTFLOWD_MAX_FLOWS), "-B", str(CAPTURE_BUFFER_MIB << 20))  # fmt: skip


def softflowctl(work: Path, command: str) -> str:
    """Output of ``softflowctl`` talking to the run's control socket (a file, not the network)."""
    argv = ["softflowctl", "-c", str(work / "softflowd.ctl"), command]
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


def ready_check(probe: str, child: Child, ns: Namespace, log_path: Path, rx_ifindex: int) -> bool:
    """Whether ``probe`` has its capture open (spanflow says so; softflowd opens its socket)."""
    if probe == "spanflow":
        return f"spanflow: capturing on {ns.rx}\n" in log_path.read_text(errors="replace")
    return capturing(child.pid, rx_ifindex)


def run_probe(
    probe: str, ns: Namespace, pcap: Path, frames: int, rate_pps: int | None, work: Path
) -> Outcome:
    """nfcapd, then ``probe`` on sf-rx; replay; settle; stop both; read nfdump back."""
    label = "top" if rate_pps is None else str(rate_pps)
    flow_dir, log_path = work / f"{probe}-{label}", work / f"{probe}-{label}.log"
    flow_dir.mkdir()
    softflowd_stats = ""
    rx_ifindex = ns.ifindex(ns.rx)
    with ExitStack() as stack:
        nfcapd = Child(ns.argv("nfcapd", "-b", "127.0.0.1", "-p", str(COLLECTOR_PORT),
                               "-w", flow_dir, "-t", "3600", "-B", str(8 << 20)))  # fmt: skip
        stack.callback(nfcapd.stop)
        wait_until(lambda: ns.udp_listening(nfcapd.pid, COLLECTOR_PORT) or not nfcapd.running(),
                   "nfcapd to listen")  # fmt: skip
        if not nfcapd.running():
            raise BenchError("nfcapd exited at start")
        log = stack.enter_context(log_path.open("wb"))
        child = Child(probe_argv(probe, ns, work), stderr=log)
        stack.callback(child.stop)
        wait_until(
            lambda: not child.running() or ready_check(probe, child, ns, log_path, rx_ifindex),
            f"{probe} to capture",
            STARTUP_S,
        )
        if not child.running():
            raise BenchError(f"{probe} exited at start: {log_path.read_text()[-500:]}")
        time.sleep(0.3)  # the socket is open; let the probe reach its read loop
        base_ns = cpu_ns(child.pid)
        replay = replay_capture(ns, pcap, rate_pps, frames)
        if probe == "softflowd":
            replay_capture(ns, work / "filler.pcap", None, FILLER_FRAMES)
        time.sleep(SETTLE_S)
        meter_s = (cpu_ns(child.pid) - base_ns) / 1e9
        if probe == "softflowd":
            softflowd_stats = softflowctl(work, "statistics")
            softflowctl(work, "shutdown")  # graceful: exports every flow, then exits
            code, total_s = wait_measured(child)
            code = 0 if code is not None else None  # it exits 1 after a control-socket shutdown
        else:
            code, total_s = wait_measured(child, signal.SIGTERM)
        wait_until(lambda: udp_queue_empty(nfcapd.pid, COLLECTOR_PORT), "nfcapd to read all")
        nfcapd.stop(signal.SIGTERM)
    exported = nfdump_packets(flow_dir)
    stderr = log_path.read_text(errors="replace")
    cpu = Cpu(meter_s, total_s - base_ns / 1e9)
    if code != 0:
        return Outcome(probe, replay, None, None, exported, cpu, False,
                       f"exit {code}: {stderr.strip()[-200:]}")  # fmt: skip
    if probe == "spanflow":
        summary, metered = SPAN_SUMMARY.search(stderr), SPAN_METERED.search(stderr)
        if summary is None or metered is None:
            raise BenchError(f"spanflow printed no summary: {stderr.strip()[-500:]}")
        captured, drops = int(metered[1]), int(summary[2])
        lossless = captured == replay.sent and drops == 0
        return Outcome(probe, replay, captured, drops, exported, cpu, lossless)
    captured = stat(softflowd_stats, "Packets processed")
    drops = stat(softflowd_stats, "Packets dropped by libpcap")
    # Every frame is an IP packet (prepare_capture checked), so IP packets sent == frames sent.
    lossless = exported == replay.sent and captured == replay.sent and drops == 0
    return Outcome(probe, replay, captured, drops, exported, cpu, lossless)


# ----------------------------------------------------------------- report


def show(count: int | None) -> str:
    return "?" if count is None else f"{count:,}"


def per_packet(us: float | None) -> str:
    return "?" if us is None else f"{us:.2f}"


def print_rate(rate_pps: int | None, outcomes: list[Outcome]) -> None:
    asked = "top speed" if rate_pps is None else f"{rate_pps:,} pps"
    achieved = ", ".join(f"{o.replay.achieved_pps:,.0f}" for o in outcomes)
    print(f"\nrate {asked} (tcpreplay achieved {achieved} pps)")
    print(f"  {'probe':<11}{'sent':>10}{'captured':>10}{'k. drops':>10}{'nfdump pkts':>13}"
          f"{'lossless':>10}{'CPU µs/pkt meter':>18}{'+ flush':>9}")  # fmt: skip
    for o in outcomes:
        print(f"  {o.probe:<11}{o.replay.sent:>10,}{show(o.captured):>10}"
              f"{show(o.kernel_drops):>10}{show(o.exported_packets):>13}"
              f"{'yes' if o.lossless else 'no':>10}"
              f"{per_packet(o.us_per_packet(o.cpu.meter_s)):>18}"
              f"{per_packet(o.us_per_packet(o.cpu.total_s)):>9}")  # fmt: skip
        if o.replay.failed:
            print(f"    tcpreplay: {o.replay.failed} frames failed to send")
        if o.notes:
            print(f"    {o.notes}")
    sys.stdout.flush()


def highest_lossless(results: dict[int | None, list[Outcome]], probe: str) -> int:
    """Index in RATES_PPS of the fastest rate at which ``probe`` was lossless (-1: none)."""
    lossless = [
        i
        for i, rate_pps in enumerate(RATES_PPS)
        if any(o.probe == probe and o.lossless for o in results.get(rate_pps, []))
    ]
    return max(lossless, default=-1)


def rate_name(index: int) -> str:
    if index < 0:
        return "none"
    rate_pps = RATES_PPS[index]
    return "top speed" if rate_pps is None else f"{rate_pps:,} pps"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_summary(results: dict[int | None, list[Outcome]]) -> None:
    every = [o for outcomes in results.values() for o in outcomes]
    span = [o for o in every if o.probe == "spanflow"]
    best_span, best_soft = (
        highest_lossless(results, "spanflow"),
        highest_lossless(results, "softflowd"),
    )
    print(f"\nhighest lossless rate: spanflow {rate_name(best_span)}, "
          f"softflowd {rate_name(best_soft)}")  # fmt: skip
    top = results.get(None, [])
    if top and all(o.lossless for o in top):
        print("both lossless at tcpreplay's top speed (one frame per syscall): the sender, "
              "not the probes, set the ceiling")  # fmt: skip
    # CPU per packet at the fastest replay, where idle polling weighs least.
    fastest = max(span, key=lambda o: o.replay.achieved_pps, default=None)
    cpu_us = None if fastest is None else fastest.us_per_packet(fastest.cpu.meter_s)
    cpu_ok = cpu_us is not None and cpu_us <= TARGET_CPU_US
    rows = [
        ("spanflow highest lossless rate >= softflowd's", best_span >= best_soft),
        (f"spanflow CPU per packet <= {TARGET_CPU_US:g} µs (metering, fastest run: "
         f"{per_packet(cpu_us)} µs)", cpu_ok),
    ]  # fmt: skip
    for label, ok in rows:
        print(f"  {label:<70}{verdict(ok)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=200_000, help="capture size (200000)")
    parser.add_argument("--seed", type=int, default=1, help="capture seed (1)")
    args = parser.parse_args(argv)
    if args.packets < 1:
        parser.error("--packets must be at least 1")
    if os.geteuid() != 0:
        print("run_bench_live: needs root (a network namespace)", file=sys.stderr)
        return 1
    started = time.monotonic()
    try:
        find_tools()
        with tempfile.TemporaryDirectory(prefix="spanflow-live-") as tmp, namespace() as ns:
            work = Path(tmp)
            pcap, frames = prepare_capture(work, args.packets, args.seed)
            write_filler(work / "filler.pcap")
            print(f"{frames:,} frames, replayed {ns.tx} -> {ns.rx} in namespace {ns.name}; "
                  f"{os.cpu_count()} CPUs")  # fmt: skip
            results: dict[int | None, list[Outcome]] = {}
            for rate_pps in RATES_PPS:
                results[rate_pps] = [
                    run_probe(probe, ns, pcap, frames, rate_pps, work)
                    for probe in ("spanflow", "softflowd")
                ]
                print_rate(rate_pps, results[rate_pps])
            print_summary(results)
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
