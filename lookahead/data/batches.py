"""Whole-dataset tensors on the training device, batched and augmented with tensor ops.

The epoch order and every random crop/flip are functions of (seed, epoch, batch index), so a run that
resumes mid-epoch sees exactly the batches the interrupted run would have seen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _generator(device: torch.device, *seeds: int) -> torch.Generator:
    seed = 0
    for s in seeds:  # a simple, stable mix of the seeds (no Python hash randomisation)
        seed = (seed * 1_000_003 + int(s)) % (2**63 - 1)
    return torch.Generator(device=device).manual_seed(seed)


@dataclass
class TensorLoader:
    """Iterate over ``(x, y)`` batches of in-memory tensors.

    ``x`` may be uint8 images (normalised by ``transform`` per batch) or float features.
    ``transform(x_batch, generator)`` augments and normalises a whole batch at once.
    """

    x: torch.Tensor
    y: torch.Tensor
    batch_size: int
    shuffle: bool = False
    drop_last: bool = False
    transform: Augment | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise ValueError(f"x and y differ in length: {len(self.x)} vs {len(self.y)}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")

    def __len__(self) -> int:
        n = len(self.y)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def num_samples(self) -> int:
        return len(self.y)

    def epoch(self, epoch: int, start_batch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of ``epoch`` from ``start_batch`` on (for resuming mid-epoch)."""
        device = self.x.device
        if self.shuffle:
            order = torch.randperm(len(self.y), generator=_generator(torch.device("cpu"), self.seed, epoch))
            order = order.to(device)
        else:
            order = torch.arange(len(self.y), device=device)
        for b in range(start_batch, len(self)):
            index = order[b * self.batch_size : (b + 1) * self.batch_size]
            x = self.x[index]
            if self.transform is not None:
                x = self.transform(x, _generator(device, self.seed, epoch, b, 7))
            yield x, self.y[index]


def rank_share(size: int, rank: int, world: int) -> slice:
    """Rank ``rank``'s contiguous share of ``size`` items (a global batch, or a stream's columns): the
    shares differ in size by at most one and together cover every item once."""
    return slice(rank * size // world, (rank + 1) * size // world)


def normalize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 NCHW -> float, per-channel (x / 255 - mean) / std."""
    x = x.float().div_(255)
    return x.sub_(mean.view(1, -1, 1, 1)).div_(std.view(1, -1, 1, 1))


def random_crop_flip(x: torch.Tensor, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """Pad by ``padding`` (zeros), take a random crop of the original size, flip half of the batch.

    One gather for the whole batch: no per-image Python loop.
    """
    n, c, h, w = x.shape
    padded = torch.nn.functional.pad(x, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=x.device)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=x.device)
    flip = torch.rand(n, generator=generator, device=x.device) < 0.5
    rows = (dy.view(n, 1) + torch.arange(h, device=x.device).view(1, h)).view(n, 1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, w)
    cols = torch.where(flip.view(n, 1), w - 1 - cols, cols) + dx.view(n, 1)
    cols = cols.view(n, 1, 1, w)
    batch = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    channel = torch.arange(c, device=x.device).view(1, c, 1, 1)
    return padded[batch, channel, rows, cols]
