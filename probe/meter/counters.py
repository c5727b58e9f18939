"""What one metering run saw and produced: the counters the summary and the stats lines print."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from core.records import EndedRecords, EndReason, RecordTable
from probe.decode.reasons import DecodeReason

RecordSink = Callable[[EndedRecords], None]  # a sink may take any RecordTable
NO_TIME = 2**63 - 1


def _zeros(size: int) -> npt.NDArray[np.int64]:
    return np.zeros(size, np.int64)


@dataclass(slots=True)
class Counters:
    """What one metering run saw and produced, printed by the CLI at exit."""

    frames: int = 0  # observed, before sampling
    selected: int = 0  # kept by the sampler and decoded
    by_reason: npt.NDArray[np.int64] = field(default_factory=lambda: _zeros(len(DecodeReason)))
    records: int = 0
    records_by_end: npt.NDArray[np.int64] = field(default_factory=lambda: _zeros(6))
    packets: int = 0
    octets: int = 0
    peak_open_flows: int = 0
    first_ns: int = NO_TIME  # earliest packet time metered
    cache_bytes_per_flow: float = 0.0
    started_s: float = 0.0  # perf_counter() when metering began
    elapsed_s: float = 0.0
    damage: list[str] = field(default_factory=list)
    interrupted: bool = False

    @property
    def decoded(self) -> int:
        metered = self.by_reason[DecodeReason.OK] + self.by_reason[DecodeReason.L4_TRUNCATED]
        return int(metered)

    @property
    def undecodable(self) -> int:
        return self.selected - self.decoded

    def add_input(self, seen: Counters) -> None:
        """Count what another run (a slice, a worker) read and decoded as read here too."""
        self.frames += seen.frames
        self.selected += seen.selected
        self.by_reason += seen.by_reason
        self.first_ns = min(self.first_ns, seen.first_ns)

    def add_records(self, records: RecordTable) -> None:
        self.records += len(records)
        self.records_by_end += np.bincount(records.end_reason, minlength=6)[:6]
        self.packets += int(records.packets.sum())
        self.octets += int(records.octets.sum())


def end_reason_counts(counters: Counters) -> dict[str, int]:
    return {reason.name.lower(): int(counters.records_by_end[reason]) for reason in EndReason}
