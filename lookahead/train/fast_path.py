"""The GPU fast path: which speed settings a run uses, resolved once from ``config.trainer`` and the run.

``trainer.fast_path`` (``auto``: on with CUDA, off elsewhere) turns on the settings that have run on a
GPU (:data:`VERIFIED_ON_GPU`); each setting can also be set on its own (``null`` follows ``fast_path``
for a verified setting and is off for the others):

- ``precision``: bf16 autocast on the fast path (the workload's ``fast_precision``: fp32 for Penn
  Treebank), fp32 otherwise;
- ``channels_last``: NHWC weights and inputs for convolutions (only 4-D tensors change);
- ``cudnn_benchmark``: autotuned convolution algorithms (fast, but not bit-reproducible across processes);
- ``cuda_graphs`` (opt-in): the training step (forward, backward, clipping, the inner optimizer's fused
  step reading a tensor lr; Adam/AdamW capturable) is captured once and replayed; Lookahead's sync,
  Polyak averaging, the schedule and logging stay on the host, between replays;
- ``sync_kernel`` (opt-in): Lookahead's one-pass Triton sync (``Lookahead(fused=True)``) instead of the
  foreach sync;
- ``compile``: ``torch.compile`` of the training forward (off unless asked: it costs a minute of compile
  time per run, see docs/gpu.md).

The opt-in paths check themselves at their first use in a run (:func:`self_checks`, docs/gpu.md).

A setting left at ``null`` that the run cannot use is turned off with a note (recorded in the summary);
the same setting asked for explicitly is a ConfigError naming why.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from lookahead.optim import fused_sync
from lookahead.optim.lookahead import Lookahead
from lookahead.train.graphs import GraphedStep
from lookahead.train.schema import ConfigError, Trainer
from lookahead.workloads.base import Workload

# What `trainer.fast_path` turns on by itself: only what has run on a GPU (an H200, docs/gpu.md's table).
# The rest is opt-in until a committed `make gpu-check` from an H100/H200 shows it equal to the plain
# path and faster; then its name goes here ("cuda_graphs", "fused_optimizer", "sync_kernel").
VERIFIED_ON_GPU = frozenset({"precision", "channels_last", "cudnn_benchmark"})

# Inner optimizers with a fused CUDA step that reads its learning rate from a device tensor, so that
# a captured step follows the schedule (foreach steps bake a Python float lr into the graph).
FUSED_OPTIMIZERS = (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW)


@dataclass(frozen=True)
class FastPath:
    precision: str = "fp32"
    channels_last: bool = False
    cudnn_benchmark: bool = False
    cuda_graphs: bool = False
    compile: bool | str = False
    fused_optimizer: bool = False
    sync_kernel: bool = False
    notes: tuple[str, ...] = field(default=())

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return torch.bfloat16 if self.precision == "bf16" else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "notes": list(self.notes)}


def _graph_blockers(
    tcfg: Trainer, device: torch.device, world: int, workload: Workload, optimizer_cls: type
) -> list[str]:
    """Why the training step cannot be captured as one CUDA graph here (empty: it can)."""
    reasons = []
    if device.type != "cuda":
        reasons.append("CUDA graphs need a CUDA device")
    if world > 1:
        reasons.append("CUDA graphs run in one process only (DDP's gradient hooks are not captured)")
    if tcfg.accumulate_steps > 1:
        reasons.append("CUDA graphs capture one micro-batch per step (trainer.accumulate_steps=1)")
    if not workload.capturable:
        reasons.append(f"the {workload.name} workload's steps change shape or carry state between steps")
    if not issubclass(optimizer_cls, FUSED_OPTIMIZERS):
        names = ", ".join(c.__name__ for c in FUSED_OPTIMIZERS)
        reasons.append(f"{optimizer_cls.__name__} has no fused CUDA step with a tensor lr (only {names})")
    return reasons


def resolve_fast_path(
    tcfg: Trainer, device: torch.device, world: int, workload: Workload, optimizer_cls: type
) -> FastPath:
    """The settings this run uses; raises ConfigError when an explicit setting cannot be honoured."""
    on = device.type == "cuda" if tcfg.fast_path == "auto" else tcfg.fast_path
    notes = []

    def pick(key: str) -> bool:
        value = getattr(tcfg, key)
        return on and key in VERIFIED_ON_GPU if value is None else value

    precision = tcfg.precision or (workload.fast_precision if on else "fp32")
    graphs = pick("cuda_graphs")
    blockers = _graph_blockers(tcfg, device, world, workload, optimizer_cls) if graphs else []
    if blockers:
        if tcfg.cuda_graphs is not None:
            raise ConfigError(f"trainer.cuda_graphs=true cannot be used: {blockers[0]}")
        notes.append(f"cuda_graphs off: {blockers[0]}")
        graphs = False
    sync_kernel = pick("sync_kernel")
    why = fused_sync.unavailable_reason(device) if sync_kernel else None
    if why:
        if tcfg.sync_kernel is not None:
            raise ConfigError(f"trainer.sync_kernel=true cannot be used: {why}")
        notes.append(f"sync_kernel off: {why}")
        sync_kernel = False
    return FastPath(
        precision=precision,
        channels_last=pick("channels_last"),
        cudnn_benchmark=pick("cudnn_benchmark") and device.type == "cuda",
        cuda_graphs=graphs,
        compile=tcfg.compile,
        # The captured step needs the fused step's tensor lr; alone, it is on once verified on a GPU.
        fused_optimizer=(graphs or (on and "fused_optimizer" in VERIFIED_ON_GPU))
        and device.type == "cuda"
        and issubclass(optimizer_cls, FUSED_OPTIMIZERS),
        sync_kernel=sync_kernel,
        notes=tuple(notes),
    )


def self_checks(step: Any, optimizer: Any) -> dict[str, dict[str, Any] | None]:
    """``summary.fast_path["self_checks"]``: each self-checked fast path the run uses, with the outcome of
    its check (``None``: not run yet, e.g. no replay or no sync so far)."""
    checks = {}
    if isinstance(step, GraphedStep):
        checks["cuda_graph"] = step.self_check
    if isinstance(optimizer, Lookahead) and optimizer.fused:
        checks["sync_kernel"] = optimizer.sync_check
    return {path: None if check is None else check.to_dict() for path, check in checks.items()}
