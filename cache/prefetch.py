"""A CPU prefetch hint callable from numba kernels (LLVM's llvm.prefetch intrinsic)."""

from __future__ import annotations

from typing import Any

import aot


def _prefetch_typer(typingctx, array, index):  # type: ignore[no-untyped-def]
    """Hint the CPU to start loading ``array[index]`` (no effect on results; any index is safe)."""
    from llvmlite import ir  # type: ignore[import-untyped]
    from numba import types

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        byte_ptr = ir.IntType(8).as_pointer()
        int32 = ir.IntType(32)
        hint = builder.module.declare_intrinsic(
            "llvm.prefetch", fnty=ir.FunctionType(ir.VoidType(), [byte_ptr, int32, int32, int32])
        )
        address = builder.bitcast(builder.gep(data, [args[1]]), byte_ptr)
        # read access, high temporal locality, data cache
        builder.call(hint, [address, int32(0), int32(3), int32(1)])
        return context.get_dummy_value()

    return types.void(array, index), codegen


def _no_prefetch(array: Any, index: Any) -> None:
    """Uncompiled kernels (NUMBA_DISABLE_JIT=1, for debugging) have nothing to prefetch."""


# Called as prefetch(array, index) in kernels: a hint only, no result depends on it.
prefetch: Any = aot.intrinsic(_prefetch_typer, _no_prefetch)
