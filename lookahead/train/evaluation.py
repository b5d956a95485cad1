"""Evaluation on the workload's named splits, with the weights the method is judged by.

Lookahead is evaluated with its slow weights (optionally the fast ones too), Polyak averaging with the
averaged weights once averaging has begun, everything else with the model itself; a schedule-free
optimizer's weights are taken in its eval mode. Sums are all-reduced
over ranks before ``workload.reduce``, so every rank gets the same metrics.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from itertools import islice

import torch
from torch import nn

from lookahead.optim.lookahead import Lookahead
from lookahead.optim.polyak import PolyakAverage
from lookahead.optim.schedule_free import eval_mode
from lookahead.train.distributed import Dist
from lookahead.workloads.base import Workload

BN_TYPES = (nn.modules.batchnorm._BatchNorm,)


def evaluate_model(
    workload: Workload,
    model: nn.Module,
    ranks: Dist,
    device: torch.device,
    autocast=None,
    splits: Sequence[str] | None = None,
) -> dict[str, float]:
    """``<split>_<metric>`` for every split of the workload (or those named in ``splits``)."""
    was_training = model.training
    model.eval()
    results: dict[str, float] = {}
    names = [s.name for s in workload.splits()] if splits is None else splits
    with torch.no_grad(), autocast or nullcontext():
        for name in names:
            logs = workload.eval_logs(model, name, ranks.rank, ranks.world)
            logs = ranks.all_reduce_sums({k: float(v) for k, v in logs.items()}, device)
            results.update({f"{name}_{k}": v for k, v in workload.reduce(logs).items()})
    model.train(was_training)
    return results


@contextmanager
def recalibrated_bn(
    model: nn.Module, workload: Workload, batches: int, epoch: int, ranks: Dist
) -> Iterator[None]:
    """Re-estimate BatchNorm statistics for the current weights from ``batches`` training batches (as
    ``torch.optim.swa_utils.update_bn`` does: a cumulative average), and restore the original
    statistics afterwards. No-op when ``batches`` is 0 or the model has no BatchNorm."""
    layers = [m for m in model.modules() if isinstance(m, BN_TYPES) and m.track_running_stats]
    if batches <= 0 or not layers:
        yield
        return
    saved = [({k: v.clone() for k, v in m.named_buffers(recurse=False)}, m.momentum) for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average over the recalibration batches
    was_training = model.training
    model.train()
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    # The RNG is restored afterwards (dropout draws): evaluating never changes the training trajectory.
    with torch.no_grad(), torch.random.fork_rng(devices=devices):
        carry = workload.init_carry(model)
        for batch in islice(workload.train_batches(epoch, 0, ranks.rank, ranks.world), batches):
            carry = workload.train_step(model, batch, carry).carry
    model.train(was_training)
    try:
        yield
    finally:
        for m, (buffers, momentum) in zip(layers, saved):
            for name, value in buffers.items():
                getattr(m, name).copy_(value)
            m.momentum = momentum


def evaluate(
    workload: Workload,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    averaging: PolyakAverage | None,
    *,
    eval_weights: str,
    bn_batches: int,
    epoch: int,
    ranks: Dist,
    device: torch.device,
    autocast=None,
) -> dict[str, float]:
    """Metrics of the weights the method is judged by (see the module docstring); a schedule-free
    optimizer is put in eval mode for it (its averaged weights) and back in train mode after."""

    def run(net: nn.Module) -> dict[str, float]:
        with recalibrated_bn(net, workload, bn_batches, epoch, ranks):
            return evaluate_model(workload, net, ranks, device, autocast)

    with eval_mode(optimizer):
        if averaging is not None and averaging.n_averaged > 0:
            return run(averaging.module)
        if isinstance(optimizer, Lookahead) and eval_weights in ("slow", "both"):
            with optimizer.slow_weights():
                results = run(model)
            if eval_weights == "both":
                results.update({f"{k}_fast": v for k, v in run(model).items()})
            return results
        return run(model)
