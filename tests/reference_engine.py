"""The oracle: docs/design.md's flow rules applied one packet at a time in plain Python.

Written from the "Flow semantics" section only; it shares no code with the
compiled cache (``cache/kernel.py``). Slow on purpose: one Python object per open
record, an ``OrderedDict`` for the least-recently-updated order.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from cache.config import CacheConfig
from core.packets import PacketTable

# End reasons: IPFIX flowEndReason values, as listed in docs/design.md.
IDLE, ACTIVE, END_OF_FLOW, FORCED, CACHE_FULL = 1, 2, 3, 4, 5
TCP = 6
FIN, RST = 0x01, 0x04


class Record(NamedTuple):
    """One ended record, fields in ``RecordTable`` order."""

    version: int
    src_hi: int
    src_lo: int
    dst_hi: int
    dst_lo: int
    sport: int
    dport: int
    proto: int
    tos: int
    ifindex: int
    vlan: int
    first_ns: int
    last_ns: int
    packets: int
    octets: int
    tcp_flags: int
    end_reason: int
    attrs: tuple[int, ...] = ()  # the first packet's attribute words (core.attributes)


class PacketRow(NamedTuple):
    """One row of a ``PacketTable`` as Python ints."""

    ts_ns: int
    version: int
    src_hi: int
    src_lo: int
    dst_hi: int
    dst_lo: int
    sport: int
    dport: int
    proto: int
    tos: int
    tcp_flags: int
    ip_len: int
    ifindex: int
    vlan: int
    attrs: tuple[int, ...]


def table_rows(table: Any, names: Sequence[str]) -> list[tuple[Any, ...]]:
    """The rows of a column table as tuples of Python ints (a wide column's row: a tuple)."""
    columns = [
        [tuple(row) for row in column.tolist()] if column.ndim == 2 else column.tolist()
        for column in (getattr(table, name) for name in names)
    ]
    return list(zip(*columns, strict=True))


def record_rows(records: Any) -> list[Record]:
    """The rows of a ``RecordTable`` (or ``EndedRecords``, export clock dropped) as ``Record``s."""
    return [Record._make(row) for row in table_rows(records, Record._fields)]


def packet_rows(packets: PacketTable) -> Iterator[PacketRow]:
    """The rows of ``packets`` in order, numpy scalars turned into Python ints."""
    return (PacketRow._make(row) for row in table_rows(packets, PacketRow._fields))


@dataclass(slots=True)
class _OpenRecord:
    """A record still in the cache; ``fields`` is the 7-tuple key without VLAN."""

    fields: tuple[int, ...]
    vlan: int
    first_ns: int
    last_ns: int
    packets: int
    octets: int
    tcp_flags: int
    attrs: tuple[int, ...]

    def ended(self, reason: int) -> Record:
        return Record._make(
            (*self.fields, self.vlan, self.first_ns, self.last_ns,
             self.packets, self.octets, self.tcp_flags, reason, self.attrs)
        )  # fmt: skip


class ReferenceCache:
    """The open records of one metering process, fed packet tables in order.

    ``open`` is ordered from the least recently updated record (first) to the
    most recently updated one (last). ``clock_ns`` is the largest time seen,
    ``None`` before the first packet or tick. ``exported`` logs every ended
    record with the export clock it left at: the clock, or for an idle record
    the moment it went idle (last + inactive + 1 ns) if that is earlier.
    """

    def __init__(self, config: CacheConfig) -> None:
        self.inactive_ns = config.inactive_ns
        self.active_ns = config.active_ns
        self.max_flows = config.max_flows
        self.key_vlan = config.key_vlan
        self.key_mac = config.key_mac
        self.clock_ns: int | None = None
        self.open: OrderedDict[tuple[int, ...], _OpenRecord] = OrderedDict()
        self.exported: list[tuple[Record, int]] = []

    def update(self, packets: PacketTable) -> list[Record]:
        """Meter every row of ``packets`` in order; return the records that ended."""
        ended: list[Record] = []
        for row in packet_rows(packets):
            self._meter(row, ended)
        return ended

    def expire(self, clock_ns: int) -> list[Record]:
        """Move the clock to ``clock_ns`` if later; return the records that went idle."""
        ended: list[Record] = []
        self._advance_clock(clock_ns, ended)
        return ended

    def flush(self) -> list[Record]:
        """End every open record (forced)."""
        ended = [record.ended(FORCED) for record in self.open.values()]
        self.open.clear()
        self.exported += [(record, self.clock_ns or 0) for record in ended]
        return ended

    def _end(self, key: tuple[int, ...], reason: int, ended: list[Record]) -> None:
        record = self.open.pop(key).ended(reason)
        assert self.clock_ns is not None
        left_ns = self.clock_ns
        if reason == IDLE:
            left_ns = min(left_ns, record.last_ns + self.inactive_ns + 1)
        self.exported.append((record, left_ns))
        ended.append(record)

    def _advance_clock(self, t_ns: int, ended: list[Record]) -> None:
        if self.clock_ns is None or t_ns > self.clock_ns:
            self.clock_ns = t_ns
        # Idle scan from the least recently updated end; stops at the first live record.
        while self.open:
            oldest_key, oldest = next(iter(self.open.items()))
            if not oldest.last_ns + self.inactive_ns < self.clock_ns:
                break
            self._end(oldest_key, IDLE, ended)

    def _meter(self, row: PacketRow, ended: list[Record]) -> None:
        self._advance_clock(row.ts_ns, ended)
        if row.version == 0:  # undecodable frame: it only moves the clock
            return
        t = row.ts_ns
        fields = (
            row.version, row.src_hi, row.src_lo, row.dst_hi, row.dst_lo,
            row.sport, row.dport, row.proto, row.tos, row.ifindex,
        )  # fmt: skip
        key = (*fields, row.vlan) if self.key_vlan else fields
        if self.key_mac:  # the source and destination MAC words (core.attributes 0 and 1)
            key = (*key, *row.attrs[:2])
        record = self.open.get(key)
        if record is not None:
            if t - record.last_ns > self.inactive_ns:  # rule 2
                self._end(key, IDLE, ended)
                record = None
            elif t - record.first_ns > self.active_ns:  # rule 3
                self._end(key, ACTIVE, ended)
                record = None
        if record is None:  # rule 1
            if len(self.open) >= self.max_flows:
                self._end(next(iter(self.open)), CACHE_FULL, ended)
            self.open[key] = _OpenRecord(
                fields, row.vlan, t, t, 1, row.ip_len, row.tcp_flags, row.attrs
            )
        else:  # rule 4
            record.packets += 1
            record.octets += row.ip_len
            record.tcp_flags |= row.tcp_flags
            record.last_ns = max(record.last_ns, t)
            record.first_ns = min(record.first_ns, t)
            self.open.move_to_end(key)
        if row.proto == TCP and row.tcp_flags & (FIN | RST):  # rule 5
            self._end(key, END_OF_FLOW, ended)


def reference_records(packets: PacketTable, config: CacheConfig) -> list[Record]:
    """Every record ``packets`` give, including those the final flush ends."""
    cache = ReferenceCache(config)
    return cache.update(packets) + cache.flush()
