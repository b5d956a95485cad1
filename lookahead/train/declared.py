"""Ranges of optimizer arguments whose own signatures carry none, declared once per optimizer class.

The config check (lookahead/train/signature.py) reads a class's ranges from its ``__init__``'s type hints
(``beam: PositiveInt``). Third-party optimizers hint types at most (``momentum: float``), and check some
ranges in their constructors and not others (``torch.optim.Muon`` refuses momentum < 0 but takes 1.5;
Lion asserts ``lr > 0`` without a message and never looks at weight decay). The functions below are
stand-in signatures: each lists the arguments of one class (keyed ``module.Class``, where the class is
defined) whose range it declares, with the range types of lookahead/ranges.py; the check reads them in
place of (only) those arguments' own hints. The shipped configs using them are configs/optimizer/.
What a constructor still refuses itself becomes one line naming the field (signature.check_optimizer).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from lookahead.ranges import Betas, Count, Decay, NonNegativeFloat, PositiveFloat, PositiveInt


def muon_adamw(
    lr: NonNegativeFloat,
    weight_decay: NonNegativeFloat,
    momentum: Decay,
    ns_steps: PositiveInt,
    adjust_lr_fn: Literal["original", "match_rms_adamw", "spectral_unclamped"] | None,
    adamw_lr: NonNegativeFloat | None,
    adamw_betas: Betas,
    adamw_eps: NonNegativeFloat,
    adamw_weight_decay: NonNegativeFloat | None,
) -> None:
    """lookahead.optim.muon.MuonAdamW (configs/optimizer/muon.yaml)."""


def lion(lr: PositiveFloat, betas: Betas, weight_decay: NonNegativeFloat) -> None:
    """lion_pytorch.Lion (configs/optimizer/lion.yaml)."""


def schedule_free_adamw(
    lr: NonNegativeFloat,
    betas: Betas,
    eps: NonNegativeFloat,
    weight_decay: NonNegativeFloat,
    warmup_steps: Count,
    r: NonNegativeFloat,
    weight_lr_power: NonNegativeFloat,
) -> None:
    """schedulefree.AdamWScheduleFree (configs/optimizer/schedulefree_adamw.yaml)."""


def sgd(momentum: Decay, dampening: Decay) -> None:
    """torch.optim.SGD (configs/optimizer/sgd.yaml): torch checks momentum >= 0 only."""


def rmsprop(alpha: Decay, momentum: Decay) -> None:
    """torch.optim.RMSprop (configs/optimizer/rmsprop.yaml): torch checks >= 0 only."""


DECLARED: dict[str, Callable[..., None]] = {
    "lookahead.optim.muon.MuonAdamW": muon_adamw,
    "lion_pytorch.lion_pytorch.Lion": lion,
    "schedulefree.adamw_schedulefree.AdamWScheduleFree": schedule_free_adamw,
    "torch.optim.sgd.SGD": sgd,
    "torch.optim.rmsprop.RMSprop": rmsprop,
}
