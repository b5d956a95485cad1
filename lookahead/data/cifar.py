"""CIFAR-10/100 through torchvision's dataset classes, held as one uint8 tensor on the device."""

from __future__ import annotations

import pickle
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torchvision
from torchvision.datasets.utils import check_integrity

from lookahead.data.batches import normalize, random_crop_flip
from lookahead.data.dataset import DataError, Dataset
from lookahead.ranges import PositiveInt

# Per-channel statistics of the training sets (the values used by the Cutout / Lookahead code).
STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
CLASSES = {"cifar10": torchvision.datasets.CIFAR10, "cifar100": torchvision.datasets.CIFAR100}
NUM_CLASSES = {"cifar10": 10, "cifar100": 100}
FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}


def _files(cls, train: bool | None = None) -> list[tuple[str, str]]:
    """(file name, official md5) of a split (None: every file, the class-name list included)."""
    splits = {True: cls.train_list, False: cls.test_list}
    chosen = [*cls.train_list, *cls.test_list] if train is None else splits[train]
    return [(f, md5) for f, md5 in chosen] + (
        [(cls.meta["filename"], cls.meta["md5"])] if train is None else []
    )


def _integrity_error(name: str, root: Path) -> DataError:
    """Why torchvision refused the folder: missing, incomplete, or files that fail the md5 check."""
    cls, folder = CLASSES[name], root / FOLDERS[name]
    if not folder.is_dir():
        return DataError(
            f"{name} not found: no folder {folder}. Put the extracted '{FOLDERS[name]}' folder under {root} "
            f"(from https://www.cs.toronto.edu/~kriz/cifar.html) or run with dataset.download=true on a "
            f"machine with internet"
        )
    missing = [f for f, _ in _files(cls) if not (folder / f).is_file()]
    if missing:
        return DataError(
            f"{name}: {folder} lacks {', '.join(missing)}; re-extract the official archive there"
        )
    failed = [f for f, md5 in _files(cls) if not check_integrity(str(folder / f), md5)]
    return DataError(
        f"{name}: the md5 checksum of {', '.join(failed) or 'the files'} in {folder} does not match the "
        f"official archive (a re-packed or converted copy?). If the files are a valid CIFAR copy in the "
        f"python pickle format, run with dataset.check_integrity=false; otherwise re-extract the official "
        f"archive"
    )


def _read_unchecked(name: str, root: Path, train: bool) -> SimpleNamespace:
    """The split's pickles read directly, without torchvision's md5 check (dataset.check_integrity=false):
    the same arrays torchvision returns, NHWC uint8 images and integer labels."""
    folder = root / FOLDERS[name]
    images, labels = [], []
    for fname, _ in _files(CLASSES[name], train):
        path = folder / fname
        try:
            with open(path, "rb") as f:
                entry = pickle.load(f, encoding="latin1")
            images.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels += list(entry["labels"] if "labels" in entry else entry["fine_labels"])
        except FileNotFoundError:
            raise _integrity_error(name, root) from None
        except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError) as err:
            raise DataError(
                f"{name}: {path} is not a CIFAR python pickle ({type(err).__name__}: {err})"
            ) from None
    return SimpleNamespace(data=np.concatenate(images).transpose(0, 2, 3, 1), targets=labels)


def _split(name: str, root: Path, train: bool, download: bool, check: bool = True):
    if not check:
        if download and not (root / FOLDERS[name]).is_dir():
            CLASSES[name](root=str(root), train=train, download=True)
        return _read_unchecked(name, root, train)
    try:
        return CLASSES[name](root=str(root), train=train, download=download)
    except RuntimeError:  # torchvision: "Dataset not found or corrupted." -- say which
        raise _integrity_error(name, root) from None
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
    limit_train: PositiveInt | None = None,
    limit_test: PositiveInt | None = None,
    check_integrity: bool = True,
) -> Dataset:
    """CIFAR as uint8 NCHW tensors on ``device``; crop/flip/normalise happen per batch on the device.

    ``check_integrity=False`` skips the md5 comparison with the official archive, for a copy in the same
    format whose bytes differ (re-packed, converted from another mirror)."""
    if name not in CLASSES:
        raise DataError(f"unknown CIFAR variant {name!r}; expected one of {sorted(CLASSES)}")
    root = Path(root).expanduser()
    tensors = []
    for train, limit in ((True, limit_train), (False, limit_test)):
        split = _split(name, root, train, download, check_integrity)
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
