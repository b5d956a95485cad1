"""Shared fixtures: config composition, tiny on-disk datasets in their real formats, CLI runner."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from lookahead.cli import register_resolvers

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
# The PTB presets (ptb_*) have their own composition and smoke tests in tests/test_ptb.py.
PRESETS = sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml") if not p.stem.startswith("ptb_"))
MNIST1D_SAMPLES = 600  # 480 train / 120 test: generated in well under a second

register_resolvers()
# Under pytest-xdist two workers share the 2 cores: one thread each avoids oversubscription.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


def compose_config(overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    """A data directory with tiny CIFAR-10/100 in torchvision's pickle format (MNIST-1D is generated)."""
    root = tmp_path_factory.mktemp("data")
    write_cifar(root / "cifar", "cifar10", n_train=64, n_test=32)
    write_cifar(root / "cifar", "cifar100", n_train=64, n_test=32)
    return root


def write_cifar(root: Path, name: str, n_train: int, n_test: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Write CIFAR in the exact on-disk layout torchvision reads (python pickles of 3072-byte rows),
    and patch the class's md5 list to these files so its integrity check passes."""
    import hashlib

    import torchvision

    rng = np.random.default_rng(seed)
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
        arrays["train_x"].append(x)
        arrays["train_y"] += y
        with open(folder / fname, "wb") as f:
            pickle.dump({"data": x, label_key: y, "filenames": [f"{j}.png" for j in range(n)]}, f)
    x_test = rng.integers(0, 256, (n_test, 3072), dtype=np.uint8)
    y_test = rng.integers(0, classes, n_test).tolist()
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


def tiny_overrides(data_root: Path, runs: Path, dataset: str = "mnist1d") -> list[str]:
    """Overrides that make any preset a seconds-long CPU run on the fixture data."""
    common = [f"paths.data={data_root}", f"paths.runs={runs}", "trainer.progress=lines", "device=cpu"]
    if dataset == "mnist1d":
        return [*common, f"dataset.num_samples={MNIST1D_SAMPLES}"]
    # the CIFAR presets' LR drops (epochs 60/120/160) must lie inside these short runs
    return [
        *common,
        "model.width=4",
        "trainer.batch_size=16",
        "trainer.eval_batch_size=32",
        "schedule.milestones=[1]",
    ]


def run_cli(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 300):
    """Run experiments/train.py as a user would; returns the CompletedProcess."""
    return subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "train.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "WANDB_SILENT": "true", **(env or {})},
    )
