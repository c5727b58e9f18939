"""``spanflow convert --dask``: a real Dask scheduler and two workers on 127.0.0.1.

The cluster is started once for the module (``dask scheduler``, ``dask worker``
with their nannies), bounded in time, and stopped by PID whatever happens.
The records must equal one pass, also when a worker is killed mid-task.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pytest

from tests.bench.make_capture import write_capture
from tests.processes import children, cpu_s, run_killing_one
from tests.test_convert_parallel import (
    EDITCAP,
    SAMPLES,
    one_pass_rows,
    sorted_rows,
    spanflow,
)

DASK = Path(sys.executable).parent / "dask"
START_DEADLINE_S = 90
pytestmark = pytest.mark.skipif(not DASK.exists(), reason="dask distributed is not installed")


@dataclass
class Cluster:
    address: str
    scheduler: subprocess.Popen[bytes]
    nannies: list[subprocess.Popen[bytes]]

    def worker_processes(self) -> list[int]:
        return [pid for nanny in self.nannies for pid in children(nanny.pid)]


def _free_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _workers_up(address: str) -> int:
    from distributed import Client

    with Client(address, timeout=10) as client:
        return len(client.nthreads())


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM, then SIGKILL, each process we started and what it started."""
    family = [(p, children(p.pid) if p.poll() is None else []) for p in processes]
    for process, _ in family:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process, descendants in family:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        for child in descendants:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    logs = tmp_path_factory.mktemp("dask-logs")
    port = _free_tcp_port()
    address = f"tcp://127.0.0.1:{port}"
    started: list[subprocess.Popen[bytes]] = []
    files: list[BinaryIO] = []

    def start(name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(logs / f"{name}.log", "wb")  # noqa: SIM115 -- closed at the end
        files.append(log)
        process = subprocess.Popen([str(DASK), *args], stdout=log, stderr=log)
        started.append(process)
        return process

    try:
        scheduler = start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", str(port),
                          "--no-dashboard")  # fmt: skip
        nannies = [
            start(f"worker{i}", "worker", address, "--nthreads", "1", "--nworkers", "1",
                  "--host", "127.0.0.1", "--no-dashboard", "--memory-limit", "0")
            for i in range(2)
        ]  # fmt: skip
        deadline = time.monotonic() + START_DEADLINE_S
        while True:
            try:
                if _workers_up(address) == 2:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    "the Dask cluster did not come up: " + (logs / "scheduler.log").read_text()
                )
            time.sleep(0.5)
        yield Cluster(address, scheduler, nannies)
    finally:
        _stop(started)
        for log in files:
            log.close()


@pytest.mark.skipif(EDITCAP is None, reason="editcap (Wireshark) is not installed")
def test_dask_on_a_split_capture_gives_the_rows_of_the_whole(
    cluster: Cluster, tmp_path: Path
) -> None:
    assert EDITCAP is not None
    subprocess.run([EDITCAP, "-F", "pcap", "-c", "50", SAMPLES / "web.pcap", tmp_path / "part.pcap"],
                   check=True, timeout=60, capture_output=True)  # fmt: skip
    parts = sorted(tmp_path.glob("part*.pcap"))
    out = tmp_path / "dask.csv"
    result = spanflow(*parts, "--dask", cluster.address, "-o", out)
    assert result.returncode == 0, result.stderr
    assert f"slice(s) on Dask at {cluster.address}" in result.stderr
    assert sorted_rows(out) == one_pass_rows(tmp_path, SAMPLES / "web.pcap")


def test_dask_on_one_file_in_slices_gives_the_rows_of_one_pass(
    cluster: Cluster, tmp_path: Path
) -> None:
    out = tmp_path / "dask.csv"
    result = spanflow(SAMPLES / "slowscan.pcap", "--dask", cluster.address, "--slice-mib", "0.01",
                      "--active", "20", "-o", out)  # fmt: skip
    assert result.returncode == 0, result.stderr
    expected = one_pass_rows(tmp_path, SAMPLES / "slowscan.pcap", extra=("--active", "20"))
    assert sorted_rows(out) == expected


def test_a_worker_lost_mid_task_is_retried_and_the_rows_do_not_change(
    cluster: Cluster, tmp_path: Path
) -> None:
    capture = tmp_path / "big.pcap"
    write_capture(capture, 800_000, seed=5)
    out = tmp_path / "dask.csv"
    before = {pid: cpu_s(pid) for pid in cluster.worker_processes()}
    argv = [str(Path(sys.executable).parent / "spanflow"), "convert", str(capture), "--dask",
            cluster.address, "--slice-mib", "4", "-o", str(out)]  # fmt: skip
    killed, status, stderr = run_killing_one(argv, lambda _: before, 0.2, 240)
    assert killed is not None, "no Dask worker was seen working"
    assert status == 0, stderr
    assert sorted_rows(out) == one_pass_rows(tmp_path, capture)
