"""Fold slice results, in capture order, into exactly the records of one pass.

The merge holds what one pass would hold between two slices: the open
records (least recently updated first) and the clock. For each slice:

- *Replay.* Keys the previous slices left open and the slice saw in its head
  are replayed: a cache adopts the open records, then a barrier record that
  never goes idle, then meters those keys' packets with the slice's own clock.
  Records ahead of the barrier (left open, not yet seen again) go idle by
  that clock as in one pass; replayed records sit behind it, so only their own
  packets end them, and a key whose slice record ended idle ends at the same
  moment. Its tentative records from the task are dropped.
- *Re-meter.* Where that argument does not hold, the slice is metered again
  here, continuing the open records, exactly as one pass would: the slice has
  a frame older than the clock (timestamps out of order across the cut), a
  replayed key's packets go back in time, the task's cache filled or one pass
  could have filled it, or the slice's first record is not where the previous
  slice's walk ended.

docs/design.md, Parallel conversion.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from cache.config import CacheConfig
from cache.flow_cache import FlowCache
from cache.kernel import CLOCK_START
from cache.keys import key_ids
from core.records import EndedRecords, EndReason, RecordTable
from probe.meter.carried import Carried, moves_forward
from probe.meter.counters import Counters, RecordSink
from probe.meter.meter import Meter
from probe.meter.slice_task import SliceResult
from probe.sources.capture import frame_batches
from probe.sources.slices import FileSlice, SliceSpec

BARRIER_NS = np.iinfo(np.int64).max // 4  # a last packet time no clock reaches
REPLAY_BATCH = 1 << 16


@dataclass(slots=True)
class MergeReport:
    """What the summary says about how the slices were joined."""

    slices: int = 0
    replayed_packets: int = 0
    remetered: list[str] = field(default_factory=list)  # "slice: why"
    overlapping: list[str] = field(default_factory=list)  # files that overlap earlier ones in time
    peak_open_flows: int = 0
    notes: list[str] = field(default_factory=list)  # faults met and survived (a worker died)


class SliceMerger:
    """Takes slice results in capture order; hands the records of one pass to ``sink``."""

    def __init__(self, config: CacheConfig, sink: RecordSink, counters: Counters) -> None:
        self.config = config
        self._sink = sink
        self.counters = counters
        self.report = MergeReport()
        self.open = RecordTable.empty(0)  # least recently updated first
        self.clock = CLOCK_START  # the latest frame time so far
        self._previous: SliceResult | None = None

    def add(self, result: SliceResult) -> None:
        """Merge the next slice in capture order."""
        self.report.slices += 1
        carried = Carried.of(self.open, result, self.config)
        why = self._why_remeter(result, carried)
        if why is None:
            self._replay(result, carried)
            self._count_input(result.counters)
            self.report.peak_open_flows = max(
                self.report.peak_open_flows, result.counters.peak_open_flows
            )
        else:
            self.report.remetered.append(f"{result.spec.describe()}: {why}")
            result = self._remeter(result)
        self.clock = max(self.clock, result.max_ns)  # an empty slice's max_ns is below any clock
        self._previous = result

    def finish(self) -> None:
        """End every record still open, as one pass does at the end of its input."""
        if len(self.open):
            self._emit(self._cache_for(self.open).flush())
        self.open = RecordTable.empty(0)

    def _emit(self, records: EndedRecords) -> None:
        if len(records):
            self.counters.add_records(records)
            self._sink(records)

    def _count_input(self, seen: Counters) -> None:
        self.counters.add_input(seen)
        self.counters.damage.extend(seen.damage)

    def _why_remeter(self, result: SliceResult, carried: Carried) -> str | None:
        previous, spec = self._previous, result.spec
        continues_file = previous is not None and previous.spec.path == spec.path
        if not spec.whole_file and spec.start and continues_file:
            assert previous is not None
            if previous.end is not None and previous.end != result.start:
                return "its first record is not where the previous slice ended"
        if spec.start == 0 and result.first_ns < self.clock:
            self.report.overlapping.append(spec.path)
        if result.cache_filled:
            return "its cache filled"
        if result.min_ns < self.clock:  # its clock would lag one pass's: export clocks, idle ends
            return "a frame older than the previous slices' latest"
        if not len(self.open):
            return None
        if (np.diff(self.open.last_ns) < 0).any():
            # Time went back across keys: one pass's LRU order is not the order of last
            # packets, and a replay (which scans for idle records once more after its last
            # packet) could end one that one pass leaves open until its next packet.
            return "records left open are out of time order"
        # Once the head is over, every record left open has ended or continues as
        # one of the slice's own: only during the head can one pass hold more.
        peak = max(result.head_peak_open + len(self.open), result.counters.peak_open_flows)
        if peak > self.config.max_flows:
            return "one pass could have filled the cache here"
        if carried.full_rows is not None:
            packets = result.all_packets()
            if not moves_forward(packets.ts_ns, packets.chain, carried.full_rows):
                return "a replayed key's time stamps go back"
        return None

    def _cache_for(self, records: RecordTable, extra: int = 0) -> FlowCache:
        """A cache holding ``records`` open as they were, with room for ``extra`` more."""
        room = max(len(records) + extra, 1)
        cache = FlowCache(dataclasses.replace(self.config, max_flows=room))
        cache.adopt(records, self.clock)
        return cache

    def _replay(self, result: SliceResult, carried: Carried) -> None:
        self._emit(result.ended)  # no tentative record among them
        if result.max_ns < result.min_ns:  # no frame: no clock tick, so no idle end either
            return
        if not len(self.open):
            self._emit(result.tentative)
            self.open = result.open
            return
        if carried.full_rows is None and _in_time_order(self.open, carried):
            self._sum(result, carried)
            return
        self._emit(result.tentative.take(~carried.ended))
        cache = self._cache_for(self.open, extra=len(self.open) + 1)
        cache.adopt(_barrier(), CLOCK_START)
        packets = carried.replayed(result)
        self.report.replayed_packets += len(packets)
        table = carried.replay_table(packets)
        clock = packets.clock_ns
        for at in range(0, len(packets), REPLAY_BATCH):
            part = slice(at, at + REPLAY_BATCH)
            self._emit(cache.update(table.take(part), clock[part]))
        # Records left open that went idle during the slice:
        self._emit(cache.expire(max(self.clock, result.max_ns)))
        rest = cache.flush()
        barrier = int(np.flatnonzero(rest.version == 0)[0])
        still_open_before = rest.records().take(np.arange(barrier))
        continued = rest.take(np.arange(barrier + 1, len(rest)))
        ends = self._complete(continued, result, carried)
        self._emit(continued.take(ends))
        stays = continued.records().take(~ends)
        self.open = RecordTable.concat(
            [still_open_before, _substitute(result.open, carried.open, stays, self.config)]
        )

    def _sum(self, result: SliceResult, carried: Carried) -> None:
        """Every carried key summed, in time order: one pass's outcome without a cache.

        The records left open are in order of their last packet and each summed
        key's first packet comes at the clock's time, so a record left open
        ends idle exactly when its key's next packet is over the inactive
        timeout later (else it absorbs the slice's record), and the others end
        idle once the slice's clock passes their last packet plus the timeout.
        """
        left, inactive = self.open, self.config.inactive_ns
        mine = left.take(carried.summed_left_row)
        ended_first = carried.summed_first_ts - mine.last_ns > inactive
        self._emit(_ended_idle(mine.take(ended_first), inactive))
        records = carried.records
        joins = ~ended_first
        rows = carried.summed_record[joins]
        joined = _joined(mine.take(joins), records.take(rows))
        n_ended = len(result.tentative)
        in_ended = rows < n_ended
        keep_ended = ~carried.ended
        keep_ended[carried.summed_record[ended_first & (carried.summed_record < n_ended)]] = True
        self._emit(result.tentative.take(keep_ended))
        joined_ended = joined.take(in_ended)
        self._emit(
            EndedRecords(
                **joined_ended.columns(), export_ns=result.tentative.export_ns[rows[in_ended]]
            )
        )
        task_open = _with_rows(result.open, rows[~in_ended] - n_ended, joined.take(~in_ended))
        rest = np.ones(len(left), bool)
        rest[carried.summed_left_row] = False
        idle = left.last_ns + inactive < max(self.clock, result.max_ns)
        self._emit(_ended_idle(left.take(rest & idle), inactive))
        self.open = RecordTable.concat([left.take(rest & ~idle), task_open])

    def _complete(
        self, continued: EndedRecords, result: SliceResult, carried: Carried
    ) -> npt.NDArray[np.bool_]:
        """Finish the replayed records; return which of them end in this slice.

        A record of a summed key got only its first packet: the rest of the
        slice's one record of that key is added. A key the slice left open
        continues. Any other record ends as the key's last tentative record
        did: at its last packet, which the replayed record shares, so with
        that record's end reason and export clock.
        """
        dropped = result.tentative.take(carried.ended)
        dropped_open = result.open.take(carried.open)
        summed = carried.summed()
        ids = key_ids(
            [continued, dropped_open, dropped, summed], self.config.key_vlan, self.config.key_mac
        )
        size = max((int(i.max(initial=-1)) for i in ids), default=-1) + 1
        _add_rest(continued, ids[0], summed, ids[3], carried.summed_first_len, size)
        open_in_slice = np.zeros(size, bool)
        open_in_slice[ids[1]] = True
        ends = ~open_in_slice[ids[0]]
        last_dropped = np.full(size, -1, np.int64)
        np.maximum.at(last_dropped, ids[2], np.arange(len(dropped)))
        last = last_dropped[ids[0][ends]]
        if (last < 0).any():
            raise AssertionError("a replayed record has no end in its slice")
        continued.end_reason[ends] = dropped.end_reason[last]
        continued.export_ns[ends] = dropped.export_ns[last]
        return ends

    def _remeter(self, result: SliceResult) -> SliceResult:
        """Meter the slice again here, continuing the open records: exactly one pass."""
        previous, spec = self._previous, result.spec
        if previous is not None and previous.spec.path == spec.path and previous.end is not None:
            spec = SliceSpec(spec.path, previous.end, spec.end, exact=True)
        cache = FlowCache(self.config)  # one pass's size: it evicts as one pass would
        cache.adopt(self.open, self.clock)
        meter = Meter(self.config, self._emit, cache=cache)
        source = FileSlice(spec)
        try:
            for frames in frame_batches(source, meter.counters.damage.append):
                meter.feed(frames)
            start, end = source.start, source.end
        finally:
            source.close()
        seen = meter.counters
        self._count_input(seen)
        self.report.peak_open_flows = max(self.report.peak_open_flows, cache.peak_open_flows)
        self.open = cache.flush().records()
        remetered = SliceResult.empty(spec, seen)
        remetered.start, remetered.end = start, end
        remetered.min_ns, remetered.max_ns = int(seen.first_ns), cache.clock_ns
        return remetered


def _in_time_order(left_open: RecordTable, carried: Carried) -> bool:
    """Records left open in order of their last packet, and each summed key's first
    packet at the clock's own time: then no record blocks another's idle end."""
    ordered = bool((np.diff(left_open.last_ns) >= 0).all())
    return ordered and bool((carried.summed_first_clock == carried.summed_first_ts).all())


def _ended_idle(records: RecordTable, inactive_ns: int) -> EndedRecords:
    """``records`` ended idle, each at the moment it went idle."""
    columns = records.columns()
    columns["end_reason"] = np.full(len(records), int(EndReason.IDLE), np.uint8)
    return EndedRecords(**columns, export_ns=records.last_ns + inactive_ns + 1)


def _joined(left: RecordTable, slice_records: RecordTable) -> RecordTable:
    """Each record left open continued by its key's one record in the slice."""
    columns = slice_records.columns()
    columns = {name: column.copy() for name, column in columns.items()}
    columns["first_ns"] = np.minimum(left.first_ns, slice_records.first_ns)
    columns["last_ns"] = np.maximum(left.last_ns, slice_records.last_ns)
    columns["packets"] = left.packets + slice_records.packets
    columns["octets"] = left.octets + slice_records.octets
    columns["tcp_flags"] = left.tcp_flags | slice_records.tcp_flags
    columns["vlan"] = left.vlan  # a record's VLAN and attributes are its first packet's
    columns["attrs"] = left.attrs
    return RecordTable(**columns)


def _barrier() -> RecordTable:
    barrier = RecordTable.empty(1)
    barrier.first_ns[:] = BARRIER_NS
    barrier.last_ns[:] = BARRIER_NS
    barrier.packets[:] = 1
    return barrier


def _substitute(
    task_open: RecordTable, replaced: npt.NDArray[np.bool_], by: RecordTable, config: CacheConfig
) -> RecordTable:
    """``task_open`` with each ``replaced`` row swapped for the row of ``by`` with its key."""
    if not replaced.any():
        return task_open
    ids = key_ids([task_open, by], config.key_vlan, config.key_mac)
    row_of = np.full(int(max(ids[0].max(initial=-1), ids[1].max(initial=-1))) + 1, -1, np.int64)
    row_of[ids[1]] = np.arange(len(by))
    rows = np.flatnonzero(replaced)
    source_rows = row_of[ids[0][rows]]
    if (source_rows < 0).any():
        raise AssertionError("a tentative open record has no replayed record")
    return _with_rows(task_open, rows, by.take(source_rows))


def _with_rows(table: RecordTable, rows: npt.NDArray[np.int64], values: RecordTable) -> RecordTable:
    """A copy of ``table`` whose ``rows`` are ``values``' rows, in order."""
    columns = {name: col.copy() for name, col in table.columns().items()}
    for name, col in columns.items():
        col[rows] = getattr(values, name)
    return RecordTable(**columns)


def _add_rest(
    continued: EndedRecords,
    continued_ids: npt.NDArray[np.int64],
    summed: RecordTable,
    summed_ids: npt.NDArray[np.int64],
    first_len: npt.NDArray[np.uint64],
    size: int,
) -> None:
    """Add to each summed key's replayed record the rest of the slice's record of that key."""
    more = summed.packets > 1  # a lone packet was all the replay needed (it may have ended it)
    summed, summed_ids, first_len = summed.take(more), summed_ids[more], first_len[more]
    if not len(summed):
        return
    row_of = np.full(size, -1, np.int64)
    row_of[continued_ids] = np.arange(len(continued))
    target = row_of[summed_ids]
    if (target < 0).any():
        raise AssertionError("a summed key has no replayed record")
    continued.packets[target] += summed.packets - np.uint64(1)
    continued.octets[target] += summed.octets - first_len
    continued.tcp_flags[target] |= summed.tcp_flags
    continued.first_ns[target] = np.minimum(continued.first_ns[target], summed.first_ns)
    continued.last_ns[target] = np.maximum(continued.last_ns[target], summed.last_ns)
