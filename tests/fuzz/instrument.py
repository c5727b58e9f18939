"""Load the code under test for atheris: kernels uncompiled and instrumented, or compiled.

With ``NUMBA_DISABLE_JIT=1`` (set by run_campaign before any numba import) the
kernels are plain Python: atheris instruments them with the rest of ``probe``
and numpy bounds-checks every read. Compiled, numba must see the kernels' own
bytecode, so they are imported first, uninstrumented, and atheris instruments
the interpreted copies the checks run beside them.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import atheris  # type: ignore[import-untyped]  # ships no type information

KERNEL_MODULES = ("probe.decode.kernel", "probe.sources.kernel", "cache.kernel")
CHECK_MODULES = (
    "probe.sources.capture", "probe.meter.offline", "probe.cli.main", "tests.fuzz.interpreted",
    "tests.fuzz.decode_checks", "tests.fuzz.frame_cases", "tests.fuzz.capture_checks",
)  # fmt: skip


def compiled() -> bool:
    return os.environ.get("NUMBA_DISABLE_JIT", "0") != "1"


def load() -> dict[str, Any]:
    """Import the checks (instrumenting ``probe``), return the modules by name."""
    if compiled():
        for name in KERNEL_MODULES:
            importlib.import_module(name)
    with atheris.instrument_imports(include=["probe", "cache"]):
        modules = {name: importlib.import_module(name) for name in CHECK_MODULES}
    if compiled():
        interpreted = modules["tests.fuzz.interpreted"]
        for function in (
            interpreted.decode_frames_py,
            interpreted.walk_pcap_py,
            interpreted.walk_pcapng_py,
        ):
            atheris.instrument_func(function)
    return modules


def fuzz(test_one_input: Any, argv: list[str]) -> None:
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()
