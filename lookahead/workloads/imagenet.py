"""ImageNet classification (ILSVRC2012) streamed from JPEG files: cross-entropy, top-1 and top-5.

The evaluation split is the public ILSVRC2012 *validation* set (50,000 images), called ``valid`` here:
it is what the paper's Table 2 reports ("single-crop validation accuracy") and what every ImageNet paper
reports, because the test labels were never released. No separate split is held out for choosing
hyperparameters, so "best" (``valid_top1``) and the reported number come from the same images.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from lookahead.data.imagenet import Stream, Views, make_decoder, scan
from lookahead.errors import ConfigError
from lookahead.ranges import Count, PositiveInt
from lookahead.workloads.base import CROSS_ENTROPY, Logs, Measure, Split, StepOutput, Workload


def topk_correct(logits: torch.Tensor, y: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> list[torch.Tensor]:
    """How many rows have the label among the k largest logits, for each k (capped at the class count)."""
    kmax = min(max(ks), logits.shape[1])
    top = logits.topk(kmax, dim=1).indices
    hits = top == y.view(-1, 1)
    return [hits[:, : min(k, kmax)].any(1).sum() for k in ks]


class ImageNet(Workload):
    """ILSVRC2012 in either layout (see :mod:`lookahead.data.imagenet`), batches decoded by ``decoder``
    (auto | dali | nvjpeg | cpu, with fallback) and normalised on ``device``."""

    name = "imagenet"
    target = "valid_top1"
    higher_is_better = True
    capturable = True
    measures: ClassVar[dict[str, Measure]] = {
        "top1": Measure("top-1 accuracy", "%", 100.0, (0.0, 1.0)),
        "top5": Measure("top-5 accuracy", "%", 100.0, (0.0, 1.0)),
        "loss": CROSS_ENTROPY,
    }

    def __init__(
        self,
        root: str | Path,
        batch_size: PositiveInt,
        eval_batch_size: PositiveInt,
        seed: int,
        device: str | torch.device = "cpu",
        name: str = "imagenet",
        layout: str = "auto",
        decoder: str = "auto",
        workers: Count = 8,
        image_size: PositiveInt = 224,
        eval_resize: PositiveInt = 256,
        on_corrupt: str = "skip",
        channels_last: bool = False,
        limit_train: PositiveInt | None = None,
        limit_valid: PositiveInt | None = None,
    ) -> None:
        if workers < 0:
            raise ConfigError(f"dataset.workers must be >= 0, got {workers}")
        if not 0 < image_size <= eval_resize:
            raise ConfigError(
                f"dataset.image_size ({image_size}) must be > 0 and <= dataset.eval_resize ({eval_resize})"
            )
        self.name = name
        self.device = torch.device(device)
        # NHWC batches make cuDNN pick its channels_last kernels (faster with bf16 on tensor cores); the
        # values are the same, only the memory layout differs. Off by default: the model's parameters
        # should be channels_last too (a trainer concern), or DDP warns that gradient strides differ.
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        images = scan(root, layout)
        self.images = {
            "train": images["train"].subset(limit_train),
            "valid": images["valid"].subset(limit_valid),
        }
        views = Views(image_size, eval_resize)
        self.decoder = make_decoder(decoder, self.device, views, max_batch=max(batch_size, eval_batch_size))
        common = {"device": self.device, "decoder": self.decoder, "views": views, "workers": workers}
        self.train_stream = Stream(self.images["train"], batch_size, seed, on_corrupt=on_corrupt, **common)
        self.valid_stream = Stream(
            self.images["valid"], eval_batch_size, seed, on_corrupt=on_corrupt, **common
        )
        if self.train_stream.train_steps() == 0:
            raise ConfigError(
                f"trainer.batch_size ({batch_size}) is larger than the {len(self.images['train'])} training "
                f"images: no full batch per epoch"
            )

    def model_kwargs(self) -> dict[str, int]:
        return {"num_classes": len(self.images["train"].classes)}

    def steps_per_epoch(self) -> int:
        return self.train_stream.train_steps()

    def train_batches(
        self, epoch: int, start: int = 0, rank: int = 0, world: int = 1
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, int]]:
        """(images, labels, unreadable files skipped) of this rank's share of each batch."""
        for x, y, skipped in self.train_stream.train_epoch(epoch, start, rank, world):
            yield x.contiguous(memory_format=self.memory_format), y, skipped

    def sample_size(self, batch: tuple[torch.Tensor, torch.Tensor, int]) -> int:
        return len(batch[1])

    def splits(self) -> list[Split]:
        return [Split("valid", len(self.images["valid"]))]

    def train_step(
        self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor, int], carry: None
    ) -> StepOutput:
        x, y, skipped = batch
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, y)
        top1, top5 = topk_correct(logits.detach(), y)
        n = len(y)
        logs = {
            "loss": loss.detach().double() * n,
            "top1": top1,
            "top5": top5,
            "count": n,
            "skipped": skipped,
        }
        return StepOutput(loss, n, logs)

    def eval_logs(self, model: nn.Module, split: str, rank: int = 0, world: int = 1) -> Logs:
        if split != "valid":
            raise ValueError(f"ImageNet has one evaluation split, 'valid', not {split!r}")
        sums = torch.zeros(5, dtype=torch.float64, device=self.device)  # loss, top1, top5, count, skipped
        for x, y, skipped in self.valid_stream.eval_epoch(rank, world):
            logits = model(x.contiguous(memory_format=self.memory_format)).float()
            loss = nn.functional.cross_entropy(logits, y, reduction="sum")
            top1, top5 = topk_correct(logits, y)
            sums += torch.stack(
                [
                    loss.double(),
                    top1.double(),
                    top5.double(),
                    sums.new_tensor(len(y)),
                    sums.new_tensor(skipped),
                ]
            )
        loss, top1, top5, count, skipped = sums.tolist()  # one host sync for the whole split
        return {"loss": loss, "top1": top1, "top5": top5, "count": count, "skipped": skipped}

    def reduce(self, logs: dict[str, float]) -> dict[str, float]:
        count = logs["count"]
        return {
            "loss": logs["loss"] / count,
            "top1": logs["top1"] / count,
            "top5": logs["top5"] / count,
            "skipped": logs.get("skipped", 0),
        }
