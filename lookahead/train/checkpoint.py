"""Atomic checkpoints with everything needed to resume bit-for-bit."""

from __future__ import annotations

import os
import pickle
import random
import threading
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read."""


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(path: Path, state: dict[str, Any]) -> None:
    """``torch.save`` to a temporary file, then rename: a crash never leaves a truncated checkpoint, and
    a failed write (full disk) leaves the previous checkpoint and no temporary file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def to_host(state: Any) -> Any:
    """A copy of ``state`` whose tensors are fresh host (CPU) copies: training may go on changing the
    originals while the copy is written."""
    if isinstance(state, torch.Tensor):
        return state.detach().to("cpu", copy=True)
    if isinstance(state, dict):
        return {k: to_host(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(to_host(v) for v in state)
    return state


class Writer:
    """Checkpoints written in a background thread, one at a time.

    ``save`` copies the state to host memory (milliseconds), then returns while the file is written
    (a ResNet-18 + Lookahead(SGD) checkpoint is 134 MB: a few hundred ms that would otherwise stall a
    GPU epoch of about a second). A write that failed raises at the next ``save`` or ``wait``.
    """

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def save(self, path: Path, state: dict[str, Any]) -> None:
        self.wait()
        snapshot = to_host(state)
        self._thread = threading.Thread(target=self._write, args=(path, snapshot), name="checkpoint")
        self._thread.start()

    def _write(self, path: Path, state: dict[str, Any]) -> None:
        try:
            save(path, state)
        except BaseException as err:  # handed to the training thread by wait()
            self._error = err

    def wait(self) -> None:
        """Block until the last write is on disk; raise its error if it failed."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error


def load(path: Path) -> dict[str, Any]:
    try:
        # Our own files (RNG states hold numpy/python objects), hence weights_only=False.
        return torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as err:
        raise CheckpointError(
            f"checkpoint {path} is corrupt or unreadable ({type(err).__name__}); move it away to start "
            f"the run afresh"
        ) from None
