"""A tiny ImageNet made of real JPEG files, in both on-disk layouts, for tests, the CPU demo and the
benchmark: a few classes whose images differ in colour and stripe direction (a learnable signal), with
varied sizes and aspect ratios so RandomResizedCrop has real work to do.

    python -m lookahead.data.imagenet_fixture data/imagenet_demo --classes 4 --train 60 --val 15
"""

from __future__ import annotations

from lookahead.progress import announce

announce(__name__, "writing the generated ImageNet-like JPEGs")

import argparse
import hashlib
import io
import sys
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

from lookahead.data import manifest

# ILSVRC2012 uses wnids like n01440764; the fixture's are fake but shaped the same.
PALETTE = np.array(
    [[200, 40, 40], [40, 160, 60], [50, 80, 200], [220, 180, 40], [150, 60, 170], [40, 170, 170]], dtype=float
)


def wnid(label: int) -> str:
    return f"n{label:08d}"


def make_image(label: int, rng: np.random.Generator, size: tuple[int, int] = (48, 96)) -> np.ndarray:
    """HWC uint8: the class colour, stripes whose direction depends on the class, and noise."""
    h, w = (int(v) for v in rng.integers(size[0], size[1] + 1, 2))
    colour = PALETTE[label % len(PALETTE)] * rng.uniform(0.8, 1.1)
    yy, xx = np.mgrid[0:h, 0:w]
    phase = (xx if label % 2 == 0 else yy) + (label // len(PALETTE)) * (xx + yy)  # direction per class
    stripes = 40 * np.sign(np.sin(phase * 2 * np.pi / 8 + rng.uniform(0, 2 * np.pi)))
    image = colour + stripes[..., None] + rng.normal(0, 25, (h, w, 3))
    return image.clip(0, 255).astype(np.uint8)


def jpeg_bytes(image: np.ndarray, quality: int = 90) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(image).save(out, "JPEG", quality=quality)
    return out.getvalue()


def generate(
    classes: int = 4, train: int = 24, val: int = 8, seed: int = 0, size: tuple[int, int] = (48, 96)
) -> dict[str, list[tuple[str, int, bytes]]]:
    """``{"train": [(file name, label, JPEG bytes)], "valid": [...]}`` (names as ImageNet spells them)."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[tuple[str, int, bytes]]] = {"train": [], "valid": []}
    for label in range(classes):
        for i in range(train):
            name = f"{wnid(label)}_{i + 1}.JPEG"
            out["train"].append((name, label, jpeg_bytes(make_image(label, rng, size))))
    val_labels = rng.permutation(np.arange(classes * val) % classes)  # val files are not class-sorted
    for i, label in enumerate(val_labels.tolist()):
        out["valid"].append(
            (f"ILSVRC2012_val_{i + 1:08d}.JPEG", label, jpeg_bytes(make_image(label, rng, size)))
        )
    return out


def params(
    classes: int = 4, train: int = 24, val: int = 8, seed: int = 0, size: tuple[int, int] = (48, 96)
) -> dict[str, Any]:
    """What a fixture is made with, as its manifest records it."""
    return manifest.plain(
        {"fixture": "imagenet", "classes": classes, "train": train, "val": val, "seed": seed, "size": size}
    )


def write_folder(root: str | Path, **kwargs) -> dict[str, list[tuple[str, int, bytes]]]:
    """The ImageFolder layout: ``root/train/<wnid>/*.JPEG`` and ``root/val/<wnid>/*.JPEG``, then
    ``root/manifest.json`` with the parameters."""
    root = Path(root)
    images = generate(**kwargs)
    for split, folder in (("train", "train"), ("valid", "val")):
        for name, label, data in images[split]:
            path = root / folder / wnid(label) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    manifest.write(root / manifest.NAME, params(**kwargs))
    return images


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_archives(root: str | Path, **kwargs) -> dict[str, str]:
    """torchvision's layout: the devkit (meta.mat + validation ground truth) and the train/val tars,
    structured as the ILSVRC2012 downloads. Returns {archive name: md5} (torchvision checks the real
    archives' md5s; tests patch ``torchvision.datasets.imagenet.ARCHIVE_META`` with these)."""
    import scipy.io

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    images = generate(**kwargs)
    classes = 1 + max(label for _, label, _ in images["train"])
    # meta.mat "synsets": ILSVRC2012_ID (1-based), WNID, words, gloss, num_children (0 for leaves).
    synsets = np.zeros(
        classes,
        dtype=[("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O"), ("gloss", "O"), ("num_children", "O")],
    )
    order = np.random.default_rng(1).permutation(classes)  # ILSVRC ids are not in wnid order
    for label in range(classes):
        synsets[label] = (int(order[label]) + 1, wnid(label), f"class {label}, thing {label}", "", 0)
    mat = io.BytesIO()
    scipy.io.savemat(mat, {"synsets": synsets})
    truth = "".join(f"{int(order[label]) + 1}\n" for _, label, _ in images["valid"])
    with tarfile.open(root / "ILSVRC2012_devkit_t12.tar.gz", "w:gz") as tar:
        _add(tar, "ILSVRC2012_devkit_t12/data/meta.mat", mat.getvalue())
        _add(tar, "ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt", truth.encode())
    with tarfile.open(root / "ILSVRC2012_img_train.tar", "w") as outer:
        for label in range(classes):
            inner = io.BytesIO()
            with tarfile.open(fileobj=inner, mode="w") as tar:
                for name, lab, data in images["train"]:
                    if lab == label:
                        _add(tar, name, data)
            _add(outer, f"{wnid(label)}.tar", inner.getvalue())
    with tarfile.open(root / "ILSVRC2012_img_val.tar", "w") as tar:
        for name, _, data in images["valid"]:
            _add(tar, name, data)
    return {
        name: hashlib.md5((root / name).read_bytes()).hexdigest()
        for name in ("ILSVRC2012_devkit_t12.tar.gz", "ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar")
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("root", type=Path)
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--train", type=int, default=60, help="training images per class")
    parser.add_argument("--val", type=int, default=15, help="validation images per class")
    parser.add_argument("--min-size", type=int, default=48)
    parser.add_argument("--max-size", type=int, default=96)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    kwargs = {
        "classes": args.classes,
        "train": args.train,
        "val": args.val,
        "seed": args.seed,
        "size": (args.min_size, args.max_size),
    }
    if (args.root / "train").exists():
        recorded = manifest.read(args.root / manifest.NAME)
        if recorded is None:  # images the user put there: theirs to keep
            print(
                f"{args.root} already holds a train/ folder without a fixture manifest (your own images, or "
                f"a fixture of an earlier version); leaving it as it is"
            )
            return 0
        if recorded != params(**kwargs):
            print(
                f"error: {args.root} holds a fixture made with {manifest.describe(recorded)}, not "
                f"{manifest.describe(params(**kwargs))}: delete it or choose another folder",
                file=sys.stderr,
            )
            return 1
        print(f"{args.root} already holds this fixture ({args.root / manifest.NAME}); leaving it as it is")
        return 0
    write_folder(args.root, **kwargs)
    print(f"wrote {args.classes} classes x ({args.train} train + {args.val} val) JPEGs under {args.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
