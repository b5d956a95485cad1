"""Every argument of every shipped optimizer config is checked before a run starts, hints or not: bad
values of each kind (not a number, NaN, inf, a boolean, negative rates, decays outside [0, 1), betas of
the wrong length or range) are one ConfigError naming ``optimizer.<field>``; what a constructor refuses
itself (an ``assert`` without a message included) names the field too."""

from __future__ import annotations

import inspect
import math
from pathlib import Path

import pytest
import torch
from hydra.utils import get_object
from omegaconf import OmegaConf

from lookahead.errors import ConfigError
from lookahead.train.declared import DECLARED
from lookahead.train.signature import check_optimizer, check_target_args, optimizer_error
from tests.conftest import ROOT
from tests.user_optimizer import NoHints

CONFIGS = sorted((ROOT / "configs" / "optimizer").glob("*.yaml"))
# Arguments that are rates, sizes or counts in every optimizer that has them: never negative.
NON_NEGATIVE = {"lr", "weight_decay", "eps", "momentum", "warmup_steps", "ns_steps", "alpha", "lr_decay"}
DECAYS = {"momentum", "alpha"}  # a moving-average rate: 1 would never forget


def bad_values(key: str, default: object) -> list[object]:
    """Values of the kinds a user gets wrong, by the kind of the shipped default."""
    base = key.removeprefix("adamw_")
    if isinstance(default, bool):
        return ["maybe", 1]
    if isinstance(default, (int, float)):
        values: list[object] = ["abc", math.nan, math.inf, -math.inf, True, [1.0]]
        if base in NON_NEGATIVE:
            values += [-1, -1e-8]
        if base in DECAYS:
            values += [1.0, 1.5]
        return values
    if base == "betas":
        return ["abc", [0.9], [0.9, 0.99, 0.999], [0.9, 1.0], [0.9, 1.5], [-0.1, 0.9], [math.nan, 0.9]]
    return []


def node_of(path: Path) -> dict:
    return OmegaConf.to_container(OmegaConf.load(path), resolve=True)


def refusal(node: dict) -> str | None:
    try:
        check_target_args("optimizer", node)
        check_optimizer(node)
    except ConfigError as err:
        return str(err)
    return None


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_argument_of_every_shipped_optimizer_refuses_bad_values_by_name(path):
    node = node_of(path)
    assert refusal(node) is None  # the shipped values pass
    missed = []
    for key, default in node.items():
        if key.startswith("_"):
            continue
        for value in bad_values(key, default):
            message = refusal({**node, key: value})
            if message is None or not message.startswith(f"optimizer.{key}="):
                missed.append(f"{key}={value!r}: {message}")
    assert not missed, missed


def test_declared_ranges_name_arguments_their_class_takes():
    for owner, stub in DECLARED.items():
        module, _, name = owner.rpartition(".")
        target = get_object(f"{module}.{name}")
        assert f"{target.__init__.__module__}.{target.__init__.__qualname__}" == f"{owner}.__init__"
        takes = inspect.signature(target).parameters
        assert set(inspect.signature(stub).parameters) <= set(takes), owner


NO_HINTS = {
    "_target_": "tests.user_optimizer.NoHints",
    "_partial_": True,
    "lr": 0.1,
    "decay": 0.9,
    "shape": "round",
}


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        (
            "lr",
            -1.0,
            "optimizer.lr=-1.0 is not allowed: tests.user_optimizer.NoHints refuses it "
            "(a failed AssertionError in its constructor)",
        ),
        (
            "shape",
            "oval",
            "optimizer.shape='oval' is not allowed: tests.user_optimizer.NoHints "
            "refuses it (AssertionError: unknown shape oval)",
        ),
        ("lr", math.inf, "optimizer.lr=inf is not allowed: Input should be a finite number"),
        ("decay", "abc", "optimizer.decay='abc' is not allowed: Input should be a valid number"),
        ("decay", False, "optimizer.decay=False is not allowed: Input should be a valid number"),
    ],
)
def test_an_optimizer_without_hints_is_checked_by_its_defaults_and_its_own_asserts(key, value, expected):
    assert refusal({**NO_HINTS, key: value}) == expected


def test_two_bad_values_that_each_fail_alone_name_the_optimizer_and_what_it_said():
    node = {**NO_HINTS, "lr": -1.0, "shape": "oval"}
    try:
        NoHints([torch.zeros(1)], lr=-1.0, shape="oval")
    except AssertionError as err:
        message = str(optimizer_error(node, err))
    assert message == "optimizer (tests.user_optimizer.NoHints): a failed AssertionError in its constructor"
