"""`spanflow capture` on a real interface: replayed samples reach nfcapd with exact totals.

A veth pair inside a throwaway network namespace stands in for a SPAN port:
tcpreplay sends a sample (MACs rewritten to foreign ones, so the receiving
kernel stays silent) into one end, ``spanflow capture`` captures on the other
with pypcap and exports NetFlow v9 to an nfcapd on the namespace's loopback.
After SIGTERM, nfdump's totals must equal an independent dpkt count of the
replayed file exactly, with no kernel drops and no sequence failures. So they
must when SIGTERM comes in the middle of a looped burst (counted over the
frames metered) and when the captured interface is deleted (exit status 1).
"""

from __future__ import annotations

import math
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.ground_truth import ground_truth
from tests.live_netns import (
    DEADLINE_S,
    Child,
    Namespace,
    frame_macs,
    namespace,
    outside_sample_networks,
    rewrite_macs,
    run,
    wait_until,
    write_looped_prefix,
)

pytestmark = pytest.mark.interop
REPO = Path(__file__).resolve().parent.parent
SPANFLOW = Path(sys.executable).parent / "spanflow"
COLLECTOR_PORT = 2055  # the namespace is fresh: nothing else binds in it
FOREIGN_DST, FOREIGN_SRC = bytes.fromhex("020000000099"), bytes.fromhex("020000000098")
NO_TIMEOUT = ["--inactive", "1e6", "--active", "1e6"]
SETTLE_S = 1.0  # after tcpreplay returns, before SIGTERM
SUMMARY = re.compile(
    r"^spanflow: capture: (\d+) frames received, (\d+) dropped by the kernel, "
    r"(\d+) dropped by the interface$",
    re.MULTILINE,
)
METERED = re.compile(r"^spanflow: (\d+) frames metered, (\d+) decoded;", re.MULTILINE)
STATS = re.compile(
    r"^spanflow: \d+ frames received, .* by the interface; (\d+) decoded;", re.MULTILINE
)
# Each back end, and the afpacket one with two fanout workers (tests/test_live_workers.py has more).
BACKENDS = {
    "pcap": ("--backend", "pcap"),
    "afpacket": ("--backend", "afpacket"),
    "afpacket-2-workers": ("--backend", "afpacket", "--workers", "2"),
}
backends = pytest.mark.parametrize("backend", list(BACKENDS))
STARTUP_DEADLINE_S = 60.0  # a cold numba cache compiles every kernel first (about 15 s here)
GONE_DEADLINE_S = 5.0  # from deleting the captured interface to the probe's exit
BURST_PPS, BURST_S = 20_000, 8.0  # outlasts the probe's start-up, stop and 2 s drain

needs_tools = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("nfcapd", "nfdump", "tcpreplay")),
    reason="live capture test needs nfcapd, nfdump and tcpreplay",
)


@pytest.fixture
def netns() -> Iterator[Namespace]:
    with namespace() as ns:
        yield ns


def udp_queue_empty(pid: int, port: int) -> bool:
    """Whether the UDP socket on ``port`` of process ``pid``'s namespace has nothing left to read."""
    for line in Path(f"/proc/{pid}/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}"):
            return int(fields[4].split(":")[1], 16) == 0
    return False


def nfdump_totals(directory: Path) -> dict[str, int]:
    """nfdump's Flows, Packets, Bytes and Sequence failures over every file nfcapd wrote."""
    assert list(directory.glob("nfcapd.*")), "nfcapd wrote no file"
    out = run(["nfdump", "-R", str(directory), "-I"])
    assert out.returncode == 0, out.stderr
    wanted = ("Flows", "Packets", "Bytes", "Sequence failures")
    totals = {}
    for line in out.stdout.splitlines():
        name, _, value = line.partition(":")
        if name in wanted:
            totals[name] = int(value)
    return totals


def nfdump_input_interfaces(directory: Path) -> set[int]:
    out = run(["nfdump", "-R", str(directory), "-q", "-o", "fmt:%in"])
    assert out.returncode == 0, out.stderr
    return {int(line) for line in out.stdout.split()}


@dataclass(frozen=True, slots=True)
class LiveRun:
    """What one capture run left behind: the probe's stderr and nfcapd's files."""

    stderr: str
    flows_dir: Path

    def summary(self) -> tuple[int, int, int, int]:
        """(frames received, dropped by the kernel, frames metered, decoded) from the summary."""
        assert "Traceback" not in self.stderr
        capture, metered = SUMMARY.search(self.stderr), METERED.search(self.stderr)
        assert capture is not None, self.stderr
        assert metered is not None, self.stderr
        return int(capture[1]), int(capture[2]), int(metered[1]), int(metered[2])


def replayable(tmp_path: Path, sample: str) -> Path:
    """The sample with foreign MACs, checked to hold only documentation addresses."""
    replay = tmp_path / sample
    rewrite_macs(REPO / "samples" / sample, replay, FOREIGN_DST, FOREIGN_SRC)
    assert outside_sample_networks(replay) == []
    assert frame_macs(replay) == {(FOREIGN_DST, FOREIGN_SRC)}
    return replay


@dataclass(frozen=True, slots=True)
class Probe:
    """nfcapd and ``spanflow capture`` running in the namespace."""

    nfcapd: Child
    spanflow: Child
    stderr_path: Path
    flows_dir: Path

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def wait_metered(self, decoded: int) -> None:
        """Wait for a statistics line (``--stats-interval 1``) with at least ``decoded`` decoded."""

        def metered() -> bool:
            counts = [int(m[1]) for m in STATS.finditer(self.stderr())]
            return (bool(counts) and counts[-1] >= decoded) or not self.spanflow.running()

        wait_until(metered, f"spanflow to report {decoded} frames decoded")
        assert self.spanflow.running(), self.stderr()

    def collected(self) -> LiveRun:
        """Once spanflow has exited: let nfcapd read every datagram, stop it, return the run."""
        assert not self.spanflow.running()
        wait_until(lambda: udp_queue_empty(self.nfcapd.pid, COLLECTOR_PORT), "nfcapd to read all")
        assert self.nfcapd.stop(signal.SIGTERM) == 0
        return LiveRun(self.stderr(), self.flows_dir)


@contextmanager
def running_probe(netns: Namespace, tmp_path: Path, *options: str) -> Iterator[Probe]:
    """nfcapd, then ``spanflow capture -i rx`` exporting v9 to it; both stopped on exit."""
    flows_dir, stderr_path = tmp_path / "nfcapd", tmp_path / "spanflow.stderr"
    flows_dir.mkdir()
    children: list[Child] = []
    try:
        nfcapd = Child(netns.argv("nfcapd", "-b", "127.0.0.1", "-p", str(COLLECTOR_PORT),
                                  "-w", flows_dir, "-t", "3600"))  # fmt: skip
        children.append(nfcapd)
        wait_until(lambda: netns.udp_listening(nfcapd.pid, COLLECTOR_PORT) or not nfcapd.running(),
                   "nfcapd to listen")  # fmt: skip
        assert nfcapd.running(), "nfcapd exited at start"
        with stderr_path.open("wb") as stderr:
            spanflow = Child(netns.argv(SPANFLOW, "capture", "-i", netns.rx,
                                        "-c", f"127.0.0.1:{COLLECTOR_PORT}", "--format", "9",
                                        *NO_TIMEOUT, *options), stderr=stderr)  # fmt: skip
        children.append(spanflow)
        started = f"spanflow: capturing on {netns.rx}\n"
        wait_until(lambda: started in stderr_path.read_text() or not spanflow.running(),
                   "spanflow to start capturing", STARTUP_DEADLINE_S)  # fmt: skip
        assert spanflow.running(), stderr_path.read_text()
        yield Probe(nfcapd, spanflow, stderr_path, flows_dir)
    finally:
        for child in reversed(children):
            child.stop()


def replay_once(netns: Namespace, replay: Path, frames: int) -> None:
    """tcpreplay ``replay`` into tx at a rate no probe drops, checking it sent every frame."""
    replayed = run(netns.argv("tcpreplay", "-i", netns.tx, "--pps=2000", replay))
    assert replayed.returncode == 0, replayed.stderr
    assert re.search(rf"Successful packets:\s+{frames}\n", replayed.stdout), replayed.stdout


def capture_replay(
    netns: Namespace, tmp_path: Path, replay: Path, stop: signal.Signals, settle_s: float,
    *options: str,
) -> LiveRun:  # fmt: skip
    """nfcapd and ``spanflow capture`` in the namespace; replay, wait ``settle_s``, send ``stop``."""
    with running_probe(netns, tmp_path, *options) as probe:
        replay_once(netns, replay, ground_truth(replay).frames)
        time.sleep(settle_s)
        assert probe.spanflow.stop(stop) == 0, probe.stderr()
        return probe.collected()


@needs_tools
@backends
@pytest.mark.parametrize(
    ("sample", "key_vlan"),
    [("web.pcap", False), ("vlan.pcap", False), ("vlan.pcap", True), ("ipv6.pcap", False)],
)
def test_replayed_sample_reaches_nfdump_exactly(
    netns: Namespace, tmp_path: Path, sample: str, key_vlan: bool, backend: str
) -> None:
    """Every replayed IP packet and octet reaches nfdump once, in one record per flow and FIN/RST."""
    replay = replayable(tmp_path, sample)
    truth, original = (
        ground_truth(replay, key_vlan),
        ground_truth(REPO / "samples" / sample, key_vlan),
    )
    assert (truth.frames, truth.ip_packets, truth.ip_octets, truth.by_key.keys()) == (
        original.frames, original.ip_packets, original.ip_octets, original.by_key.keys()
    )  # fmt: skip
    rx_ifindex = netns.ifindex(netns.rx)
    options = [*BACKENDS[backend], *(["--key-vlan"] if key_vlan else [])]
    done = capture_replay(netns, tmp_path, replay, signal.SIGTERM, SETTLE_S, *options)
    received, kernel_drops, metered, decoded = done.summary()
    assert (received, kernel_drops) == (truth.frames, 0)
    assert (metered, decoded) == (truth.frames, truth.ip_packets)
    assert nfdump_totals(done.flows_dir) == {
        "Flows": sum(truth.records_without_timeouts),
        "Packets": truth.ip_packets,
        "Bytes": truth.ip_octets,
        "Sequence failures": 0,
    }
    assert nfdump_input_interfaces(done.flows_dir) == {rx_ifindex}


@needs_tools
@pytest.mark.parametrize("backend", ["afpacket", "afpacket-2-workers"])
def test_capture_runs_on_the_kernels_compiled_ahead_of_time(
    netns: Namespace, tmp_path: Path, backend: str
) -> None:
    """Ring walk, decoder, cache and encoder of a live capture come from aot/_kernels: numba
    and llvmlite are never loaded into the probe (or its workers) while traffic flows."""
    replay = replayable(tmp_path, "web.pcap")
    truth = ground_truth(replay)
    with running_probe(netns, tmp_path, *BACKENDS[backend]) as probe:
        replay_once(netns, replay, truth.frames)
        time.sleep(SETTLE_S)
        pids = [probe.spanflow.process.pid, *children_of(probe.spanflow.process.pid)]
        maps = {pid: Path(f"/proc/{pid}/maps").read_text() for pid in pids}
        assert probe.spanflow.stop(signal.SIGTERM) == 0, probe.stderr()
        done = probe.collected()
    assert len(maps) == (3 if backend == "afpacket-2-workers" else 1)
    for pid, mapped in maps.items():
        assert "aot/_kernels" in mapped, pid
        assert "/numba/" not in mapped, pid
        assert "/llvmlite/" not in mapped, pid
    assert done.summary()[2:] == (truth.frames, truth.ip_packets)


def children_of(pid: int) -> list[int]:
    """The live worker processes of ``pid`` (its direct children)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


@needs_tools
@backends
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stop_right_after_traffic_meters_every_received_frame(
    netns: Namespace, tmp_path: Path, stop: signal.Signals, backend: str
) -> None:
    """A stop signal right after the last frame still meters and exports every frame received."""
    replay = replayable(tmp_path, "web.pcap")
    truth = ground_truth(replay)
    done = capture_replay(netns, tmp_path, replay, stop, 0.0, *BACKENDS[backend])
    received, kernel_drops, metered, decoded = done.summary()
    assert (received, kernel_drops, metered, decoded) == (
        truth.frames, 0, truth.frames, truth.ip_packets
    )  # fmt: skip
    totals = nfdump_totals(done.flows_dir)
    assert (totals["Packets"], totals["Bytes"]) == (truth.ip_packets, truth.ip_octets)


@needs_tools
@backends
def test_interface_going_away_exports_every_flow_and_exits_1(
    netns: Namespace, tmp_path: Path, backend: str
) -> None:
    """Deleting the captured interface exits 1 within seconds, with one error line, every flow exported."""
    replay = replayable(tmp_path, "web.pcap")
    truth = ground_truth(replay)
    rx_ifindex = netns.ifindex(netns.rx)
    with running_probe(netns, tmp_path, "--stats-interval", "1", *BACKENDS[backend]) as probe:
        replay_once(netns, replay, truth.frames)
        probe.wait_metered(truth.ip_packets)
        netns.check("ip", "link", "del", netns.rx)
        deleted = time.monotonic()
        status = probe.spanflow.wait(GONE_DEADLINE_S)
        exit_after_s = time.monotonic() - deleted
        done = probe.collected() if status is not None else None
    assert done is not None, f"still running {GONE_DEADLINE_S} s after the interface went away"
    assert (status, exit_after_s < GONE_DEADLINE_S) == (1, True), done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("spanflow: error:")]
    assert errors == [
        f"spanflow: error: {netns.rx}: capture interface went away "
        f"(ifindex {rx_ifindex} no longer exists)"
    ]
    received, kernel_drops, metered, decoded = done.summary()
    assert (received, kernel_drops, metered, decoded) == (
        truth.frames, 0, truth.frames, truth.ip_packets
    )  # fmt: skip
    assert nfdump_totals(done.flows_dir) == {
        "Flows": sum(truth.records_without_timeouts),
        "Packets": truth.ip_packets,
        "Bytes": truth.ip_octets,
        "Sequence failures": 0,
    }


@needs_tools
@backends
def test_sigterm_mid_burst_exports_exactly_the_frames_metered(
    netns: Namespace, tmp_path: Path, backend: str
) -> None:
    """SIGTERM while a burst still arrives exits 0, and nfdump gets exactly the frames metered.

    One worker meters a prefix of the looped replay, checked record by record;
    two workers each stop at their own point, so their sum is checked.
    """
    replay = replayable(tmp_path, "web.pcap")
    sample_frames = ground_truth(replay).frames
    loops = math.ceil(BURST_PPS * BURST_S / sample_frames)
    sent = sample_frames * loops
    with running_probe(netns, tmp_path, "--stats-interval", "1", *BACKENDS[backend]) as probe:
        burst = Child(netns.argv("tcpreplay", "-i", netns.tx, f"--pps={BURST_PPS}",
                                 f"--loop={loops}", "--preload-pcap", replay))  # fmt: skip
        try:
            probe.wait_metered(1)
            assert burst.running(), "the burst ended before SIGTERM"
            status = probe.spanflow.stop(signal.SIGTERM)
            arriving_throughout = burst.running()
        finally:
            burst.stop()
        done = probe.collected()
    assert status == 0, done.stderr
    assert arriving_throughout, "the burst ended before spanflow did: not a mid-burst stop"
    received, kernel_drops, metered, decoded = done.summary()
    assert kernel_drops == 0
    assert 0 < metered < sent
    assert received >= metered
    if "--workers" in BACKENDS[backend]:
        totals = nfdump_totals(done.flows_dir)
        assert (totals["Packets"], totals["Sequence failures"]) == (decoded, 0)
        return
    # No drops: the frames metered are the first `metered` of the looped replay, in order.
    prefix = tmp_path / "metered.pcap"
    write_looped_prefix(replay, metered, prefix)
    truth = ground_truth(prefix)
    assert decoded == truth.ip_packets
    assert nfdump_totals(done.flows_dir) == {
        "Flows": sum(truth.records_without_timeouts),
        "Packets": truth.ip_packets,
        "Bytes": truth.ip_octets,
        "Sequence failures": 0,
    }


@pytest.mark.parametrize("name", ["no-such-iface0", "web.pcap"])
def test_not_an_interface_is_a_usage_error(tmp_path: Path, name: str) -> None:
    """A name that is not a network interface (even an existing capture file) exits 2 with one line."""
    shutil.copy(REPO / "samples" / "web.pcap", tmp_path / "web.pcap")
    done = subprocess.run(
        [str(SPANFLOW), "capture", "-i", name, "-c", "127.0.0.1:2055"],
        cwd=tmp_path, capture_output=True, text=True, timeout=DEADLINE_S, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"spanflow: error: {name}: ")
