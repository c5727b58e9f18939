"""Which of a slice's tentative records and packets continue records the previous slices left open.

Part of the slice merge (``slice_merge``); docs/design.md, Parallel conversion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from aot import njit
from cache.config import CacheConfig
from cache.keys import KeyColumns, key_ids
from core.packets import PacketTable
from core.records import RecordTable
from probe.meter.slice_task import ChainPackets, SliceResult


@dataclass(slots=True)
class Carried:
    """Which of a slice's tentative records and packets belong to keys left open.

    A carried key whose only tentative record cannot reach the active timeout
    counted from the record left open is *summed*: the replay gets its first
    packet only (to decide, as one pass would, whether it joins the record
    left open) and the rest is added from the slice's record. Other carried
    keys are replayed packet by packet.
    """

    records: RecordTable  # the slice's tentative ended records, then its open ones
    ended: npt.NDArray[np.bool_]  # per tentative ended record: carried
    open: npt.NDArray[np.bool_]  # per open record: tentative and carried
    mode: npt.NDArray[np.int8]  # per chain: 0 not carried, 1 replayed in full, 2 summed
    full_rows: npt.NDArray[np.bool_] | None  # per chain packet: replayed in full (None: none)
    record_of_chain: npt.NDArray[np.int64]  # a record (tentative ++ open) of each chain
    summed_record: npt.NDArray[np.int64]  # rows (tentative ++ open) of the summed keys' records
    summed_first_len: npt.NDArray[np.uint64]  # the first packet's octets of each of those
    summed_first_ts: npt.NDArray[np.int64]  # ... its time
    summed_first_clock: npt.NDArray[np.int64]  # ... and the clock then
    summed_left_row: npt.NDArray[np.int64]  # the row of each summed key's record left open

    @classmethod
    def of(cls, left_open: RecordTable, result: SliceResult, config: CacheConfig) -> Carried:
        head = result.head_chains
        records = RecordTable.concat([result.tentative.records(), result.open])
        chain = np.concatenate([result.tentative_chain, result.open_chain])
        rows = np.flatnonzero((chain >= 0) & (chain < head))
        ids = key_ids([left_open, KeyColumns(records, rows)], config.key_vlan, config.key_mac)
        size = max(int(i.max(initial=-1)) for i in ids) + 1
        left_first = np.zeros(size, np.int64)
        left_row = np.full(size, -1, np.int64)
        is_left = np.zeros(size, bool)
        is_left[ids[0]] = True
        left_first[ids[0]] = left_open.first_ns
        left_row[ids[0]] = np.arange(len(left_open))
        carried_rows = rows[is_left[ids[1]]]
        carried_ids = ids[1][is_left[ids[1]]]
        per_key = np.bincount(carried_ids, minlength=size)
        reach = records.last_ns[carried_rows] - left_first[carried_ids]
        summed = (per_key[carried_ids] == 1) & (reach <= config.active_ns)
        mode = np.zeros(head, np.int8)
        mode[chain[carried_rows]] = np.where(summed, 2, 1)
        carried = np.zeros(len(records), bool)
        carried[carried_rows] = True
        record_of_chain = np.full(head, -1, np.int64)
        record_of_chain[chain[rows]] = rows
        full_rows = None
        if not summed.all():
            full_rows = mode[result.all_packets().chain] == 1
        firsts = result.firsts
        first_of = np.full(head, -1, np.int64)
        first_of[firsts.chain] = np.arange(len(firsts))
        summed_rows = carried_rows[summed]
        first = first_of[chain[summed_rows]]
        n_ended = len(result.tentative)
        return cls(
            records, carried[:n_ended], carried[n_ended:], mode, full_rows, record_of_chain,
            summed_rows, firsts.ip_len[first].astype(np.uint64), firsts.ts_ns[first],
            firsts.clock_ns[first], left_row[carried_ids[summed]],
        )  # fmt: skip

    def replayed(self, result: SliceResult) -> ChainPackets:
        """What the replay meters, in arrival order: every packet of a key replayed in
        full, the first packet of a summed one."""
        firsts = self.mode[result.firsts.chain] == 2
        parts, rows = [result.firsts.take(firsts)], [result.firsts_row[firsts]]
        if self.full_rows is not None:
            full = np.flatnonzero(self.full_rows)
            parts.append(result.all_packets().take(full))
            rows.append(full)
        order = np.argsort(np.concatenate(rows), kind="stable")
        return ChainPackets.concat(parts).take(order)

    def replay_table(self, packets: ChainPackets) -> PacketTable:
        """``packets`` as a packet table: key columns from a record of their chain."""
        records = self.records
        row = self.record_of_chain[packets.chain]
        return PacketTable(
            **{name: getattr(records, name)[row] for name in KEY_COLUMNS},
            ts_ns=packets.ts_ns, tcp_flags=packets.tcp_flags, ip_len=packets.ip_len,
            vlan=packets.vlan, reason=np.zeros(len(packets), np.uint8), attrs=packets.attrs,
        )  # fmt: skip

    def summed(self) -> RecordTable:
        """The slice's records of the summed keys."""
        return self.records.take(self.summed_record)


KEY_COLUMNS = ("version", "src_hi", "src_lo", "dst_hi", "dst_lo", "sport", "dport", "proto", "tos",
               "ifindex")  # fmt: skip


@njit(cache=True, nogil=True)
def moves_forward(ts_ns, chains, chosen):  # type: ignore[no-untyped-def]
    """Do the chosen rows' times never go back within one chain? (Then every record
    replayed from them has its latest packet last, wherever the replay splits.)"""
    latest = np.full(chains.max() + 1 if len(chains) else 0, np.iinfo(np.int64).min, np.int64)
    for i in range(len(chains)):
        if chosen[i]:
            if ts_ns[i] < latest[chains[i]]:
                return False
            latest[chains[i]] = ts_ns[i]
    return True
