"""Compiled flow-cache kernels: the flow rules of docs/design.md, packet by packet.

Algorithm. Open records live in a pool of ``max_flows`` slots (``FLOW_SLOT``
rows). An open-addressing table (linear probing, power-of-two size at least
twice the pool, deletion by backward shift so there are no tombstones) maps a
key hash to its pool slot. A table entry is an int64: ``-1`` when empty, else
``(hash & TAG_MASK) << 32 | pool slot``; the tag bits let a probe skip other
flows and let deletion find an entry's home slot without reading the pool. On a
tag match the full key is compared, so a hash collision can never merge two
flows. A doubly linked list through ``lru`` (int32, ``max_flows x 2``: column
``PREV`` and ``NEXT``, ``-1`` = none; kept apart from the pool rows so moving a
record touches no other record's row) keeps the open records in update order:
the head is the least recently updated record, the tail the most recent.
``FLOW_SLOT`` rows hold the key, its full ``hash``, first/last packet time,
packets (0 = free slot), octets and OR of TCP flags; ``free`` (int32) is a stack
of free pool slots. Pool slots stay below 2**31 and table masks below
``TAG_MASK``, so an entry's tag holds its home slot.

Speed. A batch's key hashes are computed first; while metering packet ``p`` the
kernel prefetches the table slot of packet ``p + 2 * PREFETCH_AHEAD`` and the
pool row of packet ``p + PREFETCH_AHEAD``; after each eviction of a full
cache, the new LRU head's table slot and the row of the record after it (the
next evictions end the records touched longest ago, which have left the
caches). The helpers a packet's path calls borrow their arrays (compiled
without reference counting). Prefetches are hints only: no result depends on
them.

For each packet, in order: the clock moves to the packet's time if that is
later; records at the head whose ``last + inactive < clock`` end (idle); then
rules 1-5 apply to the packet's own record; a new record in a full pool first
ends the head (cache full). Ended records are appended to ``out`` with the
clock they ended at as ``export_ns``; an idle record's is the moment it went
idle (``last + inactive + 1``) when the clock has passed that, so a record
never leaves more than the inactive timeout after its last packet, however
long the gap in the input that revealed it.

``pool_attrs`` holds each open record's attribute words (``max_flows`` rows,
its first packet's, copied from ``packet_attrs`` when it opens); an ended
record's go to its row of ``out_attrs``. Both are 0 words wide when records
carry none, and only ``meter_packets`` copies them (the helpers stay as
they were: records that ``expire_idle`` ends are found on the free stack,
which holds their slots in the order they ended).

``state`` holds the scalars: head, tail, open count, free-stack top, clock,
the most records ever open at once, and the next record serial.

Chains (for the parallel merge, probe/meter/slice_task.py). When ``joined``
has a row per packet, the kernel numbers records as it opens them
(``chains[slot, SERIAL]``) and gives each the serial of the first record of
its *chain* (``chains[slot, ROOT]``): a record opened because the active
timeout ended its key's previous one continues that chain; any other starts
its own. ``joined`` gets the chain of the record each packet joined (-1 for
an undecoded frame); ended records carry their chain (``root``). Otherwise ``chains``
and ``joined`` are empty and nothing is numbered.
"""

from __future__ import annotations

import numpy as np

from aot import njit
from cache.hashing import hash_keys, mix_macs
from cache.prefetch import prefetch as _prefetch
from core.attributes import DST_MAC, SRC_MAC  # the words a --key-mac key compares

FLOW_SLOT = np.dtype(
    [
        ("hash", np.uint64),
        ("src_hi", np.uint64),
        ("src_lo", np.uint64),
        ("dst_hi", np.uint64),
        ("dst_lo", np.uint64),
        ("first_ns", np.int64),
        ("last_ns", np.int64),
        ("packets", np.uint64),
        ("octets", np.uint64),
        ("ifindex", np.uint32),
        ("sport", np.uint16),
        ("dport", np.uint16),
        ("vlan", np.uint16),
        ("version", np.uint8),
        ("proto", np.uint8),
        ("tos", np.uint8),
        ("tcp_flags", np.uint8),
    ]
)

HEAD, TAIL, N_OPEN, FREE_TOP, CLOCK, PEAK_OPEN, NEXT_SERIAL = 0, 1, 2, 3, 4, 5, 6
STATE_SIZE = 7
SERIAL, ROOT = 0, 1  # columns of ``chains``
PREV, NEXT = 0, 1
NO_SLOT = -1
TAG_MASK = np.uint64(0x7FFFFFFF)  # hash bits kept in a table entry; covers any table mask
_IDX_MASK = np.int64(0xFFFFFFFF)
CLOCK_START = np.iinfo(np.int64).min // 2  # below any packet time, safe to add timeouts to

IDLE, ACTIVE, END_OF_FLOW, FORCED, CACHE_FULL = 1, 2, 3, 4, 5
TCP = 6
FIN_OR_RST = 0x01 | 0x04

PREFETCH_AHEAD = 8  # packets between prefetching a table slot and its pool row and using them


@njit(cache=True, inline="always")
def _entry(h, idx):  # type: ignore[no-untyped-def]
    return (np.int64(h & TAG_MASK) << np.int64(32)) | np.int64(idx)


@njit(cache=True, inline="always")
def claim_slot(table, free, state, slot, h):  # type: ignore[no-untyped-def]
    """Take a free pool slot for a new record of hash ``h`` at empty table ``slot``."""
    state[FREE_TOP] -= 1
    idx = free[state[FREE_TOP]]
    state[N_OPEN] += 1
    if state[N_OPEN] > state[PEAK_OPEN]:
        state[PEAK_OPEN] = state[N_OPEN]
    table[slot] = _entry(h, idx)
    return idx


@njit(cache=True, nogil=True, borrows=True)
def _find_slot_of(table, flows, idx):  # type: ignore[no-untyped-def]
    mask = np.int64(len(table) - 1)
    entry = _entry(flows[idx]["hash"], idx)
    slot = np.int64(flows[idx]["hash"] & np.uint64(mask))
    while table[slot] != entry:
        slot = (slot + 1) & mask
    return slot


@njit(cache=True, nogil=True, borrows=True)
def _table_delete(table, slot):  # type: ignore[no-untyped-def]
    """Backward-shift deletion: later entries of the probe run move up."""
    mask = np.int64(len(table) - 1)
    hole = slot
    j = slot
    while True:
        j = (j + 1) & mask
        entry = table[j]
        if entry < 0:
            break
        home = (entry >> np.int64(32)) & mask
        # The entry at j may fill the hole unless its home lies cyclically in (hole, j].
        if hole <= j:
            stays = hole < home <= j
        else:
            stays = home > hole or home <= j
        if not stays:
            table[hole] = entry
            hole = j
    table[hole] = NO_SLOT


@njit(cache=True, nogil=True, borrows=True)
def _lru_unlink(lru, state, idx):  # type: ignore[no-untyped-def]
    prev = lru[idx, PREV]
    nxt = lru[idx, NEXT]
    if prev >= 0:
        lru[prev, NEXT] = nxt
    else:
        state[HEAD] = nxt
    if nxt >= 0:
        lru[nxt, PREV] = prev
    else:
        state[TAIL] = prev


@njit(cache=True, nogil=True, borrows=True)
def _lru_append(lru, state, idx):  # type: ignore[no-untyped-def]
    tail = state[TAIL]
    lru[idx, PREV] = tail
    lru[idx, NEXT] = NO_SLOT
    if tail >= 0:
        lru[tail, NEXT] = idx
    else:
        state[HEAD] = idx
    state[TAIL] = idx


@njit(cache=True, nogil=True, borrows=True)
def _end_record(flows, lru, table, free, state, out, n_out, idx, reason, export_ns, chains):  # type: ignore[no-untyped-def]
    """Append record ``idx`` (leaving at ``export_ns``) to ``out``; free its slot."""
    f = flows[idx]
    o = out[n_out]
    o["export_ns"] = export_ns
    if len(chains):
        o["root"] = chains[idx, ROOT]
    o["version"] = f["version"]
    o["src_hi"] = f["src_hi"]
    o["src_lo"] = f["src_lo"]
    o["dst_hi"] = f["dst_hi"]
    o["dst_lo"] = f["dst_lo"]
    o["sport"] = f["sport"]
    o["dport"] = f["dport"]
    o["proto"] = f["proto"]
    o["tos"] = f["tos"]
    o["ifindex"] = f["ifindex"]
    o["vlan"] = f["vlan"]
    o["first_ns"] = f["first_ns"]
    o["last_ns"] = f["last_ns"]
    o["packets"] = f["packets"]
    o["octets"] = f["octets"]
    o["tcp_flags"] = f["tcp_flags"]
    o["end_reason"] = reason
    _table_delete(table, _find_slot_of(table, flows, idx))
    _lru_unlink(lru, state, idx)
    f["packets"] = 0
    free[state[FREE_TOP]] = idx
    state[FREE_TOP] += 1
    state[N_OPEN] -= 1
    return n_out + 1


@njit(cache=True, inline="always")
def _prefetch_next_victims(flows, lru, table, head, mask):  # type: ignore[no-untyped-def]
    """Start loading what the next evictions of a full cache touch, one eviction ahead.

    The LRU head is the record touched longest ago, so its row and table slot
    have most likely left the caches: the head's slot (its row was prefetched
    at the previous eviction) and the row of the record after it.
    """
    if head >= 0:
        _prefetch(table, np.int64(flows[head]["hash"] & np.uint64(mask)))
        after = np.int64(lru[head, NEXT])
        if after >= 0:
            _prefetch(flows, after)
            _prefetch(flows, after + 1)


@njit(cache=True, inline="always")
def _same_macs(pool_attrs, idx, packet_attrs, p):  # type: ignore[no-untyped-def]
    return (
        pool_attrs[idx, SRC_MAC] == packet_attrs[p, SRC_MAC]
        and pool_attrs[idx, DST_MAC] == packet_attrs[p, DST_MAC]
    )


@njit(cache=True, nogil=True)
def keep_freed_attributes(pool_attrs, out_attrs, free, top, first_row, n_out):  # type: ignore[no-untyped-def]
    """The attribute words of rows ``first_row`` .. ``n_out - 1``, which records ended while
    the free stack grew from ``top``: the stack holds their slots in the order they ended."""
    for k in range(n_out - first_row):
        out_attrs[first_row + k, :] = pool_attrs[free[top + k], :]


@njit(cache=True, inline="always")
def _idle_since(last_ns, inactive_ns, clock):  # type: ignore[no-untyped-def]
    """When a record last updated at ``last_ns`` went idle, if the clock has passed that."""
    return min(clock, last_ns + inactive_ns + 1)


@njit(cache=True, nogil=True)
def expire_idle(flows, lru, table, free, state, out, n_out, inactive_ns, chains):  # type: ignore[no-untyped-def]
    """End records at the LRU head whose last packet is over ``inactive_ns`` behind the clock."""
    clock = state[CLOCK]
    while state[HEAD] >= 0 and flows[state[HEAD]]["last_ns"] + inactive_ns < clock:
        head = state[HEAD]
        left = _idle_since(flows[head]["last_ns"], inactive_ns, clock)
        n_out = _end_record(flows, lru, table, free, state, out, n_out, head, IDLE, left, chains)
    return n_out


@njit(cache=True, nogil=True)
def flush_all(flows, lru, table, free, state, out, reason, export_ns, chains):  # type: ignore[no-untyped-def]
    """End every open record, least recently updated first, leaving at ``export_ns``."""
    n_out = 0
    while state[HEAD] >= 0:
        n_out = _end_record(
            flows, lru, table, free, state, out, n_out, state[HEAD], reason, export_ns, chains
        )
    return n_out


@njit(cache=True, nogil=True)
def meter_packets(  # type: ignore[no-untyped-def]
    flows,
    lru,
    table,
    free,
    state,
    out,
    ts_ns,
    clock_ns,
    version,
    src_hi,
    src_lo,
    dst_hi,
    dst_lo,
    sport,
    dport,
    proto,
    tos,
    tcp_flags,
    ip_len,
    ifindex,
    vlan,
    inactive_ns,
    active_ns,
    key_vlan,
    key_mac,
    chains,
    joined,
    packet_attrs,
    pool_attrs,
    out_attrs,
):
    """Apply the flow rules to every packet in order; return the number of ended records.

    ``clock_ns`` is what the clock moves to at each packet: ``ts_ns`` itself,
    except when a merge replays some keys' packets of a slice with the clock
    the whole slice had (probe/meter/slice_merge.py).
    """
    mask = np.int64(len(table) - 1)
    capacity = len(flows)
    n_out = 0
    n = len(ts_ns)
    track = len(joined) > 0
    carry_attrs = pool_attrs.shape[1] > 0
    hashes = hash_keys(
        version, src_hi, src_lo, dst_hi, dst_lo, sport, dport, proto, tos, ifindex, vlan, key_vlan
    )
    if key_mac:
        mix_macs(hashes, packet_attrs[:, SRC_MAC], packet_attrs[:, DST_MAC])
    for p in range(n):
        # Table slots are prefetched two steps ahead, then the pool rows they point at.
        if p + 2 * PREFETCH_AHEAD < n:
            _prefetch(table, np.int64(hashes[p + 2 * PREFETCH_AHEAD] & np.uint64(mask)))
        if p + PREFETCH_AHEAD < n:
            entry = table[np.int64(hashes[p + PREFETCH_AHEAD] & np.uint64(mask))]
            if entry >= 0:
                _prefetch(flows, entry & _IDX_MASK)
                _prefetch(flows, (entry & _IDX_MASK) + 1)  # the row's last cache line
        t = ts_ns[p]
        if clock_ns[p] > state[CLOCK]:
            state[CLOCK] = clock_ns[p]
        clock = state[CLOCK]
        head = state[HEAD]
        if head >= 0 and flows[head]["last_ns"] + inactive_ns < clock:
            top, before = state[FREE_TOP], n_out
            n_out = expire_idle(flows, lru, table, free, state, out, n_out, inactive_ns, chains)
            if carry_attrs:
                keep_freed_attributes(pool_attrs, out_attrs, free, top, before, n_out)
        if version[p] == 0:
            if track:
                joined[p] = -1
            continue
        h = hashes[p]
        tag = np.int64(h & TAG_MASK)
        slot = np.int64(h & np.uint64(mask))
        idx = np.int64(NO_SLOT)
        while table[slot] >= 0:
            entry = table[slot]
            if entry >> np.int64(32) == tag:
                f = flows[entry & _IDX_MASK]
                if (
                    f["hash"] == h
                    and f["src_lo"] == src_lo[p]
                    and f["dst_lo"] == dst_lo[p]
                    and f["sport"] == sport[p]
                    and f["dport"] == dport[p]
                    and f["src_hi"] == src_hi[p]
                    and f["dst_hi"] == dst_hi[p]
                    and f["proto"] == proto[p]
                    and f["tos"] == tos[p]
                    and f["version"] == version[p]
                    and f["ifindex"] == ifindex[p]
                    and (not key_vlan or f["vlan"] == vlan[p])
                    and (not key_mac or _same_macs(pool_attrs, entry & _IDX_MASK, packet_attrs, p))
                ):
                    idx = entry & _IDX_MASK
                    break
            slot = (slot + 1) & mask
        # No match: ``slot`` is the first empty slot of the probe run, valid until a deletion.
        table_changed = False
        chain_root = np.int64(-1)  # an active timeout continues the chain in the new record
        if idx >= 0:
            gap_ns = t - flows[idx]["last_ns"]
            age_ns = t - flows[idx]["first_ns"]
            if gap_ns > inactive_ns:  # rule 2
                left = _idle_since(flows[idx]["last_ns"], inactive_ns, clock)
                n_out = _end_record(
                    flows, lru, table, free, state, out, n_out, idx, IDLE, left, chains
                )
                if carry_attrs:
                    out_attrs[n_out - 1, :] = pool_attrs[idx, :]
                idx = np.int64(NO_SLOT)
                table_changed = True
            elif age_ns > active_ns:  # rule 3
                if track:
                    chain_root = chains[idx, ROOT]
                n_out = _end_record(
                    flows, lru, table, free, state, out, n_out, idx, ACTIVE, clock, chains
                )
                if carry_attrs:
                    out_attrs[n_out - 1, :] = pool_attrs[idx, :]
                idx = np.int64(NO_SLOT)
                table_changed = True
        if idx >= 0:  # rule 4
            f = flows[idx]
            if t > f["last_ns"]:
                f["last_ns"] = t
            if t < f["first_ns"]:
                f["first_ns"] = t
            f["packets"] += np.uint64(1)
            f["octets"] += np.uint64(ip_len[p])
            f["tcp_flags"] |= tcp_flags[p]
            if state[TAIL] != idx:
                _lru_unlink(lru, state, idx)
                _lru_append(lru, state, idx)
        else:  # rule 1
            if state[N_OPEN] >= capacity:
                head = state[HEAD]
                n_out = _end_record(
                    flows, lru, table, free, state, out, n_out, head, CACHE_FULL, clock, chains
                )
                if carry_attrs:
                    out_attrs[n_out - 1, :] = pool_attrs[head, :]
                table_changed = True
                _prefetch_next_victims(flows, lru, table, state[HEAD], mask)
            if table_changed:
                # Deletions may have shifted the probe run: find the first empty slot again.
                slot = np.int64(h & np.uint64(mask))
                while table[slot] >= 0:
                    slot = (slot + 1) & mask
            idx = claim_slot(table, free, state, slot, h)
            f = flows[idx]
            f["hash"] = h
            f["version"] = version[p]
            f["src_hi"] = src_hi[p]
            f["src_lo"] = src_lo[p]
            f["dst_hi"] = dst_hi[p]
            f["dst_lo"] = dst_lo[p]
            f["sport"] = sport[p]
            f["dport"] = dport[p]
            f["proto"] = proto[p]
            f["tos"] = tos[p]
            f["ifindex"] = ifindex[p]
            f["vlan"] = vlan[p]
            f["first_ns"] = t
            f["last_ns"] = t
            f["packets"] = 1
            f["octets"] = ip_len[p]
            f["tcp_flags"] = tcp_flags[p]
            if carry_attrs:
                pool_attrs[idx, :] = packet_attrs[p, :]
            _lru_append(lru, state, idx)
            if track:
                serial = state[NEXT_SERIAL]
                state[NEXT_SERIAL] += 1
                chains[idx, SERIAL] = serial
                chains[idx, ROOT] = chain_root if chain_root >= 0 else serial
        if track:
            joined[p] = chains[idx, ROOT]
        if proto[p] == TCP and (tcp_flags[p] & FIN_OR_RST) != 0:  # rule 5
            n_out = _end_record(
                flows, lru, table, free, state, out, n_out, idx, END_OF_FLOW, clock, chains
            )
            if carry_attrs:
                out_attrs[n_out - 1, :] = pool_attrs[idx, :]
    return n_out
