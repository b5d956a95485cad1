"""Config -> objects: the workload, its model, the inner optimizer, Lookahead around it, the LR schedule,
Polyak averaging."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from hydra.utils import get_object, instantiate
from torch import nn

from lookahead.data import Dataset
from lookahead.optim.lookahead import Lookahead
from lookahead.optim.polyak import PolyakAverage
from lookahead.optim.schedule_free import is_schedule_free
from lookahead.train import schema
from lookahead.train.fast_path import FastPath, resolve_fast_path
from lookahead.train.schema import Config, ConfigError
from lookahead.train.signature import CONSTRUCTOR_ERRORS, optimizer_error, parameters
from lookahead.train.targets import check_targets
from lookahead.workloads.base import Workload
from lookahead.workloads.classification import Classification


def build_workload(config: Config, device: torch.device | str) -> Workload:
    """The ``dataset`` group instantiated: a Workload as it is, a tensor Dataset as a Classification
    workload.

    ``dataset.targets`` (the convergence targets, lookahead/train/targets.py) is not an argument of the
    dataset's target: it is taken out before instantiating and set on the workload (when given, it
    replaces the workload's own ``targets``)."""
    node = config.target("dataset")  # resolved: ${paths.data} and the like are values already
    targets = node.pop("targets", None)
    built = instantiate(node, device=device)
    if isinstance(built, Dataset):
        tcfg = config.trainer
        built = Classification(built, tcfg.batch_size, tcfg.eval_batch_size, config.seed)
    if not isinstance(built, Workload):
        raise ConfigError(
            f"dataset._target_ {node['_target_']} returned {type(built).__name__}; it must return a "
            f"lookahead.data.Dataset or a lookahead.workloads.Workload"
        )
    if targets is not None:
        built.targets = check_targets(targets)
    return built


def model_kwargs(config: Config, workload: Workload) -> dict[str, Any]:
    """What the workload hands the model (``num_classes``, ``vocab_size``): a model that does not take
    them does not fit the dataset, said in one line."""
    kwargs = workload.model_kwargs()
    target = config.target("model")["_target_"]
    takes, takes_any = parameters(get_object(target))
    missing = [k for k in kwargs if k not in takes]
    if missing and not takes_any:
        raise ConfigError(
            f"model={target} does not fit dataset={workload.name}: the dataset gives the model "
            f"{', '.join(missing)}, which it does not take; pick a model for this dataset"
        )
    return kwargs


def optimizer_class(config: Config) -> type:
    """The inner optimizer's class, without building it (``object`` for a factory function)."""
    target = get_object(config.target("optimizer")["_target_"])
    return target if isinstance(target, type) else object


def build_optimizer(
    config: Config,
    model: nn.Module,
    fused: bool = False,
    capturable: bool = False,
    sync_kernel: bool = False,
) -> torch.optim.Optimizer:
    """The inner optimizer from the ``optimizer`` group (a partial ``_target_``), wrapped in Lookahead if
    on.

    ``fused``: the optimizer's fused CUDA step (SGD, Adam, AdamW; the fast path); ``capturable``: Adam
    and AdamW keep their step counter on the device, as a CUDA graph capture requires; ``sync_kernel``:
    Lookahead's one-pass Triton sync (``fused=True``) instead of the foreach sync.
    """
    extra: dict[str, Any] = {"fused": True, "foreach": None} if fused else {}
    cls = optimizer_class(config)
    if capturable and issubclass(cls, torch.optim.Adam):
        extra["capturable"] = True
    # An optimizer that splits the model itself (MuonAdamW: Muon for hidden matrices) says how.
    param_groups_of = getattr(cls, "param_groups_of", None)
    params = param_groups_of(model) if param_groups_of is not None else model.parameters()
    try:
        inner = instantiate(config.target("optimizer"), **extra)(params)
    except CONSTRUCTOR_ERRORS as err:  # the optimizer's own checks ("Invalid beta parameter ...")
        raise optimizer_error(config.target("optimizer"), err) from None
    if is_schedule_free(inner):
        inner.train()  # built in eval mode; the trainer steps in train mode and evaluates in eval mode
    lookahead = config.lookahead
    if not lookahead.enabled:
        return inner
    return Lookahead(
        inner,
        k=lookahead.k,
        alpha=lookahead.alpha,
        pullback_momentum=lookahead.pullback_momentum,
        fused=sync_kernel,
    )


class Plateau:
    """LR factor that is multiplied by ``factor`` whenever the target metric has not improved for
    ``patience`` evaluations (the paper's "halve on plateau" for language modelling)."""

    def __init__(self, factor: float, patience: int) -> None:
        self.factor, self.patience = factor, patience
        self.value, self.stale = 1.0, 0

    def observe(self, improved: bool) -> None:
        self.stale = 0 if improved else self.stale + 1
        if self.stale >= self.patience:
            self.value *= self.factor
            self.stale = 0

    def state_dict(self) -> dict[str, float]:
        return {"value": self.value, "stale": self.stale}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.value, self.stale = state["value"], int(state["stale"])


def build_scheduler(
    config: Config, optimizer: torch.optim.Optimizer, steps_per_epoch: int, plateau: Plateau | None = None
) -> torch.optim.lr_scheduler.LambdaLR:
    """The schedule's LR factor, stepped every optimizer step (``config.schedule``: see schema.py)."""
    total = steps_per_epoch * config.trainer.max_epochs
    factor = config.schedule.lr_factor(steps_per_epoch, total, plateau)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def build_averaging(config: Config, model: nn.Module, steps_per_epoch: int) -> PolyakAverage | None:
    averaging = config.averaging
    if not averaging.enabled:
        return None
    return PolyakAverage(model, start_step=int(averaging.start_epoch * steps_per_epoch))


@dataclass
class Setup:
    """Everything a training run is made of, built from its config."""

    workload: Workload
    model: nn.Module
    steps_per_epoch: int  # optimizer steps per epoch
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    averaging: PolyakAverage | None
    plateau: Plateau | None
    fast: FastPath = field(default_factory=FastPath)

    def state_dict(self) -> dict[str, Any]:
        """The trainable state a checkpoint holds."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "averaging": self.averaging.state_dict() if self.averaging is not None else None,
            "plateau": self.plateau.state_dict() if self.plateau is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.averaging is not None:
            self.averaging.load_state_dict(state["averaging"])
        if self.plateau is not None:
            self.plateau.load_state_dict(state["plateau"])


def build(config: Config, device: torch.device | str = "cpu", world: int = 1) -> Setup:
    """Workload -> model -> inner optimizer (+ Lookahead) -> LR schedule -> averaging, with the fast
    path's settings (``world``: the number of processes) resolved on the way. ``config``: the validated
    config (``schema.validate``, called once by the entry point).

    Seed the RNGs first: the model's initial weights come from the global torch RNG.
    """
    device = torch.device(device)
    tcfg = config.trainer
    workload = build_workload(config, device)
    fast = resolve_fast_path(tcfg, device, world, workload, optimizer_class(config))
    model = instantiate(config.target("model"), **model_kwargs(config, workload)).to(device)
    if fast.channels_last:  # before the optimizer: its state (and Lookahead's slow copy) follow the layout
        model = model.to(memory_format=torch.channels_last)
    batches = workload.steps_per_epoch()
    if tcfg.limit_train_batches is not None:
        batches = min(batches, tcfg.limit_train_batches)
    steps_per_epoch = batches // tcfg.accumulate_steps
    if steps_per_epoch < 1:
        raise ConfigError(
            f"an epoch has {batches} batches, fewer than trainer.accumulate_steps={tcfg.accumulate_steps}"
        )
    optimizer = build_optimizer(
        config, model, fused=fast.fused_optimizer, capturable=fast.cuda_graphs, sync_kernel=fast.sync_kernel
    )
    plateau = None
    if isinstance(config.schedule, schema.Plateau):
        plateau = Plateau(config.schedule.factor, config.schedule.patience)
    return Setup(
        workload,
        model,
        steps_per_epoch,
        optimizer,
        build_scheduler(config, optimizer, steps_per_epoch, plateau),
        build_averaging(config, model, steps_per_epoch),
        plateau,
        fast,
    )
