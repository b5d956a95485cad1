"""Step-level view of Lookahead's inner loop: fast vs slow accuracy at every step, weight snapshots,
and the accuracy surface on a plane through three weight vectors (the paper's Figures 1 and 7)."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import islice

import numpy as np
import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters
from tqdm import tqdm

from lookahead.optim.lookahead import Lookahead
from lookahead.train.build import build
from lookahead.train.distributed import Dist
from lookahead.train.evaluation import evaluate_model
from lookahead.train.schema import Config
from lookahead.train.step_factory import make_step
from lookahead.train.trainer import seed_everything


@dataclass
class InnerLoopRecord:
    steps: list[int] = field(default_factory=list)  # global step of each fast evaluation
    fast_accuracy: list[float] = field(default_factory=list)
    sync_steps: list[int] = field(default_factory=list)
    slow_accuracy: list[float] = field(default_factory=list)
    fast_path: list[torch.Tensor] = field(default_factory=list)  # flattened fast weights per step
    slow_path: list[torch.Tensor] = field(default_factory=list)  # flattened slow weights per sync


def record_inner_loop(config: Config, warmup_epochs: int, window: int, keep_path: bool = False):
    """Train ``config`` (validated by the study's entry point; with Lookahead) for ``warmup_epochs`` epochs, then for ``window`` more steps
    evaluate the fast weights after every step and the slow weights at every sync, on the workload's
    last evaluation split (``test``) and its ``accuracy``.

    Returns (record, model, evaluate) so callers can evaluate other weight vectors.
    """
    seed_everything(config.seed)
    setup = build(config, device="cpu")
    model, opt, workload = setup.model, setup.optimizer, setup.workload
    if not isinstance(opt, Lookahead):
        raise ValueError("the inner-loop study needs lookahead=on")
    # The trainer's step (clipping, lr_scale, accumulation) and its evaluation, on one process.
    ranks, device = Dist(), torch.device("cpu")
    step_fn = make_step(setup, ranks, device, config.trainer.clip_grad_norm)
    split = workload.splits()[-1].name

    def accuracy() -> float:
        return float(evaluate_model(workload, model, ranks, device, splits=[split])[f"{split}_accuracy"])

    def evaluate(vector: torch.Tensor | None = None) -> float:
        if vector is None:
            return accuracy()
        backup = parameters_to_vector(model.parameters()).detach().clone()
        vector_to_parameters(vector, model.parameters())
        result = accuracy()
        vector_to_parameters(backup, model.parameters())
        return result

    def slow_vector() -> torch.Tensor:
        return torch.cat([opt.state[p]["slow"].flatten().float() for p in model.parameters()])

    record, step, epoch = InnerLoopRecord(), 0, 0
    k = opt.param_groups[0]["lookahead_k"]
    accumulate = config.trainer.accumulate_steps
    carry = workload.init_carry(model)
    model.train()
    bar = tqdm(
        total=warmup_epochs * setup.steps_per_epoch + window,
        desc=f"seed {config.seed}: {warmup_epochs} epochs, then {window} steps evaluated",
        unit="step",
        dynamic_ncols=True,
    )
    while True:
        batches = workload.train_batches(epoch)
        while micro := list(islice(batches, accumulate)):
            if len(micro) < accumulate:
                break
            bar.update()
            carry = step_fn(micro, carry).carry
            step += 1
            if epoch < warmup_epochs:
                continue
            record.steps.append(step)
            record.fast_accuracy.append(evaluate())
            if keep_path:
                record.fast_path.append(parameters_to_vector(model.parameters()).detach().clone())
            if step % k == 0:
                record.sync_steps.append(step)
                record.slow_accuracy.append(evaluate(slow_vector()))
                if keep_path:
                    record.slow_path.append(slow_vector())
            if len(record.steps) >= window:
                bar.close()
                return record, model, evaluate
        epoch += 1


def plane(origin: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Orthonormal basis (u, v) of the plane through ``origin``, ``a`` and ``b`` (Gram-Schmidt)."""
    u = a - origin
    u = u / u.norm()
    v = b - origin
    v = v - (v @ u) * u
    return u, v / v.norm()


def project(points: list[torch.Tensor], origin: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> np.ndarray:
    stacked = torch.stack(points) - origin
    return torch.stack([stacked @ u, stacked @ v], dim=1).numpy()


def accuracy_surface(evaluate, origin, u, v, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Test accuracy at origin + x u + y v for the grid xs x ys: shape (len(ys), len(xs))."""
    with tqdm(total=len(xs) * len(ys), desc="accuracy surface", unit="point", dynamic_ncols=True) as bar:
        rows = []
        for y in ys:
            rows.append([evaluate(origin + float(x) * u + float(y) * v) for x in xs])
            bar.update(len(xs))
    return np.array(rows)
