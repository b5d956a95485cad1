"""Polyak (iterate) averaging baseline: the running mean of the weights the inner optimizer visits.

Built on ``torch.optim.swa_utils.AveragedModel`` (equal weights for every averaged iterate).
"""

from __future__ import annotations

from torch import nn
from torch.optim.swa_utils import AveragedModel


class PolyakAverage(AveragedModel):
    """``AveragedModel`` whose buffers (BatchNorm statistics) are averaged too, so that the averaged
    network can be evaluated as it is."""

    def __init__(self, model: nn.Module, start_step: int = 0) -> None:
        super().__init__(model, use_buffers=True)
        self.start_step = start_step

    def maybe_update(self, model: nn.Module, step: int) -> None:
        """Average the weights after inner step ``step`` (1-based) once ``step > start_step``."""
        if step > self.start_step:
            self.update_parameters(model)
