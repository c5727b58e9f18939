"""The kernels, compiled ahead of time when they can be, by numba otherwise.

Every kernel module decorates its functions with ``aot.njit`` instead of
``numba.njit``. ``pip install`` builds the entry kernels (those Python calls,
listed with their argument types in ``aot.signatures``) into one extension
module, ``aot/_kernels``, with numba's ahead-of-time compiler (``aot.build``).
A run that finds that module, built from the kernel sources it has now on the
CPU it runs on, calls it and never imports numba: start-up is numpy's import,
not numba's 0.6 s import and 0.1 s per cached kernel.

Otherwise (no module, sources edited since, another CPU, ``SPANFLOW_KERNELS=jit``,
``NUMBA_DISABLE_JIT=1``) ``aot.njit`` is ``numba.njit``, as before. A call whose
argument types the module was not built for switches the whole process to numba
(all kernels, so compiled callers find compiled callees): slower to start,
never a different result.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
MODULE = "aot._kernels"
STAMP = HERE / "_kernels.json"  # what the module was built from (aot.build writes it)
PACKAGES = ("core", "cache", "probe", "exporter", "spanflow", "aot")

_mode: str | None = None  # "aot" or "jit", decided at the first decorated function
_compiled: Any = None  # the extension module in "aot" mode
_registry: list[Kernel] = []
_switching = threading.Lock()  # the read-ahead thread and the caller may miss at once


def source_digest(files: Iterable[str], root: Path = ROOT) -> str:
    """sha256 over the files' names and bytes (paths relative to ``root``)."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + (root / name).read_bytes() + b"\0")
    return digest.hexdigest()


def cpu_identity() -> str:
    """The CPU the module is compiled for: code built for its features needs them all."""
    flags = ""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith(("flags", "Features")):
                    flags = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return hashlib.sha256(f"{sys.platform} {os.uname().machine} {flags}".encode()).hexdigest()


def why_not_compiled(stamp_path: Path = STAMP, root: Path = ROOT) -> str | None:
    """Why the ahead-of-time module cannot be used here (None: it can)."""
    try:
        stamp = json.loads(stamp_path.read_text())
    except (OSError, ValueError):
        return "not built (pip install builds it; make kernels rebuilds it)"
    try:
        digest = source_digest(stamp["files"], root)
    except OSError:
        return "a kernel source it was built from is missing"
    if digest != stamp["digest"]:
        return "kernel sources changed since it was built (make kernels rebuilds it)"
    if stamp.get("cpu") != cpu_identity():
        return "built for another CPU"
    return None


def mode() -> str:
    """``"aot"`` (the compiled module) or ``"jit"`` (numba), decided once per process."""
    global _mode, _compiled
    if _mode is None:
        asked = os.environ.get("SPANFLOW_KERNELS", "auto")
        _mode = "jit"
        if asked != "jit" and not _jit_disabled():
            reason = why_not_compiled()
            if reason is None:
                try:
                    _compiled = importlib.import_module(MODULE)
                    _mode = "aot"
                except ImportError as error:  # built against another numpy, say
                    reason = f"cannot be loaded ({error})"
            if reason is not None and asked == "aot":
                raise RuntimeError(f"SPANFLOW_KERNELS=aot: the compiled kernels are {reason}")
    return _mode


def _jit_disabled() -> bool:
    """NUMBA_DISABLE_JIT=1: kernels run as plain Python (for debugging), compiled by nobody."""
    return os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0")


def export_name(qualified: str, variant: int) -> str:
    """The module's name for one variant of ``module:function``."""
    return qualified.replace(".", "_").replace(":", "__") + f"__{variant}"


def type_key(value: Any) -> Any:
    """What numba would type ``value`` as, in a form the variant tables are keyed on."""
    if isinstance(value, np.ndarray):
        if value.flags.c_contiguous:
            layout = "C"
        elif value.flags.f_contiguous:
            layout = "F"
        else:
            layout = "A"
        return (value.dtype, value.ndim, layout, not value.flags.writeable)
    if isinstance(value, bool | np.bool_):
        return np.dtype(np.bool_)
    if isinstance(value, int):
        return np.dtype(np.int64 if -(2**63) <= value < 2**63 else np.uint64)
    if isinstance(value, float):
        return np.dtype(np.float64)
    if isinstance(value, np.generic):
        return value.dtype
    return type(value)


class Kernel:
    """A decorated function in "aot" mode: the compiled variants, numba after a miss."""

    def __init__(self, py_func: Callable[..., Any], make_jit: Callable[[], Any]) -> None:
        self.py_func = py_func
        self.__name__ = py_func.__name__
        self.__module__ = py_func.__module__
        self.__doc__ = py_func.__doc__
        self.qualified = f"{py_func.__module__}:{py_func.__name__}"
        self._make_jit = make_jit
        self._variants: dict[tuple[Any, ...], Any] | None = None
        self.jit: Any = None  # the numba version, once the process has switched

    def variants(self) -> dict[tuple[Any, ...], Any]:
        """The compiled functions by argument types (none for helpers only kernels call)."""
        if self._variants is None:
            from aot.signatures import ENTRIES, key_of

            self._variants = {
                key_of(signature): getattr(_compiled, export_name(self.qualified, n))
                for n, signature in enumerate(ENTRIES.get(self.qualified, ()))
            }
        return self._variants

    def __call__(self, *args: Any) -> Any:
        if self.jit is None:
            compiled = self.variants().get(tuple(type_key(a) for a in args))
            if compiled is not None:
                return compiled(*args)
            switch_to_jit()
        return self.jit(*args)


def switch_to_jit() -> None:
    """Give every kernel its numba version and put it where the modules name it."""
    global _mode
    with _switching:
        if _mode == "jit":
            return
        for kernel in _registry:
            kernel.jit = kernel._make_jit()
        for name, module in list(sys.modules.items()):
            if name.split(".")[0] in PACKAGES and module is not None:
                for attr, value in list(vars(module).items()):
                    if isinstance(value, Kernel) and value.jit is not None:
                        setattr(module, attr, value.jit)
        _mode = "jit"  # last: a kernel decorated from now on is numba's at once


def use_numba() -> None:
    """Every kernel numba's from now on, already decorated or not (what aot.build needs)."""
    global _mode
    with _switching:
        if _mode is None:
            _mode = "jit"
            return
    switch_to_jit()


def _decorated(py_func: Callable[..., Any], make_jit: Callable[[], Any]) -> Any:
    """numba's version of a kernel in "jit" mode, else a ``Kernel`` that can switch to it."""
    if mode() == "jit":
        return make_jit()
    kernel = Kernel(py_func, make_jit)
    _registry.append(kernel)
    return kernel


def njit(*, borrows: bool = False, **options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``numba.njit(**options)``, or the compiled module's version of the function.

    ``borrows``: the function only indexes arrays its caller passes and makes
    none, so it is compiled without reference counting (numba's ``_nrt=False``):
    a helper called per packet then makes no atomic reference updates per call.
    """

    def decorate(func: Callable[..., Any]) -> Any:
        def make_jit() -> Any:
            import numba

            return numba.njit(**options, **(_without_refcounts() if borrows else {}))(func)

        return _decorated(func, make_jit)

    return decorate


def _without_refcounts() -> dict[str, Any]:
    """numba's option for ``borrows``, private (``_nrt``): left out by a numba without it,
    whose kernels then only count references as any other."""
    from numba.core.cpu import CPUTargetOptions

    return {"_nrt": False} if hasattr(CPUTargetOptions, "_nrt") else {}


def intrinsic(typer: Callable[..., Any], in_python: Callable[..., Any]) -> Any:
    """A numba intrinsic for kernels; ``in_python`` where kernels run uncompiled."""
    if _jit_disabled():
        return in_python

    def make_jit() -> Any:
        from numba.extending import intrinsic as numba_intrinsic

        return numba_intrinsic(typer)

    return _decorated(in_python, make_jit)
