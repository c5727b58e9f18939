"""Compiled flow-cache kernels: the DESIGN.md flow rules, packet by packet.

Algorithm. Open records live in a pool of ``max_flows`` slots (``FLOW_SLOT``
rows). An open-addressing table (linear probing, power-of-two size at least
twice the pool, ``-1`` = empty, deletion by backward shift so there are no
tombstones) maps a key hash to its pool slot; the full key is compared on
every hit, so a hash collision can never merge two flows. A doubly linked list
through ``lru_prev``/``lru_next`` keeps the pool in update order: the head is
the least recently updated record, the tail the most recent.

For each packet, in order: the clock moves to the packet's time if that is
later; records at the head whose ``last + inactive < clock`` end (idle); then
rules 1-5 apply to the packet's own record; a new record in a full pool first
ends the head (cache full). Ended records are appended to ``out``.

``state`` holds the scalars: head, tail, open count, free-stack top, clock.
"""

from __future__ import annotations

import numpy as np
from numba import njit

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
        ("lru_prev", np.int32),
        ("lru_next", np.int32),
        ("sport", np.uint16),
        ("dport", np.uint16),
        ("vlan", np.uint16),
        ("version", np.uint8),
        ("proto", np.uint8),
        ("tos", np.uint8),
        ("tcp_flags", np.uint8),
    ]
)

HEAD, TAIL, N_OPEN, FREE_TOP, CLOCK = 0, 1, 2, 3, 4
STATE_SIZE = 5
NO_SLOT = -1
CLOCK_START = np.iinfo(np.int64).min // 2  # below any packet time, safe to add timeouts to

IDLE, ACTIVE, END_OF_FLOW, FORCED, CACHE_FULL = 1, 2, 3, 4, 5
TCP = 6
FIN_OR_RST = 0x01 | 0x04

_MIX = np.uint64(0xFF51AFD7ED558CCD)
_SEED = np.uint64(0x9E3779B97F4A7C15)
_S32 = np.uint64(32)


@njit(cache=True, inline="always")
def _mix(h: np.uint64, word: np.uint64) -> np.uint64:
    h = (h ^ word) * _MIX
    return h ^ (h >> _S32)


@njit(cache=True, inline="always")
def key_hash(version, src_hi, src_lo, dst_hi, dst_lo, sport, dport, proto, tos, ifindex, vlan):  # type: ignore[no-untyped-def]
    ports = (np.uint64(sport) << np.uint64(48)) | (np.uint64(dport) << np.uint64(32))
    small = (np.uint64(proto) << np.uint64(24)) | (np.uint64(tos) << np.uint64(16))
    small |= (np.uint64(version) << np.uint64(8)) | ports
    where = (np.uint64(ifindex) << np.uint64(16)) | np.uint64(vlan)
    h = _mix(_SEED, src_hi)
    h = _mix(h, src_lo)
    h = _mix(h, dst_hi)
    h = _mix(h, dst_lo)
    h = _mix(h, small)
    return _mix(h, where)


@njit(cache=True, nogil=True)
def _find_slot_of(table, flows, idx):  # type: ignore[no-untyped-def]
    mask = np.uint64(len(table) - 1)
    slot = np.int64(flows[idx]["hash"] & mask)
    while table[slot] != idx:
        slot = (slot + 1) & np.int64(mask)
    return slot


@njit(cache=True, nogil=True)
def _table_delete(table, flows, slot):  # type: ignore[no-untyped-def]
    """Backward-shift deletion: later entries of the probe run move up."""
    mask = np.int64(len(table) - 1)
    hole = slot
    j = slot
    while True:
        j = (j + 1) & mask
        idx = table[j]
        if idx < 0:
            break
        home = np.int64(flows[idx]["hash"] & np.uint64(mask))
        # The entry at j may fill the hole unless its home lies cyclically in (hole, j].
        if hole <= j:
            stays = hole < home <= j
        else:
            stays = home > hole or home <= j
        if not stays:
            table[hole] = idx
            hole = j
    table[hole] = NO_SLOT


@njit(cache=True, nogil=True)
def _lru_unlink(flows, state, idx):  # type: ignore[no-untyped-def]
    prev = flows[idx]["lru_prev"]
    nxt = flows[idx]["lru_next"]
    if prev >= 0:
        flows[prev]["lru_next"] = nxt
    else:
        state[HEAD] = nxt
    if nxt >= 0:
        flows[nxt]["lru_prev"] = prev
    else:
        state[TAIL] = prev


@njit(cache=True, nogil=True)
def _lru_append(flows, state, idx):  # type: ignore[no-untyped-def]
    tail = state[TAIL]
    flows[idx]["lru_prev"] = tail
    flows[idx]["lru_next"] = NO_SLOT
    if tail >= 0:
        flows[tail]["lru_next"] = idx
    else:
        state[HEAD] = idx
    state[TAIL] = idx


@njit(cache=True, nogil=True)
def _end_record(flows, table, free, state, out, n_out, idx, reason):  # type: ignore[no-untyped-def]
    """Append record ``idx`` to ``out`` and free its slot; return the new out count."""
    f = flows[idx]
    o = out[n_out]
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
    _table_delete(table, flows, _find_slot_of(table, flows, idx))
    _lru_unlink(flows, state, idx)
    f["packets"] = 0
    free[state[FREE_TOP]] = idx
    state[FREE_TOP] += 1
    state[N_OPEN] -= 1
    return n_out + 1


@njit(cache=True, nogil=True)
def expire_idle(flows, table, free, state, out, n_out, inactive_ns):  # type: ignore[no-untyped-def]
    """End records at the LRU head whose last packet is over ``inactive_ns`` behind the clock."""
    clock = state[CLOCK]
    while state[HEAD] >= 0 and flows[state[HEAD]]["last_ns"] + inactive_ns < clock:
        n_out = _end_record(flows, table, free, state, out, n_out, state[HEAD], IDLE)
    return n_out


@njit(cache=True, nogil=True)
def flush_all(flows, table, free, state, out, reason):  # type: ignore[no-untyped-def]
    """End every open record, least recently updated first."""
    n_out = 0
    while state[HEAD] >= 0:
        n_out = _end_record(flows, table, free, state, out, n_out, state[HEAD], reason)
    return n_out


@njit(cache=True, nogil=True)
def meter_packets(  # type: ignore[no-untyped-def]
    flows,
    table,
    free,
    state,
    out,
    ts_ns,
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
):
    """Apply the flow rules to every packet in order; return the number of ended records."""
    mask = np.int64(len(table) - 1)
    capacity = len(flows)
    n_out = 0
    for p in range(len(ts_ns)):
        t = ts_ns[p]
        if t > state[CLOCK]:
            state[CLOCK] = t
        n_out = expire_idle(flows, table, free, state, out, n_out, inactive_ns)
        if version[p] == 0:
            continue
        key_vlan_id = vlan[p] if key_vlan else np.uint16(0)
        h = key_hash(
            version[p],
            src_hi[p],
            src_lo[p],
            dst_hi[p],
            dst_lo[p],
            sport[p],
            dport[p],
            proto[p],
            tos[p],
            ifindex[p],
            key_vlan_id,
        )
        slot = np.int64(h & np.uint64(mask))
        idx = NO_SLOT
        while table[slot] >= 0:
            f = flows[table[slot]]
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
            ):
                idx = table[slot]
                break
            slot = (slot + 1) & mask
        if idx >= 0:
            gap_ns = t - flows[idx]["last_ns"]
            age_ns = t - flows[idx]["first_ns"]
            if gap_ns > inactive_ns:  # rule 2
                n_out = _end_record(flows, table, free, state, out, n_out, idx, IDLE)
                idx = NO_SLOT
            elif age_ns > active_ns:  # rule 3
                n_out = _end_record(flows, table, free, state, out, n_out, idx, ACTIVE)
                idx = NO_SLOT
        if idx >= 0:  # rule 4
            f = flows[idx]
            if t > f["last_ns"]:
                f["last_ns"] = t
            if t < f["first_ns"]:
                f["first_ns"] = t
            f["packets"] += np.uint64(1)
            f["octets"] += np.uint64(ip_len[p])
            f["tcp_flags"] |= tcp_flags[p]
            _lru_unlink(flows, state, idx)
            _lru_append(flows, state, idx)
        else:  # rule 1
            if state[N_OPEN] >= capacity:
                n_out = _end_record(flows, table, free, state, out, n_out, state[HEAD], CACHE_FULL)
            # Deletions may have shifted the probe run: find the first empty slot again.
            slot = np.int64(h & np.uint64(mask))
            while table[slot] >= 0:
                slot = (slot + 1) & mask
            state[FREE_TOP] -= 1
            idx = free[state[FREE_TOP]]
            state[N_OPEN] += 1
            table[slot] = idx
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
            _lru_append(flows, state, idx)
        if proto[p] == TCP and (tcp_flags[p] & FIN_OR_RST) != 0:  # rule 5
            n_out = _end_record(flows, table, free, state, out, n_out, idx, END_OF_FLOW)
    return n_out
