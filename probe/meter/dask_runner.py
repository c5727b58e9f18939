"""Slices on a Dask distributed cluster (``--dask tcp://HOST:PORT``); dask is imported only here.

Workers need spanflow installed and the capture files at the same paths
(a shared filesystem). A worker lost mid-task is Dask's to handle: the
scheduler runs the task again elsewhere, and tasks are pure functions of
their slice, so the merged records do not change. A slice Dask gives up on
(it killed too many workers) is reported like a damaged one.
"""

from __future__ import annotations

from collections.abc import Iterator

from cache.config import CacheConfig
from core.errors import SpanflowError
from probe.meter.slice_task import SliceResult
from probe.sources.slices import SliceSpec

CONNECT_TIMEOUT_S = 10


class DaskUnavailable(SpanflowError):
    """No Dask scheduler at the address, or dask is not installed."""


class DaskRunner:
    """Runs slices as tasks of the scheduler at ``address``."""

    def __init__(self, address: str) -> None:
        try:
            from distributed import Client
        except ImportError as exc:
            raise DaskUnavailable(
                "--dask needs dask distributed: pip install 'spanflow[dask]'"
            ) from exc
        self.address = address
        self.notes: list[str] = []
        try:
            self.client = Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise DaskUnavailable(f"no Dask scheduler answers at {address}: {exc}") from exc
        self.workers = max(sum(self.client.nthreads().values()), 1)

    def run(self, specs: list[SliceSpec], config: CacheConfig) -> Iterator[tuple[int, SliceResult]]:
        from distributed import as_completed

        from probe.meter.parallel import failed_slice, run_slice

        try:
            futures = self.client.map(run_slice, specs, config=config, pure=False)
            index = {future.key: i for i, future in enumerate(futures)}
            for future in as_completed(futures, loop=self.client.loop):
                i = index[future.key]
                try:
                    result: SliceResult = future.result()
                except (OSError, TimeoutError):
                    raise
                except Exception as exc:  # Dask's verdict on one task (it killed its workers)
                    result = failed_slice(specs[i], f"{specs[i].describe()}: Dask gave up: {exc}")
                future.release()
                yield i, result
        except (OSError, TimeoutError) as exc:  # the scheduler went away
            raise DaskUnavailable(f"lost the Dask scheduler at {self.address}: {exc}") from exc

    def close(self) -> None:
        self.client.close()
