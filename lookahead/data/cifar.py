"""CIFAR-10/100 through torchvision's dataset classes, held as one uint8 tensor on the device."""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision

from lookahead.data.batches import normalize, random_crop_flip
from lookahead.data.dataset import DataError, Dataset

# Per-channel statistics of the training sets (the values used by the Cutout / Lookahead code).
STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
CLASSES = {"cifar10": torchvision.datasets.CIFAR10, "cifar100": torchvision.datasets.CIFAR100}
NUM_CLASSES = {"cifar10": 10, "cifar100": 100}
FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}


def _split(name: str, root: Path, train: bool, download: bool):
    try:
        return CLASSES[name](root=str(root), train=train, download=download)
    except RuntimeError as err:  # torchvision: "Dataset not found or corrupted."
        raise DataError(
            f"{name} not found or corrupted under {root}: put the extracted '{FOLDERS[name]}' folder "
            f"there (from https://www.cs.toronto.edu/~kriz/cifar.html) or run with dataset.download=true "
            f"on a machine with internet ({err})"
        ) from None
    except OSError as err:  # download attempted without network
        raise DataError(
            f"could not download {name} to {root} ({err}); put the extracted '{FOLDERS[name]}' folder there"
        ) from None


def load_cifar(
    name: str,
    root: str | Path,
    download: bool = False,
    augment: bool = True,
    device: str | torch.device = "cpu",
    limit_train: int | None = None,
    limit_test: int | None = None,
) -> Dataset:
    """CIFAR as uint8 NCHW tensors on ``device``; crop/flip/normalise happen per batch on the device."""
    if name not in CLASSES:
        raise DataError(f"unknown CIFAR variant {name!r}; expected one of {sorted(CLASSES)}")
    root = Path(root).expanduser()
    tensors = []
    for train, limit in ((True, limit_train), (False, limit_test)):
        split = _split(name, root, train, download)
        x = torch.from_numpy(split.data[:limit]).permute(0, 3, 1, 2).contiguous()  # NHWC -> NCHW uint8
        y = torch.as_tensor(split.targets[:limit], dtype=torch.long)
        tensors += [x.to(device), y.to(device)]
    mean, std = (torch.tensor(v, device=device) for v in STATS[name])

    def eval_transform(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return normalize(x, mean, std)

    def train_transform(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return normalize(random_crop_flip(x, generator, padding=4), mean, std)

    return Dataset(
        name=name,
        train_x=tensors[0],
        train_y=tensors[1],
        test_x=tensors[2],
        test_y=tensors[3],
        num_classes=NUM_CLASSES[name],
        input_shape=(3, 32, 32),
        train_transform=train_transform if augment else eval_transform,
        eval_transform=eval_transform,
    )
