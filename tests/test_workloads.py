"""The workload seam and the trainer's pieces, one by one: sharding, summed logs, the step (accumulation,
clipping, lr_scale), BatchNorm re-estimation, plateau schedule, evaluation cadence and "best" on valid."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from torch import nn

from lookahead.data.batches import rank_share
from lookahead.data.cifar import load_cifar
from lookahead.train.build import Plateau
from lookahead.train.distributed import Dist
from lookahead.train.evaluation import recalibrated_bn
from lookahead.train.schema import validate
from lookahead.train.step import TrainStep
from lookahead.train.trainer import train
from lookahead.workloads.base import Metrics, StepOutput
from lookahead.workloads.classification import Classification
from tests.conftest import compose_config, tiny_overrides


@pytest.mark.parametrize(("n", "world"), [(32, 2), (33, 2), (7, 3), (5, 8)])
def test_shards_partition_a_batch_in_order(n, world):
    parts = [range(n)[rank_share(n, r, world)] for r in range(world)]
    assert [i for p in parts for i in p] == list(range(n))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_ranks_together_see_exactly_the_one_process_batches(data_root):
    data = load_cifar(
        "cifar10", data_root / "cifar", check_integrity=False
    )  # augmented: crops and flips are part of the batch
    workload = Classification(data, batch_size=24, eval_batch_size=32, seed=3)
    whole = list(workload.train_batches(epoch=1, start=1))
    ranks = [list(workload.train_batches(epoch=1, start=1, rank=r, world=2)) for r in range(2)]
    assert len(whole) == len(ranks[0]) == 2  # 64 samples / 24 = 3 batches, from batch 1 on
    for b, (x, y) in enumerate(whole):
        assert torch.equal(torch.cat([ranks[0][b][0], ranks[1][b][0]]), x)
        assert torch.equal(torch.cat([ranks[0][b][1], ranks[1][b][1]]), y)


def test_metrics_sum_on_the_device_in_float64_and_reset():
    acc = Metrics()
    for value in (0.1, 0.2, 0.3):
        acc.add({"loss": torch.tensor(value, dtype=torch.float32), "count": 2})
    sums = acc.pop()
    assert sums["count"] == 6 and isinstance(sums["count"], int)
    expected = sum(float(torch.tensor(v, dtype=torch.float32)) for v in (0.1, 0.2, 0.3))
    assert sums["loss"] == pytest.approx(expected, abs=1e-15)
    assert acc.pop() == {}


class Regression:
    """A minimal workload for the step tests: mean squared error of a linear model."""

    unit = "samples"

    def sample_size(self, batch):
        return len(batch[1])

    def train_step(self, model, batch, carry):
        x, y = batch
        loss = ((model(x).squeeze(1) - y) ** 2).mean()
        return StepOutput(loss, len(y), {"loss": loss.detach() * len(y)}, carry, lr_scale=carry or 1.0)


def _step(model, micro_batches, clip=None, lr=0.1, carry=None):
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    TrainStep(Regression(), model, opt, sched, Dist(), torch.device("cpu"), clip_grad_norm=clip)(
        micro_batches, carry
    )
    return opt


def test_accumulated_micro_batches_of_unequal_size_give_the_full_batch_gradient():
    torch.manual_seed(0)
    x, y = torch.randn(16, 4), torch.randn(16)
    full, accumulated = nn.Linear(4, 1), nn.Linear(4, 1)
    accumulated.load_state_dict(full.state_dict())
    _step(full, [(x, y)])
    _step(accumulated, [(x[:5], y[:5]), (x[5:], y[5:])])  # 5 + 11: weighted by sample size, not 1/2 each
    for a, b in zip(full.parameters(), accumulated.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_gradient_clipping_bounds_the_update():
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    before = [p.detach().clone() for p in model.parameters()]
    _step(model, [(torch.randn(8, 4) * 100, torch.randn(8) * 100)], clip=0.5, lr=1.0)
    change = torch.cat([(p - b).flatten() for p, b in zip(model.parameters(), before)])
    assert change.norm().item() == pytest.approx(0.5, rel=1e-5)  # SGD, lr 1: the update is the gradient


def test_lr_scale_applies_to_its_step_only():
    torch.manual_seed(0)
    x, y = torch.randn(8, 4), torch.randn(8)
    plain, scaled = nn.Linear(4, 1), nn.Linear(4, 1)
    scaled.load_state_dict(plain.state_dict())
    start = [p.detach().clone() for p in plain.parameters()]
    _step(plain, [(x, y)])
    opt = _step(scaled, [(x, y)], carry=0.5)  # the toy workload returns carry as its lr_scale
    for p0, a, b in zip(start, plain.parameters(), scaled.parameters()):
        torch.testing.assert_close(b - p0, 0.5 * (a - p0))
    assert opt.param_groups[0]["lr"] == 0.1  # the scheduler sets the lr afresh after the step


def test_bn_recalibration_matches_update_bn_and_restores_the_statistics(data_root):
    data = load_cifar("cifar10", data_root / "cifar", check_integrity=False)
    workload = Classification(data, batch_size=16, eval_batch_size=32, seed=0)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(10))
    model(torch.zeros(2, 3, 32, 32))
    model[1].running_mean.fill_(5.0)  # statistics "of other weights"
    before = copy.deepcopy(model.state_dict())
    reference = copy.deepcopy(model)
    torch.optim.swa_utils.update_bn([x for x, _ in list(workload.train_batches(0))[:3]], reference)
    with recalibrated_bn(model, workload, batches=3, epoch=0, ranks=Dist()):
        torch.testing.assert_close(model[1].running_mean, reference[1].running_mean)
        torch.testing.assert_close(model[1].running_var, reference[1].running_var)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_plateau_multiplies_the_lr_after_patience_evaluations_without_improvement():
    plateau = Plateau(factor=0.5, patience=2)
    for improved in (True, False, True, False, False, False, False):
        plateau.observe(improved)
    assert plateau.value == 0.25
    restored = Plateau(0.5, 2)
    restored.load_state_dict(plateau.state_dict())
    assert (restored.value, restored.stale) == (plateau.value, plateau.stale)


def test_evaluation_every_n_steps_and_best_on_validation_never_test(data_root, tmp_path):
    cfg = compose_config(
        [
            "experiment=mnist1d_sgd",
            "trainer.max_epochs=2",
            "trainer.eval_every_steps=4",
            *tiny_overrides(data_root, tmp_path),
        ]
    )
    summary = train(validate(cfg), tmp_path / "run")  # 480 samples / 64 = 8 steps per epoch
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [4, 8, 12, 16]
    assert [r["epoch"] for r in records] == [0.5, 1, 1.5, 2]
    best = max(records, key=lambda r: (r["valid_accuracy"], r["step"]))  # ties: the later one
    assert summary.target == "valid_accuracy" and summary.best["step"] == best["step"]
    assert not any(key.startswith("test_") for key in summary.best)
    assert summary.final["test_accuracy"] == records[-1]["test_accuracy"]
