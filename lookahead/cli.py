"""Shared by the command-line entry points: Hydra resolvers and one-line error messages."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

from hydra.errors import InstantiationException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lookahead.data.dataset import DataError
from lookahead.train.build import ConfigError
from lookahead.train.checkpoint import CheckpointError
from lookahead.train.run_dir import RunDirError
from lookahead.train.state import SummaryError

# Errors whose message is the whole story: one line, no traceback, exit code 1.
USER_ERRORS = (
    ConfigError,
    DataError,
    CheckpointError,
    RunDirError,
    SummaryError,
    ValueError,
    OmegaConfBaseException,
)


def method_name(optimizer_target: str, lookahead: bool, averaging: bool) -> str:
    """The report's label from the composed groups: the inner optimizer's name (Adam and AdamW are both
    ``adam``; ``sgd``, ``rmsprop``, ``adagrad``, ...), ``polyak`` for averaged SGD, and ``lookahead``
    (around SGD, the paper's name) or ``lookahead_<inner>`` around anything else."""
    inner = optimizer_target.rsplit(".", 1)[-1].lower()
    inner = "adam" if inner in ("adam", "adamw") else inner
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


def user_errors_exit(task: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a Hydra task function: known user errors print `error: <message>` and exit with 1.

    (Hydra prints config-composition errors, e.g. an unknown group option, as one message itself.)
    """

    @functools.wraps(task)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return task(*args, **kwargs)
        except InstantiationException as err:
            cause = err.__cause__ if isinstance(err.__cause__, USER_ERRORS) else err
            print(f"error: {cause}".replace("\n", " "), file=sys.stderr)
        except USER_ERRORS as err:
            print(f"error: {err}".replace("\n", " "), file=sys.stderr)
        sys.exit(1)

    return wrapper
