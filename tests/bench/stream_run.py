"""Piping a generated capture into ``spanflow convert - -o -``: the child, its memory, its CSV.

Shared by the flood and soak benchmarks. The child's stdout is read on a
thread while the caller writes its stdin, so neither pipe can fill and stall
the other; the CSV is tallied block by block with numpy (records, packets,
octets, records by end reason), never kept.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parents[2]
SPANFLOW = REPO / ".venv" / "bin" / "spanflow"
READ_BYTES = 1 << 20
POLL_S = 0.05
END_REASONS = ("idle", "active", "end_of_flow", "forced", "cache_full")
CSV_FIELDS = 14  # exporter/flowfile.py FIELDS; no field holds a comma
PACKETS_FIELD, OCTETS_FIELD = 9, 10
COMMA, NEWLINE, ZERO = ord(","), ord("\n"), ord("0")
FRAMES_LINE = re.compile(r"spanflow: read (\d+) frames .*: (\d+) decoded, (\d+) undecodable")
PEAK_LINE = re.compile(r"spanflow: cache: peak (\d+) open flows")


class StreamError(Exception):
    """The child failed, or did not finish in time."""


@dataclass(frozen=True, slots=True)
class Memory:
    """One reading of the child's /proc/PID/status: resident set now and its high-water mark."""

    rss_kib: int
    hwm_kib: int

    @property
    def rss_mb(self) -> float:
        return self.rss_kib * 1024 / 1e6

    @property
    def hwm_mb(self) -> float:
        return self.hwm_kib * 1024 / 1e6


def read_memory(pid: int) -> Memory | None:
    """VmRSS and VmHWM of ``pid``, or None once it has exited."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    values = dict(line.split(":", 1) for line in text.splitlines() if line.startswith("Vm"))
    if "VmRSS" not in values:  # a zombie has no memory left
        return None
    return Memory(int(values["VmRSS"].split()[0]), int(values["VmHWM"].split()[0]))


def _parse_ints(buf: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64],
                ends: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:  # fmt: skip
    """The decimal numbers in ``buf[starts[i]:ends[i]]``, all at once."""
    if len(starts) == 0:
        return np.zeros(0, np.int64)
    widths = ends - starts
    column = np.arange(int(widths.max()), dtype=np.int64)
    inside = column < widths[:, None]
    at = np.where(inside, starts[:, None] + column, 0)
    digits = np.where(inside, buf[at].astype(np.int64) - ZERO, 0)
    powers = np.where(inside, widths[:, None] - 1 - column, 0)
    values: npt.NDArray[np.int64] = (digits * 10**powers).sum(axis=1)
    return values


@dataclass(slots=True)
class CsvTally:
    """Running totals of a spanflow flow CSV, fed in blocks cut anywhere."""

    records: int = 0
    packets: int = 0
    octets: int = 0
    by_reason: dict[str, int] = field(default_factory=lambda: dict.fromkeys(END_REASONS, 0))
    _rest: bytes = b""
    _header_seen: bool = False

    def feed(self, data: bytes) -> None:
        data = self._rest + data
        cut = data.rfind(b"\n") + 1
        block, self._rest = data[:cut], data[cut:]
        if not self._header_seen and block:
            block = block[block.index(b"\n") + 1 :]
            self._header_seen = True
        if not block:
            return
        buf = np.frombuffer(block, np.uint8)
        lines = int(np.count_nonzero(buf == NEWLINE))
        commas = np.flatnonzero(buf == COMMA).reshape(lines, CSV_FIELDS - 1)
        for column, name in ((PACKETS_FIELD, "packets"), (OCTETS_FIELD, "octets")):
            values = _parse_ints(buf, commas[:, column - 1] + 1, commas[:, column])
            setattr(self, name, getattr(self, name) + int(values.sum()))
        for reason in END_REASONS:
            self.by_reason[reason] += block.count(b"," + reason.encode() + b",")
        self.records += lines

    def check_complete(self) -> None:
        if self._rest:
            raise StreamError(f"CSV ends inside a row: {self._rest[:80]!r}")


@dataclass(frozen=True, slots=True)
class Finished:
    """How the child ended: exit status, its stderr, peak memory seen, CPU and wall time."""

    returncode: int
    stderr: str
    peak: Memory
    cpu_s: float
    wall_s: float

    def summary_figure(self, pattern: re.Pattern[str], group: int = 1) -> int:
        """A number from spanflow's stderr summary."""
        found = pattern.search(self.stderr)
        if found is None:
            raise StreamError(f"no line matching {pattern.pattern!r} in stderr:\n{self.stderr}")
        return int(found[group])


def _cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` so far (/proc/PID/stat), or None once it has gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ChildStream:
    """``spanflow convert - <options> -o -`` with our data on its stdin and a tally of its stdout.

    ``on_output`` (default: the tally) runs on the reader thread for every block read.
    """

    def __init__(self, options: list[str], on_output: Callable[[bytes], None] | None = None,
                 spanflow: Path = SPANFLOW) -> None:  # fmt: skip
        self.tally = CsvTally()
        self._lock = threading.Lock()
        self._on_output = on_output or self.tally.feed
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 -- closed in finish()/kill()
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [str(spanflow), "convert", "-", *options, "-o", "-"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, bufsize=0,
        )  # fmt: skip
        self.peak = Memory(0, 0)
        self._cpu_s = 0.0
        self._error: BaseException | None = None
        self._reader = threading.Thread(target=self._read, name="bench-read", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        try:
            while block := os.read(fd, READ_BYTES):
                with self._lock:
                    self._on_output(block)
        except BaseException as exc:  # reported by finish()
            self._error = exc

    def records(self) -> int:
        """CSV records tallied so far."""
        with self._lock:
            return self.tally.records

    def write(self, data: bytes) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(data)
        except BrokenPipeError as exc:
            raise StreamError(f"spanflow stopped reading its input: {self._stderr_text()}") from exc

    def sample(self) -> Memory:
        """The child's memory now (raises if it has exited)."""
        memory = read_memory(self.process.pid)
        if memory is None:
            raise StreamError(f"spanflow exited early: {self._stderr_text()}")
        self._note(memory)
        return memory

    def _note(self, memory: Memory) -> None:
        self.peak = Memory(
            max(self.peak.rss_kib, memory.rss_kib), max(self.peak.hwm_kib, memory.hwm_kib)
        )
        cpu = _cpu_s(self.process.pid)
        if cpu is not None:
            self._cpu_s = cpu

    def finish(self, timeout_s: float) -> Finished:
        """Close stdin, watch the child's memory until it exits (deadline), drain stdout."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        deadline = time.monotonic() + timeout_s
        try:
            while self.process.poll() is None:
                if time.monotonic() > deadline:
                    raise StreamError(f"spanflow did not finish within {timeout_s:.0f} s")
                memory = read_memory(self.process.pid)
                if memory is not None:
                    self._note(memory)
                time.sleep(POLL_S)
            wall_s = time.perf_counter() - self.started
            self._reader.join(max(0.0, deadline - time.monotonic()))
            if self._reader.is_alive():
                raise StreamError("spanflow's stdout did not close")
        finally:
            stderr = self.kill()
        if self._error is not None:
            raise StreamError(f"reading spanflow's CSV failed: {self._error!r}") from self._error
        self.tally.check_complete()
        return Finished(self.process.returncode, stderr, self.peak, self._cpu_s, wall_s)

    def _stderr_text(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def kill(self) -> str:
        """End the child if it still runs (we started it), close our ends, return its stderr."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        with contextlib.suppress(BrokenPipeError):
            assert self.process.stdin is not None
            self.process.stdin.close()
        self._reader.join(timeout=10)  # the pipe's writer is gone: EOF comes
        assert self.process.stdout is not None
        self.process.stdout.close()
        if self._stderr.closed:
            return ""
        stderr = self._stderr_text()
        self._stderr.close()
        return stderr


def table_row(*cells: object) -> str:
    """One Markdown table row."""
    return "| " + " | ".join(map(str, cells)) + " |"


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"
