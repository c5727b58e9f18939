"""The flow cache: persistent record columns plus the compiled rule kernel.

Nothing here knows about wire formats or capture files.
"""

from __future__ import annotations

import numpy as np

from cache import kernel
from cache.config import CacheConfig
from core.packets import PacketTable
from core.records import EndedRecords, EndReason

OUT_ROW = np.dtype([(name, dtype) for name, dtype in EndedRecords.DTYPES.items()])


def _table_size(max_flows: int) -> int:
    """Smallest power of two that keeps the hash table at most half full."""
    return 1 << max(2 * max_flows - 1, 1).bit_length()


class FlowCache:
    """Open flow records of one metering process.

    ``flows`` is the pool (``kernel.FLOW_SLOT`` rows, one per possible open
    record): a free slot has ``packets == 0``; an open one has
    ``first_ns <= last_ns``, ``packets >= 1`` and sits in both the hash table and
    the LRU list. ``lru`` (int32, ``max_flows x 2``) holds each record's
    previous and next record in update order. ``table`` (int64, ``-1`` empty,
    else hash tag and pool slot; see ``kernel``) maps hashes to pool slots.
    """

    def __init__(self, config: CacheConfig) -> None:
        self.config = config
        self.flows = np.zeros(config.max_flows, kernel.FLOW_SLOT)
        self.lru = np.full((config.max_flows, 2), kernel.NO_SLOT, np.int32)
        self.table = np.full(_table_size(config.max_flows), kernel.NO_SLOT, np.int64)
        self.free = np.arange(config.max_flows - 1, -1, -1, dtype=np.int32)
        self.state = np.array(
            [kernel.NO_SLOT, kernel.NO_SLOT, 0, config.max_flows, kernel.CLOCK_START, 0], np.int64
        )

    @property
    def open_flows(self) -> int:
        return int(self.state[kernel.N_OPEN])

    @property
    def peak_open_flows(self) -> int:
        """The most records open at once so far, counted packet by packet."""
        return int(self.state[kernel.PEAK_OPEN])

    @property
    def clock_ns(self) -> int:
        return int(self.state[kernel.CLOCK])

    @property
    def state_bytes_per_flow(self) -> float:
        """Bytes of cache state per record the cache can hold."""
        arrays = (self.flows, self.lru, self.table, self.free, self.state)
        total = sum(array.nbytes for array in arrays)
        return total / self.config.max_flows

    def _out(self, rows: int) -> np.ndarray:
        return np.empty(rows, OUT_ROW)

    @staticmethod
    def _records(out: np.ndarray, n_out: int) -> EndedRecords:
        return EndedRecords(**{name: out[name][:n_out].copy() for name in EndedRecords.DTYPES})

    def update(self, packets: PacketTable) -> EndedRecords:
        """Meter ``packets`` in order; return the records they ended."""
        out = self._out(self.open_flows + len(packets))
        n_out = kernel.meter_packets(
            self.flows, self.lru, self.table, self.free, self.state, out,
            packets.ts_ns, packets.version, packets.src_hi, packets.src_lo,
            packets.dst_hi, packets.dst_lo, packets.sport, packets.dport,
            packets.proto, packets.tos, packets.tcp_flags, packets.ip_len,
            packets.ifindex, packets.vlan,
            self.config.inactive_ns, self.config.active_ns, self.config.key_vlan,
        )  # fmt: skip
        return self._records(out, n_out)

    def expire(self, clock_ns: int) -> EndedRecords:
        """Advance the clock (live idle tick) and return the records that went idle."""
        self.state[kernel.CLOCK] = max(self.clock_ns, clock_ns)
        out = self._out(self.open_flows)
        n_out = kernel.expire_idle(
            self.flows, self.lru, self.table, self.free, self.state, out, 0, self.config.inactive_ns
        )
        return self._records(out, n_out)

    def flush(self, now_ns: int | None = None) -> EndedRecords:
        """End every open record (end of input or shutdown), leaving at ``now_ns`` if later."""
        out = self._out(self.open_flows)
        export_ns = max(self.clock_ns, now_ns) if now_ns is not None else self.clock_ns
        n_out = kernel.flush_all(
            self.flows, self.lru, self.table, self.free, self.state, out,
            int(EndReason.FORCED), export_ns,
        )  # fmt: skip
        return self._records(out, n_out)
