"""Image/signal classification on in-memory tensors: CIFAR-10/100, MNIST-1D and a user's own dataset.

A dataset builder returns a :class:`~lookahead.data.Dataset` (tensors + per-batch transforms); this
workload batches it with :class:`~lookahead.data.TensorLoader` (pure (seed, epoch, batch) order and
augmentation) and measures cross-entropy and accuracy.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import torch
from torch import nn

from lookahead.data import Dataset, TensorLoader
from lookahead.data.batches import rank_share
from lookahead.workloads.base import ACCURACY, CROSS_ENTROPY, Logs, Measure, Split, StepOutput, Workload


class Classification(Workload):
    """Cross-entropy and accuracy on a :class:`Dataset`; ``valid`` is evaluated when the dataset has one."""

    capturable = True
    measures: ClassVar[dict[str, Measure]] = {"accuracy": ACCURACY, "loss": CROSS_ENTROPY}

    def __init__(self, data: Dataset, batch_size: int, eval_batch_size: int, seed: int) -> None:
        self.data = data
        self.name = data.name
        self.train_loader = TensorLoader(
            data.train_x, data.train_y, batch_size, shuffle=True, transform=data.train_transform, seed=seed
        )
        self.eval_loaders = {
            split: TensorLoader(x, y, eval_batch_size, transform=data.eval_transform)
            for split, (x, y) in data.eval_splits().items()
        }
        self.target = "valid_accuracy" if "valid" in self.eval_loaders else None

    @property
    def convergence_metric(self) -> str | None:
        """valid_accuracy; without a validation split (CIFAR, as in the paper) test_accuracy."""
        return self.target or ("test_accuracy" if "test" in self.eval_loaders else None)

    def model_kwargs(self) -> dict[str, int]:
        return {"num_classes": self.data.num_classes}

    def steps_per_epoch(self) -> int:
        return len(self.train_loader)

    def train_batches(
        self, epoch: int, start: int = 0, rank: int = 0, world: int = 1
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        # Every rank draws the whole global batch (order and augmentation depend on the global batch
        # index only) and keeps its contiguous share: any world size sees the same samples per step.
        batches = self.train_loader.epoch(epoch, start_batch=start)
        if world == 1:
            yield from batches
            return
        for x, y in batches:
            part = rank_share(len(y), rank, world)
            yield x[part], y[part]

    def splits(self) -> list[Split]:
        return [Split(name, loader.num_samples) for name, loader in self.eval_loaders.items()]

    def train_step(
        self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], carry: None
    ) -> StepOutput:
        x, y = batch
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, y)
        n = len(y)
        logs = {"loss": (loss.detach(), n), "correct": (logits.argmax(1) == y).sum(), "count": n}
        return StepOutput(loss, n, logs)

    def eval_logs(self, model: nn.Module, split: str, rank: int = 0, world: int = 1) -> Logs:
        loss_sum, correct, count = 0.0, 0, 0  # device tensors after the first batch: one sync at the end
        for b, (x, y) in enumerate(self.eval_loaders[split].epoch(0)):
            if b % world != rank:  # whole batches round-robin over ranks
                continue
            logits = model(x).float()
            loss_sum = loss_sum + nn.functional.cross_entropy(logits, y, reduction="sum").double()
            correct = correct + (logits.argmax(1) == y).sum()
            count += len(y)
        return {"loss": float(loss_sum), "correct": int(correct), "count": count}

    def reduce(self, logs: dict[str, float]) -> dict[str, float]:
        count = logs["count"]
        return {"loss": logs["loss"] / count, "accuracy": logs["correct"] / count}
