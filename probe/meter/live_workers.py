"""Live metering by N worker processes, one per ring of a fanout group; one export stream.

Each worker is forked with its ring open and runs the one-process driver
(``meter_live``) on it, with its own cache. The kernel's fanout steering
(probe/live/bpf.py) gives every flow key to exactly one worker, so the
workers' records together are one probe's. Records cross a pipe per worker
as column batches and leave through the parent's one sink (one export
session: one sequence space, one exporter as a collector sees it).

The parent notices a worker that exits without its final report within
``POLL_S``: it names it, stops the others (SIGTERM: they flush) and exports
what they send. Records the lost worker still held open are gone with it;
what it had ended is exported.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from cache.config import CacheConfig
from core.errors import SpanflowError
from core.records import EndedRecords
from probe.live.afpacket import RingCapture
from probe.live.source import CaptureStats, LiveSource
from probe.meter.counters import Counters, RecordSink
from probe.meter.live import TICK_S, meter_live
from probe.meter.sampling import SamplingConfig

POLL_S = 0.2  # how soon a dead worker is noticed
STOP_S = 30.0  # a worker flushes its whole cache on SIGTERM; then it is killed


@dataclass(slots=True)
class WorkerState:
    """What the parent knows of one worker: its latest report, and how it ended."""

    index: int
    pid: int
    counters: Counters = field(default_factory=Counters)
    stats: CaptureStats = field(default_factory=lambda: CaptureStats(0, 0, 0))
    open_flows: int = 0
    done: bool = False
    lost: str | None = None  # why it ended without its final report


@dataclass(slots=True)
class WorkersResult:
    workers: list[WorkerState]
    counters: Counters  # all workers' together

    @property
    def stats(self) -> CaptureStats:
        return total_stats([w.stats for w in self.workers])


def total_stats(parts: list[CaptureStats]) -> CaptureStats:
    return CaptureStats(
        sum(s.received for s in parts),
        sum(s.dropped_kernel for s in parts),
        sum(s.dropped_interface for s in parts),
        sum(s.ring_freezes for s in parts),
    )


def total_counters(parts: list[Counters]) -> Counters:
    """One run's counters from its workers' (peak open flows: the sum of the workers' peaks)."""
    total = Counters()
    for part in parts:
        total.add_input(part)
        total.records += part.records
        total.records_by_end = total.records_by_end + part.records_by_end
        total.packets += part.packets
        total.octets += part.octets
        total.peak_open_flows += part.peak_open_flows
        total.cache_bytes_per_flow = part.cache_bytes_per_flow
        total.elapsed_s = max(total.elapsed_s, part.elapsed_s)
        total.damage += [problem for problem in part.damage if problem not in total.damage]
        total.interrupted |= part.interrupted
    return total


def _worker(
    index: int,
    rings: list[RingCapture],
    config: CacheConfig,
    sampling: SamplingConfig,
    pipe: Connection,
    tick_s: float,
) -> None:
    """One worker's whole life, in the forked child; reports go up ``pipe``."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # statistics are the parent's
    capture = rings[index]
    for other, ring in enumerate(rings):
        if other != index:
            ring.close()

    def send_records(records: EndedRecords) -> None:
        pipe.send(("records", records))

    def send_tick(counters: Counters, stats: CaptureStats, open_flows: int) -> None:
        pipe.send(("tick", counters, stats, open_flows))

    try:
        counters = meter_live(capture, config, send_records, stop, sampling, send_tick, tick_s)
        pipe.send(("done", counters, capture.stats()))
    except SpanflowError as exc:
        pipe.send(("failed", str(exc)))
    except (BrokenPipeError, KeyboardInterrupt):
        pass  # the parent is gone: nobody to report to
    finally:
        capture.close()
        pipe.close()


def worker_sampling(sampling: SamplingConfig, index: int) -> SamplingConfig:
    """Each worker samples its own share: 1-in-N of the frames it sees; its own random seed."""
    return SamplingConfig(sampling.mode, sampling.rate, sampling.seed + index)


def meter_workers(
    rings: list[RingCapture],
    config: CacheConfig,
    on_records: RecordSink,
    stop: threading.Event,
    sampling: SamplingConfig,
    on_tick: Callable[[list[WorkerState]], None] | None = None,
    on_started: Callable[[], None] | None = None,
    tick_s: float = TICK_S,
) -> WorkersResult:
    """Meter with one forked worker per ring until ``stop`` or every worker ended; flush all.

    The rings must be one fanout group, opened holding frames out: they are
    let in once every worker runs, then ``on_started`` is called (threads the
    parent wants, such as a metrics server, start there: after the forks).
    An error in the parent (a sink failing) kills the workers, then propagates.
    """
    pool = FanoutWorkers(rings, config, sampling, tick_s)
    try:
        pool.let_in()
        if on_started is not None:
            on_started()
        stopping_since: float | None = None
        next_tick = time.monotonic() + tick_s
        while pool.pipes:
            if stop.is_set() and stopping_since is None:
                stopping_since = time.monotonic()
                pool.signal_all(signal.SIGTERM)
            if stopping_since is not None and time.monotonic() - stopping_since > STOP_S:
                pool.kill_all("did not stop")
                break
            if pool.step(on_records):
                stop.set()  # a worker was lost: the others flush and stop
            if on_tick is not None and time.monotonic() >= next_tick:
                next_tick = time.monotonic() + tick_s
                on_tick(pool.workers)
    except BaseException:
        pool.kill_all("stopped by an error in the probe")
        raise
    finally:
        pool.join()
    counters = total_counters([w.counters for w in pool.workers])
    counters.damage += [w.lost for w in pool.workers if w.lost is not None]
    return WorkersResult(pool.workers, counters)


class FanoutWorkers:
    """The forked workers, the read ends of their pipes, and what each reported."""

    def __init__(
        self, rings: list[RingCapture], config: CacheConfig, sampling: SamplingConfig, tick_s: float
    ) -> None:
        context = multiprocessing.get_context("fork")
        self.rings = rings
        self.workers: list[WorkerState] = []
        self.pipes: dict[int, Connection] = {}
        self.processes: list[Any] = []
        for index in range(len(rings)):
            receive, send = context.Pipe(duplex=False)
            process = context.Process(
                target=_worker,
                args=(index, rings, config, worker_sampling(sampling, index), send, tick_s),
                name=f"spanflow-worker-{index}",
                daemon=True,
            )
            process.start()
            send.close()
            self.processes.append(process)
            self.pipes[index] = receive
            self.workers.append(WorkerState(index, int(process.pid or 0)))

    def let_in(self) -> None:
        for ring in self.rings:
            ring.start()  # every member has joined: no flow is split as they come in
        for ring in self.rings:
            ring.close()  # the parent's copies; each worker keeps its own

    def step(self, on_records: RecordSink) -> bool:
        """Wait up to POLL_S for reports or exits and take them; True if a worker was lost."""
        sentinels = {self.processes[i].sentinel: i for i in self.pipes}
        lost = False
        for item in multiprocessing.connection.wait([*self.pipes.values(), *sentinels], POLL_S):
            index = sentinels.get(item) if isinstance(item, int) else None
            if index is None:
                index = next((i for i, pipe in self.pipes.items() if pipe is item), -1)
            if index not in self.pipes:
                continue
            worker = self.workers[index]
            if _drain(self.pipes[index], worker, on_records):
                self.pipes.pop(index).close()
                self.processes[index].join(STOP_S)
                if not worker.done and worker.lost is None:
                    worker.lost = _exit_reason(worker, self.processes[index].exitcode)
                lost |= worker.lost is not None
        return lost

    def signal_all(self, signum: int) -> None:
        for index in self.pipes:
            _signal(self.workers[index].pid, signum)

    def kill_all(self, why: str) -> None:
        for index in list(self.pipes):
            worker = self.workers[index]
            _signal(worker.pid, signal.SIGKILL)
            worker.lost = worker.lost or f"worker {index} (pid {worker.pid}) {why}"
            self.pipes.pop(index).close()

    def join(self) -> None:
        for process in self.processes:
            process.join(1.0)


def _drain(pipe: Connection, worker: WorkerState, on_records: RecordSink) -> bool:
    """Take every report waiting in ``pipe``; True once the worker has ended (done or lost)."""
    while True:
        try:
            if not pipe.poll():
                return False
            message = pipe.recv()
        except (EOFError, OSError):
            return True
        kind = message[0]
        if kind == "records":
            on_records(message[1])
        elif kind == "tick":
            worker.counters, worker.stats, worker.open_flows = message[1:]
        elif kind == "done":
            worker.counters, worker.stats = message[1:]
            worker.open_flows, worker.done = 0, True
        elif kind == "failed":
            worker.lost = f"worker {worker.index}: {message[1]}"


def _exit_reason(worker: WorkerState, exitcode: int | None) -> str:
    how = f"killed by signal {-exitcode}" if exitcode and exitcode < 0 else f"exited ({exitcode})"
    return (
        f"worker {worker.index} (pid {worker.pid}) {how} before its final report: "
        "the flows it held open are lost"
    )


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def meter_capture(
    sources: LiveSource | list[RingCapture],
    config: CacheConfig,
    on_records: RecordSink,
    stop: threading.Event,
    sampling: SamplingConfig,
    on_tick: Callable[[list[WorkerState]], None] | None = None,
    on_started: Callable[[], None] | None = None,
) -> tuple[Counters, CaptureStats, list[WorkerState]]:
    """Meter what ``probe.live.backends.open_live`` opened: here, or by one worker per ring.

    Returns the run's counters, the capture's statistics and the workers
    (none when metered in this process). ``on_tick`` gets the latest reports
    about once a second, a one-element list in this process.
    """
    if isinstance(sources, list):
        result = meter_workers(sources, config, on_records, stop, sampling, on_tick, on_started)
        return result.counters, result.stats, result.workers
    here = WorkerState(0, os.getpid())

    def tick(counters: Counters, stats: CaptureStats, open_flows: int) -> None:
        here.counters, here.stats, here.open_flows = counters, stats, open_flows
        if on_tick is not None:
            on_tick([here])

    if on_started is not None:
        on_started()
    counters = meter_live(sources, config, on_records, stop, sampling, tick)
    return counters, sources.stats(), []
