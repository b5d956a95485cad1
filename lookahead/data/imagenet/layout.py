"""Finding ImageNet's images: the two on-disk layouts (``layout=auto`` picks by what is under ``root``).

``torchvision``: the archives read through ``torchvision.datasets.ImageNet`` (extracted into ``train/``
and ``val/`` on first use); ``folder``: an ImageFolder tree ``train/<wnid>/*.JPEG``, ``val/<wnid>/*.JPEG``.
Both give label = index of the wnid in sorted order, so they read the same images with the same labels.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lookahead.data.dataset import DataError
from lookahead.errors import ConfigError

ARCHIVES = ("ILSVRC2012_devkit_t12.tar.gz", "ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar")
SPLIT_FOLDERS = {"train": "train", "valid": "val"}
LAYOUTS = ("auto", "folder", "torchvision")


@dataclass(frozen=True)
class ImageList:
    """The images of one split: paths, integer labels and the class wnids (label i is ``classes[i]``)."""

    paths: list[str]
    labels: list[int]
    classes: list[str]

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, limit: int | None) -> ImageList:
        """About ``limit`` images spread evenly over the (class-sorted) list, so every class keeps some."""
        if limit is None or limit >= len(self):
            return self
        keep = np.linspace(0, len(self) - 1, limit).round().astype(int)
        return ImageList([self.paths[i] for i in keep], [self.labels[i] for i in keep], self.classes)


def detect_layout(root: Path) -> str:
    """``torchvision`` when the archives (or torchvision's ``meta.bin``) are there, else ``folder``."""
    if (root / "meta.bin").exists() or any((root / name).exists() for name in ARCHIVES):
        return "torchvision"
    return "folder"


def _scan_folder(split_dir: Path, classes: Sequence[str] | None) -> ImageList:
    """Images of ``split_dir/<wnid>/``; ``classes`` (the training classes) fixes the labels of val."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension

    if not split_dir.is_dir():
        raise DataError(
            f"ImageNet split folder {split_dir} is missing: expected {split_dir}/<wnid>/*.JPEG "
            f"(see docs/imagenet.md for both supported layouts)"
        )
    found = sorted(d.name for d in os.scandir(split_dir) if d.is_dir())
    if not found:
        raise DataError(f"{split_dir} holds no class folders: expected {split_dir}/<wnid>/*.JPEG")
    if classes is None:
        classes = found
    else:
        extra = sorted(set(found) - set(classes))
        if extra:
            raise DataError(
                f"{split_dir} has class folders that train/ lacks: {', '.join(extra[:5])}"
                f"{' ...' if len(extra) > 5 else ''} ({len(extra)}); train/ and val/ must hold the same wnids"
            )
    paths, labels, empty = [], [], []
    for label, wnid in enumerate(classes):
        folder = split_dir / wnid
        files = (
            sorted(
                e.path
                for e in os.scandir(folder)
                if e.is_file() and has_file_allowed_extension(e.name, IMG_EXTENSIONS)
            )
            if folder.is_dir()
            else []
        )
        if not files:
            empty.append(wnid)
        paths += files
        labels += [label] * len(files)
    if empty:
        raise DataError(
            f"{len(empty)} class folder(s) of {split_dir} are missing or hold no images: "
            f"{', '.join(str(split_dir / w) for w in empty[:5])}{' ...' if len(empty) > 5 else ''}; "
            f"the dataset is incomplete (re-extract it, or remove the class from train/ and val/)"
        )
    return ImageList(paths, labels, list(classes))


def _extract_torchvision_archives(root: Path) -> None:
    """torchvision.datasets.ImageNet's preparation (md5 check, devkit -> meta.bin, train/val tars ->
    wnid folders), run once; without building its ImageFolder, which would list 1.28M files twice."""
    from torchvision.datasets import imagenet as tv
    from torchvision.datasets.utils import check_integrity

    try:
        if not check_integrity(str(root / tv.META_FILE)):
            tv.parse_devkit_archive(str(root))
        if not (root / "train").is_dir():
            tv.parse_train_archive(str(root))
        if not (root / "val").is_dir():
            tv.parse_val_archive(str(root))
    except RuntimeError as err:  # torchvision: "The archive ... is not present ... or is corrupted."
        raise DataError(
            f"ImageNet under {root} (torchvision layout): {err} The files needed are "
            f"{', '.join(ARCHIVES)} from https://image-net.org/download (or use the ImageFolder layout)"
        ) from None


def scan(root: str | Path, layout: str = "auto") -> dict[str, ImageList]:
    """The ``train`` and ``valid`` image lists of ImageNet under ``root``, in either layout."""
    root = Path(root).expanduser()
    if layout not in LAYOUTS:
        raise ConfigError(f"dataset.layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if not root.is_dir():
        raise DataError(
            f"ImageNet not found: {root} does not exist. Put the ImageFolder tree (train/<wnid>/*.JPEG, "
            f"val/<wnid>/*.JPEG) or torchvision's archives ({', '.join(ARCHIVES)}) there, or point "
            f"paths.data= / LOOKAHEAD_DATA at their parent"
        )
    if (layout if layout != "auto" else detect_layout(root)) == "torchvision":
        _extract_torchvision_archives(root)
    train = _scan_folder(root / SPLIT_FOLDERS["train"], None)
    return {"train": train, "valid": _scan_folder(root / SPLIT_FOLDERS["valid"], train.classes)}
