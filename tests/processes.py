"""Looking at processes a test started, through /proc: their children and their CPU time."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def children(pid: int) -> list[int]:
    """PIDs of the direct children of ``pid``."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        listing = task / "children"
        found += [int(child) for child in listing.read_text().split()] if listing.exists() else []
    return found


def descendants(pid: int) -> list[int]:
    """PIDs of every process below ``pid``: its children, theirs, and so on."""
    found, todo = [], children(pid)
    while todo:
        child = todo.pop()
        found.append(child)
        todo += children(child)
    return found


def cpu_s(pid: int) -> float:
    """User plus system CPU seconds of ``pid`` so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def kill_first_busy(
    process: subprocess.Popen[str],
    candidates: Callable[[], dict[int, float]],
    busy_cpu_s: float,
    deadline_s: float = 120,
) -> int | None:
    """SIGKILL the first candidate whose CPU time grew by ``busy_cpu_s`` while ``process`` runs.

    ``candidates`` maps PIDs to their CPU seconds at the start (0 for new ones).
    Returns the PID killed, or None if none got busy before ``process`` ended.
    """
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline and process.poll() is None:
        for pid, start in candidates().items():
            if cpu_s(pid) - start > busy_cpu_s:
                os.kill(pid, signal.SIGKILL)
                return pid
        time.sleep(0.02)
    return None


def run_killing_one(
    argv: list[str],
    candidates: Callable[[int], dict[int, float]],
    busy_cpu_s: float,
    timeout_s: float,
) -> tuple[int | None, int, str]:
    """Run ``argv``; SIGKILL the first of ``candidates(its pid)`` to get busy (see
    ``kill_first_busy``). Returns (PID killed or None, exit status, stderr); the
    process is killed if it outlives ``timeout_s``."""
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        killed = kill_first_busy(process, lambda: candidates(process.pid), busy_cpu_s)
        _, stderr = process.communicate(timeout=timeout_s)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    return killed, process.returncode, stderr
