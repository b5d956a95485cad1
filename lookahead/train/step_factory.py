"""The training step a run uses, made in one place: the model wrapped for several ranks (DDP) and
compiled if asked, and the step captured as a CUDA graph on the fast path. The loop only calls it."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn.parallel import DistributedDataParallel

from lookahead.train.build import Setup
from lookahead.train.distributed import Dist
from lookahead.train.graphs import GraphedStep
from lookahead.train.step import TrainStep

# What captures an eager step as CUDA graphs on the fast path (GraphedStep; tests hand in CPU stand-ins).
Capture = Callable[[TrainStep], GraphedStep]


def make_step(
    setup: Setup,
    ranks: Dist,
    device: torch.device,
    clip_grad_norm: float | None = None,
    graphed: Capture | None = None,
) -> TrainStep | GraphedStep:
    """The optimizer step of ``setup``, captured by ``graphed`` (default GraphedStep) on the fast path.
    Make it after a checkpoint is loaded: DDP broadcasts rank 0's weights."""
    fast, net = setup.fast, setup.model
    if ranks.enabled:  # every replica (and Lookahead's slow copy) starts from rank 0's weights
        net = DistributedDataParallel(net, device_ids=[device] if device.type == "cuda" else None)
    if fast.compile:  # the training forward only: evaluation runs the plain module
        net = torch.compile(net, mode=None if fast.compile in (True, "default") else fast.compile)
    step = TrainStep(
        setup.workload,
        net,
        setup.optimizer,
        setup.scheduler,
        ranks,
        device,
        fast.autocast_dtype,
        clip_grad_norm,
    )
    return (graphed or GraphedStep)(step) if fast.cuda_graphs else step
