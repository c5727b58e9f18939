"""Compile the entry kernels ahead of time into ``aot/_kernels`` (numba's pycc).

    python -m aot.build          # what pip install runs; make kernels reruns it if stale

The kernels' own source is compiled, unchanged, once per signature in
``aot.signatures``, for the CPU of this machine, and the exported functions
release the GIL as ``nogil=True`` kernels do. ``_kernels.json`` records the
sources (every module of ours a kernel module imports) and the CPU, so that a
run after an edit, or on another machine, uses numba instead of stale code.
"""

from __future__ import annotations

import ast
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import aot
from aot.signatures import ENTRIES, Array, Signature


def _imported_files(module: str, seen: set[str]) -> None:
    """Files of ``module`` and, transitively, of our modules it imports."""
    path = aot.ROOT / (module.replace(".", "/") + ".py")
    if not path.exists():
        path = aot.ROOT / module.replace(".", "/") / "__init__.py"
    name = str(path.relative_to(aot.ROOT))
    if name in seen:
        return
    seen.add(name)
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for imported in names:
            if imported.split(".")[0] in aot.PACKAGES:
                _imported_files(imported, seen)


def kernel_sources() -> list[str]:
    """Every file the compiled code depends on, relative to the repository root."""
    seen: set[str] = set()
    for qualified in ENTRIES:
        _imported_files(qualified.split(":")[0], seen)
    _imported_files("aot.signatures", seen)
    _imported_files("aot.build", seen)
    return sorted(seen)


def _numba_type(value: object) -> Any:
    numba: Any = importlib.import_module("numba")

    if isinstance(value, tuple):
        return numba.types.Tuple(tuple(_numba_type(v) for v in value))
    if isinstance(value, Array):
        return numba.typeof(value.example())
    if value is None:
        return numba.types.none
    return numba.from_dtype(value)


def _numba_signature(signature: Signature) -> Any:
    return _numba_type(signature.returns)(*(_numba_type(a) for a in signature.args))


def build(output_dir: Path = aot.HERE, quiet: bool = False) -> Path:
    """Compile every entry kernel; returns the extension module's path."""
    aot.use_numba()  # compile from numba's dispatchers, whatever this process ran before
    numba: Any = importlib.import_module("numba")
    pycc: Any = importlib.import_module("numba.pycc")
    pycc_compiler: Any = importlib.import_module("numba.pycc.compiler")

    class ReleaseGil(pycc_compiler.Flags):  # type: ignore[misc]
        """pycc's exports keep the GIL; these release it, like the nogil=True kernels."""

        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)
            self.release_gil = True

    pycc_compiler.Flags = ReleaseGil
    started = time.monotonic()
    # A failed build leaves no stamp that vouches for the old module.
    (output_dir / aot.STAMP.name).unlink(missing_ok=True)
    cc = pycc.CC(aot.MODULE.split(".")[-1])
    cc.output_dir = str(output_dir)
    cc.target_cpu = "host"
    cc.verbose = False
    count = 0
    for qualified, signatures in ENTRIES.items():
        module, name = qualified.split(":")
        dispatcher = getattr(importlib.import_module(module), name)
        for variant, signature in enumerate(signatures):
            cc.export(aot.export_name(qualified, variant), _numba_signature(signature))(
                dispatcher.py_func
            )
            count += 1
    if not quiet:
        print(f"spanflow: compiling {count} kernels ahead of time (about a minute, once)")
    cc.compile()
    files = kernel_sources()
    stamp = {
        "digest": aot.source_digest(files),
        "files": files,
        "cpu": aot.cpu_identity(),
        "numba": numba.__version__,
    }
    (output_dir / aot.STAMP.name).write_text(json.dumps(stamp, indent=1) + "\n")
    if not quiet:
        print(f"spanflow: kernels compiled in {time.monotonic() - started:.0f} s")
    return output_dir / str(cc.output_file)


def built_module() -> Path | None:
    """The extension module, if one is built from the sources as they are now."""
    modules = sorted(aot.HERE.glob("_kernels*.so"))
    return modules[0] if modules and aot.why_not_compiled() is None else None


def build_if_stale(quiet: bool = False) -> Path:
    """``build()`` unless the module on disk is already built from these sources."""
    return built_module() or build(quiet=quiet)


def main() -> int:
    try:
        path = build_if_stale()
    except Exception as error:  # the build's own failure; runs then use numba
        print(f"spanflow: kernels not compiled ahead of time: {error}", file=sys.stderr)
        return 1
    print(f"spanflow: compiled kernels in {path.relative_to(aot.ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
