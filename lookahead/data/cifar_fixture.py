"""CIFAR-10/100 written in torchvision's exact on-disk format, for the tests and the GPU benchmark (no
dataset can be downloaded where they run)."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import torchvision


def write_cifar(
    root: Path, name: str, n_train: int, n_test: int, seed: int = 0, signal: float = 0.0
) -> dict[str, np.ndarray]:
    """Write CIFAR in the exact on-disk layout torchvision reads (python pickles of 3072-byte rows),
    and patch the class's md5 list to these files so its integrity check passes (in this process).

    ``signal`` in [0, 1): each image is ``signal`` parts of a fixed random image of its class and the
    rest noise, so that accuracy means something (0: pure noise, labels unlearnable).
    """
    rng = np.random.default_rng(seed)
    templates = np.random.default_rng(seed + 1).integers(0, 256, (100, 3072)).astype(np.float64)

    def images(noise: np.ndarray, labels: list[int]) -> np.ndarray:
        if not signal:
            return noise
        return np.rint((1 - signal) * noise + signal * templates[labels]).astype(np.uint8)

    cls = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
    folder = root / cls.base_folder
    folder.mkdir(parents=True, exist_ok=True)
    classes = 10 if name == "cifar10" else 100
    label_key = "labels" if name == "cifar10" else "fine_labels"
    train_files = [f for f, _ in cls.train_list]
    per_file = -(-n_train // len(train_files))
    arrays = {"train_x": [], "train_y": []}
    for i, fname in enumerate(train_files):
        n = min(per_file, n_train - i * per_file)
        x = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        y = rng.integers(0, classes, n).tolist()
        x = images(x, y)
        arrays["train_x"].append(x)
        arrays["train_y"] += y
        with open(folder / fname, "wb") as f:
            pickle.dump({"data": x, label_key: y, "filenames": [f"{j}.png" for j in range(n)]}, f)
    x_test = rng.integers(0, 256, (n_test, 3072), dtype=np.uint8)
    y_test = rng.integers(0, classes, n_test).tolist()
    x_test = images(x_test, y_test)
    with open(folder / cls.test_list[0][0], "wb") as f:
        pickle.dump({"data": x_test, label_key: y_test}, f)
    meta_key = cls.meta["key"]
    with open(folder / cls.meta["filename"], "wb") as f:
        pickle.dump({meta_key: [f"class{i}" for i in range(classes)]}, f)

    def md5(fname: str) -> str:
        return hashlib.md5((folder / fname).read_bytes()).hexdigest()

    cls.train_list = [[f, md5(f)] for f in train_files]
    cls.test_list = [[cls.test_list[0][0], md5(cls.test_list[0][0])]]
    cls.meta = {**cls.meta, "md5": md5(cls.meta["filename"])}
    return {
        "train_x": np.concatenate(arrays["train_x"]).reshape(-1, 3, 32, 32),
        "train_y": np.array(arrays["train_y"]),
        "test_x": x_test.reshape(-1, 3, 32, 32),
        "test_y": np.array(y_test),
    }
