"""MNIST-1D (Greydanus, 2020): generated locally by the `mnist1d` package, cached as a pickle."""

from __future__ import annotations

from pathlib import Path

import torch
from mnist1d.data import get_dataset_args, make_dataset
from mnist1d.utils import from_pickle, to_pickle

from lookahead.data.dataset import Dataset


def load_mnist1d(
    root: str | Path,
    name: str = "mnist1d",
    num_samples: int = 5000,
    train_split: float = 0.8,
    data_seed: int = 42,
    device: str | torch.device = "cpu",
) -> Dataset:
    """The MNIST-1D dataset (40-sample signals, 10 classes), generated once and cached under ``root``."""
    root = Path(root).expanduser()
    cache = root / f"mnist1d_n{num_samples}_split{train_split}_seed{data_seed}.pkl"
    if cache.exists():
        data = from_pickle(str(cache))
    else:
        args = get_dataset_args()
        args.num_samples, args.train_split, args.seed = num_samples, train_split, data_seed
        data = make_dataset(args)
        root.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        to_pickle(data, str(tmp))
        tmp.replace(cache)  # atomic: concurrent runs never read a half-written cache
    x, x_test = (torch.as_tensor(data[k], dtype=torch.float32).unsqueeze(1) for k in ("x", "x_test"))
    y, y_test = (torch.as_tensor(data[k], dtype=torch.long) for k in ("y", "y_test"))
    return Dataset(
        name=name,
        train_x=x.to(device),
        train_y=y.to(device),
        test_x=x_test.to(device),
        test_y=y_test.to(device),
        num_classes=10,
        input_shape=(1, x.shape[-1]),
    )
