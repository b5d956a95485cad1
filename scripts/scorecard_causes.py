"""Why the peers fail the scorecard (scripts/scorecard.py): one record per root cause, read in the peer's
source at a pinned version, and a fix for each, a subclass of the peer's class that removes that cause
and nothing else. The fixes exist only so that the scorecard can attribute each failed row to its causes
by experiment (a row belongs to a cause when it fails with every fix but that one); they are never
offered as implementations. A defect also carries a reproduction of a few lines for the peer's
maintainers: it fails (an assertion or the peer's exception) while the defect is there and passes with the
fix, and the scorecard runs it both ways.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

import torch

DEFECT, FEATURE = "defect", "feature"


@dataclass(frozen=True)
class Cause:
    impl: str  # the implementation's short name (the first word of its column title)
    key: str  # the fix's name
    kind: str  # DEFECT: a wrong result or a crash on a call torch.optim supports; FEATURE: not offered
    what: str  # what the peer's code does, one sentence
    repro: str = ""  # defects: a few lines that fail while the defect is there
    shows: str = ""  # how the repro's last line of stderr starts while the defect is there


# The peer versions the catalogue was read at; another installed version gets its failures listed ungrouped.
VERSIONS = {"pytorch_optimizer": "4.1.0", "timm": "1.0.31", "torch-optimizer": "0.3.0"}

_FIRST_SYNC = """\
import torch
from {module} import Lookahead
w = torch.nn.Parameter(torch.zeros(1))
opt = Lookahead(torch.optim.SGD([w], lr=1.0), k=5, alpha=0.5)
for _ in range(5):  # each inner step moves w by -1
    w.grad = torch.ones(1)
    opt.step()
# Algorithm 1: slow weights phi = w0 = 0; the sync after step 5 sets w = phi + 0.5 (-5 - phi) = -2.5
assert w.item() == -2.5, f"w = {{w.item()}} after the first k = 5 steps, Algorithm 1 gives -2.5"
"""

CAUSES: tuple[Cause, ...] = (
    Cause(
        "pytorch_optimizer",
        "eager",
        DEFECT,
        "copies the slow weights when the wrapper is built, so weights set afterwards (DDP's broadcast of "
        "rank 0's weights, `model.load_state_dict`) never become the slow weights: the first sync pulls "
        "towards the weights at construction, and DDP replicas built that way diverge",
        """\
import torch
from pytorch_optimizer import Lookahead
w = torch.nn.Parameter(torch.zeros(1))
opt = Lookahead(torch.optim.SGD([w], lr=0.0), k=5, alpha=0.5)
with torch.no_grad():
    w.fill_(1.0)  # weights set after the wrapper is built, as DDP's broadcast or load_state_dict do
for _ in range(5):
    w.grad = torch.ones(1)
    opt.step()  # lr 0: nothing should move w
assert w.item() == 1.0, f"w = {w.item()} after 5 steps at lr 0: the sync pulled it to the weights at construction"
""",
        "AssertionError",
    ),
    Cause(
        "pytorch_optimizer",
        "alpha_one",
        FEATURE,
        "validates alpha in [0, 1) and refuses alpha = 1 (Lookahead as the inner optimizer) with a clear error",
    ),
    Cause(
        "pytorch_optimizer",
        "per_group",
        FEATURE,
        "one k and one alpha for all groups (a group's `lookahead_k` / `lookahead_alpha` are not read)",
    ),
    Cause(
        "pytorch_optimizer",
        "dtype",
        FEATURE,
        "keeps the slow copy in the parameter's dtype (no fp32 slow weights for bf16/fp16 parameters)",
    ),
    Cause(
        "timm",
        "start",
        DEFECT,
        "creates a group's slow weights at its first sync from the fast weights of that moment "
        "(`update_slow`), so they start at theta_k instead of theta_0 and the first sync does nothing",
        _FIRST_SYNC.format(module="timm.optim"),
        "AssertionError",
    ),
    Cause(
        "timm",
        "dtype",
        FEATURE,
        "keeps the slow copy in the parameter's dtype (no fp32 slow weights for bf16/fp16 parameters)",
    ),
    Cause(
        "torch-optimizer",
        "offset",
        DEFECT,
        "syncs after inner steps 1, k + 1, 2k + 1, ... (its counter is 0 at the first step), with slow "
        "weights taken after step 1 instead of before it",
        _FIRST_SYNC.format(module="torch_optimizer"),
        "AssertionError",
    ),
    Cause(
        "torch-optimizer",
        "add_group",
        DEFECT,
        "`add_param_group` is the base class's, so a group added after wrapping lacks the `counter` key "
        "and the next `step()` raises KeyError",
        """\
import torch
from torch_optimizer import Lookahead
a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
opt = Lookahead(torch.optim.SGD([a], lr=0.1), k=5, alpha=0.5)
opt.add_param_group({"params": [b]})
a.grad, b.grad = torch.ones(1), torch.ones(1)
opt.step()
""",
        "KeyError: 'counter'",
    ),
    Cause(
        "torch-optimizer",
        "state_dict",
        DEFECT,
        "never calls `Optimizer.__init__`, and `Optimizer.state_dict` in torch 2.14 needs the hook dicts it "
        "sets up: `state_dict()` raises AttributeError, so no checkpoint can be written",
        """\
import torch
from torch_optimizer import Lookahead
w = torch.nn.Parameter(torch.zeros(1))
opt = Lookahead(torch.optim.SGD([w], lr=0.1), k=5, alpha=0.5)
opt.state_dict()
""",
        "AttributeError",
    ),
    Cause(
        "torch-optimizer",
        "zero_grad",
        DEFECT,
        "`zero_grad()` defaults to `set_to_none=False`: gradients are zero-filled, so a parameter that gets "
        "no gradient in a step is still moved by the inner optimizer's momentum (torch.optim skips it)",
        """\
import torch
from torch_optimizer import Lookahead
w, u = torch.nn.Parameter(torch.ones(1)), torch.nn.Parameter(torch.ones(1))
opt = Lookahead(torch.optim.SGD([w, u], lr=0.1, momentum=0.9), k=5, alpha=0.5)
(w + u).sum().backward()
opt.step()
opt.zero_grad()
before = u.item()
w.sum().backward()  # u gets no gradient in this step
opt.step()
assert u.item() == before, f"u moved from {before} to {u.item()} in a step where it had no gradient"
""",
        "AssertionError",
    ),
    Cause(
        "torch-optimizer",
        "per_group",
        FEATURE,
        "one k and one alpha for all groups (a group's `lookahead_k` / `lookahead_alpha` are not read)",
    ),
    Cause(
        "torch-optimizer",
        "dtype",
        FEATURE,
        "keeps the slow copy in the parameter's dtype (no fp32 slow weights for bf16/fp16 parameters)",
    ),
)


def causes_of(impl: str, version: str) -> list[Cause]:
    """The catalogue's causes for an implementation at the version it was read at (else none)."""
    return [c for c in CAUSES if c.impl == impl] if VERSIONS.get(impl) == version else []


def _slow_copy(p: torch.Tensor, fp32: bool) -> torch.Tensor:
    copy = p.detach().clone()
    return copy.float() if fp32 and copy.dtype in (torch.bfloat16, torch.float16) else copy


def _timm(base: type, fixes: frozenset[str]) -> type:
    class Fixed(base):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self._theta0: dict[torch.Tensor, torch.Tensor] = {}

        def step(self, closure=None):
            if "start" in fixes:  # the weights before a group's first inner step become its slow weights
                for group in self.param_groups:
                    for p in group["params"]:
                        if (
                            p not in self._theta0
                            and "lookahead_slow_buff" not in self._base_optimizer.state[p]
                        ):
                            self._theta0[p] = _slow_copy(p, "dtype" in fixes)
            return super().step(closure)

        @torch.no_grad()
        def update_slow(self, group) -> None:
            # Put the slow copy where timm looks for it only now: the inner optimizer's state of the
            # parameter must stay empty until its own first step (Adam initialises on len(state) == 0).
            for p in group["params"]:
                state = self._base_optimizer.state[p]
                if p.grad is not None and "lookahead_slow_buff" not in state:
                    if p in self._theta0:
                        state["lookahead_slow_buff"] = self._theta0.pop(p)
                    elif "dtype" in fixes:
                        state["lookahead_slow_buff"] = _slow_copy(p, True)
            super().update_slow(group)

    return Fixed


def _pytorch_optimizer(base: type, fixes: frozenset[str]) -> type:
    class Fixed(base):
        def __init__(self, optimizer, k: int = 5, alpha: float = 0.5, **kwargs) -> None:
            one = "alpha_one" in fixes and alpha == 1.0
            super().__init__(optimizer, k=k, alpha=0.5 if one else alpha, **kwargs)
            if one:
                self.alpha = self.defaults["lookahead_alpha"] = 1.0

        def init_group(self, group, **kwargs) -> None:
            super().init_group(group, **kwargs)
            if "dtype" in fixes:
                for p in group.get("params", []):
                    self.state[p]["slow_params"] = _slow_copy(p, True)

        def step(self, closure=None):
            if "eager" in fixes:  # the weights at a group's first step are its slow weights
                with torch.no_grad():
                    for group in self.param_groups:
                        if not group.get("slow_taken"):  # a flag that travels in state_dict's groups
                            for p in group["params"]:
                                self.state[p]["slow_params"].copy_(p)
                            group["slow_taken"] = True
            if "per_group" not in fixes:
                return super().step(closure)
            loss = self.optimizer.step(closure)
            for group in self.param_groups:
                group["counter"] += 1
                if group["counter"] >= group.get("lookahead_k", self.k):
                    group["counter"] = 0
                    self.update(group)
            return loss

        @torch.no_grad()
        def update(self, group) -> None:
            alpha = group.get("lookahead_alpha", self.alpha) if "per_group" in fixes else self.alpha
            if "dtype" in fixes:
                for p in group["params"]:
                    if p.grad is not None:
                        slow = self.state[p]["slow_params"]
                        slow.add_(p.to(slow.dtype) - slow, alpha=alpha)
                        p.copy_(slow)
                return
            saved, self.alpha = self.alpha, alpha
            try:
                super().update(group)
            finally:
                self.alpha = saved

    return Fixed


_HOOKS = (
    "_optimizer_step_pre_hooks",
    "_optimizer_step_post_hooks",
    "_optimizer_state_dict_pre_hooks",
    "_optimizer_state_dict_post_hooks",
    "_optimizer_load_state_dict_pre_hooks",
    "_optimizer_load_state_dict_post_hooks",
)


def _torch_optimizer(base: type, fixes: frozenset[str]) -> type:
    class Fixed(base):
        def __init__(self, optimizer, k: int = 5, alpha: float = 0.5) -> None:
            super().__init__(optimizer, k=k, alpha=alpha)
            if "state_dict" in fixes:  # what Optimizer.__init__ sets up and state_dict() needs
                for name in _HOOKS:
                    setattr(self, name, OrderedDict())

        def add_param_group(self, param_group) -> None:
            if "add_group" not in fixes:
                return super().add_param_group(param_group)
            self.optimizer.add_param_group(param_group)
            self.param_groups[-1]["counter"] = 0

        def zero_grad(self, set_to_none: bool | None = None) -> None:
            self.optimizer.zero_grad("zero_grad" in fixes if set_to_none is None else set_to_none)

        def step(self, closure=None):
            if "offset" in fixes:  # slow weights before the first inner step
                for group in self.param_groups:
                    for p in group["params"]:
                        if "slow_param" not in self.state[p]:
                            self.state[p]["slow_param"] = _slow_copy(p, "dtype" in fixes)
            loss = self.optimizer.step(closure=closure)
            for group in self.param_groups:
                k = group.get("lookahead_k", self.k) if "per_group" in fixes else self.k
                if "offset" in fixes:  # a sync after inner steps k, 2k, ...
                    group["counter"] += 1
                    if group["counter"] >= k:
                        group["counter"] = 0
                        self._update(group)
                else:  # the peer's own order
                    if group["counter"] == 0:
                        self._update(group)
                    group["counter"] = (group["counter"] + 1) % k
            return loss

        @torch.no_grad()
        def _update(self, group) -> None:
            alpha = group.get("lookahead_alpha", self.alpha) if "per_group" in fixes else self.alpha
            if "dtype" not in fixes:
                saved, self.alpha = self.alpha, alpha
                try:
                    return super()._update(group)
                finally:
                    self.alpha = saved
            for p in group["params"]:
                if "slow_param" not in self.state[p]:
                    self.state[p]["slow_param"] = _slow_copy(p, True)
                slow = self.state[p]["slow_param"]
                slow.add_(p.to(slow.dtype) - slow, alpha=alpha)
                p.copy_(slow)

    return Fixed


_FIXERS = {"pytorch_optimizer": _pytorch_optimizer, "timm": _timm, "torch-optimizer": _torch_optimizer}


def with_fixes(impl: str, base: type, fixes: Iterable[str]) -> type:
    """The peer's class with the named causes removed; with none, a subclass that must behave as the
    peer itself (the scorecard checks that it does, so the fixes' scaffolding changes nothing else)."""
    fixes = frozenset(fixes)
    unknown = fixes - {c.key for c in CAUSES if c.impl == impl}
    if impl not in _FIXERS or unknown:
        raise ValueError(f"no fix {sorted(unknown)} for {impl}")
    cls = _FIXERS[impl](base, fixes)
    cls.__name__ = cls.__qualname__ = f"{base.__name__}_fixed_{'_'.join(sorted(fixes)) or 'none'}"
    return cls
