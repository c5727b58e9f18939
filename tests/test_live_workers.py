"""The AF_PACKET back end's fanout workers on a real interface (a veth pair in a namespace).

- ``--workers 1`` and ``--workers 2`` meter a replay to the same records:
  IPv4 and IPv6 fragments of one key mixed with its unfragmented packets,
  VLAN and QinQ tags (the kernel takes the outer tag off; the ring walk puts
  it back), IPv6 extension headers. The kernel's own fanout hash would split
  such a key (ports are hashed only when the packet is not a fragment): the
  steering program hashes addresses only, which this test checks end to end.
- A quiet link still delivers: a lone packet's record leaves within 2 s of
  its idle timeout (the ring's block timeout hands over a part-filled block).
- A killed worker is noticed within a second: one error line naming it,
  exit 1, the other worker's flows exported.
"""

from __future__ import annotations

import csv
import os
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dpkt
import pytest

from tests import frames as f
from tests.ground_truth import ground_truth
from tests.live_netns import Namespace, namespace, rewrite_macs, wait_until
from tests.processes import children
from tests.test_live_capture import (
    FOREIGN_DST,
    FOREIGN_SRC,
    METERED,
    needs_tools,
    nfdump_totals,
    replay_once,
    replayable,
    running_probe,
)

pytestmark = pytest.mark.interop
TIME_COLUMNS = ("first_ns", "last_ns")
WORKER_LINE = (
    r"^spanflow: worker (\d+): (\d+) frames received, (\d+) dropped by the kernel, "
    r"(\d+) metered, (\d+) decoded$"
)
NOTICE_S = 1.0  # a dead worker must be noticed within this
IDLE_S = 2  # --inactive of the quiet-link test
QUIET_SLACK_S = 2.0


@pytest.fixture
def netns() -> Iterator[Namespace]:
    with namespace() as ns:
        yield ns


def mixed_frames() -> list[bytes]:
    """Keys whose packets the kernel's fanout hash would spread over workers, and tags."""
    out: list[bytes] = []
    for host in range(48):
        src, dst = f"198.18.0.{host + 1}", f"198.19.0.{host + 1}"
        payload = f.udp(4000 + host, 53, bytes(range(200)) * 4)  # 808 bytes of UDP
        whole = f.ipv4(f.udp(4000 + host, 53, b"q" * 40), src=src, dst=dst)
        raw = bytes(payload)
        first = f.ipv4(raw[:512], proto=f.UDP, src=src, dst=dst, more_fragments=True)
        later = f.ipv4(raw[512:], proto=f.UDP, src=src, dst=dst, frag_units=64)
        tags = [(), (f.Tag(10),), (f.Tag(100, f.ETH_8021AD), f.Tag(20))][host % 3]
        for l3 in (whole, first, whole, later, whole):
            out.append(f.eth(l3, tags=tags))
        out.append(f.eth(whole))  # the same key untagged: one worker must get both
        src6, dst6 = f"2001:db8::{host + 1:x}", f"2001:db8:1::{host + 1:x}"
        six = f.udp(5000 + host, 443, b"v6" * 20)
        first6 = f.ipv6(bytes(six)[:16], proto=f.UDP, src=src6, dst=dst6,
                        ext=[f.hop_by_hop(), f.fragment(0, more=True)])  # fmt: skip
        later6 = f.ipv6(bytes(six)[16:], proto=f.UDP, src=src6, dst=dst6,
                        ext=[f.fragment(2, more=False)])  # fmt: skip
        whole6 = f.ipv6(six, src=src6, dst=dst6, ext=[f.dest_opts()])
        for l3 in (whole6, first6, later6, whole6):
            out.append(f.eth(l3, tags=tags))
        tcp6 = f.ipv6(f.tcp(6000 + host, 80), src=src6, dst=dst6, ext=[f.routing(1)])
        out.append(f.eth(tcp6))
    return out


def write_replay(path: Path) -> Path:
    raw = path.with_suffix(".raw.pcap")
    with raw.open("wb") as file:
        writer = dpkt.pcap.Writer(file, snaplen=65535)
        for i, frame in enumerate(mixed_frames()):
            writer.writepkt(frame, ts=1_700_000_000 + i / 1000)
    rewrite_macs(raw, path, FOREIGN_DST, FOREIGN_SRC)
    return path


def record_multiset(flows_csv: Path) -> Counter[tuple[str, ...]]:
    with flows_csv.open() as file:
        rows = list(csv.DictReader(file))
    return Counter(
        tuple(value for name, value in row.items() if name not in TIME_COLUMNS) for row in rows
    )


@dataclass(frozen=True, slots=True)
class WorkerLine:
    received: int
    dropped: int
    metered: int
    decoded: int


def worker_lines(stderr: str) -> dict[int, WorkerLine]:
    """The summary's line per worker, by worker index."""
    return {
        int(m[1]): WorkerLine(*map(int, m.groups()[1:]))
        for m in re.finditer(WORKER_LINE, stderr, re.MULTILINE)
    }


@needs_tools
def test_one_and_two_workers_meter_the_same_records(netns: Namespace, tmp_path: Path) -> None:
    """Fragments, tags and extension headers: --workers 2 ends exactly --workers 1's records."""
    replay = write_replay(tmp_path / "mixed.pcap")
    truth = ground_truth(replay)
    results = {}
    for workers in (1, 2):
        run_dir = tmp_path / f"workers{workers}"
        run_dir.mkdir()
        flows = run_dir / "flows.csv"
        with running_probe(netns, run_dir, "--backend", "afpacket", "--workers", str(workers),
                           "-o", str(flows)) as probe:  # fmt: skip
            replay_once(netns, replay, truth.frames)
            time.sleep(1.0)
            assert probe.spanflow.stop(signal.SIGTERM) == 0, probe.stderr()
            done = probe.collected()
        metered = METERED.search(done.stderr)
        assert metered is not None, done.stderr
        assert (int(metered[1]), int(metered[2])) == (truth.frames, truth.ip_packets)
        totals = nfdump_totals(done.flows_dir)
        assert (totals["Packets"], totals["Bytes"], totals["Sequence failures"]) == (
            truth.ip_packets, truth.ip_octets, 0
        )  # fmt: skip
        results[workers] = record_multiset(flows)
        if workers == 2:
            shares = worker_lines(done.stderr)
            assert sorted(shares) == [0, 1], done.stderr
            assert all(share.metered > 0 for share in shares.values()), shares  # both worked
            assert sum(share.metered for share in shares.values()) == truth.frames
    assert sum(results[1].values()) == sum(truth.records_without_timeouts)
    assert results[2] == results[1]


@needs_tools
@pytest.mark.parametrize("workers", [1, 2])
def test_quiet_link_delivers_a_lone_flow_soon_after_its_idle_timeout(
    netns: Namespace, tmp_path: Path, workers: int
) -> None:
    """One packet on a silent link: its record is written within 2 s of the idle timeout."""
    lone = tmp_path / "lone.pcap"
    with (tmp_path / "lone.raw.pcap").open("wb") as file:
        dpkt.pcap.Writer(file).writepkt(f.eth(f.ipv4(f.udp(), src="198.18.9.1", dst="198.18.9.2")))
    rewrite_macs(tmp_path / "lone.raw.pcap", lone, FOREIGN_DST, FOREIGN_SRC)
    flows = tmp_path / "flows.csv"
    with running_probe(netns, tmp_path, "--backend", "afpacket", "--workers", str(workers),
                       "--inactive", str(IDLE_S), "-o", str(flows)) as probe:  # fmt: skip
        time.sleep(0.5)
        replay_once(netns, lone, 1)
        sent = time.monotonic()

        def written() -> bool:
            return flows.exists() and len(flows.read_text().splitlines()) > 1

        wait_until(written, "the lone flow's record", IDLE_S + QUIET_SLACK_S + 2)
        delay = time.monotonic() - sent
        assert probe.spanflow.running(), probe.stderr()
    assert delay <= IDLE_S + QUIET_SLACK_S, f"record after {delay:.2f} s"


@needs_tools
def test_killed_worker_is_noticed_and_the_other_exports_its_flows(
    netns: Namespace, tmp_path: Path
) -> None:
    """SIGKILL of one worker: exit 1 within a second or so, one line naming it, the rest exported.

    No record ends before the stop (no timeouts, no FIN or RST in the replay), so
    the killed worker exported nothing and nfdump holds exactly the survivor's packets.
    """
    replay = write_replay(tmp_path / "mixed.pcap")
    truth = ground_truth(replay)
    with running_probe(netns, tmp_path, "--backend", "afpacket", "--workers", "2") as probe:
        workers = children(probe.spanflow.pid)
        assert len(workers) == 2
        replay_once(netns, replay, truth.frames)
        time.sleep(1.5)  # past a tick: each worker has reported its counters
        os.kill(workers[1], signal.SIGKILL)  # the probe's child: the probe reaps it
        killed = time.monotonic()
        status = probe.spanflow.wait(NOTICE_S + 4.0)
        ended_s = time.monotonic() - killed
        done = probe.collected() if status is not None else None
    assert done is not None, "the probe did not end after a worker was killed"
    assert status == 1, done.stderr
    assert ended_s < NOTICE_S + 1.0, f"ended {ended_s:.2f} s after the kill"
    errors = [line for line in done.stderr.splitlines() if line.startswith("spanflow: error:")]
    assert len(errors) == 1, done.stderr
    assert f"worker 1 (pid {workers[1]}) killed by signal 9" in errors[0]
    survivor = worker_lines(done.stderr)[0]
    totals = nfdump_totals(done.flows_dir)
    assert survivor.decoded > 0
    assert (totals["Packets"], totals["Sequence failures"]) == (survivor.decoded, 0)


SCRAPE = (
    "import sys, urllib.request; "
    "sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:{port}/metrics', timeout=2)"
    ".read().decode())"
)
METRICS_PORT = 9750


def scrape(netns: Namespace) -> dict[str, float]:
    """Every sample of the probe's endpoint, by name with labels, read inside the namespace."""
    text = netns.check(sys.executable, "-c", SCRAPE.format(port=METRICS_PORT))
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


@needs_tools
def test_metrics_endpoint_serves_every_workers_counters(netns: Namespace, tmp_path: Path) -> None:
    """A Prometheus scrape sees each worker's frames and open flows, and the export's datagrams.

    The mixed replay ends no record (no timeouts, no FIN); web.pcap's FINs end some.
    """
    mixed = write_replay(tmp_path / "mixed.pcap")
    web = replayable(tmp_path, "web.pcap")
    mixed_truth, web_truth = ground_truth(mixed), ground_truth(web)
    frames = mixed_truth.frames + web_truth.frames
    with running_probe(netns, tmp_path, "--workers", "2", "--metrics",
                       f"127.0.0.1:{METRICS_PORT}") as probe:  # fmt: skip
        replay_once(netns, mixed, mixed_truth.frames)
        replay_once(netns, web, web_truth.frames)

        def counted() -> bool:
            samples = scrape(netns)
            received = [v for k, v in samples.items() if k.startswith("spanflow_frames_received")]
            return len(received) == 2 and sum(received) == frames

        wait_until(counted, "the scrape to count every frame")
        samples = scrape(netns)
        assert probe.spanflow.stop(signal.SIGTERM) == 0, probe.stderr()
        done = probe.collected()
    metered = METERED.search(done.stderr)
    assert metered is not None, done.stderr
    ended = samples['spanflow_records_total{reason="end_of_flow"}']
    open_flows = sum(samples[f'spanflow_open_flows{{worker="{w}"}}'] for w in "01")
    assert ended > 0
    assert samples["spanflow_datagrams_sent_total"] > 0
    assert samples['spanflow_frames_dropped_total{worker="0"}'] == 0
    assert samples['spanflow_frames_dropped_total{worker="1"}'] == 0
    assert samples["spanflow_send_errors_total"] == 0
    # Every record ends once: those ended before the scrape, then those open at it (forced).
    totals = nfdump_totals(done.flows_dir)
    assert totals["Flows"] == ended + open_flows
