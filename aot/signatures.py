"""The entry kernels (those Python calls) and the argument types the drivers call them with.

``aot.build`` compiles one variant per signature; a call with other types runs
numba instead (``aot.Kernel``), so a missing line costs start-up, not results.
``tests/test_aot.py`` runs every command path with the compiled module and checks
that none of them needs numba.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from aot import type_key


@dataclass(frozen=True)
class Array:
    """An array argument: dtype (or ``"module:NAME"`` of a structured one), dims, layout."""

    dtype: Any
    ndim: int = 1
    layout: str = "C"  # "C" contiguous, "A" strided
    readonly: bool = False

    def example(self) -> np.ndarray[Any, Any]:
        """A small array numba types exactly as the drivers' arrays of this kind."""
        dtype = self.dtype
        if isinstance(dtype, str):
            module, name = dtype.split(":")
            dtype = getattr(importlib.import_module(module), name)
        array = np.zeros((4,) * self.ndim, dtype)
        if self.layout == "A":
            array = array[(slice(None, None, 2),) * self.ndim]
        array.flags.writeable = not self.readonly
        return array


@dataclass(frozen=True)
class Signature:
    args: tuple[Any, ...]  # Array or np.dtype (a scalar)
    returns: Any  # np.dtype, Array, a tuple of np.dtype, or None

    def examples(self) -> tuple[Any, ...]:
        return tuple(a.example() if isinstance(a, Array) else a.type(0) for a in self.args)


def key_of(signature: Signature) -> tuple[Any, ...]:
    """The argument-type key ``aot.Kernel`` looks a call up by."""
    return tuple(type_key(example) for example in signature.examples())


b1, u1, u2, u4, u8 = (np.dtype(t) for t in (np.bool_, np.uint8, np.uint16, np.uint32, np.uint64))
i4, i8 = np.dtype(np.int32), np.dtype(np.int64)
B1, U1, U2, U4, U8, I4, I8 = (Array(t) for t in (b1, u1, u2, u4, u8, i4, i8))
U1_RO = Array(u1, readonly=True)
U8_2D, I8_2D, I4_2D = Array(u8, 2), Array(i8, 2), Array(i4, 2)
SLOTS = Array("cache.kernel:FLOW_SLOT")  # the cache's pool of open records
ENDED = Array("cache.flow_cache:OUT_ROW")  # rows of ended records
KEY = (U8, U8, U8, U8, U2, U2, U1, U1)  # src hi/lo, dst hi/lo, ports, proto, tos
POOL = (SLOTS, I4_2D, I8, I4, I8)  # flows, lru, table, free, state
FRAMES = (U1, I8, U4, U4, U2, U1, I8, I8, U1, b1, U1)  # frame columns and the link table
WALKED = (I8, U4, U4)  # offset, caplen, wirelen

ENTRIES: dict[str, list[Signature]] = {
    "probe.sources.kernel:walk_pcap": [
        Signature((U1, i8, i8, b1, i8, i8, *WALKED, I8), (i8, i8, i8))
    ],
    "probe.sources.kernel:walk_pcapng": [
        Signature((U1, i8, i8, b1, i8, I8, *WALKED, U8, U4), (i8, i8, i8))
    ],
    "probe.sources.kernel:find_pcap_record": [Signature((U1, i8, i8, b1, i8, i8, i8, i8, i8), i8)],
    "probe.live.ring_kernel:walk_ring": [
        Signature((U1, i8, i8, i8, i8, U1, *WALKED, I8), (i8, i8))
    ],
    "probe.decode.kernel:decode_frames": [
        Signature((*FRAMES, *KEY[:4], U2, U2, U1, U1, U1, U4, U2, U1), None)
    ],
    "probe.decode.attribute_kernel:frame_attributes": [Signature((*FRAMES, U8_2D), None)],
    "cache.hashing:hash_keys": [Signature((U1, *KEY[:4], U2, U2, U1, U1, U4, U2, b1), U8)],
    "cache.hashing:mix_macs": [
        Signature((U8, U8, U8), None),
        Signature((U8, Array(u8, layout="A"), Array(u8, layout="A")), None),
    ],
    "cache.kernel:meter_packets": [
        Signature(
            (
                *POOL,
                ENDED,
                I8,
                I8,
                U1,
                *KEY,
                U1,
                U4,
                U4,
                U2,
                i8,
                i8,
                b1,
                b1,
                I8_2D,
                I8,
                *(U8_2D,) * 3,
            ),
            i8,
        )
    ],
    "cache.kernel:expire_idle": [Signature((*POOL, ENDED, i8, i8, I8_2D), i8)],
    "cache.kernel:flush_all": [Signature((*POOL, ENDED, i8, i8, I8_2D), i8)],
    "cache.kernel:keep_freed_attributes": [Signature((U8_2D, U8_2D, I4, i8, i8, i8), None)],
    "cache.adopt:adopt_records": [Signature((*POOL, SLOTS, b1, b1, U8_2D, U8_2D), None)],
    "cache.keys:_number_keys": [Signature((U8, U1, *KEY[:4], U2, U2, U1, U1, U4, U2, U8, U8), I8)],
    "probe.meter.slice_task:first_of_chain": [Signature((I8, i8), B1)],
    "probe.meter.carried:moves_forward": [Signature((I8, I8, B1), b1)],
    "exporter.text_kernel:format_rows": [
        Signature((I8_2D, U1, U8_2D, U1, I8, I8, U1, I8, U1_RO, U1, I8, U8_2D, b1, U1_RO, U1), i8)
    ],
    "exporter.text_kernel:format_addresses": [Signature((U1, U8, U8, U1, I8), i8)],
    "exporter.text_kernel:format_attributes": [Signature((i8, U8_2D, i8, U1, I8), i8)],
    "exporter.text_kernel:plain_addresses": [Signature((U1, U8, U8, U1), i8)],
    "exporter.text_kernel:plain_attributes": [Signature((i8, U8_2D, i8, U1), i8)],
    "exporter.text_kernel:plain_names": [Signature((U1, U1, I8, U1), i8)],
}
