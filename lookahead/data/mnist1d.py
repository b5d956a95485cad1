"""MNIST-1D (Greydanus, 2020): generated locally by the `mnist1d` package, cached as tensors."""

from __future__ import annotations

import os
import pickle
import zipfile
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
from mnist1d.data import get_dataset_args, make_dataset

from lookahead.data import manifest
from lookahead.data.dataset import Dataset
from lookahead.ranges import Count, Fraction, PositiveInt
from lookahead.writes import writing

KEYS = ("x", "y", "x_test", "y_test")


def _generate(root: Path, num_samples: int, train_split: float, seed: int) -> dict[str, np.ndarray]:
    """``make_dataset`` with these arguments, cached under ``root`` (written atomically).

    The cache records every generator argument and the package version, and its name is their hash: a
    change of any of them (or of the package's defaults) generates afresh. It is read with
    ``weights_only=True``: a file planted in the data folder cannot run code.
    """
    args = get_dataset_args()
    args.num_samples, args.train_split, args.seed = num_samples, train_split, seed
    params = {"mnist1d": version("mnist1d"), **{k: v for k, v in vars(args).items() if k != "url"}}
    params = manifest.plain(params)
    cache = root / f"mnist1d_n{num_samples}_seed{seed}_{manifest.key(params)}.pt"
    if cache.exists():
        try:
            stored = torch.load(cache, map_location="cpu", weights_only=True)
        except (RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile):
            stored = None  # damaged, or not ours: generated afresh over it
        if isinstance(stored, dict) and stored.get("manifest") == params:
            return {k: stored[k].numpy() for k in KEYS}
    data = make_dataset(args)  # seeds Python's and NumPy's RNGs (not torch's)
    root.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
    try:
        with writing(cache, partial=tmp), open(tmp, "wb") as f:
            torch.save({"manifest": params, **{k: torch.from_numpy(np.asarray(data[k])) for k in KEYS}}, f)
        tmp.replace(cache)  # atomic: concurrent runs never read a half-written cache
    finally:
        tmp.unlink(missing_ok=True)
    return data


def load_mnist1d(
    root: str | Path,
    name: str = "mnist1d",
    num_samples: PositiveInt = 5000,
    train_split: Fraction = 0.8,
    data_seed: Count = 42,
    valid_samples: PositiveInt = 1000,
    device: str | torch.device = "cpu",
) -> Dataset:
    """The MNIST-1D dataset (40-sample signals, 10 classes): the standard train/test split of
    ``num_samples`` generated with ``data_seed``, and a validation split of ``valid_samples`` drawn
    afresh from the same generator with seed ``data_seed + 1`` (so train and test are exactly the
    MNIST-1D paper's; 0 for none). Generated once and cached under ``root``."""
    root = Path(root).expanduser()
    data = _generate(root, num_samples, train_split, data_seed)
    x, x_test = (torch.as_tensor(data[k], dtype=torch.float32).unsqueeze(1) for k in ("x", "x_test"))
    y, y_test = (torch.as_tensor(data[k], dtype=torch.long) for k in ("y", "y_test"))
    valid_x = valid_y = None
    if valid_samples:
        valid = _generate(root, valid_samples, 1.0, data_seed + 1)
        valid_x = torch.as_tensor(valid["x"], dtype=torch.float32).unsqueeze(1).to(device)
        valid_y = torch.as_tensor(valid["y"], dtype=torch.long).to(device)
    return Dataset(
        name=name,
        train_x=x.to(device),
        train_y=y.to(device),
        test_x=x_test.to(device),
        test_y=y_test.to(device),
        num_classes=10,
        input_shape=(1, x.shape[-1]),
        valid_x=valid_x,
        valid_y=valid_y,
    )
