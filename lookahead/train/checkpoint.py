"""Atomic checkpoints with everything needed to resume bit-for-bit, loaded with ``weights_only=True``.

A checkpoint holds tensors and plain containers only (the RNG states too), so ``torch.load`` never runs
code from the file: a ``last.pt`` planted in a shared run directory is refused, not executed.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import random
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from lookahead.train.state import RunState
from lookahead.writes import WriteError, writing

CONVERT = "scripts/convert_checkpoint.py"
# What checkpoints of earlier versions name besides tensors: the NumPy RNG state's array and dtype.
EARLIER_FORMAT = {
    "numpy.ndarray",
    "numpy.dtype",
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct",
    "numpy.core.multiarray.scalar",
    "numpy._core.multiarray.scalar",
}


# Values a weights-only load accepts besides tensors and containers.
PLAIN = (bool, int, float, complex, str, bytes, torch.dtype, torch.device, torch.memory_format)

if TYPE_CHECKING:
    from lookahead.train.build import Setup
    from lookahead.train.distributed import Dist


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read."""


def rng_state() -> dict[str, Any]:
    """Torch's, NumPy's and Python's global RNG states as tensors and plain values."""
    name, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": str(name),
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "python": {
            "version": version,
            "state": torch.tensor(internal, dtype=torch.int64),
            "gauss": gauss_next,
        },
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state(
        (
            np_state["name"],
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached_gaussian"],
        )
    )
    py_state = state["python"]
    random.setstate((py_state["version"], tuple(py_state["state"].tolist()), py_state["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(path: Path, state: dict[str, Any]) -> None:
    """``torch.save`` to a temporary file, then rename: a crash never leaves a truncated checkpoint, and
    a failed write (full disk) leaves the previous checkpoint and no temporary file. A failed write is a
    :class:`~lookahead.writes.WriteError` naming ``path`` and the cause."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with writing(path, partial=tmp):
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:  # Python's I/O: a failed write keeps its errno (ENOSPC, EFBIG)
                torch.save(state, f)
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def to_host(state: Any) -> Any:
    """A copy of ``state`` whose tensors are fresh host (CPU) copies (training may go on changing the
    originals while the copy is written), with OmegaConf containers and NumPy scalars as plain values:
    what ``weights_only=True`` loads. Any other object is a TypeError here, not a refusal at resume."""
    if isinstance(state, torch.Tensor):
        return state.detach().to("cpu", copy=True)
    if isinstance(
        state, (DictConfig, ListConfig)
    ):  # e.g. Adafactor's eps from a config: plain for weights_only
        return to_host(OmegaConf.to_container(state, resolve=True))
    if isinstance(state, dict):
        return {k: to_host(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(to_host(v) for v in state)
    if isinstance(state, np.generic):  # a NumPy scalar (a metric) would pickle as a NumPy object
        return state.item()
    if state is None or type(state) in PLAIN:
        return state
    # Our own bug: it would be written, then refused at resume.
    raise TypeError(f"a checkpoint holds tensors and plain values only, not {type(state).__qualname__}")


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
    """The checkpoint in ``path``, read with ``weights_only=True``: tensors and plain containers only."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights only" in str(err).lower():
            raise CheckpointError(_refused(path)) from None
        raise _corrupt(path, err) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as err:
        raise _corrupt(path, err) from None


def _corrupt(path: Path, err: BaseException) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {path} is corrupt or unreadable ({type(err).__name__}); move it away to start the run "
        f"afresh"
    )


def _refused(path: Path) -> str:
    """Why a weights-only load refused ``path``: the objects it names, read without running any."""
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # unreadable beyond its first object: the names are unknown
        names = []
    if names and all(n in EARLIER_FORMAT or n.startswith("numpy.dtypes.") for n in names):
        return (
            f"checkpoint {path} was written by an earlier version of this suite (NumPy objects, which a "
            f"weights-only load refuses); if you trust the file, convert it with `python {CONVERT} {path}`, "
            f"or move it away to start the run afresh"
        )
    shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "") if names else "unknown objects"
    return (
        f"checkpoint {path} was not loaded: it refers to {shown}, which a weights-only load refuses (loading "
        f"it could run code); move it away to start the run afresh"
    )


def _misfit(model: dict[str, torch.Tensor], saved: dict[str, Any]) -> str | None:
    """The first tensor of ``model``'s state dict that ``saved`` lacks or holds in another shape, or
    the first that ``saved`` holds and the model lacks; None when every tensor fits."""
    for name, tensor in model.items():
        if name not in saved:
            return f"it lacks {name}"
        shape = getattr(saved[name], "shape", None)
        if shape != tensor.shape:
            theirs = tuple(shape) if shape is not None else type(saved[name]).__name__
            return f"{name} has shape {theirs} there, {tuple(tensor.shape)} in the model"
    extra = next((name for name in saved if name not in model), None)
    return f"it holds {extra}, which the model lacks" if extra else None


class RunCheckpoint:
    """A run's ``checkpoints/last.pt``: every rank's RNG and carry gathered, rank 0 writes (in the
    background, through :class:`Writer`); on resume every rank loads the same file (a shared file
    system), then its own RNG and carry."""

    def __init__(self, path: Path, config_hash: str, ranks: Dist) -> None:
        self.path, self.config_hash, self.ranks = path, config_hash, ranks
        self.writer = Writer()

    def exists(self) -> bool:
        """Whether there is a checkpoint to resume from (rank 0 looks; every rank gets its answer)."""
        return self.ranks.broadcast(self.path.exists() if self.ranks.is_main else None)

    def save(self, setup: Setup, state: RunState, carry: Any) -> None:
        per_rank = self.ranks.gather({"rng": rng_state(), "carry": carry})
        if self.ranks.is_main:  # returns once the state is copied to host memory
            payload = {
                "setup": setup.state_dict(),
                "state": state.to_dict(),
                "ranks": per_rank,
                "config_hash": self.config_hash,
            }
            with self._named():  # the previous write's error, if it failed
                self.writer.save(self.path, payload)

    def wait(self) -> None:
        with self._named():
            self.writer.wait()

    @contextlib.contextmanager
    def _named(self) -> Iterator[None]:
        """A failed write (a full disk) as one line naming the file; the previous checkpoint stays."""
        try:
            yield
        except WriteError:  # already one line naming the file and the cause
            raise
        except OSError as err:
            raise CheckpointError(f"cannot write checkpoint {self.path}: {err.strerror or err}") from err

    def load(self, setup: Setup) -> tuple[RunState, Any]:
        """Load the checkpoint into ``setup`` and this rank's RNG; the run state and this rank's carry."""
        ckpt, path, ranks = load(self.path), self.path, self.ranks
        if "setup" not in ckpt or "ranks" not in ckpt:
            raise CheckpointError(
                f"checkpoint {path} was written by an older version of the trainer; move it away to start "
                f"the run afresh"
            )
        if ckpt.get("config_hash") != self.config_hash:
            raise CheckpointError(
                f"checkpoint {path} was written under another config; move it away to start afresh"
            )
        if len(ckpt["ranks"]) != ranks.world:
            raise CheckpointError(
                f"checkpoint {path} was written by {len(ckpt['ranks'])} process(es), this job has "
                f"{ranks.world}: resume with the same number of processes"
            )
        misfit = _misfit(setup.model.state_dict(), ckpt["setup"].get("model") or {})
        if misfit:
            raise CheckpointError(
                f"checkpoint {path} does not fit the model (its code changed since?): {misfit}; move it "
                f"away to start the run afresh"
            )
        setup.load_state_dict(ckpt["setup"])
        set_rng_state(ckpt["ranks"][ranks.rank]["rng"])
        return RunState.from_dict(ckpt["state"]), ckpt["ranks"][ranks.rank]["carry"]
