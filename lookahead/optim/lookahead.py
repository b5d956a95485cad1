"""Lookahead optimizer.

Zhang, Lucas, Hinton, Ba. *Lookahead Optimizer: k steps forward, 1 step back.* NeurIPS 2019,
https://arxiv.org/abs/1907.08610

Any inner optimizer ``A`` moves the *fast* weights; every ``k`` inner steps the *slow* weights take one
step of size ``alpha`` toward them and the fast weights restart from the slow ones (Algorithm 1)::

    phi_0 = theta_0                                   # slow weights: the weights at the first step
    every k inner steps:
        phi   <- phi + alpha * (theta - phi)          # slow <- lerp(slow, fast, alpha)
        theta <- phi                                  # fast <- slow

The sync is ``torch._foreach_lerp_`` + ``_foreach_copy_``; with ``fused=True`` (CUDA, opt-in until it
has run on a GPU) it is one Triton kernel launch per dtype pair that reads both weight sets once and
writes both once (:mod:`lookahead.optim.fused_sync`), checked against the foreach sync at its first use.

The wrapper is a real :class:`torch.optim.Optimizer` that shares its ``param_groups`` list with the
inner optimizer, so LR schedulers, ``GradScaler`` and step hooks act on the inner optimizer unchanged.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.optim import Optimizer

from lookahead.optim import fused_sync
from lookahead.optim.fused_step import FusedStep
from lookahead.optim.schedule_free import eval_mode
from lookahead.optim.self_check import SelfCheck

PULLBACK_MODES = ("none", "reset", "pullback")
# The inner state buffer that holds momentum: SGD/RMSprop's `momentum_buffer`, Adam/AdamW's `exp_avg`.
MOMENTUM_KEYS = ("momentum_buffer", "exp_avg")
_LOW_PRECISION = (torch.float16, torch.bfloat16)
# Lookahead's per-parameter entries inside the (merged, torch.optim-format) state dict carry this prefix.
_PREFIX = "lookahead_"


def check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"Lookahead k must be a positive int (number of inner steps per sync), got {k!r}")
    return k


def check_alpha(alpha: Any) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 < alpha <= 1.0:
        raise ValueError(f"Lookahead alpha must be a number in (0, 1], got {alpha!r}")
    return float(alpha)


def _capturing(device: torch.device) -> bool:
    """Whether a CUDA graph is being captured on ``device``'s current stream (a check cannot read then)."""
    return device.type == "cuda" and torch.cuda.is_current_stream_capturing()


class Lookahead(Optimizer):
    """Wrap ``optimizer`` with Lookahead (Zhang et al., 2019, Algorithm 1).

    Args:
        optimizer: any ``torch.optim.Optimizer`` (SGD, Adam, AdamW, RMSprop, ... foreach or fused). One
            that keeps separate train and eval weights (schedule-free's ``train()``/``eval()``,
            :mod:`lookahead.optim.schedule_free`) has its eval weights ``x`` as the fast weights: slow
            weights are taken, and every sync runs, in its eval mode.
        k: inner steps per slow-weight update (a param group's ``"lookahead_k"`` overrides it).
        alpha: slow-weight step size in (0, 1]; 1 reproduces the inner optimizer exactly
            (a param group's ``"lookahead_alpha"`` overrides it; the keys are prefixed because
            RMSprop already uses ``"alpha"`` for its smoothing constant).
        pullback_momentum: what happens to the inner momentum at each sync:
            ``"none"`` keeps it (the paper's main experiments); ``"reset"`` zeroes it;
            ``"pullback"`` interpolates it like the weights, ``m <- alpha * m + (1 - alpha) * m_prev``,
            where ``m_prev`` is a copy of the buffer saved at the previous sync (zeros at first).
            The buffer is SGD/RMSprop's ``momentum_buffer`` or Adam/AdamW's ``exp_avg``. Adam's second
            moment ``exp_avg_sq`` is never touched: it estimates the gradient scale, not a direction,
            and rescaling it would change the effective learning rate.
        fp32_slow_weights: keep the slow copy of fp16/bf16 parameters in float32 so that small
            interpolations are not rounded away (parameters of other dtypes keep their dtype).
        fused: how a sync runs. ``None`` (default) and ``False``: ``torch._foreach_lerp_`` +
            ``_foreach_copy_``. ``True``: one Triton kernel launch per (fast dtype, slow dtype) pair
            of a group that reads both weight sets once and writes both once (4 memory passes instead
            of the foreach path's 5, 1 launch instead of 2+), or a ``RuntimeError`` at the first sync
            that says why (not CUDA, no Triton). The kernel has not yet run on a GPU, hence opt-in
            (``None`` will mean "the kernel where it can run" once it has, docs/gpu.md); its first
            sync is checked against the foreach sync on copies and, beyond the tolerance, the
            optimizer warns once and syncs by foreach from then on (``sync_check`` says why). A
            parameter whose slow copy does not share its strides, or that is not dense (or is fp64),
            is always synced by the foreach path.
        fused_step: opt-in (``False`` by default until measured on an idle machine): the k-th inner step
            of SGD/Adam/AdamW groups and the sync in one compiled pass per tensor instead of the inner
            step followed by the sync (:mod:`lookahead.optim.fused_step`); the other k - 1 steps stay
            the inner optimizer's own, unsupported configurations take the unfused path, and the first
            fused step is checked against the unfused one (``fused_step.check``).

    ``step()`` is ``inner.step()`` followed by :meth:`advance`; a training loop that replays the inner
    step from a CUDA graph calls ``advance()`` after each replay instead.

    The slow weights are taken lazily, at the first ``step()`` that sees a parameter, so that an
    optimizer built before ``DistributedDataParallel`` broadcasts rank 0's weights starts from the
    broadcast weights on every rank. A step skipped by ``GradScaler`` (inf/nan gradients) never
    reaches ``step()`` and so does not count toward ``k``.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        k: int = 5,
        alpha: float = 0.5,
        pullback_momentum: str = "none",
        fp32_slow_weights: bool = True,
        fused: bool | None = None,
        fused_step: bool = False,
    ) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"Lookahead wraps a torch.optim.Optimizer, got {type(optimizer).__name__}")
        if isinstance(optimizer, Lookahead):
            raise TypeError("Lookahead cannot wrap another Lookahead")
        if pullback_momentum not in PULLBACK_MODES:
            raise ValueError(f"pullback_momentum must be one of {PULLBACK_MODES}, got {pullback_momentum!r}")
        self.optimizer = optimizer
        self.pullback_momentum = pullback_momentum
        self.fp32_slow_weights = bool(fp32_slow_weights)
        if fused not in (None, True, False):
            raise ValueError(f"fused must be None, True or False, got {fused!r}")
        self.fused: bool | None = fused
        if fused_step not in (True, False):
            raise ValueError(f"fused_step must be True or False, got {fused_step!r}")
        self.fused_step: FusedStep | None = FusedStep() if fused_step else None
        self.sync_check: SelfCheck | None = None  # the kernel's first sync vs the foreach sync
        self._cache: dict[int, tuple[Any, ...]] = {}
        # Per group: (data_ptrs the decision was taken for, the kernel's plan or None for foreach).
        self._plans: dict[int, tuple[tuple[int, ...], fused_sync.SyncPlan | None]] = {}
        self._needs_init = True
        defaults = {**optimizer.defaults, "lookahead_k": check_k(k), "lookahead_alpha": check_alpha(alpha)}
        # Runs Optimizer.__init__ (hooks, profiling names); add_param_group below only tags the groups.
        super().__init__(optimizer.param_groups, defaults)
        self.param_groups = optimizer.param_groups  # ONE list, shared with the inner optimizer
        # Lookahead's own per-parameter state: {"slow": tensor[, "momentum_prev": tensor]}.
        self.state: defaultdict[torch.Tensor, dict[str, torch.Tensor]] = defaultdict(dict)

    # -- param groups -------------------------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group to the inner optimizer; its params get slow weights at their first step."""
        if not any(param_group is g for g in self.optimizer.param_groups):
            self.optimizer.add_param_group(param_group)
        param_group["lookahead_k"] = check_k(param_group.get("lookahead_k", self.defaults["lookahead_k"]))
        alpha = param_group.get("lookahead_alpha", self.defaults["lookahead_alpha"])
        param_group["lookahead_alpha"] = check_alpha(alpha)
        param_group.setdefault("lookahead_step", 0)
        self._invalidate()

    def _invalidate(self) -> None:
        self._cache.clear()
        self._plans.clear()
        self._needs_init = True

    def _slow_dtype(self, p: torch.Tensor) -> torch.dtype:
        return torch.float32 if self.fp32_slow_weights and p.dtype in _LOW_PRECISION else p.dtype

    def _missing(self) -> list[torch.Tensor]:
        """Parameters without a slow copy (or, with pullback momentum, without a saved momentum)."""
        needed = ("slow", "momentum_prev") if self.pullback_momentum == "pullback" else ("slow",)
        return [p for p in self._params() if any(n not in self.state.get(p, ()) for n in needed)]

    @torch.no_grad()
    def _init_slow_weights(self) -> None:
        """phi_0 = theta_0 for every parameter that has no slow copy yet (none after a full resume: then
        nothing is touched, not even a schedule-free optimizer's mode)."""
        missing = self._missing()
        if missing:
            with eval_mode(self.optimizer):  # schedule-free: the fast weights are its x
                for p in missing:
                    state = self.state[p]
                    if "slow" not in state:
                        state["slow"] = p.detach().to(dtype=self._slow_dtype(p), copy=True)
                    if self.pullback_momentum == "pullback" and "momentum_prev" not in state:
                        state["momentum_prev"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        self._needs_init = False

    def _group_tensors(self, index: int) -> tuple[Any, ...]:
        """(fast, slow, momentum, momentum_prev) of one group, built once and cached."""
        if index not in self._cache:
            params = self.param_groups[index]["params"]
            slow = [self.state[p]["slow"] for p in params]
            momentum, momentum_prev = [], []
            if self.pullback_momentum != "none":
                for p in params:
                    inner = self.optimizer.state.get(p, {})
                    buf = next((inner[key] for key in MOMENTUM_KEYS if inner.get(key) is not None), None)
                    if buf is not None:
                        momentum.append(buf)
                        if self.pullback_momentum == "pullback":
                            momentum_prev.append(self.state[p]["momentum_prev"])
            entry = (list(params), slow, momentum, momentum_prev)
            # Momentum buffers appear at a parameter's first inner step: cache only complete lists.
            if self.pullback_momentum == "none" or len(momentum) == len(params):
                self._cache[index] = entry
            return entry
        return self._cache[index]

    # -- the update -----------------------------------------------------------------------------------
    def _plan(
        self, index: int, fast: list[torch.Tensor], slow: list[torch.Tensor]
    ) -> fused_sync.SyncPlan | None:
        """The group's one-pass kernel plan, or None for the foreach path; rebuilt when an address moves.

        Comparing the tuple of data_ptrs is host-only work (no device sync), so a sync can run beside
        CUDA graph replays; it catches ``model.to(memory_format=...)`` or ``.cuda()`` after a sync."""
        if not self.fused or (self.sync_check is not None and not self.sync_check.passed):
            return None
        key = fused_sync.SyncPlan.addresses(fast, slow)
        cached = self._plans.get(index)
        if cached is not None and cached[0] == key:
            return cached[1]
        devices = {t.device for t in fast}
        reason = next(filter(None, map(fused_sync.unavailable_reason, devices)), None)
        if reason is None and len(devices) > 1:
            reason = f"the group's parameters are on {len(devices)} devices"
        if reason is not None and self.fused:
            raise RuntimeError(f"Lookahead(fused=True) cannot use its sync kernel: {reason}")
        plan = None if reason is not None else fused_sync.SyncPlan(fast, slow)
        self._plans[index] = (key, plan)
        return plan

    @staticmethod
    def _foreach_sync(fast: list[torch.Tensor], slow: list[torch.Tensor], alpha: float) -> None:
        if not fast:
            return
        # fp32 slow copies of low-precision params: interpolate in fp32 (allocates every k steps only).
        target = [f.to(s.dtype) if f.dtype != s.dtype else f for f, s in zip(fast, slow)]
        torch._foreach_lerp_(slow, target, alpha)  # phi <- phi + alpha * (theta - phi)
        torch._foreach_copy_(fast, slow)  # theta <- phi

    @torch.no_grad()
    def _sync(self, index: int) -> None:
        group = self.param_groups[index]
        fast, slow, _, _ = self._group_tensors(index)
        alpha = group["lookahead_alpha"]
        plan = self._plan(index, fast, slow)
        if plan is None:
            self._foreach_sync(fast, slow, alpha)
        else:
            if self.sync_check is None and not _capturing(plan.device):
                self.sync_check = fused_sync.checked_launch(plan, alpha, fast, slow, self._foreach_sync)
                if not self.sync_check.passed:
                    self.sync_check.warn("the foreach sync")
            else:
                fused_sync.launch(plan, alpha)
            if plan.fallback:  # tensors whose layout the kernel cannot address (odd strides, fp64)
                self._foreach_sync([fast[i] for i in plan.fallback], [slow[i] for i in plan.fallback], alpha)
        self._sync_momentum(index)

    @torch.no_grad()
    def _sync_momentum(self, index: int) -> None:
        """What pullback_momentum does to the inner momentum at a sync (after the weights)."""
        _, _, momentum, momentum_prev = self._group_tensors(index)
        alpha = self.param_groups[index]["lookahead_alpha"]
        if self.pullback_momentum == "reset":
            torch._foreach_zero_(momentum)
        elif self.pullback_momentum == "pullback" and momentum:
            torch._foreach_lerp_(momentum, momentum_prev, 1.0 - alpha)  # alpha*m + (1-alpha)*m_prev
            torch._foreach_copy_(momentum_prev, momentum)  # a copy, never an alias of the live buffer

    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One inner step, then :meth:`advance`: every ``k``-th step of a group updates its slow weights."""
        if self._needs_init:
            self._init_slow_weights()
        if self.fused_step is not None:  # opt-in: k-th steps with the sync folded in
            return self._step_fused(closure)
        loss = self.optimizer.step(closure) if closure is not None else self.optimizer.step()
        self.advance()
        return loss

    # -- the fused k-th step (lookahead/optim/fused_step.py) -------------------------------------------
    @torch.no_grad()
    def _step_fused(self, closure: Callable[[], float] | None) -> float | None:
        """The inner optimizer steps the groups whose step is not a fusable k-th one; the others take the
        fused step (inner update and sync in one pass) after it."""
        assert self.fused_step is not None
        loss = None
        if closure is not None:  # first: which gradients exist decides what can be fused
            with torch.enable_grad():
                loss = closure()
        fused = [
            index
            for index, group in enumerate(self.param_groups)
            if (group["lookahead_step"] + 1) % group["lookahead_k"] == 0
            and self.fused_step.reason(self.optimizer, index, group, self._group_tensors(index)[1]) is None
        ]
        groups = self.optimizer.param_groups
        # The inner step (and its hooks) runs always, on the other groups only (on none if all are fused).
        self.optimizer.param_groups = [g for i, g in enumerate(groups) if i not in fused]
        try:
            self.optimizer.step()
        finally:
            self.optimizer.param_groups = groups
        for index in fused:
            group = self.param_groups[index]
            slow = self._group_tensors(index)[1]
            self.fused_step.update(self.optimizer, group, slow, group["lookahead_alpha"], self._foreach_sync)
        self.advance(fused)
        return loss

    def advance(self, fused: Collection[int] = ()) -> None:
        """Count one inner step that was taken outside ``step()`` (for example replayed from a CUDA
        graph that captured the inner optimizer's step) and sync the slow weights when due.

        Slow weights that do not exist yet are taken first, from the current parameters, i.e. after
        that inner step; for Algorithm 1's start (the weights before the first inner step) run one
        ``step()`` eagerly first, as the usual warm-up before a capture does. Nothing here waits for
        the device: the sync is queued on the current stream like the inner step. ``fused``: groups whose
        weights the fused k-th step has already synced (only their momentum is then handled).
        """
        if self._needs_init:
            self._init_slow_weights()
        due = []
        for index, group in enumerate(self.param_groups):
            group["lookahead_step"] += 1
            if group["lookahead_step"] % group["lookahead_k"] == 0:
                due.append(index)
        if due:
            with eval_mode(self.optimizer):  # schedule-free: sync x (a no-op for other optimizers)
                for index in due:
                    self._sync_momentum(index) if index in fused else self._sync(index)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    @contextmanager
    def slow_weights(self) -> Iterator[None]:
        """Put the slow weights into the parameters; restore the exact fast weights on exit.

        >>> with opt.slow_weights():
        ...     evaluate(model)
        """
        if self._needs_init:
            self._init_slow_weights()
        with torch.no_grad():
            params = self._params()
            backup = [p.detach().clone() for p in params]
            torch._foreach_copy_(params, [self.state[p]["slow"] for p in params])
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_(params, backup)

    # -- checkpointing --------------------------------------------------------------------------------
    def _params(self) -> list[torch.Tensor]:
        return [p for g in self.param_groups for p in g["params"]]

    def state_dict(self) -> dict[str, Any]:
        """The inner optimizer's state dict, with ``lookahead_*`` entries added per parameter index.

        Groups carry ``lookahead_k``, ``lookahead_alpha`` and the step counter ``lookahead_step``; the format is
        torch.optim's own, so tools that reshard optimizer state per parameter handle it too.
        """
        for pre_hook in self._optimizer_state_dict_pre_hooks.values():
            pre_hook(self)
        state_dict = self.optimizer.state_dict()
        merged = dict(state_dict["state"])
        for index, p in enumerate(self._params()):
            if self.state.get(p):
                extra = {_PREFIX + name: value for name, value in self.state[p].items()}
                merged[index] = {**merged.get(index, {}), **extra}
        state_dict = {**state_dict, "state": merged, "pullback_momentum": self.pullback_momentum}
        for post_hook in self._optimizer_state_dict_post_hooks.values():
            state_dict = post_hook(self, state_dict) or state_dict
        return state_dict

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a Lookahead checkpoint, or a plain inner-optimizer one (slow weights are then
        taken from the current parameters at the next step)."""
        for pre_hook in self._optimizer_load_state_dict_pre_hooks.values():
            state_dict = pre_hook(self, state_dict) or state_dict
        inner_state: dict[Any, dict[str, Any]] = {}
        lookahead_state: dict[int, dict[str, torch.Tensor]] = {}
        for index, entry in state_dict["state"].items():
            inner_state[index] = {n: v for n, v in entry.items() if not n.startswith(_PREFIX)}
            ours = {n[len(_PREFIX) :]: v for n, v in entry.items() if n.startswith(_PREFIX)}
            if ours:
                lookahead_state[int(index)] = ours
            if not inner_state[index]:
                del inner_state[index]
        current = [(g["lookahead_k"], g["lookahead_alpha"]) for g in self.param_groups]
        self.optimizer.load_state_dict({"state": inner_state, "param_groups": state_dict["param_groups"]})
        self.param_groups = self.optimizer.param_groups  # load_state_dict built a new list: share it again
        for group, (k, alpha) in zip(self.param_groups, current):
            group["lookahead_k"] = check_k(group.get("lookahead_k", k))
            group["lookahead_alpha"] = check_alpha(group.get("lookahead_alpha", alpha))
            group.setdefault("lookahead_step", 0)
        params = self._params()
        self.state = defaultdict(dict)
        for index, entry in lookahead_state.items():
            p = params[index]
            self.state[p] = {n: v.to(device=p.device) for n, v in entry.items()}
        self._invalidate()
        self._needs_init = bool(self._missing())  # a full checkpoint resumes with nothing to take
        for post_hook in self._optimizer_load_state_dict_post_hooks.values():
            post_hook(self)

    def __getstate__(self) -> dict[str, Any]:
        # Optimizer.__getstate__ keeps only defaults/state/param_groups; we need the inner optimizer too.
        return {**self.__dict__, "_cache": {}, "_plans": {}}

    def __repr__(self) -> str:
        return (
            f"Lookahead(k={self.defaults['lookahead_k']}, alpha={self.defaults['lookahead_alpha']}, "
            f"pullback_momentum={self.pullback_momentum!r}, optimizer={self.optimizer!r})"
        )
