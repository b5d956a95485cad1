"""Deliberately broken Lookahead variants, one defect each, for the scorecard's tests: every property of
the battery must catch at least one of them. Built as ``cls(inner, k=..., alpha=...)`` like the real ones."""

from __future__ import annotations

from typing import Any

from lookahead import Lookahead


class LazySlow(Lookahead):
    """Takes the slow weights at the first sync (from the fast weights then), not at the first step."""

    def advance(self) -> None:
        if not getattr(self, "_synced", False) and any(
            (g["lookahead_step"] + 1) % g["lookahead_k"] == 0 for g in self.param_groups
        ):
            self._synced = True
            self.state.clear()
            self._invalidate()
        super().advance()


class ResetsMomentum(Lookahead):
    """Zeroes the inner momentum at every sync, whatever alpha is."""

    def __init__(self, optimizer, **kwargs: Any) -> None:
        super().__init__(optimizer, pullback_momentum="reset", **kwargs)


class GlobalK(Lookahead):
    """Ignores the groups' own lookahead_k / lookahead_alpha."""

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        param_group.pop("lookahead_k", None)
        param_group.pop("lookahead_alpha", None)
        super().add_param_group(param_group)


class NoNewGroups(Lookahead):
    """A group added after wrapping reaches the inner optimizer but is never synced."""

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        param_group["lookahead_k"] = 10**9


class ForgetsSlow(Lookahead):
    """Leaves the slow weights out of its state dict."""

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["state"] = {
            i: {k: v for k, v in entry.items() if not k.startswith("lookahead_")}
            for i, entry in state["state"].items()
        }
        return state


class ZeroFills(Lookahead):
    """zero_grad() fills gradients with zeros."""

    def zero_grad(self, set_to_none: bool = False) -> None:
        super().zero_grad(set_to_none=set_to_none)


class DropsLoss(Lookahead):
    """step(closure) returns None."""

    def step(self, closure=None) -> None:  # type: ignore[override]
        super().step(closure)


class LowPrecisionSlow(Lookahead):
    """Keeps the slow weights of bf16/fp16 parameters in their own dtype."""

    def __init__(self, optimizer, **kwargs: Any) -> None:
        super().__init__(optimizer, fp32_slow_weights=False, **kwargs)


class CopiedGroups(Lookahead):
    """Holds copies of the inner optimizer's group dicts: a scheduler's lr never reaches the inner one."""

    def __init__(self, optimizer, **kwargs: Any) -> None:
        super().__init__(optimizer, **kwargs)
        self.param_groups = [dict(g) for g in self.param_groups]


class EagerSlow(Lookahead):
    """Takes the slow weights when built (before DDP broadcasts rank 0's weights)."""

    def __init__(self, optimizer, **kwargs: Any) -> None:
        super().__init__(optimizer, **kwargs)
        self._init_slow_weights()
