"""An export session: encode ended records at the export clock and send every datagram
to every sink, optionally paced. Knows nothing about expiry or capture."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from core.records import RecordTable
from exporter.formats import Exporter
from exporter.sinks import Sink, UdpSink

OFFLINE_BOOT_LEAD_NS = 1_000_000_000  # offline uptime zero: this long before the first packet


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
    """Call it with ended records; ``clock_ns`` must be set to the export clock first."""

    def __init__(self, exporter: Exporter, sinks: Sequence[Sink], pace_per_s: float = 0) -> None:
        self.exporter = exporter
        self.sinks = list(sinks)
        self.pacer = Pacer(pace_per_s)
        self.clock_ns = 0
        self.stats = ExportStats()

    def set_clock(self, first_ns: int, clock_ns: int) -> None:
        """Uptime zero is one second before the first packet (offline); datagrams carry
        ``clock_ns``. The lead keeps every LAST_SWITCHED above 0, which nfdump reads
        as "no time" (a flow of the first millisecond would be dated 1970)."""
        if self.exporter.boot_ns is None:
            self.exporter.boot_ns = first_ns - OFFLINE_BOOT_LEAD_NS
        self.clock_ns = clock_ns

    def __call__(self, records: RecordTable) -> None:
        for datagram in self.exporter.encode(records, self.clock_ns):
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
