"""The config schema of experiments/train.py: types, ranges and choices of every field, checked on the
composed config before anything is built or written, with one message naming the field, the value and
what is allowed.

Groups are closed (an unknown key such as ``+trainer.foo=1`` is refused) except those a user fills with
their own code's arguments: ``dataset``, ``model`` and ``optimizer`` are open (only the fields listed are
checked there), so a user's own dataset or model config still plugs in.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from lookahead.optim.lookahead import check_alpha, check_k


class ConfigError(ValueError):
    """A config value that makes no sense; the message names the field."""


Check = Callable[[str, Any], None]


def _fail(field: str, value: Any, allowed: str) -> None:
    raise ConfigError(f"{field}={value!r} is not allowed: {allowed}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def integer(low: int | None = None, high: int | None = None, optional: bool = False) -> Check:
    def check(field: str, value: Any) -> None:
        if value is None and optional:
            return
        bounds = f"an integer{f' >= {low}' if low is not None else ''}{f' and <= {high}' if high is not None else ''}"
        if not _is_int(value) or (low is not None and value < low) or (high is not None and value > high):
            _fail(field, value, bounds + (" or null" if optional else ""))

    return check


def number(
    low: float | None = None, high: float | None = None, *, open_low: bool = False, optional: bool = False
) -> Check:
    def check(field: str, value: Any) -> None:
        if value is None and optional:
            return
        ok = _is_number(value) and math.isfinite(value)
        ok = (
            ok
            and (low is None or (value > low if open_low else value >= low))
            and (high is None or value <= high)
        )
        if not ok:
            lower = f"{'>' if open_low else '>='} {low}" if low is not None else ""
            upper = f"<= {high}" if high is not None else ""
            bounds = " and ".join(b for b in (lower, upper) if b)
            _fail(
                field,
                value,
                f"a finite number{' ' + bounds if bounds else ''}" + (" or null" if optional else ""),
            )

    return check


def choice(*options: Any) -> Check:
    def check(field: str, value: Any) -> None:
        if value not in options:
            _fail(field, value, "one of " + ", ".join(map(str, options)))

    return check


def boolean(field: str, value: Any) -> None:
    if not isinstance(value, bool):
        _fail(field, value, "true or false")


def text(pattern: str = r".*", what: str = "a string") -> Check:
    regex = re.compile(pattern)

    def check(field: str, value: Any) -> None:
        if not isinstance(value, str) or not regex.fullmatch(value):
            _fail(field, value, what)

    return check


def anything(field: str, value: Any) -> None:
    return None


def by(validator: Callable[[Any], Any]) -> Check:
    """A check that reuses a library's own validator (one definition of the rule), naming the field."""

    def check(field: str, value: Any) -> None:
        try:
            validator(value)
        except ValueError as err:
            raise ConfigError(f"{field}={value!r} is not allowed: {err}") from None

    return check


def integer_list(low: int = 0) -> Check:
    def check(field: str, value: Any) -> None:
        if not isinstance(value, (list, tuple, ListConfig)) or not all(
            _is_int(v) and v >= low for v in value
        ):
            _fail(field, value, f"a list of integers >= {low}")

    return check


@dataclass(frozen=True)
class Group:
    """A config node: checks per key; ``open`` groups accept keys without a check."""

    fields: Mapping[str, Check | Group]
    open: bool = False


SCHEDULES = {
    "constant": {},
    "multistep": {"milestones": integer_list(1), "gamma": number(0, open_low=True)},
    "cosine": {"min_factor": number(0, 1)},
    "warmup": {"warmup_steps": integer(0, optional=True), "warmup_epochs": number(0, optional=True)},
    "plateau": {"factor": number(0, 1, open_low=True), "patience": integer(1)},
}

SCHEMA = Group(
    {
        "experiment_name": text(r"[A-Za-z0-9][A-Za-z0-9_.+=-]{0,99}", "1-100 letters, digits and _ . + = -"),
        "method": text(r"[A-Za-z0-9_.-]+", "a label of letters, digits, _ . -"),
        "seed": integer(0),
        "device": text(r"auto|cpu|mps|cuda(:\d+)?", "auto, cpu, cuda, cuda:N or mps"),
        "run_name": text(),
        "overrides": anything,
        "paths": Group({"data": text(r".+", "a path"), "runs": text(r".+", "a path")}),
        "dataset": Group(
            {"name": text(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,49}", "1-50 letters, digits and _ . -")}, open=True
        ),
        "model": Group({"_target_": text(r"[\w.]+", "a dotted import path")}, open=True),
        "optimizer": Group(
            {
                "_target_": text(r"[\w.]+", "a dotted import path"),
                "lr": number(0, 1e6),
                "weight_decay": number(0),
            },
            open=True,
        ),
        "lookahead": Group(
            {
                "enabled": boolean,
                "k": by(check_k),
                "alpha": by(check_alpha),
                "pullback_momentum": choice("none", "reset", "pullback"),
            }
        ),
        "averaging": Group({"enabled": boolean, "start_epoch": number(0)}),
        "schedule": Group({"name": choice(*SCHEDULES)}, open=True),  # keys per name: see validate()
        "trainer": Group(
            {
                "max_epochs": integer(1),
                "batch_size": integer(1),
                "eval_batch_size": integer(1),
                "eval_weights": choice("slow", "fast", "both"),
                "fast_path": choice("auto", True, False),
                "precision": choice(None, "fp32", "bf16"),
                "channels_last": choice(None, True, False),
                "cudnn_benchmark": choice(None, True, False),
                "cuda_graphs": choice(None, True, False),
                "sync_kernel": choice(None, True, False),
                "compile": choice(False, True, "default", "max-autotune-no-cudagraphs"),
                "log_every_steps": integer(1),
                "checkpoint_every_steps": integer(0),
                "limit_train_batches": integer(1, optional=True),
                "progress": choice("auto", "bar", "lines"),
                "eval_every_steps": integer(0),
                "accumulate_steps": integer(1),
                "clip_grad_norm": number(0, open_low=True, optional=True),
                "bn_recalibration_batches": integer(0),
                "dist_timeout_s": number(0, open_low=True),
            }
        ),
        "logger": Group(
            {
                "name": choice("console", "wandb"),
                "group": text(),
                "project": text(r".+", "a W&B project name"),
                "entity": anything,
                "mode": choice(None, "online", "offline", "disabled"),
                "tags": anything,
            }
        ),
    }
)


def _walk(node: Any, group: Group, prefix: str) -> None:
    if not isinstance(node, (dict, DictConfig)):
        _fail(prefix.rstrip("."), node, "a group of fields")
    for key in node:
        field = f"{prefix}{key}"
        check = group.fields.get(key)
        if check is None:
            if group.open:
                continue
            known = ", ".join(sorted(group.fields))
            raise ConfigError(
                f"unknown field {field} (known in {prefix.rstrip('.') or 'the config'}: {known})"
            )
        value = node[key]
        if isinstance(check, Group):
            _walk(value, check, f"{field}.")
        else:
            check(field, value)


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError (one line) for the first field outside the schema."""
    try:
        data = OmegaConf.to_container(cfg, resolve=True)
    except Exception as err:  # an interpolation that cannot be resolved
        raise ConfigError(str(err).splitlines()[0]) from None
    _walk(data, SCHEMA, "")
    schedule = data["schedule"]
    extra = set(schedule) - {"name", *SCHEDULES[schedule["name"]]}
    if extra:
        raise ConfigError(
            f"unknown field schedule.{sorted(extra)[0]} for schedule {schedule['name']!r} "
            f"(known: {', '.join(sorted(SCHEDULES[schedule['name']])) or 'none'})"
        )
    for key, check in SCHEDULES[schedule["name"]].items():
        if key in schedule:
            check(f"schedule.{key}", schedule[key])
    epochs = data["trainer"]["max_epochs"]
    if schedule["name"] == "multistep" and any(m > epochs for m in schedule["milestones"]):
        _fail(
            "schedule.milestones",
            schedule["milestones"],
            f"epochs within the run (1..{epochs}); for a shorter run set schedule.milestones=[...] too, "
            f"or schedule=constant",
        )
    if data["averaging"]["enabled"] and data["averaging"]["start_epoch"] >= epochs:
        _fail("averaging.start_epoch", data["averaging"]["start_epoch"], f"< trainer.max_epochs ({epochs})")


def validate_steps(cfg: DictConfig, total_steps: int) -> None:
    """Checks that need the run's length in optimizer steps (known once the workload is built)."""
    if cfg.lookahead.enabled and cfg.lookahead.k > total_steps:
        _fail(
            "lookahead.k",
            cfg.lookahead.k,
            f"at most the run's {total_steps} optimizer steps (else it never syncs)",
        )
