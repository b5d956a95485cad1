"""A run's directory: exclusive lock, atomic JSON writes, and what a run records about itself."""

from __future__ import annotations

import fcntl
import hashlib
import json
import platform
import re
import subprocess
from pathlib import Path
from typing import Any

import torch

from lookahead.train import threads
from lookahead.train.schema import NOT_IDENTITY  # config fields that may differ between attempts
from lookahead.writes import atomic_write


class RunDirError(RuntimeError):
    """The run directory cannot be used (locked, completed, or holds another config)."""


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file + rename, so a crash never leaves a half-written file."""
    atomic_write(path, text)


def write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


class RunDir:
    """Holds an exclusive ``flock`` on ``<dir>/.lock`` for the lifetime of the run, so two concurrent
    processes can never write into the same directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock = open(self.path / ".lock", "w")  # noqa: SIM115 (held open until close())
        except OSError as err:  # a read-only folder, a file in the way
            where = err.filename or self.path
            raise RunDirError(
                f"cannot use {self.path} as the run directory: {err.strerror} ({where})"
            ) from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise RunDirError(f"run directory {self.path} is in use by another process") from None

    config = property(lambda self: self.path / "config.yaml")
    metrics = property(lambda self: self.path / "metrics.jsonl")
    summary = property(lambda self: self.path / "summary.json")
    checkpoint = property(lambda self: self.path / "checkpoints" / "last.pt")

    def close(self) -> None:
        fcntl.flock(self._lock, fcntl.LOCK_UN)
        self._lock.close()

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def git_sha() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def environment(device: torch.device) -> dict[str, Any]:
    """Library versions and the device, for summary.json."""
    import hydra
    import numpy

    versions = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "hydra": hydra.__version__,
    }
    try:
        import torchvision

        versions["torchvision"] = torchvision.__version__
    except ImportError:
        pass
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine()
    )
    return {
        "git_sha": git_sha(),
        "versions": versions,
        "device": f"{device.type}: {name}",
        "hostname": platform.node(),
        "torch_threads": torch.get_num_threads(),
        "threads_reason": choice.reason if (choice := threads.applied()) else None,
    }


# Command-line overrides that do not define a run (the seed and experiment have their own path parts).
NOT_DEFINING = ("seed", "experiment", *NOT_IDENTITY, "hydra")
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+=-]{0,99}$")


def defining_overrides(overrides: list[str]) -> list[str]:
    """The overrides that change what a run computes, sorted (``+``/``~`` prefixes kept)."""
    kept = []
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        if not any(key == k or key.startswith((f"{k}.", f"{k}/")) for k in NOT_DEFINING):
            kept.append(override)
    return sorted(kept)


def run_key(overrides: list[str]) -> str:
    """``default`` without defining overrides, else a short, stable hash of them (readable in the run's
    config.yaml and summary.json, and listed by ``scripts/report.py --index``)."""
    defining = defining_overrides(overrides)
    if not defining:
        return "default"
    return hashlib.sha1("\n".join(defining).encode()).hexdigest()[:10]


def safe_name(name: str, field: str) -> str:
    """``name`` as one path component that stays inside the runs folder, or a RunDirError naming ``field``."""
    if not _SAFE.match(name) or ".." in name:
        raise RunDirError(
            f"{field}={name!r} cannot name a run directory: use 1-100 letters, digits and _ . + = - "
            f"(starting with a letter or digit)"
        )
    return name


def run_path(runs: str | Path, experiment: str, overrides: list[str], seed: int) -> Path:
    """``<runs>/<experiment>/<key of the defining overrides>/seed<N>``: the same command always maps to
    the same directory (so re-running resumes), different configurations never share one."""
    return Path(runs) / safe_name(experiment, "experiment_name") / run_key(overrides) / f"seed{seed}"
