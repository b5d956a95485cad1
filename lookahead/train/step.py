"""One optimizer step: forward/backward over the step's micro-batches, then clip, step and schedule.

The gradient is that of the mean loss over every ``sample_size`` unit of the step, whatever the number
of micro-batches (gradient accumulation) and ranks: each micro-batch's mean loss is weighted by its
share of the step's total sample size (all-reduced over ranks), and DDP averages the ranks. With one
micro-batch on one process the weight is exactly 1 and the loss is back-propagated as it is.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lookahead.train.distributed import Dist
from lookahead.workloads.base import Batch, Logs, Workload


@dataclass
class StepResult:
    logs: list[Logs]  # per micro-batch summed logs (on the device)
    sample_size: int | torch.Tensor
    carry: Any


class TrainStep:
    """Callable performing one optimizer step on a list of micro-batches.

    ``gradients`` is a part of its own so that :class:`~lookahead.train.graphs.GraphedStep` can capture
    it with the inner optimizer's step, leaving Lookahead's count and sync and the schedule on the host.
    """

    def __init__(
        self,
        workload: Workload,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        ranks: Dist,
        device: torch.device,
        autocast_dtype: torch.dtype | None = None,
        clip_grad_norm: float | None = None,
    ) -> None:
        self.workload, self.model, self.optimizer, self.scheduler = workload, model, optimizer, scheduler
        self.ranks, self.device, self.clip_grad_norm = ranks, device, clip_grad_norm
        self.autocast_dtype = autocast_dtype
        # Autocast's cache of cast weights must be off inside a CUDA graph capture (the CUDA graphs docs).
        self.autocast_cache = True
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.failure: str | None = None  # an eager step never falls back (GraphedStep: why it did)

    def fast_path_record(self) -> dict[str, Any]:
        """What this step adds to ``summary.fast_path`` (GraphedStep: its replays and any fallback)."""
        return {}

    def autocast(self) -> AbstractContextManager:
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype, cache_enabled=self.autocast_cache)

    def __call__(self, micro_batches: list[Batch], carry: Any) -> StepResult:
        result, lr_scale = self.gradients(micro_batches, carry)
        if lr_scale != 1.0:
            for group in self.optimizer.param_groups:
                group["lr"] *= lr_scale
        self.optimizer.step()
        self.scheduler.step()  # sets every group's lr afresh (undoing lr_scale)
        return result

    def gradients(self, micro_batches: list[Batch], carry: Any) -> tuple[StepResult, float]:
        """Zero, forward and backward every micro-batch, clip: the step's gradient, and its lr scale."""
        model, workload = self.model, self.workload
        weighted = len(micro_batches) > 1 or self.ranks.enabled
        total = None
        if weighted:  # sample sizes are known from the batches: the step's total, over ranks
            sizes = [float(workload.sample_size(b)) for b in micro_batches]
            total = torch.tensor(float(sum(sizes)), device=self.device)
            self.ranks.all_reduce_tensor(total)
        self.optimizer.zero_grad(set_to_none=True)
        logs, lr_scale, step_size = [], 1.0, 0
        for i, batch in enumerate(micro_batches):
            last = i == len(micro_batches) - 1
            sync = nullcontext() if last or not hasattr(model, "no_sync") else model.no_sync()
            with sync:
                with self.autocast():
                    out = workload.train_step(model, batch, carry)
                loss = out.loss
                if weighted:  # this micro-batch's share of the step, x world (DDP divides by world)
                    loss = loss * (out.sample_size * self.ranks.world / total)
                loss.backward()
            carry, lr_scale = out.carry, out.lr_scale
            step_size = step_size + out.sample_size
            logs.append(out.logs)
        if self.clip_grad_norm:
            nn.utils.clip_grad_norm_(self.params, self.clip_grad_norm)
        return StepResult(logs, step_size, carry), lr_scale
