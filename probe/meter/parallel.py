"""Parallel conversion: slices metered by worker processes or a Dask cluster, merged here.

The parent plans the slices (files ordered by their first frame, large pcap
files cut by bytes), hands them out, and merges the results strictly in
capture order through one ``SliceMerger``, so the records equal one pass and
leave through one sink. Results that arrive early wait for their turn.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol

from cache.config import CacheConfig
from cache.flow_cache import FlowCache
from core.errors import InputError, SpanflowError
from probe.meter.counters import Counters, RecordSink
from probe.meter.parallel_plan import ParallelPlan, first_frames, plan
from probe.meter.slice_merge import MergeReport, SliceMerger
from probe.meter.slice_task import SliceResult, meter_slice
from probe.sources.slices import SliceSpec, slice_bytes_for

Progress = Callable[[int, int], None]  # (slices merged, slices in all)
POOL_ATTEMPTS = 2  # pools of workers started before the rest is metered in this process


class Runner(Protocol):
    workers: int
    notes: list[str]  # faults met and survived

    def run(
        self, specs: list[SliceSpec], config: CacheConfig
    ) -> Iterator[tuple[int, SliceResult]]: ...

    def close(self) -> None: ...


def meter_in_parallel(
    paths: Sequence[str],
    config: CacheConfig,
    sink: RecordSink,
    parallel: ParallelPlan,
    on_progress: Progress | None = None,
    firsts: Sequence[int] | None = None,
) -> tuple[Counters, MergeReport]:
    """Meter ``paths`` in slices; hand the records of one pass to ``sink``.

    ``firsts``: the files' ``first_frames`` if the caller has read them already.

    Opening errors raise ``InputError`` before any work; a slice that fails
    later is reported in ``Counters.damage`` and the others still count. On
    Ctrl-C the slices merged so far are flushed and ``Counters.interrupted`` set.
    """
    runner = _runner(parallel)
    try:
        total = sum(os.path.getsize(path) for path in paths)
        size = parallel.slice_bytes or slice_bytes_for(total, runner.workers)
        specs = plan(paths, size, first_frames(paths) if firsts is None else firsts)
    except BaseException:
        runner.close()
        raise
    counters = Counters()
    counters.started_s = time.perf_counter()
    counters.cache_bytes_per_flow = FlowCache(config).state_bytes_per_flow
    merger = SliceMerger(config, sink, counters)
    try:
        pending: dict[int, SliceResult] = {}
        merged = 0
        for index, result in runner.run(specs, config):
            pending[index] = result
            while merged in pending:
                result = pending.pop(merged)
                merger.add(result)
                result.drop_spill()
                merged += 1
                if on_progress is not None:
                    on_progress(merged, len(specs))
    except KeyboardInterrupt:
        counters.interrupted = True
    except SpanflowError as exc:  # the workers are gone (a lost scheduler): keep what merged
        left = len(specs) - merged
        counters.damage.append(f"{exc}; {left} of {len(specs)} slice(s) not converted")
    finally:
        runner.close()
    merger.report.notes.extend(runner.notes)
    merger.finish()
    counters.peak_open_flows = merger.report.peak_open_flows
    return counters, merger.report


def _runner(parallel: ParallelPlan) -> Runner:
    if parallel.dask_address is not None:
        from probe.meter.dask_runner import DaskRunner  # dask is optional: only with --dask

        return DaskRunner(parallel.dask_address)
    if parallel.jobs == 1:
        return InProcess()
    return ProcessPool(parallel.jobs)


def run_slice(spec: SliceSpec, config: CacheConfig, spill_dir: str | None = None) -> SliceResult:
    """One slice's task; a slice that cannot be read becomes an empty, damaged result.

    With ``spill_dir`` (local workers), the tentative chains' packets go to a
    file there, so the result that crosses the pipe holds records only.
    """
    try:
        result = meter_slice(spec, config)
    except InputError as exc:
        return failed_slice(spec, str(exc))
    if spill_dir is not None:
        name = f"slice-{os.getpid()}-{spec.start}-{os.path.basename(spec.path)}.npy"
        result.spill(os.path.join(spill_dir, name))
    return result


def failed_slice(spec: SliceSpec, message: str) -> SliceResult:
    counters = Counters()
    counters.damage.append(message)
    return SliceResult.empty(spec, counters)


class InProcess:
    """Every slice in this process, one after another (tests, and a baseline)."""

    workers = 1

    def __init__(self) -> None:
        self.notes: list[str] = []

    def run(self, specs: list[SliceSpec], config: CacheConfig) -> Iterator[tuple[int, SliceResult]]:
        for index, spec in enumerate(specs):
            yield index, run_slice(spec, config)

    def close(self) -> None:
        pass


class ProcessPool:
    """Slices on ``jobs`` worker processes; the slices of a worker that died run here instead."""

    def __init__(self, jobs: int) -> None:
        self.workers = jobs
        self.notes: list[str] = []
        # Forked from this process, workers start with its compiled kernels loaded. The
        # threads here (a flow-file writer) hold no lock a worker takes: tasks only read
        # files and compute.
        shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        self._spill_dir = tempfile.mkdtemp(prefix="spanflow-", dir=shm)
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("fork")
        return ProcessPoolExecutor(self.workers, mp_context=context, initializer=_worker_start)

    def run(self, specs: list[SliceSpec], config: CacheConfig) -> Iterator[tuple[int, SliceResult]]:
        todo = list(range(len(specs)))
        for attempt in range(POOL_ATTEMPTS):
            done: set[int] = set()
            try:
                futures: dict[Future[str], int] = {
                    self._pool.submit(_run_to_file, specs[i], config, self._spill_dir): i
                    for i in todo
                }
                for future in as_completed(futures):
                    index = futures[future]
                    result = _read_result(future.result())
                    done.add(index)
                    yield index, result
                return
            except BrokenProcessPool:
                todo = [i for i in todo if i not in done]
                where = "by new workers" if attempt + 1 < POOL_ATTEMPTS else "here"
                lost = len(todo)
                self.notes.append(f"a worker died; its {lost} unfinished slice(s) ran {where}")
                self._stop_workers()
                self._pool = self._new_pool()
        for index in todo:  # the workers keep dying: do without them
            yield index, run_slice(specs[index], config)

    def close(self) -> None:
        self._stop_workers()
        shutil.rmtree(self._spill_dir, ignore_errors=True)

    def _stop_workers(self) -> None:
        """Stop the workers, also mid-task (Ctrl-C): they are ours, ended by PID."""
        processes = list(getattr(self._pool, "_processes", {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(timeout=5)


def _run_to_file(spec: SliceSpec, config: CacheConfig, spill_dir: str) -> str:
    """A local worker's task: the result goes to a file, only its name through the pipe.

    A worker killed while it writes leaves a partial file nobody reads; had it
    been writing into the result pipe, the parent would wait for the rest forever.
    """
    result = run_slice(spec, config, spill_dir)
    path = os.path.join(spill_dir, f"result-{os.getpid()}-{uuid.uuid4().hex}.pickle")
    with open(path, "wb") as file:
        pickle.dump(result, file, protocol=pickle.HIGHEST_PROTOCOL)
    return path


def _read_result(path: str) -> SliceResult:
    with open(path, "rb") as file:
        result: SliceResult = pickle.load(file)
    os.remove(path)
    return result


def _worker_start() -> None:
    """Workers leave Ctrl-C to the parent, which stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
