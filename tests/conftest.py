"""Shared fixtures: config composition, tiny on-disk datasets in their real formats, CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from lookahead.cli import register_resolvers
from lookahead.data.cifar_fixture import write_cifar
from lookahead.presets import own_group_values
from lookahead.train.state import Summary

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
    """The config experiments/train.py composes from these command-line overrides."""
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return own_group_values(compose(config_name="train", overrides=overrides), overrides)


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    """A data directory with tiny CIFAR-10/100 in torchvision's pickle format (MNIST-1D is generated)."""
    root = tmp_path_factory.mktemp("data")
    write_cifar(root / "cifar", "cifar10", n_train=64, n_test=32)
    write_cifar(root / "cifar", "cifar100", n_train=64, n_test=32)
    return root


def tiny_overrides(data_root: Path, runs: Path, dataset: str = "mnist1d") -> list[str]:
    """Overrides that make any preset a seconds-long CPU run on the fixture data."""
    common = [f"paths.data={data_root}", f"paths.runs={runs}", "trainer.progress=lines", "device=cpu"]
    if dataset == "mnist1d":
        return [*common, f"dataset.num_samples={MNIST1D_SAMPLES}"]
    # the CIFAR presets' LR drops (epochs 60/120/160) must lie inside these short runs; the md5 check is
    # tested in test_data.py (write_cifar patches torchvision's md5 list per process, for its last write)
    return [
        *common,
        "dataset.check_integrity=false",
        "model.width=4",
        "trainer.batch_size=16",
        "trainer.eval_batch_size=32",
        "schedule.milestones=[1]",
    ]


def run_cli(args: list[str], cwd: Path, env: dict[str, str] | None = None):
    """Run experiments/train.py as a user would; returns the CompletedProcess. No wall-time limit: the
    work is bounded by the run's steps, and only pytest's hang guard (``--timeout``) ends a hung run."""
    return subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "train.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "WANDB_SILENT": "true", **(env or {})},
    )


def wait_for(root: Path, pattern: str, proc: subprocess.Popen) -> list[Path]:
    """The files matching ``pattern`` under ``root`` once the first appears, or none if ``proc`` ended
    first: waits on the run's progress, never on a clock (a loaded machine is only slower)."""
    while not (found := list(root.rglob(pattern))) and proc.poll() is None:
        time.sleep(0.01)
    return found


def write_summary(run: Path, **fields) -> None:
    """A run's summary.json written through :class:`Summary` (as the trainer writes it), with placeholder
    values for the identity fields a test does not care about, and the declarations of a classification
    workload (its target metric, direction and measures)."""
    from lookahead.train.state import measures_of
    from lookahead.workloads.classification import Classification

    defaults = {
        "status": "completed",
        "experiment": run.parent.name,
        "dataset": "dataset",
        "model": "model",
        "method": "sgd",
        "seed": 1,
        "max_epochs": 1,
        "run_dir": str(run),
        "target": "valid_accuracy",
        "targets_metric": "valid_accuracy",
        "higher_is_better": True,
        "measures": measures_of(Classification.measures),
    }
    Summary(**{**defaults, **fields}).write(run / "summary.json")
