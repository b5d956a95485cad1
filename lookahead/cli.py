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

# Errors whose message is the whole story: one line, no traceback, exit code 1.
USER_ERRORS = (ConfigError, DataError, CheckpointError, RunDirError, ValueError, OmegaConfBaseException)


def method_name(optimizer_target: str, lookahead: bool, averaging: bool) -> str:
    """The report's method label from the composed groups: sgd, adam, polyak, lookahead, lookahead_adam."""
    inner = "adam" if "adam" in optimizer_target.rsplit(".", 1)[-1].lower() else "sgd"
    if lookahead:
        return "lookahead" if inner == "sgd" else "lookahead_adam"
    return "polyak" if averaging else inner


def register_resolvers() -> None:
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
