"""Shared by the command-line entry points: Hydra resolvers and one-line error messages."""

from __future__ import annotations

import functools
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import HydraException, InstantiationException, OverrideParseException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lookahead.data.dataset import DataError
from lookahead.errors import ConfigError
from lookahead.extras import missing_extra
from lookahead.train.checkpoint import CheckpointError
from lookahead.train.run_dir import RunDirError
from lookahead.train.state import SummaryError
from lookahead.writes import CAUSES, WriteError

# The project's own errors, whose message is the whole story: one line, no traceback, exit code 1.
# Anything else (a ValueError, an OSError from our own code) is a bug and keeps its traceback; I/O
# failures a user can cause (a read-only folder, a full disk) are raised as RunDirError/CheckpointError
# naming the file.
USER_ERRORS = (
    ConfigError,
    DataError,
    CheckpointError,
    RunDirError,
    SummaryError,
    WriteError,  # a full disk, a read-only folder: the message names the file and the cause
    OmegaConfBaseException,
)


def method_name(optimizer_target: str, lookahead: bool, averaging: bool) -> str:
    """The report's label from the composed groups: the inner optimizer's name (Adam and AdamW are both
    ``adam``; MuonAdamW is ``muon``, AdamWScheduleFree ``schedulefree``; ``sgd``, ``rmsprop``, ``lion``,
    ...), ``polyak`` for averaged SGD, and ``lookahead`` (around SGD, the paper's name) or
    ``lookahead_<inner>`` around anything else."""
    inner = optimizer_target.rsplit(".", 1)[-1].lower()
    inner = {"adamw": "adam", "muonadamw": "muon", "adamwschedulefree": "schedulefree"}.get(inner, inner)
    if lookahead:
        return "lookahead" if inner == "sgd" else f"lookahead_{inner}"
    if averaging:
        return "polyak" if inner == "sgd" else f"polyak_{inner}"
    return inner


def dataset_name(dataset: Any) -> str:
    """The dataset's label: its config's ``name``, else its ``_target_``'s last part, lowercased."""
    name = dataset.get("name") if hasattr(dataset, "get") else None
    if name:
        return str(name)
    target = str(dataset.get("_target_", "dataset")) if hasattr(dataset, "get") else "dataset"
    return target.rsplit(".", 1)[-1].lower()


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("dataset_name"):
        OmegaConf.register_new_resolver("dataset_name", dataset_name)
    if not OmegaConf.has_resolver("or_default"):
        OmegaConf.register_new_resolver("or_default", lambda value, default: value or default)
    if not OmegaConf.has_resolver("method_name"):
        OmegaConf.register_new_resolver("method_name", method_name)


def one_line(message: object) -> str:
    """A message as one line (Hydra's and OmegaConf's span several)."""
    text = str(message).split("\nConfig search path", 1)[0]
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


class FailedJob(str):
    """What a multirun job that stopped on a user error returns (its message), for ``SweepReport``."""


def user_errors_exit(task: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a Hydra task function: a known user error prints `error: <message>` (one line) and exits
    with 1; inside a multirun it is reported and the sweep goes on with the other jobs."""

    @functools.wraps(task)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return task(*args, **kwargs)
        except InstantiationException as err:
            if isinstance(err.__cause__, USER_ERRORS):
                message = one_line(err.__cause__)
            elif (missing := missing_extra(err, "this run")) is not None:
                message = str(missing)
            else:
                raise  # the arguments were checked before: an error inside the target is a bug
        except USER_ERRORS as err:
            message = one_line(err)
        except ModuleNotFoundError as err:  # an optional extra's package, imported where no check said so
            missing = missing_extra(err, "this run")
            if missing is None:
                raise
            message = str(missing)
        if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
            overrides = " ".join(HydraConfig.get().overrides.task)
            print(f"error: job {HydraConfig.get().job.num} ({overrides}): {message}", file=sys.stderr)
            return FailedJob(message)
        print(f"error: {message}", file=sys.stderr)
        sys.exit(1)

    return wrapper


class SweepReport(Callback):
    """Counts a multirun's jobs that failed and says so in a final line; the exit code is then 1."""

    def __init__(self) -> None:
        self.total = self.failed = 0

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """The SLURM launcher on a machine that is not a SLURM login node: one line, before submitting."""
        target = str(OmegaConf.select(config, "hydra.launcher._target_", default=""))
        if target.endswith("SlurmLauncher") and shutil.which("srun") is None:
            print(
                "error: hydra/launcher=slurm needs a SLURM cluster (no `srun` on this machine): run the "
                "command on the cluster's login node, or drop hydra/launcher=slurm to run here",
                file=sys.stderr,
            )
            sys.exit(1)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        self.total += 1
        if job_return.status == JobStatus.FAILED or isinstance(job_return._return_value, FailedJob):
            self.failed += 1

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.total:
            print(
                f"sweep: {self.total - self.failed} of {self.total} jobs ran, {self.failed} failed",
                file=sys.stderr,
            )
        if self.failed:
            sys.exit(1)


class OutputDirCheck(Callback):
    """Hydra creates its output directory (``hydra.run.dir``, ``hydra.sweep.dir``: the runs root, or
    the run directory named on the command line) before the task runs; one that cannot be created (a
    file in the way, no permission) is one error line here instead of Hydra's traceback. The folder
    is created empty, as Hydra would; nothing is written in it."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _make_dir(str(config.hydra.run.dir))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _make_dir(str(config.hydra.sweep.dir))


def _make_dir(path: str) -> None:
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        cause = (
            "a file is in the way"
            if isinstance(err, (FileExistsError, NotADirectoryError))
            else CAUSES.get(err.errno or 0) or err.strerror or str(err)
        )
        print(f"error: cannot create the run directory {path}: {cause}", file=sys.stderr)
        sys.exit(1)


def _raise(err: BaseException) -> None:
    raise err


def hydra_errors_in_one_line() -> None:
    """Make Hydra print its own errors (an unknown group option, a malformed override) as one
    `error: ...` line with exit code 1, like ours. ``HYDRA_FULL_ERROR=1`` keeps Hydra's full report.

    Hydra has no hook for this: its internal ``run_and_report`` is replaced for this process.
    """
    import hydra._internal.utils as hydra_utils

    original = hydra_utils.run_and_report

    def run_and_report(func: Callable[[], Any]) -> Any:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            return original(func)
        try:
            return func()
        except (HydraException, OmegaConfBaseException) as err:  # composition, overrides
            where = f"cannot parse {err.override!r}: " if isinstance(err, OverrideParseException) else ""
            print(f"error: {where}{one_line(err)}", file=sys.stderr)
            sys.exit(1)
        except Exception as err:  # anything else is a bug: Hydra's own (trimmed) traceback
            return original(functools.partial(_raise, err))

    hydra_utils.run_and_report = run_and_report
