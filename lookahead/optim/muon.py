"""Muon on the hidden 2-D weight matrices and AdamW on everything else, as one torch.optim optimizer.

Muon (Jordan et al., 2024; ``torch.optim.Muon`` since torch 2.9) orthogonalises the momentum of a weight
matrix with a Newton-Schulz iteration. Its authors prescribe it for the 2-D weights of hidden layers only:
the input embedding, the output layer, biases and norm gains are trained by a standard method such as
AdamW. ``torch.optim.Muon`` accepts 2-D parameters only, so a model needs both optimizers.

:class:`MuonAdamW` holds one ``torch.optim.Muon`` and one ``torch.optim.AdamW`` and presents them as one
``Optimizer``: a single ``param_groups`` list and a single ``state`` dict that the two share (each group
carries ``"use_muon"``), so LR schedulers, :class:`~lookahead.optim.lookahead.Lookahead` (which shares the
same list) and ``state_dict``/``load_state_dict`` see one optimizer. :meth:`MuonAdamW.param_groups_of`
splits a model's parameters as the authors prescribe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn
from torch.optim import AdamW, Muon, Optimizer

# Modules whose 2-D weights are lookup tables or the output layer, never hidden layers.
_NOT_HIDDEN = (nn.Embedding, nn.EmbeddingBag, nn.AdaptiveLogSoftmaxWithLoss)


class MuonAdamW(Optimizer):
    """Muon for groups with ``"use_muon": True``, AdamW for the others, sharing one ``param_groups``.

    Args:
        params: parameters or param groups; a group without ``"use_muon"`` goes to Muon when every one of
            its parameters is 2-D. Use :meth:`param_groups_of` to split a model as Muon's authors do.
        lr, weight_decay: both optimizers' defaults (``adamw_lr`` / ``adamw_weight_decay`` override them
            for the AdamW groups). With ``adjust_lr_fn="match_rms_adamw"`` (the default here; Liu et al.,
            2025, "Muon is Scalable for LLM Training") Muon's update has AdamW's RMS, so one lr serves both.
        momentum, nesterov, ns_steps, adjust_lr_fn: ``torch.optim.Muon``'s.
        adamw_betas, adamw_eps: ``torch.optim.AdamW``'s.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        weight_decay: float = 0.1,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_steps: int = 5,
        adjust_lr_fn: str | None = "match_rms_adamw",
        adamw_lr: float | None = None,
        adamw_betas: tuple[float, float] = (0.9, 0.999),
        adamw_eps: float = 1e-8,
        adamw_weight_decay: float | None = None,
    ) -> None:
        # Per kind, the defaults a new group of that kind gets (and its optimizer is built with).
        self._kind_defaults: dict[bool, dict[str, Any]] = {
            True: {
                "lr": lr,
                "weight_decay": weight_decay,
                "momentum": momentum,
                "nesterov": nesterov,
                "ns_steps": ns_steps,
                "adjust_lr_fn": adjust_lr_fn,
            },
            False: {
                "lr": lr if adamw_lr is None else adamw_lr,
                "betas": tuple(adamw_betas),
                "eps": adamw_eps,
                "weight_decay": weight_decay if adamw_weight_decay is None else adamw_weight_decay,
            },
        }
        self.muon: Muon | None = None
        self.adamw: AdamW | None = None
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay})

    @staticmethod
    def param_groups_of(model: nn.Module) -> list[dict[str, Any]]:
        """Muon for the 2-D weights of hidden layers; AdamW for embeddings, the output layer (the model's
        last ``nn.Linear``, and an adaptive softmax whole) and every parameter that is not 2-D (biases,
        norm gains, convolution kernels: ``torch.optim.Muon`` takes matrices only)."""
        not_hidden: set[int] = set()
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        for module in model.modules():
            if isinstance(module, _NOT_HIDDEN) or (linears and module is linears[-1]):
                not_hidden.update(id(p) for p in module.parameters())
        muon, adamw = [], []
        for p in model.parameters():
            (muon if p.ndim == 2 and id(p) not in not_hidden else adamw).append(p)
        groups = [{"params": muon, "use_muon": True}, {"params": adamw, "use_muon": False}]
        return [g for g in groups if g["params"]]

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group to Muon (``"use_muon"``, default: all its parameters are 2-D) or to AdamW."""
        params = param_group["params"]
        params = [params] if isinstance(params, torch.Tensor) else list(params)
        tensors = [p[1] if isinstance(p, tuple) else p for p in params]
        use_muon = param_group.get("use_muon")
        use_muon = all(t.ndim == 2 for t in tensors) if use_muon is None else bool(use_muon)
        if use_muon and any(t.ndim != 2 for t in tensors):
            shapes = [tuple(t.shape) for t in tensors if t.ndim != 2]
            raise ValueError(f"a use_muon group holds parameters that are not 2-D: shapes {shapes}")
        taken = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(t) in taken for t in tensors):
            raise ValueError("some parameters appear in more than one parameter group")
        param_group["params"], param_group["use_muon"] = params, use_muon
        for name, value in self._kind_defaults[use_muon].items():
            param_group.setdefault(name, value)
        sub = self.muon if use_muon else self.adamw
        if sub is None:  # built on this very dict: the sub-optimizer and we share the group object
            sub = (Muon if use_muon else AdamW)([param_group], **self._kind_defaults[use_muon])
            if use_muon:
                self.muon = sub
            else:
                self.adamw = sub
        else:
            sub.add_param_group(param_group)
        sub.state = self.state
        self.param_groups.append(param_group)

    def _relink(self) -> None:
        """Point both sub-optimizers at our (new) group dicts and state."""
        for use_muon, sub in ((True, self.muon), (False, self.adamw)):
            if sub is not None:
                sub.param_groups = [g for g in self.param_groups if g["use_muon"] is use_muon]
                sub.state = self.state

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for sub in (self.muon, self.adamw):
            if sub is not None:
                sub.step()
        return loss

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved = [bool(g.get("use_muon")) for g in state_dict["param_groups"]]
        current = [g["use_muon"] for g in self.param_groups]
        if saved != current:
            raise ValueError(f"the state dict's groups use Muon as {saved}, this optimizer's as {current}")
        super().load_state_dict(state_dict)
        self._relink()

    def __getstate__(self) -> dict[str, Any]:
        # Optimizer.__getstate__ keeps defaults/state/param_groups only; we need the two optimizers too.
        return dict(self.__dict__)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._relink()
