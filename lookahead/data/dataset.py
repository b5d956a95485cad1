"""What a tensor dataset builder returns: tensors plus the per-batch transforms."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lookahead.data.batches import Augment


class DataError(RuntimeError):
    """Missing or unusable data: the message says what to do."""


@dataclass
class Dataset:
    """Train and test tensors (and optionally a validation split) of a classification dataset.

    ``train_x`` may be uint8 images (the transforms normalise per batch) or float features.
    """

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    input_shape: tuple[int, ...]
    train_transform: Augment | None = None
    eval_transform: Augment | None = None
    valid_x: torch.Tensor | None = None
    valid_y: torch.Tensor | None = None

    def eval_splits(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """The evaluation splits in order: ``valid`` (when present), then ``test``."""
        splits = {}
        if self.valid_x is not None and self.valid_y is not None:
            splits["valid"] = (self.valid_x, self.valid_y)
        splits["test"] = (self.test_x, self.test_y)
        return splits
