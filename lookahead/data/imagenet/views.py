"""What one image becomes: RandomResizedCrop + flip for training, resize + centre crop for evaluation,
normalisation. The crop box and flip of image ``index`` in ``epoch`` come from a generator keyed by
(seed, epoch, index): any backend, worker count or resume point sees the same crops.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.transforms.v2 import functional as TF

# The per-channel statistics every torchvision ImageNet model is trained with.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Views:
    """The geometry of the train and eval views."""

    size: int = 224
    eval_resize: int = 256


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of image ``index``'s augmentation in ``epoch``: independent of order and workers."""
    return np.random.default_rng([seed % 2**32, epoch, index])


def random_resized_crop_box(
    height: int,
    width: int,
    rng: np.random.Generator,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> tuple[int, int, int, int]:
    """(top, left, h, w) of RandomResizedCrop: torchvision's algorithm (10 tries, then a centre crop)."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        h, w = height, round(height * ratio[1])
    else:
        h, w = height, width
    return (height - h) // 2, (width - w) // 2, h, w


def train_params(height: int, width: int, seed: int, epoch: int, index: int) -> tuple[int, ...]:
    """(top, left, h, w, flip) of image ``index`` in ``epoch``."""
    rng = sample_rng(seed, epoch, index)
    return (*random_resized_crop_box(height, width, rng), int(rng.random() < 0.5))


def train_view(image: torch.Tensor, params: Sequence[int], size: int) -> torch.Tensor:
    """RandomResizedCrop(size) + horizontal flip of a uint8 CHW image, on whatever device it is."""
    top, left, h, w, flip = (int(p) for p in params)
    out = TF.resized_crop(image, top, left, h, w, [size, size], antialias=True)
    return out.flip(-1) if flip else out


def eval_view(image: torch.Tensor, resize: int, size: int) -> torch.Tensor:
    """Resize the shorter side to ``resize``, then the centre ``size`` x ``size`` crop."""
    return TF.center_crop(TF.resize(image, [resize], antialias=True), [size, size])


def normalize(x: torch.Tensor) -> torch.Tensor:
    """uint8 NCHW on the device -> float32, (x / 255 - mean) / std."""
    mean = torch.tensor(MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=x.device).view(1, 3, 1, 1)
    return x.float().div_(255).sub_(mean).div_(std)
