"""Flow keys as numbers: one id per packet or record row, equal ids for equal keys.

For joins by key (the parallel merge). A compiled open-addressing map from
the cache's key hash to the first row with that key; a hash shared by two
different keys (a collision) is told apart by comparing the full keys, so
ids are exact.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from aot import njit
from cache.hashing import hash_keys, mix_macs
from core.attributes import ATTRIBUTE_WORDS, DST_MAC, SRC_MAC
from core.columns import widened
from core.records import RecordTable

KEY_FIELDS = (
    "version", "src_hi", "src_lo", "dst_hi", "dst_lo", "sport", "dport", "proto", "tos",
    "ifindex", "vlan",
)  # fmt: skip


class KeyColumns:
    """The key columns of some rows of a table, for ``key_ids`` without copying the rest."""

    def __init__(self, table: Any, rows: npt.NDArray[np.int64]) -> None:
        for name in (*KEY_FIELDS, "attrs"):
            setattr(self, name, getattr(table, name)[rows])
        self._rows = len(rows)

    def __len__(self) -> int:
        return self._rows


def key_ids(
    tables: list[Any], key_vlan: bool, key_mac: bool = False
) -> list[npt.NDArray[np.int64]]:
    """A number per row naming its key, shared across ``tables`` (PacketTable or RecordTable).

    Ids are dense (0 .. keys - 1), numbered in order of first appearance.
    With ``key_mac`` the MAC attribute words are part of the key.
    """
    if not tables:
        return []
    columns = [
        np.concatenate([np.asarray(getattr(t, name), RecordTable.DTYPES[name]) for t in tables])
        for name in KEY_FIELDS
    ]
    if not key_vlan:
        columns[-1] = np.zeros_like(columns[-1])
    hashes = hash_keys(*columns, key_vlan)
    macs = [np.zeros(len(hashes), np.uint64)] * 2
    if key_mac:
        words = np.concatenate([widened(t.attrs, ATTRIBUTE_WORDS) for t in tables])
        macs = [words[:, SRC_MAC].copy(), words[:, DST_MAC].copy()]
        mix_macs(hashes, *macs)
    ids = _number_keys(hashes, *columns, *macs)
    bounds = np.cumsum([0, *(len(t) for t in tables)])
    return [ids[bounds[i] : bounds[i + 1]] for i in range(len(tables))]


@njit(cache=True, nogil=True)
def _number_keys(  # type: ignore[no-untyped-def]
    hashes, version, src_hi, src_lo, dst_hi, dst_lo, sport, dport, proto, tos, ifindex, vlan,
    src_mac, dst_mac,
):  # fmt: skip
    n = len(hashes)
    size = 1
    while size < 2 * n:
        size *= 2
    mask = np.uint64(size - 1)
    first_row = np.full(size, -1, np.int64)
    ids = np.empty(n, np.int64)
    next_id = 0
    for i in range(n):
        h = hashes[i]
        slot = np.int64(h & mask)
        while True:
            j = first_row[slot]
            if j < 0:
                first_row[slot] = i
                ids[i] = next_id
                next_id += 1
                break
            if (
                hashes[j] == h
                and src_lo[j] == src_lo[i]
                and dst_lo[j] == dst_lo[i]
                and sport[j] == sport[i]
                and dport[j] == dport[i]
                and src_hi[j] == src_hi[i]
                and dst_hi[j] == dst_hi[i]
                and proto[j] == proto[i]
                and tos[j] == tos[i]
                and version[j] == version[i]
                and ifindex[j] == ifindex[i]
                and vlan[j] == vlan[i]
                and src_mac[j] == src_mac[i]
                and dst_mac[j] == dst_mac[i]
            ):
                ids[i] = ids[j]
                break
            slot = (slot + 1) & np.int64(size - 1)
    return ids
