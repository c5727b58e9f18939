"""An export session: encode ended records at the clocks they ended at and send every
datagram to every sink, optionally paced. Knows nothing about expiry or capture."""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from core.records import EndedRecords
from exporter.formats import NS_PER_MS, Exporter
from exporter.sinks import Sink, UdpSink

# Records whose export clocks share one window go out at one clock. Half the 2^32 ms
# uptime range, so a record's times stay within reach of its datagram's clock while its
# age (at most the active plus the inactive timeout) is under the other half.
CLOCK_WINDOW_NS = (1 << 31) * NS_PER_MS


@dataclass(slots=True)
class ExportStats:
    records: int = 0
    datagrams: int = 0


class Pacer:
    """Spaces sends to at most ``per_s`` a second (0: no pacing), without drifting."""

    def __init__(self, per_s: float) -> None:
        self.interval_s = 1.0 / per_s if per_s > 0 else 0.0
        self.next_s = 0.0

    def wait(self) -> None:
        if not self.interval_s:
            return
        now = time.monotonic()
        if self.next_s > now:
            time.sleep(self.next_s - now)
        self.next_s = max(self.next_s, now) + self.interval_s


class ExportSession:
    """Call it with ended records; each datagram goes out at its records' export clock.

    ``clock_ns`` is the latest clock a datagram was encoded at; it never goes back.
    """

    def __init__(self, exporter: Exporter, sinks: Sequence[Sink], pace_per_s: float = 0) -> None:
        self.exporter = exporter
        self.sinks = list(sinks)
        self.pacer = Pacer(pace_per_s)
        self.clock_ns = 0
        self.stats = ExportStats()

    def __call__(self, records: EndedRecords) -> None:
        for window in clock_windows(records.export_ns):
            part = records.take(window)
            self.clock_ns = max(self.clock_ns, int(part.export_ns.max()))
            for datagram in self.exporter.encode(part, self.clock_ns):
                self.pacer.wait()
                for sink in self.sinks:
                    sink.send(datagram, self.clock_ns)
                self.stats.datagrams += 1
        self.stats.records += len(records)

    def send_errors(self) -> list[str]:
        """One line per collector that missed datagrams."""
        return [
            f"collector {_peer(sink)}: {sink.errors} datagrams not sent ({sink.first_error})"
            for sink in self.sinks
            if isinstance(sink, UdpSink) and sink.errors
        ]

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


def _peer(sink: UdpSink) -> str:
    host, port = sink.socket.getpeername()[:2]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def clock_windows(export_ns: npt.NDArray[np.int64]) -> list[slice]:
    """Runs of consecutive records whose export clocks fall in one ``CLOCK_WINDOW_NS``.

    Records leave in the order they ended, so a batch is one run unless the input
    jumped by weeks inside it; each run is encoded at its own latest clock.
    """
    if not len(export_ns):
        return []
    window = export_ns // CLOCK_WINDOW_NS
    cuts = (np.flatnonzero(window[1:] != window[:-1]) + 1).tolist()
    bounds = [0, *cuts, len(export_ns)]
    return [slice(start, stop) for start, stop in itertools.pairwise(bounds)]
