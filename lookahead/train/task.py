"""Workloads as tasks: what a batch's loss is and what evaluation measures.

The trainer only calls ``task.train_step_loss`` and ``task.evaluate``; language modelling and
translation plug in as further tasks with their own metrics (perplexity, BLEU).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


class Classification:
    """Cross-entropy loss; accuracy in [0, 1]."""

    name = "classification"

    def train_step_loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean loss, number of correct predictions) of one batch."""
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, y)
        return loss, (logits.argmax(1) == y).sum()

    @torch.no_grad()
    def evaluate(
        self, model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]
    ) -> dict[str, float]:
        was_training = model.training
        model.eval()
        loss_sum = correct = count = 0
        for x, y in batches:
            logits = model(x).float()
            loss_sum += nn.functional.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
            count += len(y)
        model.train(was_training)
        return {"loss": loss_sum / count, "accuracy": correct / count}
