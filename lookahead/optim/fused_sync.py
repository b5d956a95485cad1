"""The Lookahead sync in one pass: a Triton multi-tensor kernel.

At a sync every parameter needs ``slow <- lerp(slow, fast, alpha); fast <- slow``. The foreach path
(``_foreach_lerp_`` + ``_foreach_copy_``) makes five memory passes over the weights (read slow, read
fast, write slow, read slow, write fast). The floor is four: read both once, write both once. This
kernel does that for a whole list of tensors in ONE launch per (fast dtype, slow dtype) bucket, the idea
of apex's ``multi_tensor_apply``: every program handles one chunk of ``BLOCK`` elements of one tensor and
finds its tensor through small device tables of int64 addresses (fast, slow), sizes and per-chunk
(tensor index, start offset). The tables are built once (:class:`SyncPlan`) and rebuilt only when a
tensor's address changes, so a sync costs one tuple of ``data_ptr()`` on the host and one launch per
bucket; nothing in it waits for the device. Lookahead runs it only when asked (``fused=True``): it has
not yet run on a GPU (docs/gpu.md), so its first sync in a run is checked against the foreach sync on
copies (:func:`checked_launch`), and a mismatch sends the run back to the foreach path.

Elements are addressed as ``data_ptr() + 0 .. numel - 1``, i.e. in storage order, which is the same
element in ``fast`` and ``slow`` only when both have the same strides and are non-overlapping and dense
(contiguous, channels_last, ...). :func:`eligible` checks that; anything else stays on the foreach path.

Importing this module never fails: without Triton :func:`unavailable_reason` says why and nothing here
launches. tests/triton_interpreter.py runs the same kernel with Triton's CPU interpreter.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Callable, Sequence
from typing import Any

import torch

from lookahead.optim.self_check import SelfCheck

try:
    import triton
    import triton.language as tl
except ImportError:  # the fused path is then unavailable, the foreach path still works
    triton = None
    tl = None

# Elements per program. 4096 fp32 elements = 16 KiB per tensor and direction; with 8 warps each thread
# moves 16 elements as four 16-byte vectors, enough in flight to saturate HBM without a huge grid.
BLOCK = 4096
NUM_WARPS = 8
# The kernel computes in fp32: fp64 tensors keep the foreach path (whose opmath for fp64 is fp64).
_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def unavailable_reason(device: torch.device) -> str | None:
    """Why the kernel cannot run on ``device`` (``None`` when it can)."""
    if triton is None:
        return "Triton is not installed"
    if device.type != "cuda":
        return f"the parameters are on {device.type}, the kernel needs CUDA"
    return None


def _dense(t: torch.Tensor) -> bool:
    """Non-overlapping and dense: ordered by stride, the dims of size > 1 are a contiguous layout."""
    expected = 1
    for stride, size in sorted((st, sz) for sz, st in zip(t.shape, t.stride()) if sz != 1):
        if stride != expected:
            return False
        expected *= size
    return True


def eligible(fast: torch.Tensor, slow: torch.Tensor) -> bool:
    """Whether element ``i`` of both storages is the same logical element (raw-storage addressing)."""
    return (
        fast.dtype in _DTYPES
        and slow.dtype in _DTYPES
        and fast.shape == slow.shape
        and fast.stride() == slow.stride()
        and fast.device == slow.device
        and _dense(fast)
        and fast.data_ptr() != slow.data_ptr()
    )


if triton is not None:

    @triton.jit
    def _lerp_copy_kernel(
        fast_ptrs,  # int64[T]: fast tensors' addresses
        slow_ptrs,  # int64[T]: slow tensors' addresses
        numels,  # int64[T]
        chunk_tensor,  # int64[C]: which tensor chunk c belongs to
        chunk_start,  # int64[C]: its first element
        coeff,  # fp32 scalar: alpha, or alpha - 1 when alpha >= 0.5 (exact in fp32 either way)
        SMALL_ALPHA: tl.constexpr,  # alpha < 0.5: torch.lerp's branch, uniform because alpha is a scalar
        ALIGNED: tl.constexpr,  # every address is 16-byte aligned: lets the compiler emit vector accesses
        FAST: tl.constexpr,
        SLOW: tl.constexpr,
        BLOCK: tl.constexpr,
    ):
        chunk = tl.program_id(0)
        t = tl.load(chunk_tensor + chunk)
        start = tl.multiple_of(tl.load(chunk_start + chunk), BLOCK)
        n = tl.load(numels + t)
        f_ptr = tl.load(fast_ptrs + t).to(tl.pointer_type(FAST))
        s_ptr = tl.load(slow_ptrs + t).to(tl.pointer_type(SLOW))
        if ALIGNED:
            f_ptr = tl.multiple_of(f_ptr, 16)
            s_ptr = tl.multiple_of(s_ptr, 16)
        offs = start + tl.arange(0, BLOCK)
        full = start + BLOCK <= n  # a mask of unknown alignment would block vector accesses: skip it
        if full:
            f = tl.load(f_ptr + offs).to(tl.float32)
            s = tl.load(s_ptr + offs).to(tl.float32)
        else:
            f = tl.load(f_ptr + offs, mask=offs < n, other=0.0).to(tl.float32)
            s = tl.load(s_ptr + offs, mask=offs < n, other=0.0).to(tl.float32)
        # torch.lerp's formula with one rounding, as its CPU (Vectorized::fmadd) and CUDA kernels do:
        # alpha < 0.5: s + alpha * (f - s); else f - (1 - alpha) * (f - s) == fma(alpha - 1, f - s, f).
        new = tl.fma(coeff, f - s, s if SMALL_ALPHA else f)
        if full:
            tl.store(s_ptr + offs, new.to(SLOW))
            tl.store(f_ptr + offs, new.to(FAST))
        else:
            tl.store(s_ptr + offs, new.to(SLOW), mask=offs < n)
            tl.store(f_ptr + offs, new.to(FAST), mask=offs < n)

    _TL_DTYPES = {torch.float32: tl.float32, torch.float16: tl.float16, torch.bfloat16: tl.bfloat16}


class _Bucket:
    """Device tables of the tensors of one (fast dtype, slow dtype) pair."""

    def __init__(self, fast: list[torch.Tensor], slow: list[torch.Tensor], block: int) -> None:
        numels = torch.tensor([f.numel() for f in fast], dtype=torch.int64)
        chunks = (numels + block - 1) // block
        first_chunk = torch.cumsum(chunks, 0) - chunks
        chunk_tensor = torch.repeat_interleave(torch.arange(len(fast)), chunks)
        chunk_start = (torch.arange(int(chunks.sum())) - first_chunk[chunk_tensor]) * block
        addresses = [t.data_ptr() for t in fast + slow]
        host = torch.cat([torch.tensor(addresses, dtype=torch.int64), numels, chunk_tensor, chunk_start])
        # One host-to-device copy, once: the sync itself never moves data between host and device.
        self.table = host.to(fast[0].device)
        n = len(fast)
        self.fast_ptrs, self.slow_ptrs, self.numels = (
            self.table[:n],
            self.table[n : 2 * n],
            self.table[2 * n : 3 * n],
        )
        self.chunk_tensor, self.chunk_start = self.table[3 * n :].split(len(chunk_tensor))
        self.num_chunks = len(chunk_tensor)
        self.aligned = all(a % 16 == 0 for a in addresses)
        self.fast_dtype, self.slow_dtype = fast[0].dtype, slow[0].dtype


class SyncPlan:
    """The one-pass sync of a list of (fast, slow) pairs; pairs that are not :func:`eligible` are
    listed in ``fallback`` (indices) for the caller's foreach path."""

    def __init__(
        self, fast: Sequence[torch.Tensor], slow: Sequence[torch.Tensor], block: int = BLOCK
    ) -> None:
        self.key = self.addresses(fast, slow)
        self.block = block
        self.fallback: list[int] = []
        groups: dict[tuple[torch.dtype, torch.dtype], tuple[list[torch.Tensor], list[torch.Tensor]]] = {}
        for i, (f, s) in enumerate(zip(fast, slow)):
            if not eligible(f, s):
                self.fallback.append(i)
            elif f.numel():
                pair = groups.setdefault((f.dtype, s.dtype), ([], []))
                pair[0].append(f)
                pair[1].append(s)
        self.buckets = [_Bucket(f, s, block) for f, s in groups.values()]
        self.device = fast[0].device if fast else torch.device("cpu")

    @staticmethod
    def addresses(fast: Sequence[torch.Tensor], slow: Sequence[torch.Tensor]) -> tuple[int, ...]:
        """What the tables depend on: a re-allocated tensor (``.to()``, ``.cuda()``, ...) changes it."""
        return tuple(t.data_ptr() for t in fast) + tuple(t.data_ptr() for t in slow)

    def __call__(self, alpha: float, kernel: Callable[..., Any] | None = None) -> None:
        """slow <- lerp(slow, fast, alpha); fast <- slow for every eligible pair, one launch per bucket."""
        kernel = _lerp_copy_kernel if kernel is None else kernel
        small = abs(alpha) < 0.5
        # torch.lerp rounds alpha to fp32 and computes alpha - 1 in fp32; that difference is exact
        # (Sterbenz), so computing it here from the rounded alpha gives the same fp32 number.
        alpha32 = struct.unpack("f", struct.pack("f", alpha))[0]
        coeff = alpha32 if small else alpha32 - 1.0
        # Triton launches on the current device: make it the tensors' one (a no-op in the usual case).
        other = self.device.type == "cuda" and self.device.index != torch.cuda.current_device()
        with torch.cuda.device(self.device) if other else contextlib.nullcontext():
            self._launch(kernel, coeff, small)

    def _launch(self, kernel: Any, coeff: float, small: bool) -> None:
        for b in self.buckets:
            kernel[(b.num_chunks,)](
                b.fast_ptrs,
                b.slow_ptrs,
                b.numels,
                b.chunk_tensor,
                b.chunk_start,
                coeff,
                SMALL_ALPHA=small,
                ALIGNED=b.aligned,
                FAST=_TL_DTYPES[b.fast_dtype],
                SLOW=_TL_DTYPES[b.slow_dtype],
                BLOCK=self.block,
                num_warps=NUM_WARPS,
            )


def launch(plan: SyncPlan, alpha: float) -> None:
    """Run ``plan`` on the GPU (Lookahead calls this; the tests swap in the interpreter)."""
    plan(alpha)


# -- the self-check: the kernel's first sync in a run against the foreach sync ---------------------------
# The kernel is built to give the foreach sync's results bit for bit. The check allows one rounding at the
# tensor's scale (eps of its dtype x its largest magnitude before or after the sync): what evaluating
# lerp in another correct order could change, and far below what a wrong chunk, mask, alpha or cast gives.
SYNC_TOLERANCE = 1.0


def _magnitude(t: torch.Tensor) -> torch.Tensor:
    """The largest finite |element| (a NaN or inf in the weights must not hide the scale)."""
    return t.float().abs().nan_to_num(nan=0.0, posinf=0.0).max()


def _worst(got: torch.Tensor, want: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """max |got - want| in units of eps(dtype) x scale (0 where both agree, NaNs and infs included)."""
    same = (got == want) | (got.isnan() & want.isnan())
    diff = torch.where(same, 0.0, (got.float() - want.float()).abs().nan_to_num(nan=float("inf")))
    unit = torch.finfo(got.dtype).eps * scale.clamp_min(torch.finfo(torch.float32).tiny)
    return diff.max() / unit


def checked_launch(
    plan: SyncPlan,
    alpha: float,
    fast: Sequence[torch.Tensor],
    slow: Sequence[torch.Tensor],
    foreach: Callable[[list[torch.Tensor], list[torch.Tensor], float], None],
) -> SelfCheck:
    """Run ``plan`` on ``fast``/``slow`` (the tensors it was built for) and check it: ``foreach`` does the
    same sync on copies taken before. On a mismatch beyond :data:`SYNC_TOLERANCE` the tensors get the
    foreach results, so that this sync is right either way. Reads two numbers on the host (once a run)."""
    skip = set(plan.fallback)  # synced by the caller's foreach path anyway
    index = [i for i in range(len(fast)) if i not in skip and fast[i].numel()]
    ref_fast = [fast[i].clone(memory_format=torch.preserve_format) for i in index]
    ref_slow = [slow[i].clone(memory_format=torch.preserve_format) for i in index]
    before = [torch.maximum(_magnitude(f), _magnitude(s)) for f, s in zip(ref_fast, ref_slow)]
    launch(plan, alpha)
    foreach(ref_fast, ref_slow, alpha)
    errors = [
        _worst(got, want, torch.maximum(scale, _magnitude(want)))
        for i, f, s, scale in zip(index, ref_fast, ref_slow, before)
        for got, want in ((fast[i], f), (slow[i], s))
    ]
    detail = f"kernel vs foreach sync of {len(index)} tensors, alpha={alpha:g}"
    worst = 0.0
    if errors:
        stacked = torch.stack(errors)
        worst, where = stacked.max().item(), int(stacked.argmax())
        role, i = ("slow", index[where // 2]) if where % 2 else ("fast", index[where // 2])
        tensor = (slow if where % 2 else fast)[i]
        detail += f"; worst: {role} tensor {i} {tuple(tensor.shape)} {tensor.dtype}"
    check = SelfCheck("sync_kernel", worst <= SYNC_TOLERANCE, worst, SYNC_TOLERANCE, detail)
    if not check.passed:
        with torch.no_grad():
            torch._foreach_copy_([fast[i] for i in index], ref_fast)
            torch._foreach_copy_([slow[i] for i in index], ref_slow)
    return check


__all__ = [
    "BLOCK",
    "SYNC_TOLERANCE",
    "SyncPlan",
    "checked_launch",
    "eligible",
    "launch",
    "unavailable_reason",
]
