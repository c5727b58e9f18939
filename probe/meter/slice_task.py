"""One task of a parallel conversion: meter one slice from an empty cache.

What a task returns lets the merge (``slice_merge``) rebuild the single pass
exactly. A record's content depends on its key's own packets; a slice metered
from an empty cache is wrong only for keys that continue a record an earlier
slice left open. Those keys show up early: a record left open has its last
packet at or before the slice's start, so a key first seen more than the
inactive timeout into the slice would have ended that record idle anyway.

The cache numbers *chains* (cache/kernel.py): the records of one key linked
by active timeouts, from a record that began afresh up to one that ended idle,
by FIN/RST or still open. Every chain begun in the slice's *head* (until the
clock passes its first frame's time plus the inactive timeout) is
*tentative*: its records are marked, and its packets kept, in arrival order
with the clock at each. If the previous slice left the key open, the merge
replays those packets on the true record and drops the tentative ones.
docs/design.md, Parallel conversion.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from aot import njit
from cache.config import CacheConfig
from cache.flow_cache import FlowCache
from core.columns import ColumnTable
from core.packets import PacketTable
from core.records import EndedRecords, EndReason, RecordTable
from probe.meter.counters import NO_TIME, Counters
from probe.meter.meter import Meter
from probe.meter.readahead import ReadAhead
from probe.sources.capture import frame_batches
from probe.sources.readers import DEFAULT_BATCH_FRAMES
from probe.sources.slices import FileSlice, SliceSpec


@dataclass(slots=True)
class ChainPackets(ColumnTable):
    """Packets of tentative chains, in arrival order: what a replay needs beyond the key.

    ``chain`` names the chain (its first record's serial); ``clock_ns`` is the
    cache clock at the packet; ``vlan`` and ``attrs`` are kept because a
    record takes its first packet's even when they are not part of the key.
    """

    chain: npt.NDArray[np.int64]
    ts_ns: npt.NDArray[np.int64]
    clock_ns: npt.NDArray[np.int64]
    ip_len: npt.NDArray[np.uint32]
    tcp_flags: npt.NDArray[np.uint8]
    vlan: npt.NDArray[np.uint16]
    attrs: npt.NDArray[np.uint64]

    WIDE: ClassVar[frozenset[str]] = frozenset({"attrs"})
    DTYPES: ClassVar[dict[str, type]] = {
        "chain": np.int64,
        "ts_ns": np.int64,
        "clock_ns": np.int64,
        "ip_len": np.uint32,
        "tcp_flags": np.uint8,
        "vlan": np.uint16,
        "attrs": np.uint64,
    }


@dataclass(slots=True)
class SliceResult:
    """What a task found in its slice (picklable; numpy columns only)."""

    spec: SliceSpec
    start: int  # offset of its first record
    end: (
        int | None
    )  # where its walk stopped (first record at or past the nominal end); None: damage
    ended: EndedRecords  # records that ended inside the slice and are not tentative
    tentative: EndedRecords  # tentative records that ended inside it, in the order they ended
    tentative_chain: npt.NDArray[np.int64]
    open: RecordTable  # records open at its end, least recently updated first
    open_chain: npt.NDArray[np.int64]
    head_chains: int  # chains numbered below this began in the head: tentative
    firsts: ChainPackets  # each tentative chain's first packet, in arrival order
    firsts_row: npt.NDArray[np.int64]  # where each of those is among all the chains' packets
    packets: ChainPackets | None  # every packet of the tentative chains, or:
    packets_file: str | None = None  # ... spilled to this file (local workers)
    first_ns: int = NO_TIME  # its first frame's time
    min_ns: int = NO_TIME  # earliest and latest frame time (every frame moves the clock)
    max_ns: int = -NO_TIME
    head_peak_open: int = 0  # most records open at once while the head lasted
    counters: Counters = field(default_factory=Counters)

    @property
    def cache_filled(self) -> bool:
        return bool(self.counters.records_by_end[EndReason.CACHE_FULL])

    @classmethod
    def empty(cls, spec: SliceSpec, counters: Counters) -> SliceResult:
        """A slice that gave nothing (it could not be read)."""
        none = np.empty(0, np.int64)
        return cls(
            spec, spec.start, None, EndedRecords.empty(0), EndedRecords.empty(0), none,
            RecordTable.empty(0), none, 0,
            ChainPackets.empty(0), none, ChainPackets.empty(0), counters=counters,
        )  # fmt: skip

    def all_packets(self) -> ChainPackets:
        """Every packet of the tentative chains (read back if spilled)."""
        if self.packets is not None:
            return self.packets
        assert self.packets_file is not None
        rows = np.load(self.packets_file, mmap_mode="r")
        return ChainPackets(**{name: rows[name] for name in ChainPackets.DTYPES})

    def spill(self, path: str) -> None:
        """Move the chains' packets to a file at ``path`` (a worker's result stays small)."""
        packets = self.all_packets()
        columns = packets.columns()
        rows = np.empty(len(packets), [(n, c.dtype, c.shape[1:]) for n, c in columns.items()])
        for name, column in columns.items():
            rows[name] = column
        np.save(path, rows)
        self.packets, self.packets_file = None, path

    def drop_spill(self) -> None:
        if self.packets_file is not None:
            with contextlib.suppress(OSError):
                os.remove(self.packets_file)


class _Head:
    """Tracks the head and keeps the packets of the chains begun in it, batch by batch."""

    def __init__(self, cache: FlowCache, inactive_ns: int) -> None:
        self._cache = cache
        self._inactive_ns = inactive_ns
        self._window_end: int | None = None  # the head ends when the clock passes this
        self._clock = -NO_TIME
        self.chains = 0  # chains numbered below this began in the head
        self.parts: list[ChainPackets] = []
        self.peak_open = 0
        self.first_ns = NO_TIME

    def metered(self, packets: PacketTable) -> None:
        """After the cache metered ``packets``: keep what belongs to head chains."""
        if not len(packets):
            return
        ts = packets.ts_ns
        if self._window_end is None:
            self.first_ns = int(ts[0])
            self._window_end = self.first_ns + self._inactive_ns
        clock = np.maximum.accumulate(np.maximum(ts, self._clock))
        self._clock = int(clock[-1])
        chain = self._cache.joined
        in_head = clock <= self._window_end
        if in_head[0]:
            self.chains = max(self.chains, int(chain[in_head].max(initial=-1)) + 1)
            self.peak_open = self._cache.peak_open_flows
        keep = (chain >= 0) & (chain < self.chains)
        if keep.any():
            columns = (packets.ip_len[keep], packets.tcp_flags[keep], packets.vlan[keep],
                       packets.attrs[keep])  # fmt: skip
            self.parts.append(ChainPackets(chain[keep], ts[keep], clock[keep], *columns))


def meter_slice(
    spec: SliceSpec, config: CacheConfig, batch_frames: int = DEFAULT_BATCH_FRAMES
) -> SliceResult:
    """Meter one slice from an empty cache; raises InputError if it cannot be opened."""
    cache = _tracking_cache(config)
    ended: list[EndedRecords] = []
    ended_chain: list[npt.NDArray[np.int64]] = []

    def keep(records: EndedRecords) -> None:
        ended.append(records)
        ended_chain.append(cache.ended_root)

    meter = Meter(config, keep, cache=cache)
    head = _Head(cache, config.inactive_ns)
    source = FileSlice(spec, batch_frames)
    try:
        damage = meter.counters.damage.append
        selected = ReadAhead(meter.select(frames) for frames in frame_batches(source, damage))
        with selected:
            for observed, packets in selected:
                meter.meter(observed, packets)
                head.metered(packets)
        start, end = source.start, source.end
    finally:
        source.close()
    still_open = cache.flush()
    counters = meter.counters
    counters.peak_open_flows = cache.peak_open_flows
    kept = ChainPackets.concat(head.parts)
    firsts_row = np.flatnonzero(first_of_chain(kept.chain, head.chains))
    all_ended, chain = EndedRecords.concat(ended), _chains(ended_chain)
    tentative = chain < head.chains
    return SliceResult(
        spec, start, end, all_ended.take(~tentative), all_ended.take(tentative), chain[tentative],
        still_open.records(), cache.ended_root, head.chains, kept.take(firsts_row),
        firsts_row, kept, None, head.first_ns, counters.first_ns, cache.clock_ns, head.peak_open,
        counters,
    )  # fmt: skip


@njit(cache=True, nogil=True)
def first_of_chain(chains, n_chains):  # type: ignore[no-untyped-def]
    """Marks each chain's first row."""
    seen = np.zeros(n_chains, np.bool_)
    first = np.zeros(len(chains), np.bool_)
    for i in range(len(chains)):
        if not seen[chains[i]]:
            seen[chains[i]] = True
            first[i] = True
    return first


_CACHES: dict[CacheConfig, FlowCache] = {}  # one per worker process and config, reused


def _tracking_cache(config: CacheConfig) -> FlowCache:
    """An empty chain-numbering cache: the one this process used last, or a new one."""
    cache = _CACHES.pop(config, None)
    if cache is None or cache.open_flows:
        cache = FlowCache(config, track_chains=True)
    cache.reset()
    _CACHES[config] = cache
    return cache


def _chains(parts: list[npt.NDArray[np.int64]]) -> npt.NDArray[np.int64]:
    return np.concatenate(parts) if parts else np.empty(0, np.int64)
