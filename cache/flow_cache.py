"""The flow cache: persistent record columns plus the compiled rule kernel.

Nothing here knows about wire formats or capture files.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from cache import kernel
from cache.adopt import adopt_records
from cache.config import CacheConfig
from core.columns import widened
from core.packets import PacketTable
from core.records import EndedRecords, EndReason, RecordTable

OUT_ROW = np.dtype(
    [(name, dtype) for name, dtype in EndedRecords.DTYPES.items() if name != "attrs"]
    + [("root", np.int64)]
)
NO_CHAINS = np.empty((0, 2), np.int64)
NO_JOINED = np.empty(0, np.int64)


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

    With ``track_chains`` it also numbers records and chains (see ``kernel``):
    after each call ``joined`` holds the chain of the record each packet
    joined, and ``ended_root`` the chain of each record returned.
    """

    def __init__(self, config: CacheConfig, track_chains: bool = False) -> None:
        self.config = config
        self.chains = np.full((config.max_flows, 2), -1, np.int64) if track_chains else NO_CHAINS
        self.joined = NO_JOINED
        self.ended_root = NO_JOINED
        self.flows = np.zeros(config.max_flows, kernel.FLOW_SLOT)
        self.lru = np.full((config.max_flows, 2), kernel.NO_SLOT, np.int32)
        self.table = np.full(_table_size(config.max_flows), kernel.NO_SLOT, np.int64)
        self.free = np.arange(config.max_flows - 1, -1, -1, dtype=np.int32)
        width = config.attribute_width
        self.attrs = np.zeros((config.max_flows if width else 0, width), np.uint64)
        self._out_attrs = np.zeros((0, width), np.uint64)
        self.state = np.array(
            [kernel.NO_SLOT, kernel.NO_SLOT, 0, config.max_flows, kernel.CLOCK_START, 0, 0],
            np.int64,
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
        arrays = (self.flows, self.lru, self.table, self.free, self.state, self.attrs)
        total = sum(array.nbytes for array in arrays)
        return total / self.config.max_flows

    def _out(self, rows: int) -> np.ndarray:
        self._out_attrs = np.empty((rows, self.config.attribute_width), np.uint64)
        return np.empty(rows, OUT_ROW)

    @property
    def _attrs(self) -> tuple[np.ndarray, np.ndarray]:
        """The kernels' attribute pair: the pool's words and the rows out (see ``kernel``)."""
        return self.attrs, self._out_attrs

    def _keep_freed(self, top: int, n_out: int) -> None:
        """Attribute words of the ``n_out`` records a kernel just ended, all from the LRU head."""
        if self.config.attributes:
            kernel.keep_freed_attributes(self.attrs, self._out_attrs, self.free, top, 0, n_out)

    @property
    def tracks_chains(self) -> bool:
        return len(self.chains) > 0

    def _records(self, out: np.ndarray, n_out: int) -> EndedRecords:
        if self.tracks_chains:
            self.ended_root = out["root"][:n_out].copy()
        names = [name for name in (OUT_ROW.names or ()) if name != "root"]
        columns = {name: out[name][:n_out].copy() for name in names}
        return EndedRecords(**columns, attrs=self._out_attrs[:n_out].copy())

    def update(
        self, packets: PacketTable, clock_ns: npt.NDArray[np.int64] | None = None
    ) -> EndedRecords:
        """Meter ``packets`` in order; return the records they ended.

        The clock moves to each packet's time, or to ``clock_ns`` where given
        (a merge replaying part of a slice with the slice's own clock).
        """
        out = self._out(self.open_flows + len(packets))
        if self.tracks_chains:
            self.joined = np.empty(len(packets), np.int64)
        n_out = kernel.meter_packets(
            self.flows, self.lru, self.table, self.free, self.state, out,
            packets.ts_ns, packets.ts_ns if clock_ns is None else clock_ns,
            packets.version, packets.src_hi, packets.src_lo,
            packets.dst_hi, packets.dst_lo, packets.sport, packets.dport,
            packets.proto, packets.tos, packets.tcp_flags, packets.ip_len,
            packets.ifindex, packets.vlan,
            self.config.inactive_ns, self.config.active_ns, self.config.key_vlan,
            self.config.key_mac,
            self.chains, self.joined, widened(packets.attrs, self.config.attribute_width),
            *self._attrs,
        )  # fmt: skip
        return self._records(out, n_out)

    def expire(self, clock_ns: int) -> EndedRecords:
        """Advance the clock (live idle tick) and return the records that went idle."""
        self.state[kernel.CLOCK] = max(self.clock_ns, clock_ns)
        out = self._out(self.open_flows)
        top = int(self.state[kernel.FREE_TOP])
        n_out = kernel.expire_idle(
            self.flows, self.lru, self.table, self.free, self.state, out, 0,
            self.config.inactive_ns, self.chains,
        )  # fmt: skip
        self._keep_freed(top, n_out)
        return self._records(out, n_out)

    def reset(self) -> None:
        """Forget the clock, the peak and the serials of an emptied cache, to meter anew.

        Reusing a cache spares a worker the page faults of a fresh one per task.
        """
        if self.open_flows:
            raise ValueError("only an empty cache can be reset")
        self.state[kernel.CLOCK] = kernel.CLOCK_START
        self.state[kernel.PEAK_OPEN] = 0
        self.state[kernel.NEXT_SERIAL] = 0

    def adopt(self, records: RecordTable, clock_ns: int) -> None:
        """Open ``records`` again, least recently updated first, and move the clock to ``clock_ns``.

        A merge continues the records a previous slice left open this way;
        they must fit beside the records open already.
        """
        if self.open_flows + len(records) > self.config.max_flows:
            raise ValueError("adopted records do not fit the cache")
        rows = np.empty(len(records), kernel.FLOW_SLOT)
        for name in RecordTable.DTYPES:
            if name in (kernel.FLOW_SLOT.names or ()):
                rows[name] = getattr(records, name)
        adopt_records(
            self.flows, self.lru, self.table, self.free, self.state, rows, self.config.key_vlan,
            self.config.key_mac,
            self.attrs, widened(records.attrs, self.config.attribute_width),
        )  # fmt: skip
        self.state[kernel.CLOCK] = max(self.clock_ns, clock_ns)

    def flush(self, now_ns: int | None = None) -> EndedRecords:
        """End every open record (end of input or shutdown), leaving at ``now_ns`` if later."""
        out = self._out(self.open_flows)
        export_ns = max(self.clock_ns, now_ns) if now_ns is not None else self.clock_ns
        top = int(self.state[kernel.FREE_TOP])
        n_out = kernel.flush_all(
            self.flows, self.lru, self.table, self.free, self.state, out,
            int(EndReason.FORCED), export_ns, self.chains,
        )  # fmt: skip
        self._keep_freed(top, n_out)
        return self._records(out, n_out)
