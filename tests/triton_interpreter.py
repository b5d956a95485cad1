"""Lookahead's one-pass sync kernel (lookahead/optim/fused_sync.py) run on CPU tensors through Triton's
interpreter: the same kernel source with numpy semantics, made to round like the GPU."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from lookahead.optim import fused_sync


def _fma_exact(x: Any, y: Any, z: Any) -> Any:
    """fp32 fma with one rounding, as the GPU does (numpy has no fma; the interpreter rounds twice).

    The fp32 product is exact in fp64; the fp64 sum is made round-to-odd with its exact error term, and
    round-to-odd to 53 bits followed by rounding to 24 bits is the correctly rounded result."""
    import numpy as np

    total = x.astype(np.float64) * y.astype(np.float64)
    s = total + z.astype(np.float64)
    err = (total - (s - (s - total))) + (z.astype(np.float64) - (s - total))  # TwoSum: s + err exact
    bits = s.view(np.int64)
    inexact_even = (err != 0) & ((bits & 1) == 0)
    s = np.where(inexact_even, np.nextafter(s, np.where(err > 0, np.inf, -np.inf)), s)
    return s.astype(np.float32)


def _rtne_bf16(x: Any) -> Any:
    """fp32 -> bf16 rounded to nearest even, as the GPU's cvt.rn does (the interpreter truncates)."""
    import numpy as np

    return (
        torch.from_numpy(np.ascontiguousarray(x)).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    )


@contextmanager
def _interpreter_like_the_gpu() -> Iterator[None]:
    """Give the interpreter the GPU's fma (one rounding) and fp32 -> bf16 rounding while it runs."""
    from triton.runtime import interpreter

    builder = interpreter.InterpreterBuilder
    fma, fp_trunc = builder.create_fma, builder.create_fp_trunc

    def create_fma(self: Any, x: Any, y: Any, z: Any) -> Any:
        if z.dtype.scalar != fused_sync.tl.float32:
            return fma(self, x, y, z)
        return interpreter.TensorHandle(_fma_exact(x.data, y.data, z.data), z.dtype.scalar)

    def create_fp_trunc(self: Any, src: Any, dst_type: Any) -> Any:
        if src.dtype.scalar == fused_sync.tl.float32 and dst_type.scalar == fused_sync.tl.bfloat16:
            return interpreter.TensorHandle(_rtne_bf16(src.data), fused_sync.tl.bfloat16)
        return fp_trunc(self, src, dst_type)

    builder.create_fma, builder.create_fp_trunc = create_fma, create_fp_trunc
    try:
        yield
    finally:
        builder.create_fma, builder.create_fp_trunc = fma, fp_trunc


def interpreted(plan: fused_sync.SyncPlan, alpha: float) -> None:
    """Run ``plan`` with the Triton interpreter on CPU tensors: the same kernel source, numpy semantics
    (with the GPU's one-rounding fma and round-to-nearest-even bf16 casts: the GPU kernel's results)."""
    if fused_sync.triton is None:
        raise RuntimeError("Triton is not installed")
    from triton.runtime.interpreter import InterpretedFunction

    with _interpreter_like_the_gpu():
        plan(alpha, InterpretedFunction(fused_sync._lerp_copy_kernel.fn))
