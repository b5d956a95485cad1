"""Config -> objects: the inner optimizer, Lookahead around it, the LR schedule, averaging."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from lookahead.data import Dataset, TensorLoader
from lookahead.optim.lookahead import Lookahead
from lookahead.optim.polyak import PolyakAverage


class ConfigError(ValueError):
    """A config value that makes no sense; the message names the field."""


def validate(cfg: DictConfig) -> None:
    """Check the values that would otherwise fail late or silently (one clear message each)."""
    checks = [
        (cfg.optimizer.get("lr", 0) >= 0, f"optimizer.lr must be >= 0, got {cfg.optimizer.get('lr')}"),
        (cfg.trainer.max_epochs >= 1, f"trainer.max_epochs must be >= 1, got {cfg.trainer.max_epochs}"),
        (cfg.trainer.batch_size >= 1, f"trainer.batch_size must be >= 1, got {cfg.trainer.batch_size}"),
        (
            cfg.trainer.eval_weights in ("slow", "fast", "both"),
            f"trainer.eval_weights must be slow, fast or both, got {cfg.trainer.eval_weights!r}",
        ),
    ]
    if cfg.lookahead.enabled:
        k, alpha = cfg.lookahead.k, cfg.lookahead.alpha
        checks += [
            (
                isinstance(k, int) and not isinstance(k, bool) and k >= 1,
                f"lookahead.k must be a positive int, got {k!r}",
            ),
            (
                isinstance(alpha, (int, float)) and 0 < alpha <= 1,
                f"lookahead.alpha must be in (0, 1], got {alpha!r}",
            ),
        ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


def build_optimizer(cfg: DictConfig, model: nn.Module) -> torch.optim.Optimizer:
    """The inner optimizer from ``cfg.optimizer`` (a partial ``_target_``), wrapped in Lookahead if on."""
    inner = instantiate(cfg.optimizer)(model.parameters())
    if not cfg.lookahead.enabled:
        return inner
    return Lookahead(
        inner, k=cfg.lookahead.k, alpha=cfg.lookahead.alpha, pullback_momentum=cfg.lookahead.pullback_momentum
    )


def lr_factor(schedule: DictConfig, steps_per_epoch: int, total_steps: int) -> Any:
    """Multiplier of the base LR as a function of the (0-based) inner step; stepped every iteration."""
    name = schedule.name
    if name == "constant":
        return lambda step: 1.0
    if name == "multistep":  # the paper's CIFAR schedule: x gamma at the given epochs
        boundaries = [m * steps_per_epoch for m in schedule.milestones]
        return lambda step: schedule.gamma ** sum(step >= b for b in boundaries)
    if name == "cosine":
        floor = schedule.get("min_factor", 0.0)
        return lambda step: (
            floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))
        )
    if name == "warmup":  # linear warmup, then inverse square root decay (Transformer schedule)
        warmup = max(1, int(schedule.warmup_epochs * steps_per_epoch))
        return lambda step: min((step + 1) / warmup, math.sqrt(warmup / (step + 1)))
    raise ConfigError(f"schedule.name must be constant, multistep, cosine or warmup, got {name!r}")


def build_scheduler(cfg: DictConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int):
    total = steps_per_epoch * cfg.trainer.max_epochs
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(cfg.schedule, steps_per_epoch, total))


def build_averaging(cfg: DictConfig, model: nn.Module, steps_per_epoch: int) -> PolyakAverage | None:
    if not cfg.averaging.enabled:
        return None
    return PolyakAverage(model, start_step=int(cfg.averaging.start_epoch * steps_per_epoch))


@dataclass
class Setup:
    """Everything a training run is made of, built from its config."""

    data: Dataset
    model: nn.Module
    train_loader: TensorLoader
    test_loader: TensorLoader
    steps_per_epoch: int
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    averaging: PolyakAverage | None


def build(cfg: DictConfig, device: torch.device | str = "cpu") -> Setup:
    """Dataset -> model -> loaders -> inner optimizer (+ Lookahead) -> LR schedule -> averaging.

    Seed the RNGs first: the model's initial weights come from the global torch RNG.
    """
    data = instantiate(cfg.dataset, device=device)
    model = instantiate(cfg.model, num_classes=data.num_classes).to(device)
    tcfg = cfg.trainer
    train_loader = TensorLoader(
        data.train_x,
        data.train_y,
        tcfg.batch_size,
        shuffle=True,
        transform=data.train_transform,
        seed=cfg.seed,
    )
    test_loader = TensorLoader(data.test_x, data.test_y, tcfg.eval_batch_size, transform=data.eval_transform)
    steps_per_epoch = len(train_loader)
    if tcfg.get("limit_train_batches"):
        steps_per_epoch = min(steps_per_epoch, int(tcfg.limit_train_batches))
    optimizer = build_optimizer(cfg, model)
    return Setup(
        data,
        model,
        train_loader,
        test_loader,
        steps_per_epoch,
        optimizer,
        build_scheduler(cfg, optimizer, steps_per_epoch),
        build_averaging(cfg, model, steps_per_epoch),
    )
