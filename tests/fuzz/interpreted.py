"""The numba kernels run as plain Python: the same code objects, every helper uncompiled.

numpy checks every index of an interpreted kernel, so a read past the buffer it
was given raises ``IndexError`` where the compiled kernel would return a stray
byte. With ``NUMBA_DISABLE_JIT=1`` the kernels are plain functions already and
are returned unchanged.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import probe.decode.decoder
from core.packets import FrameBatch, PacketTable
from probe.decode import attribute_kernel
from probe.decode import kernel as decode_kernel
from probe.decode.decoder import decode
from probe.sources import kernel as walk


def _uncompiled_module(*modules: types.ModuleType) -> dict[str, Any]:
    """A copy of the modules' globals (later ones win) where every compiled function is its
    Python original, all sharing that one namespace."""
    namespace = {name: value for module in modules for name, value in vars(module).items()}
    for name, value in list(namespace.items()):
        original = getattr(value, "py_func", None)
        if isinstance(original, types.FunctionType):
            namespace[name] = types.FunctionType(
                original.__code__, namespace, original.__name__, original.__defaults__,
                original.__closure__,
            )  # fmt: skip
    return namespace


_DECODE = _uncompiled_module(decode_kernel)
_ATTRIBUTES = _uncompiled_module(decode_kernel, attribute_kernel)
_WALK = _uncompiled_module(walk)
decode_frames_py: Callable[..., None] = _DECODE["decode_frames"]
frame_attributes_py: Callable[..., None] = _ATTRIBUTES["frame_attributes"]
walk_pcap_py: Callable[..., tuple[int, int, int]] = _WALK["walk_pcap"]
walk_pcapng_py: Callable[..., tuple[int, int, int]] = _WALK["walk_pcapng"]


def decode_interpreted(
    frames: FrameBatch, inner: bool = False, attributes: bool = False
) -> PacketTable:
    """``probe.decode.decoder.decode`` with the interpreted kernels in place of the compiled."""
    namespace = vars(probe.decode.decoder)
    compiled = namespace["decode_frames"], namespace["frame_attributes"]
    namespace["decode_frames"], namespace["frame_attributes"] = (
        decode_frames_py,
        frame_attributes_py,
    )
    try:
        return decode(frames, inner, attributes)
    finally:
        namespace["decode_frames"], namespace["frame_attributes"] = compiled


@contextmanager
def interpreted_walkers() -> Iterator[None]:
    """Readers walk records with the interpreted walkers inside this block."""
    compiled = walk.walk_pcap, walk.walk_pcapng
    walk.walk_pcap, walk.walk_pcapng = walk_pcap_py, walk_pcapng_py  # type: ignore[assignment]
    try:
        yield
    finally:
        walk.walk_pcap, walk.walk_pcapng = compiled
