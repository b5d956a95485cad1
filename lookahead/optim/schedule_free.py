"""Lookahead around a schedule-free optimizer (Defazio et al., 2024, the ``schedulefree`` package).

Schedule-free AdamW keeps three sequences: ``z`` (the base AdamW-like steps, in its state), ``x`` (a
weighted average of the ``z``: the weights it is evaluated with) and ``y = (1 - beta1) z + beta1 x`` (where
gradients are taken). The parameters hold ``y`` in train mode and ``x`` in eval mode; ``.train()`` and
``.eval()`` swap them, and ``step()`` refuses to run in eval mode.

What Lookahead around it means here (docs/modern_optimizers.md): the fast weights are the schedule-free
optimizer's output ``x``, the weights it would itself be evaluated with. Every ``k`` steps, in eval mode,
``phi <- phi + alpha (x - phi)`` and ``x <- phi``; ``z`` and the second moments are kept (as
``pullback_momentum="none"`` keeps Adam's moments), and back in train mode ``y`` follows from the new ``x``.
The slow weights ``phi`` are what a Lookahead run is evaluated with; ``trainer.eval_weights=fast``
evaluates ``x``. ``alpha = 1`` gives schedule-free alone, up to the rounding of one eval/train swap per sync.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from lookahead.optim.lookahead import Lookahead


def is_schedule_free(optimizer: torch.optim.Optimizer) -> bool:
    """True for a ``schedulefree``-style optimizer: ``train()``/``eval()`` methods and a ``train_mode`` flag
    in its groups."""
    return (
        callable(getattr(optimizer, "eval", None))
        and bool(optimizer.param_groups)
        and "train_mode" in optimizer.param_groups[0]
    )


@contextmanager
def eval_mode(optimizer: torch.optim.Optimizer) -> Iterator[None]:
    """Parameters in a schedule-free optimizer's eval mode (``x``) inside, back in train mode (``y``) after.

    ``optimizer`` may be a Lookahead around one. A no-op for other optimizers and when already in eval
    mode (so it nests)."""
    inner = optimizer.optimizer if isinstance(optimizer, Lookahead) else optimizer
    if not is_schedule_free(inner) or not inner.param_groups[0]["train_mode"]:
        yield
        return
    inner.eval()
    try:
        yield
    finally:
        inner.train()


class ScheduleFreeLookahead(Lookahead):
    """:class:`Lookahead` whose slow weights track a schedule-free optimizer's averaged weights ``x``:
    slow weights are taken, and every sync runs, in the inner optimizer's eval mode (module docstring)."""

    def _init_slow_weights(self) -> None:
        with eval_mode(self.optimizer):
            super()._init_slow_weights()

    def advance(self) -> None:
        due = self._needs_init or any(
            (g["lookahead_step"] + 1) % g["lookahead_k"] == 0 for g in self.param_groups
        )
        if not due:  # no swap on the k - 1 steps between syncs
            super().advance()
            return
        with eval_mode(self.optimizer):
            super().advance()
