"""Open records again in a cache: how a merge continues the records a previous slice left open."""

from __future__ import annotations

import numpy as np

from aot import njit
from cache.hashing import key_hash, with_macs
from cache.kernel import _lru_append, claim_slot
from core.attributes import DST_MAC, SRC_MAC


@njit(cache=True, nogil=True)
def adopt_records(  # type: ignore[no-untyped-def]
    flows, lru, table, free, state, records, key_vlan, key_mac, pool_attrs, record_attrs
):  # fmt: skip
    """Open ``records`` (``FLOW_SLOT``-like rows, least recently updated first) as they were.

    ``record_attrs``: their attribute words, into ``pool_attrs`` (both 0 wide if none).

    The cache must have room for them. A merge uses this to continue the
    records a previous slice left open (probe/meter/slice_merge.py).
    """
    mask = np.int64(len(table) - 1)
    for r in range(len(records)):
        rec = records[r]
        key_vlan_id = rec["vlan"] if key_vlan else np.uint16(0)
        h = key_hash(
            rec["version"], rec["src_hi"], rec["src_lo"], rec["dst_hi"], rec["dst_lo"],
            rec["sport"], rec["dport"], rec["proto"], rec["tos"], rec["ifindex"], key_vlan_id,
        )  # fmt: skip
        if key_mac:
            h = with_macs(h, record_attrs[r, SRC_MAC], record_attrs[r, DST_MAC])
        slot = np.int64(h & np.uint64(mask))
        while table[slot] >= 0:
            slot = (slot + 1) & mask
        idx = claim_slot(table, free, state, slot, h)
        flows[idx] = rec  # the same row type: every field at once
        flows[idx]["hash"] = h
        for w in range(pool_attrs.shape[1]):
            pool_attrs[idx, w] = record_attrs[r, w]
        _lru_append(lru, state, idx)
