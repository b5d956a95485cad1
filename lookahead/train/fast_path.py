"""The GPU fast path: which speed settings a run uses, resolved once from ``cfg.trainer`` and the run.

``trainer.fast_path`` (``auto``: on with CUDA, off elsewhere) sets the default of each setting; each one
can also be set on its own (``null`` follows ``fast_path``):

- ``precision``: bf16 autocast on the fast path (the workload's ``fast_precision``: fp32 for Penn
  Treebank), fp32 otherwise;
- ``channels_last``: NHWC weights and inputs for convolutions (only 4-D tensors change);
- ``cudnn_benchmark``: autotuned convolution algorithms (fast, but not bit-reproducible across processes);
- ``cuda_graphs``: the training step (forward, backward, clipping, the inner optimizer's fused step) is
  captured once and replayed; Lookahead's sync, Polyak averaging, the schedule and logging stay on the
  host, between replays;
- ``compile``: ``torch.compile`` of the training forward (off unless asked: it costs a minute of compile
  time per run, see docs/gpu.md).

A setting left at ``null`` that the run cannot use is turned off with a note (recorded in the summary);
the same setting asked for explicitly is a ConfigError naming why.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from lookahead.train.schema import ConfigError, Trainer
from lookahead.workloads.base import Workload

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

    def pick(value: bool | None) -> bool:
        return on if value is None else value

    precision = tcfg.precision or (workload.fast_precision if on else "fp32")
    graphs = pick(tcfg.cuda_graphs)
    blockers = _graph_blockers(tcfg, device, world, workload, optimizer_cls) if graphs else []
    if blockers:
        if tcfg.cuda_graphs is not None:
            raise ConfigError(f"trainer.cuda_graphs=true cannot be used: {blockers[0]}")
        notes.append(f"cuda_graphs off: {blockers[0]}")
        graphs = False
    return FastPath(
        precision=precision,
        channels_last=pick(tcfg.channels_last),
        cudnn_benchmark=pick(tcfg.cudnn_benchmark) and device.type == "cuda",
        cuda_graphs=graphs,
        compile=tcfg.compile,
        # The fused step is faster than foreach on CUDA, and the captured step needs its tensor lr.
        fused_optimizer=(on or graphs)
        and device.type == "cuda"
        and issubclass(optimizer_cls, FUSED_OPTIMIZERS),
        notes=tuple(notes),
    )
