"""What a run will cost on a CPU, said before it starts: a preset sized for a GPU (CIFAR's ResNet-18,
AWD-LSTM, ImageNet, WMT14) started on a machine without one would otherwise train for weeks without a
word. One training step is timed on a copy of the model, so the run itself is unchanged.
"""

from __future__ import annotations

import copy
import threading
import time
from itertools import islice

import torch

from lookahead.errors import ConfigError
from lookahead.train.build import Setup

# Over this many hours of training steps on a CPU, ``device=auto`` asks for ``device=cpu`` to go on
# (the longest CPU target, make ptb-classic, is about 1 h 10 min idle and several hours under load).
CPU_HOURS_LIMIT = 12.0
# The CPU-scale counterpart of each GPU workload (by its dataset label).
CPU_TIERS = {
    "cifar10": "make demo (MNIST-1D, the same methods)",
    "cifar100": "make demo (MNIST-1D, the same methods)",
    "ptb": "make ptb-cpu (the small LSTM)",
    "imagenet": "make imagenet-demo (generated JPEGs)",
    "wmt14": "make synthetic-translation (a tiny Transformer)",
}


def step_seconds(setup: Setup, accumulate: int) -> float:
    """Seconds of one optimizer step's forward and backward passes (its micro-batches), timed on a
    copy of the model with torch's RNG restored afterwards: the run trains exactly as it would have."""
    model, workload = copy.deepcopy(setup.model), setup.workload
    model.train()
    batches = list(islice(workload.train_batches(0), accumulate))
    with torch.random.fork_rng(devices=[]):
        carry = workload.init_carry(model)
        start = time.perf_counter()
        for batch in batches:
            out = workload.train_step(model, batch, carry)
            out.loss.backward()
            carry = out.carry
        return time.perf_counter() - start


def duration(seconds: float) -> str:
    hours = seconds / 3600
    if hours >= 48:
        return f"{hours / 24:,.1f} days"
    return f"{hours:.1f} h" if hours >= 1 else f"{seconds / 60:.0f} min"


def check_cpu_cost(setup: Setup, device: torch.device, requested: str, epochs: int, accumulate: int) -> None:
    """On a CPU reached by ``device=auto``: time one step; a run estimated over CPU_HOURS_LIMIT is a
    ConfigError that states the estimate, how to go on (``device=cpu``) and the CPU tier instead."""
    if device.type != "cpu" or requested != "auto":
        return
    total = setup.steps_per_epoch * epochs
    # said only if the timing itself takes long enough to be noticed (a large model on a CPU)
    notice = threading.Timer(
        2.0, print, [f"no GPU (device=auto): timing one step to estimate {total:,} steps"]
    )
    notice.start()
    try:
        seconds = step_seconds(setup, accumulate)
    finally:
        notice.cancel()
    estimate = seconds * total
    if estimate <= CPU_HOURS_LIMIT * 3600:
        return
    tier = CPU_TIERS.get(setup.workload.name)
    instead = f"; or run its CPU tier: {tier}" if tier else ""
    raise ConfigError(
        f"this run is sized for a GPU: on this CPU its {total:,} steps would take about "
        f"{duration(estimate)} (one step took {seconds:.2f} s; evaluation not counted); add device=cpu "
        f"(make: ARGS=device=cpu) to run it here anyway{instead}"
    )
