"""Collectors for export tests: a real nfcapd on loopback read back with nfdump, and a slow UDP reader.

Also the one copy of the helpers tests and benchmarks share: a free UDP port,
the state of a bound UDP socket, stopping a child process by its PID, running
nfdump. Every wait has a deadline; nfcapd is stopped by its PID (SIGTERM, then
SIGKILL) whatever happens, and the slow reader's thread is joined on exit.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

DEADLINE_S = 10.0
TOOL_ENV = {**os.environ, "TZ": "UTC"}  # nfdump prints local times; make them UTC
NFCAPD, NFDUMP = shutil.which("nfcapd"), shutil.which("nfdump")
HAVE_NFDUMP = NFCAPD is not None and NFDUMP is not None
SUMMARY_FIELDS = ("Flows", "Packets", "Bytes", "Sequence failures")


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port on ``host`` that nothing is bound to right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def udp_socket_state(port: int) -> tuple[int, int] | None:
    """(receive queue bytes, drops) of the IPv4 UDP socket bound to ``port`` (None: none is)."""
    wanted = f":{port:04X}"
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(wanted):
            return int(fields[4].split(":")[1], 16), int(fields[-1])
    return None


def udp_queue_bytes(port: int) -> int | None:
    """Bytes waiting in the receive queue of the IPv4 UDP socket bound to ``port`` (None: none)."""
    state = udp_socket_state(port)
    return None if state is None else state[0]


def stop_process(
    process: subprocess.Popen[bytes],
    signum: int = signal.SIGTERM,
    deadline_s: float = DEADLINE_S,
) -> None:
    """Send ``signum`` to this one process by its PID, reap it; SIGKILL if it outlives the deadline."""
    if process.poll() is not None:
        return
    process.send_signal(signum)
    try:
        process.wait(timeout=deadline_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=deadline_s)


def nfdump_version() -> tuple[int, ...]:
    """nfdump's version as integers, (0,) when it is missing or unreadable."""
    if NFDUMP is None:
        return (0,)
    out = subprocess.run(
        [NFDUMP, "-V"], capture_output=True, text=True, timeout=DEADLINE_S, check=False
    ).stdout
    found = re.search(r"(\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(part) for part in found.groups()) if found else (0,)


def nfdump_ms(text: str) -> int:
    """Milliseconds since the epoch of one of nfdump's JSON times (printed in UTC)."""
    moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)
    return int(moment.timestamp()) * 1000 + moment.microsecond // 1000


def run_nfdump(*args: str) -> str:
    """nfdump's stdout for ``args`` (times in UTC); fails on a non-zero exit or after 60 s."""
    assert NFDUMP is not None
    done = subprocess.run(
        [NFDUMP, *args], capture_output=True, text=True, timeout=60, env=TOOL_ENV, check=True
    )
    return done.stdout


class Nfcapd:
    """nfcapd on 127.0.0.1 writing into ``directory``; a context manager that always stops it."""

    def __init__(self, directory: Path) -> None:
        assert NFCAPD is not None
        self.directory = directory
        directory.mkdir(parents=True)
        self.port = free_udp_port()
        self.log_path = directory.parent / f"{directory.name}.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [NFCAPD, "-b", "127.0.0.1", "-p", str(self.port), "-w", str(directory),
                 "-t", "3600"],
                stdout=log, stderr=subprocess.STDOUT, env=TOOL_ENV,
            )  # fmt: skip
        try:
            self._wait(lambda: udp_queue_bytes(self.port) is not None, "start listening")
        except BaseException:
            self.stop()
            raise

    def _wait(self, ready: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + DEADLINE_S
        while not ready():
            if self.process.poll() is not None:
                raise AssertionError(f"nfcapd exited: {self.log_path.read_text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"nfcapd did not {what} within {DEADLINE_S} s")
            time.sleep(0.02)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def drain(self) -> None:
        """Wait until nfcapd has read every datagram queued on its socket."""
        self._wait(lambda: not udp_queue_bytes(self.port), "drain its socket")

    def finish(self) -> None:
        """Wait until nfcapd has read every queued datagram, then stop it so it writes its file."""
        self.drain()
        self.stop()
        assert self.process.returncode == 0, self.log_path.read_text()

    def stop(self) -> None:
        """SIGTERM by PID (nfcapd then flushes its file), SIGKILL if it does not exit in time."""
        stop_process(self.process)

    def rows(self) -> list[dict[str, object]]:
        """Every stored flow record as nfdump's JSON objects."""
        out = run_nfdump("-R", str(self.directory), "-o", "json")
        if "No matching flows" in out:  # nfdump prints it inside the brackets
            return []
        parsed: list[dict[str, object]] = json.loads(out)
        return parsed

    def addresses(self) -> list[str]:
        """The source address of every stored flow record, as nfdump prints it."""
        out = run_nfdump("-R", str(self.directory), "-q", "-o", "fmt:%sa")
        return [line.strip() for line in out.splitlines() if line.strip()]

    def summary(self) -> dict[str, int]:
        """nfdump -I totals over every file: Flows, Packets, Bytes, Sequence failures."""
        files = sorted(self.directory.glob("nfcapd.*"))
        assert files, "nfcapd wrote no file"
        totals = dict.fromkeys(SUMMARY_FIELDS, 0)
        for path in files:
            for line in run_nfdump("-r", str(path), "-I").splitlines():
                name, _, value = line.partition(":")
                if name in totals:
                    totals[name] += int(value)
        return totals


class SlowCollector:
    """A UDP reader on 127.0.0.1 with a small receive buffer that sleeps after every datagram.

    It keeps what it read in ``datagrams``. Used as a context manager: the
    thread stops and is joined on exit; ``wait_idle`` returns once nothing has
    arrived for ``idle_s`` (or the deadline passes).
    """

    def __init__(self, rcvbuf_bytes: int, sleep_s: float) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf_bytes)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.05)
        self.port = int(self.socket.getsockname()[1])
        self.rcvbuf_bytes = self.socket.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        self.sleep_s = sleep_s
        self.datagrams: list[bytes] = []
        self.last_arrival_s = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                datagram = self.socket.recv(65535)
            except TimeoutError:
                continue
            self.datagrams.append(datagram)
            self.last_arrival_s = time.monotonic()
            time.sleep(self.sleep_s)

    def wait_idle(self, idle_s: float = 0.5, deadline_s: float = DEADLINE_S) -> None:
        """Return once no datagram arrived for ``idle_s``, or after ``deadline_s`` at most."""
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if time.monotonic() - self.last_arrival_s >= idle_s and not udp_queue_bytes(self.port):
                return
            time.sleep(0.05)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=DEADLINE_S)
        self.socket.close()
