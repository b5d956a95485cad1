"""Polyak (iterate) averaging baseline: the running mean of the weights the inner optimizer visits.

Built on ``torch.optim.swa_utils.AveragedModel`` (equal weights for every averaged iterate).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel


class PolyakAverage(AveragedModel):
    """``AveragedModel`` whose buffers (BatchNorm statistics) are averaged too, so that the averaged
    network can be evaluated as it is.

    ``update_parameters`` does AveragedModel's arithmetic (bit for bit) with the count mirrored on the
    host: the parent reads its device counter three times per update, a device sync every step.
    """

    def __init__(self, model: nn.Module, start_step: int = 0) -> None:
        super().__init__(model, use_buffers=True)
        self.start_step = start_step
        self._count: int | None = None  # == n_averaged, read from the device once after a load

    def maybe_update(self, model: nn.Module, step: int) -> None:
        """Average the weights after inner step ``step`` (1-based) once ``step > start_step``."""
        if step > self.start_step:
            self.update_parameters(model)

    @torch.no_grad()
    def update_parameters(self, model: nn.Module) -> None:
        if self._count is None:
            self._count = int(self.n_averaged)
        averaged = [*self.module.parameters(), *self.module.buffers()]
        current = [t.detach() for t in (*model.parameters(), *model.buffers())]
        if self._count == 0:
            torch._foreach_copy_(averaged, current)
        else:
            # AveragedModel: one foreach lerp for CUDA float tensors, weight 1 / (n + 1) in float32 ...
            lerp = [(a, c) for a, c in zip(averaged, current) if a.is_cuda and a.is_floating_point()]
            if lerp:
                weight = float(1 / (torch.tensor(self._count) + 1))
                torch._foreach_lerp_([a for a, _ in lerp], [c for _, c in lerp], weight)
            # ... and a + (c - a) / (n + 1) for the rest (on CUDA, integer buffers such as BatchNorm's
            # batch counter: AveragedModel's foreach path raises on them).
            for a, c in zip(averaged, current):
                if not (a.is_cuda and a.is_floating_point()):
                    a.copy_(a + (c - a) / (self.n_averaged + 1))
        self.n_averaged += 1
        self._count += 1

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        result = super().load_state_dict(state_dict, strict=strict, assign=assign)
        self._count = None
        return result
