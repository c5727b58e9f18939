"""The flow key hash: one 64-bit mix of every key field, shared by the cache and key joins."""

from __future__ import annotations

import numpy as np

from aot import njit

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
def hash_keys(  # type: ignore[no-untyped-def]
    version, src_hi, src_lo, dst_hi, dst_lo, sport, dport, proto, tos, ifindex, vlan, key_vlan
):
    """The key hash of every packet (VLAN counts only when it is part of the key)."""
    n = len(version)
    hashes = np.empty(n, np.uint64)
    for p in range(n):
        key_vlan_id = vlan[p] if key_vlan else np.uint16(0)
        hashes[p] = key_hash(
            version[p], src_hi[p], src_lo[p], dst_hi[p], dst_lo[p],
            sport[p], dport[p], proto[p], tos[p], ifindex[p], key_vlan_id,
        )  # fmt: skip
    return hashes


@njit(cache=True, inline="always")
def with_macs(h: np.uint64, src_mac: np.uint64, dst_mac: np.uint64) -> np.uint64:
    """A key hash with the MAC addresses mixed in (``--key-mac``)."""
    return _mix(_mix(h, src_mac), dst_mac)  # type: ignore[no-any-return]


@njit(cache=True, nogil=True)
def mix_macs(hashes, src_mac, dst_mac):  # type: ignore[no-untyped-def]
    """Mix each row's MACs into its key hash, in place."""
    for p in range(len(hashes)):
        hashes[p] = with_macs(hashes[p], src_mac[p], dst_mac[p])
