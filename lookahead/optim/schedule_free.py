"""Schedule-free optimizers (Defazio et al., 2024, the ``schedulefree`` package) and what Lookahead around
one means.

Schedule-free AdamW keeps three sequences: ``z`` (the base AdamW-like steps, in its state), ``x`` (a
weighted average of the ``z``: the weights it is evaluated with) and ``y = (1 - beta1) z + beta1 x`` (where
gradients are taken). The parameters hold ``y`` in train mode and ``x`` in eval mode; ``.train()`` and
``.eval()`` swap them, and ``step()`` refuses to run in eval mode.

What Lookahead around it means (docs/modern_optimizers.md): the fast weights are the schedule-free
optimizer's output ``x``, the weights it would itself be evaluated with. :class:`~lookahead.Lookahead`
recognises such an optimizer by what it can do (:func:`is_schedule_free`), not by its type, and takes its
slow weights and runs every sync in eval mode: ``phi <- phi + alpha (x - phi)`` and ``x <- phi``; ``z`` and
the second moments are kept (as ``pullback_momentum="none"`` keeps Adam's moments), and back in train mode
``y`` follows from the new ``x``. ``alpha = 1`` gives schedule-free alone, up to the rounding of one
eval/train swap per sync.

This module does not import Lookahead (Lookahead imports it).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


def is_schedule_free(optimizer: torch.optim.Optimizer) -> bool:
    """True for a ``schedulefree``-style optimizer: ``train()``/``eval()`` methods and a ``train_mode`` flag
    in its groups."""
    return (
        callable(getattr(optimizer, "eval", None))
        and callable(getattr(optimizer, "train", None))
        and bool(optimizer.param_groups)
        and "train_mode" in optimizer.param_groups[0]
    )


@contextmanager
def eval_mode(optimizer: torch.optim.Optimizer) -> Iterator[None]:
    """Parameters in a schedule-free optimizer's eval mode (``x``) inside, back in train mode (``y``) after.

    ``optimizer`` may be a wrapper around one (Lookahead: its ``.optimizer``). A no-op for other
    optimizers and when already in eval mode (so it nests)."""
    wrapped = getattr(optimizer, "optimizer", None)
    inner = wrapped if isinstance(wrapped, torch.optim.Optimizer) else optimizer
    if not is_schedule_free(inner) or not inner.param_groups[0]["train_mode"]:
        yield
        return
    inner.eval()
    try:
        yield
    finally:
        inner.train()
