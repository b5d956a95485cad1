"""What a dataset builder returns: tensors plus the per-batch transforms."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lookahead.data.batches import Augment


class DataError(RuntimeError):
    """Missing or unusable data: the message says what to do."""


@dataclass
class Dataset:
    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    input_shape: tuple[int, ...]
    train_transform: Augment | None = None
    eval_transform: Augment | None = None
