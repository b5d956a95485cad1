"""A run sized for a GPU, started on a CPU by device=auto, states its cost and stops before it starts."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from lookahead.errors import ConfigError
from lookahead.train import cost
from lookahead.train.build import build
from lookahead.train.cost import check_cpu_cost, step_seconds
from lookahead.train.schema import validate
from lookahead.train.trainer import train
from tests.conftest import compose_config, tiny_overrides

CPU = torch.device("cpu")


def setup_of(name: str, steps_per_epoch: int) -> SimpleNamespace:
    return SimpleNamespace(workload=SimpleNamespace(name=name), steps_per_epoch=steps_per_epoch)


def test_the_estimate_names_the_way_on_and_the_cpu_tier(monkeypatch):
    monkeypatch.setattr(cost, "step_seconds", lambda setup, accumulate: 3.0)
    with pytest.raises(ConfigError) as err:  # 391 x 200 = 78,200 steps x 3 s = 234,600 s = 2.7 days
        check_cpu_cost(setup_of("cifar10", 391), CPU, "auto", 200, 1)
    assert str(err.value) == (
        "this run is sized for a GPU: on this CPU its 78,200 steps would take about 2.7 days (one step took "
        "3.00 s; evaluation not counted); add device=cpu (make: ARGS=device=cpu) to run it here anyway; "
        "or run its CPU tier: make demo (MNIST-1D, the same methods)"
    )
    with pytest.raises(ConfigError, match=r"about 2,715.3 days .* anyway$"):  # no tier for a user's workload
        check_cpu_cost(setup_of("mine", 391), CPU, "auto", 200_000, 1)


def test_asked_for_or_short_enough_it_goes_on(monkeypatch):
    monkeypatch.setattr(cost, "step_seconds", lambda setup, accumulate: 3.0)
    check_cpu_cost(setup_of("cifar10", 391), CPU, "cpu", 200, 1)  # device=cpu: the user's choice
    check_cpu_cost(setup_of("cifar10", 391), torch.device("cuda"), "auto", 200, 1)
    check_cpu_cost(setup_of("cifar10", 391), CPU, "auto", 36, 1)  # 14,076 steps x 3 s = 11.7 h


def test_timing_a_step_changes_neither_the_weights_nor_the_random_stream(data_root, tmp_path):
    cfg = compose_config(["experiment=cifar10_sgd", *tiny_overrides(data_root, tmp_path, "cifar10")])
    setup = build(validate(cfg), CPU)
    before = [p.detach().clone() for p in setup.model.parameters()]
    rng = torch.get_rng_state()
    assert step_seconds(setup, accumulate=2) > 0
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(a, b) for a, b in zip(before, setup.model.parameters()))
    assert all(p.grad is None for p in setup.model.parameters())


def test_a_gpu_preset_on_a_cpu_stops_before_anything_is_written(data_root, tmp_path, monkeypatch):
    monkeypatch.setattr(cost, "CPU_HOURS_LIMIT", 0.0)  # every run is too long for this test's CPU
    overrides = [*tiny_overrides(data_root, tmp_path, "cifar10"), "device=auto"]
    if torch.cuda.is_available():
        pytest.skip("checks a machine without a GPU")
    with pytest.raises(ConfigError, match=r"^this run is sized for a GPU: on this CPU its 800 steps "):
        train(validate(compose_config(["experiment=cifar10_sgd", *overrides])), tmp_path / "run")
    assert not (tmp_path / "run").exists()
