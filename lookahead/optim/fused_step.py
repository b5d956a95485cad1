"""Lookahead's k-th inner step with the sync folded in: one pass instead of three (opt-in).

Unfused, the k-th step of a group is the inner optimizer's step (torch's foreach SGD with momentum reads
the buffer, the gradient and the weights and writes the buffer and the weights: about 8 passes over
parameter-sized memory, as separate foreach ops) followed by the sync (``_foreach_lerp_`` +
``_foreach_copy_``: 5 more). Here that step is ONE elementwise function per tensor, compiled by
``torch.compile`` (Inductor fuses it into one loop per tensor, C++ on the CPU, Triton on CUDA): it reads
the weight, the gradient, the optimizer state and the slow weight once, computes the new fast weight,
moves the slow weight toward it and writes the state, the slow weight and the parameter once. The other
``k - 1`` steps stay the inner optimizer's own.

Supported: ``torch.optim.SGD`` (with and without momentum, dampening, Nesterov, weight decay, maximize)
and ``torch.optim.Adam`` / ``AdamW`` (weight decay coupled or decoupled, amsgrad, maximize), fp32 dense
parameters and gradients on one CPU or CUDA device, the optimizer's own state already created (its
first step made it). Everything else -- another optimizer, ``fused=True`` / ``capturable`` /
``differentiable`` inner optimizers, low-precision or sparse tensors, Adam state steps that differ within
a group -- takes the unfused path (:func:`unsupported`). Hyper-parameters are read from the group at
every step, so schedules keep working, and passed to the compiled function as one small tensor, so a
new learning rate does not recompile. The state is updated as the inner step would update it
(``momentum_buffer``; ``step``, ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq``); one thing differs:
torch's foreach SGD with Nesterov adds the momentum into ``p.grad`` in place, this path leaves the
gradient as it was.

The compiled loop rounds like the inner step up to the order of operations (Inductor computes
``a + b * c`` as a product and a sum where torch's CPU kernels use one fused multiply-add), so the first
fused step of an optimizer is checked (:meth:`FusedStep.checked`): the inner optimizer's own step and the
foreach sync run on copies, and every tensor the step writes is compared with them in units of
``eps(fp32) x`` the tensor's largest magnitude. Beyond :data:`STEP_TOLERANCE` the tensors get the
unfused results, a ``RuntimeWarning`` says why, and the optimizer takes the unfused path from then on.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.optim import SGD, Adam, AdamW, Optimizer

from lookahead.optim.fused_sync import _magnitude, _worst
from lookahead.optim.self_check import SelfCheck

# Several roundings in another order (Adam: lerp, mul, addcmul, sqrt, div, add, addcdiv, lerp), each
# at most one unit of eps x the tensor's scale; a wrong coefficient, sign or missing term is far above.
STEP_TOLERANCE = 8.0
_STATE = {SGD: ("momentum_buffer",), Adam: ("exp_avg", "exp_avg_sq"), AdamW: ("exp_avg", "exp_avg_sq")}


# -- the fused steps: one elementwise function per tensor, Inductor makes each one loop ----------------
def _sgd(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    bufs: list[torch.Tensor],
    slows: list[torch.Tensor],
    scalars: torch.Tensor,  # lr, momentum, 1 - dampening, weight_decay, alpha
    momentum: bool,
    nesterov: bool,
    maximize: bool,
    decay: bool,
) -> None:
    lr, mom, undamped, wd, alpha = scalars.unbind()
    for i, (p, g, s) in enumerate(zip(params, grads, slows)):
        if maximize:
            g = -g
        if decay:
            g = g + wd * p
        if momentum:
            b = bufs[i]
            b.copy_(b * mom + g * undamped)
            g = g + mom * b if nesterov else b
        s.lerp_(p - lr * g, alpha)  # the new fast weight, never written: the slow weight moves to it
        p.copy_(s)


def _adam(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    exp_avgs: list[torch.Tensor],
    exp_avg_sqs: list[torch.Tensor],
    max_sqs: list[torch.Tensor],
    slows: list[torch.Tensor],
    scalars: torch.Tensor,  # decay factor or weight_decay, 1 - beta1, beta2, 1 - beta2, step size, sqrt(bc2), eps, alpha
    amsgrad: bool,
    maximize: bool,
    decay: bool,
    decoupled: bool,
) -> None:
    wd, one_minus_beta1, beta2, one_minus_beta2, step_size, bc2_sqrt, eps, alpha = scalars.unbind()
    for i, (p, g, m, v, s) in enumerate(zip(params, grads, exp_avgs, exp_avg_sqs, slows)):
        if maximize:
            g = -g
        fast = p
        if decay and decoupled:
            fast = p * wd  # wd holds 1 - lr * weight_decay here
        elif decay:
            g = g + wd * p
        m.lerp_(g, one_minus_beta1)
        v.copy_(v * beta2 + g * g * one_minus_beta2)
        if amsgrad:
            max_sqs[i].copy_(torch.maximum(max_sqs[i], v))
            denom = max_sqs[i].sqrt() / bc2_sqrt + eps
        else:
            denom = v.sqrt() / bc2_sqrt + eps
        s.lerp_(fast - step_size * (m / denom), alpha)
        p.copy_(s)


_COMPILED: dict[str, Callable[..., None]] = {}
Sync = Callable[[list[torch.Tensor], list[torch.Tensor], float], None]  # Lookahead's foreach sync


def _compiled(name: str) -> Callable[..., None]:
    """One ``torch.compile`` wrapper per update, shared by all optimizers (Dynamo caches per code object)."""
    if name not in _COMPILED:
        _COMPILED[name] = torch.compile({"sgd": _sgd, "adam": _adam}[name], fullgraph=True, dynamic=False)
    return _COMPILED[name]


# -- what can be fused ----------------------------------------------------------------------------------
def unsupported(inner: Optimizer, group: dict[str, Any], slow: Sequence[torch.Tensor]) -> str | None:
    """Why a group's k-th step cannot be fused now (``None`` when it can)."""
    kind = type(inner)
    if kind not in _STATE:
        return f"{kind.__name__} is not one of SGD, Adam, AdamW"
    for flag in ("fused", "capturable", "differentiable"):
        if group.get(flag):
            return f"the inner optimizer has {flag}=True"
    params = [p for p in group["params"] if p.grad is not None]
    if not params:
        return "no parameter of the group has a gradient"
    devices = {p.device for p in params}
    if len(devices) > 1 or next(iter(devices)).type not in ("cpu", "cuda"):
        return f"the parameters are on {sorted(str(d) for d in devices)}, the fused step needs one CPU or CUDA device"
    for p, s in zip(group["params"], slow):
        if p.grad is None:
            continue
        if p.dtype != torch.float32 or s.dtype != torch.float32 or p.grad.dtype != torch.float32:
            return (
                f"a parameter, gradient or slow weight is not float32 ({p.dtype}, {p.grad.dtype}, {s.dtype})"
            )
        if p.grad.is_sparse:
            return "a gradient is sparse"
    if kind is SGD and group["momentum"] == 0:
        return None
    states = [inner.state.get(p, {}) for p in params]
    if any(state.get(key) is None for state in states for key in _STATE[kind]):
        return "the inner optimizer's state is not created yet (its first step does that)"
    if kind is not SGD:
        if group["amsgrad"] and any(state.get("max_exp_avg_sq") is None for state in states):
            return "the inner optimizer's state is not created yet (its first step does that)"
        if len({float(state["step"]) for state in states}) > 1:
            return "the parameters of the group are at different Adam steps"
    return None


def _scalar(value: Any) -> float:
    return float(value.item()) if isinstance(value, torch.Tensor) else float(value)


def fused_update(
    inner: Optimizer, group: dict[str, Any], slow: list[torch.Tensor], alpha: float, sync: Sync
) -> None:
    """The group's inner step and its sync, as one compiled pass per tensor (:func:`unsupported` is None);
    parameters without a gradient (the inner step skips them) get the plain ``sync``.

    The scalars are computed here in double precision as torch.optim computes them on the host, then
    rounded to fp32, the precision its kernels use for fp32 tensors."""
    pairs = [(p, s) for p, s in zip(group["params"], slow) if p.grad is not None]
    idle = [(p, s) for p, s in zip(group["params"], slow) if p.grad is None]
    if idle:
        sync([p.detach() for p, _ in idle], [s for _, s in idle], alpha)
    params = [p.detach() for p, _ in pairs]
    grads = [p.grad for p, _ in pairs]
    slows = [s for _, s in pairs]
    device = params[0].device
    lr = _scalar(group["lr"])
    states = [inner.state[p] for p, _ in pairs]
    if type(inner) is SGD:
        momentum = group["momentum"]
        bufs = [state["momentum_buffer"] for state in states] if momentum else []
        scalars = [lr, momentum, 1 - group["dampening"], group["weight_decay"], alpha]
        flags = (momentum != 0, group["nesterov"], group["maximize"], group["weight_decay"] != 0)
        _compiled("sgd")(params, grads, bufs, slows, _tensor(scalars, device), *flags)
        return
    beta1, beta2 = (_scalar(b) for b in group["betas"])
    steps = [state["step"] for state in states]
    with torch.no_grad():
        torch._foreach_add_(steps, 1)  # as torch does first; the bias corrections use the new count
    step = _scalar(steps[0])
    decay, decoupled = group["weight_decay"] != 0, group["decoupled_weight_decay"]
    wd = 1 - lr * group["weight_decay"] if decoupled else group["weight_decay"]
    bc2_sqrt = (1 - beta2**step) ** 0.5
    step_size = lr / (1 - beta1**step)
    scalars = [wd, 1 - beta1, beta2, 1 - beta2, step_size, bc2_sqrt, group["eps"], alpha]
    _compiled("adam")(
        params,
        grads,
        [state["exp_avg"] for state in states],
        [state["exp_avg_sq"] for state in states],
        [state["max_exp_avg_sq"] for state in states] if group["amsgrad"] else [],
        slows,
        _tensor(scalars, device),
        group["amsgrad"],
        group["maximize"],
        decay,
        decoupled,
    )


def _tensor(values: list[float], device: torch.device) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32, device=device)


# -- the unfused reference and the self-check -------------------------------------------------------------
def _clone(value: Any) -> Any:
    return (
        value.detach().clone(memory_format=torch.preserve_format)
        if isinstance(value, torch.Tensor)
        else value
    )


def reference_update(
    inner: Optimizer,
    group: dict[str, Any],
    slow: list[torch.Tensor],
    alpha: float,
    sync: Sync,
) -> tuple[list[torch.Tensor], list[torch.Tensor], list[dict[str, Any]]]:
    """The unfused k-th step on copies: the inner optimizer's own step (a new optimizer of its type with
    the group's settings and copies of its state) followed by ``sync``. Returns (params, slow, states)."""
    params = [p.detach().clone(memory_format=torch.preserve_format) for p in group["params"]]
    for copy, p in zip(params, group["params"]):
        copy.grad = None if p.grad is None else p.grad.detach().clone(memory_format=torch.preserve_format)
    settings = {key: _clone(value) for key, value in group.items() if key != "params"}
    ref = type(inner)([{**settings, "params": params}])
    for copy, p in zip(params, group["params"]):
        if p in inner.state:
            ref.state[copy] = {key: _clone(value) for key, value in inner.state[p].items()}
    ref.step()
    slows = [s.clone(memory_format=torch.preserve_format) for s in slow]
    with torch.no_grad():
        sync(params, slows, alpha)
    return params, slows, [ref.state.get(p, {}) for p in params]


class FusedStep:
    """The fused k-th step of one Lookahead optimizer: which groups it serves, and its self-check."""

    def __init__(self) -> None:
        self.check: SelfCheck | None = None  # the first fused step vs the unfused one
        self.notes: dict[int, str] = {}  # group index -> why its last due step was not fused
        self._warned: set[str] = set()

    @property
    def active(self) -> bool:
        return self.check is None or self.check.passed

    def reason(
        self, inner: Optimizer, index: int, group: dict[str, Any], slow: list[torch.Tensor]
    ) -> str | None:
        """Why this group's due step is not fused (recorded in ``notes``; said once per reason unless it is
        only that the state does not exist yet)."""
        why = "the self-check failed" if not self.active else unsupported(inner, group, slow)
        if why is None:
            self.notes.pop(index, None)
            return None
        self.notes[index] = why
        if why not in self._warned and "not created yet" not in why and self.active:
            self._warned.add(why)
            warnings.warn(
                f"Lookahead(fused_step=True): group {index} takes the unfused step: {why}", stacklevel=4
            )
        return why

    @torch.no_grad()
    def update(
        self,
        inner: Optimizer,
        group: dict[str, Any],
        slow: list[torch.Tensor],
        alpha: float,
        sync: Sync,
    ) -> None:
        """The group's fused k-th step; the first one of this optimizer is checked (:meth:`checked`)."""
        if self.check is None:
            self.check = self.checked(inner, group, slow, alpha, sync)
            if not self.check.passed:
                self.check.warn("the unfused step (inner step, then the foreach sync)")
        else:
            fused_update(inner, group, slow, alpha, sync)

    def checked(
        self,
        inner: Optimizer,
        group: dict[str, Any],
        slow: list[torch.Tensor],
        alpha: float,
        sync: Sync,
    ) -> SelfCheck:
        """Run :func:`fused_update` and compare every tensor it writes with the unfused step on copies taken before;
        on a mismatch beyond :data:`STEP_TOLERANCE` (or an error in the fused step) the tensors get the
        unfused results, so that this step is right either way."""
        want_params, want_slow, want_states = reference_update(inner, group, slow, alpha, sync)
        params = list(group["params"])
        before = [{key: _clone(v) for key, v in inner.state.get(p, {}).items()} for p in params]
        before_params = [p.detach().clone() for p in params]
        before_slow = [s.clone() for s in slow]
        pairs: list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor]] = []  # name, got, want, scale
        try:
            fused_update(inner, group, slow, alpha, sync)
        except Exception as error:  # a compiler that cannot build it: fall back, say why
            detail = f"the fused step raised {type(error).__name__}: {str(error).splitlines()[0][:200]}"
            check = SelfCheck("fused_step", False, float("inf"), STEP_TOLERANCE, detail)
        else:
            for i, p in enumerate(params):
                pairs.append((f"param {i}", p.detach(), want_params[i], before_params[i]))
                pairs.append((f"slow {i}", slow[i], want_slow[i], before_slow[i]))
                for key, want in want_states[i].items():
                    if isinstance(want, torch.Tensor) and key in inner.state.get(p, {}):
                        pairs.append((f"{key} {i}", inner.state[p][key], want, before[i].get(key, want)))
            errors = [
                _worst(got, want, torch.maximum(_magnitude(old), _magnitude(want)))
                for _, got, want, old in pairs
            ]
            worst, where = 0.0, ""
            if errors:
                stacked = torch.stack(errors)
                worst, where = stacked.max().item(), pairs[int(stacked.argmax())][0]
            detail = (
                f"fused vs unfused k-th {type(inner).__name__} step of {len(params)} tensors, alpha={alpha:g}"
            )
            detail += f"; worst: {where}" if where else ""
            check = SelfCheck("fused_step", worst <= STEP_TOLERANCE, worst, STEP_TOLERANCE, detail)
        if not check.passed:  # put the unfused results in place
            for i, p in enumerate(params):
                p.detach().copy_(want_params[i])
                slow[i].copy_(want_slow[i])
                state = inner.state[p] if want_states[i] else None
                for key, want in want_states[i].items():
                    if isinstance(want, torch.Tensor) and key in state:
                        state[key].copy_(want)
                    elif isinstance(want, torch.Tensor):
                        state[key] = want
        return check


__all__ = ["STEP_TOLERANCE", "FusedStep", "fused_update", "reference_update", "unsupported"]
