"""Lookahead(fused_step=True): the k-th SGD/Adam/AdamW step and the sync in one pass, against the
unfused path (the inner optimizer's own step, then the foreach sync).

Most tests run the fused update eagerly (the ``eager`` fixture: the same function, not compiled), which
tests the bookkeeping in seconds; the ``slow`` ones run it through torch.compile as users get it."""

from __future__ import annotations

import io
import math
import warnings

import pytest
import torch
from torch import nn

from lookahead import Lookahead
from lookahead.optim import fused_step
from lookahead.optim.fused_step import STEP_TOLERANCE, unsupported

INNERS = {
    "sgd_nesterov": lambda groups: torch.optim.SGD(groups, lr=0.05, momentum=0.9, nesterov=True),
    "sgd_dampened_maximize": lambda groups: torch.optim.SGD(
        groups, lr=0.05, momentum=0.5, dampening=0.3, maximize=True
    ),
    "sgd_plain": lambda groups: torch.optim.SGD(groups, lr=0.05),
    "adam": lambda groups: torch.optim.Adam(groups, lr=1e-2),
    "adamw_amsgrad": lambda groups: torch.optim.AdamW(groups, lr=1e-2, amsgrad=True),
}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one thread (two spin against each other on a shared 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def eager(monkeypatch):
    """The fused update run as plain eager torch (same function, no compile): for fast tests."""
    monkeypatch.setattr(fused_step, "_COMPILED", {"sgd": fused_step._sgd, "adam": fused_step._adam})


def model_and_data(seed: int = 0) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(10, 16), nn.Tanh(), nn.Linear(16, 3))
    return model, torch.randn(64, 10), torch.randn(64, 3)


def build(model: nn.Module, inner: str, fused: bool, **kwargs) -> Lookahead:
    """Two groups with their own k, alpha and weight decay (the first layer's weight, the rest)."""
    first, *rest = model.parameters()
    groups = [
        {"params": [first], "lookahead_k": 3, "lookahead_alpha": 0.5, "weight_decay": 1e-2},
        {"params": rest, "lookahead_k": 5, "lookahead_alpha": 0.8, "weight_decay": 0.0},
    ]
    return Lookahead(INNERS[inner](groups), fused_step=fused, **kwargs)


def train(model, opt, x, y, steps: int, sched=None) -> None:
    maximize = opt.param_groups[0].get("maximize", False)
    for _ in range(steps):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        (-loss if maximize else loss).backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if sched is not None:
            sched.step()


def tensors(model: nn.Module, opt: Lookahead) -> dict[str, torch.Tensor]:
    """Everything a step writes: weights, slow weights, the inner state (by parameter index)."""
    out = {}
    for i, p in enumerate(model.parameters()):
        out[f"param {i}"] = p.detach()
        out[f"slow {i}"] = opt.state[p]["slow"]
        for key, value in opt.optimizer.state[p].items():
            out[f"{key} {i}"] = value
    return out


def run_both(inner: str, steps: int, **kwargs) -> tuple[dict, dict, Lookahead]:
    results, fused_opt = [], None
    for fused in (False, True):
        model, x, y = model_and_data()
        opt = build(model, inner, fused, **kwargs)
        cosine = lambda step: 0.5 * (1 + math.cos(math.pi * step / steps))  # noqa: E731
        train(model, opt, x, y, steps, torch.optim.lr_scheduler.LambdaLR(opt, cosine))
        results.append(tensors(model, opt))
        fused_opt = opt if fused else fused_opt
    return results[0], results[1], fused_opt


# Over 1,000 steps the one-rounding differences of each fused k-th step feed back through the gradients.
# SGD's trajectories stay within RTOL/ATOL element by element. Adam divides by sqrt(v): a one-ulp
# difference in a small v is a visible difference in the step, so its tensors are compared at their own
# scale: max |fused - unfused| <= SCALE_TOL x max |unfused| (measured after 1,000 AdamW-amsgrad steps:
# 5e-6 for the weights, 5e-5 for exp_avg).
RTOL, ATOL, SCALE_TOL = 1e-5, 1e-6, 2e-4


def assert_same(unfused: dict, fused: dict, adam: bool = False) -> None:
    assert unfused.keys() == fused.keys()
    for name in unfused:
        if adam:
            error = (fused[name] - unfused[name]).abs().max().item()
            assert error <= SCALE_TOL * unfused[name].abs().max().item(), (name, error)
        else:
            torch.testing.assert_close(fused[name], unfused[name], rtol=RTOL, atol=ATOL, msg=name)


# 1,000 steps (about 10 s of CPU: marked slow) for one SGD and one Adam configuration, 200 for the others.
STEPS = {"sgd_nesterov": 1000, "adamw_amsgrad": 1000}


@pytest.mark.parametrize(
    "inner", [pytest.param(name, marks=pytest.mark.slow) if name in STEPS else name for name in INNERS]
)
def test_1000_steps_match_the_unfused_path(eager, inner):
    """Cosine schedule, gradient clipping, weight decay on one group, per-group k (3, 5) and alpha."""
    unfused, fused, opt = run_both(inner, STEPS.get(inner, 200))
    assert opt.fused_step.check.passed and opt.fused_step.check.error <= STEP_TOLERANCE
    assert opt.fused_step.notes == {}  # every k-th step after the first of each group was fused
    assert_same(unfused, fused, adam=inner.startswith("adam"))


@pytest.mark.slow
@pytest.mark.parametrize("inner", ["sgd_nesterov", "adamw_amsgrad"])
def test_1000_compiled_steps_match_the_unfused_path(inner):
    unfused, fused, opt = run_both(inner, 1000)
    assert opt.fused_step.check.passed, opt.fused_step.check
    assert_same(unfused, fused, adam=inner.startswith("adam"))


def test_only_the_kth_step_is_fused(eager, monkeypatch):
    """k - 1 steps are the inner optimizer's own; the k-th of each group is one fused call."""
    calls = []
    real = fused_step.fused_update
    monkeypatch.setattr(
        fused_step,
        "fused_update",
        lambda inner, group, *a: calls.append(group["lookahead_k"]) or real(inner, group, *a),
    )
    model, x, y = model_and_data()
    opt = build(model, "sgd_nesterov", True)
    inner_steps = []
    opt.optimizer.register_step_pre_hook(lambda o, *_: inner_steps.append(len(o.param_groups)))
    train(model, opt, x, y, 15)
    # Group k=3 at steps 3, 6, 9, 12, 15 (the first of them checked: fused_update runs inside the check);
    # group k=5 at steps 5, 10, 15. The inner optimizer steps every time, on the groups not fused.
    assert calls == [3, 5, 3, 3, 5, 3, 3, 5]
    assert inner_steps == [2, 2, 1, 2, 1, 1, 2, 2, 1, 1, 2, 1, 2, 2, 0]


@pytest.mark.parametrize("inner", ["sgd_nesterov", "adamw_amsgrad"])
def test_resume_mid_cycle_is_bit_for_bit(eager, inner):
    model, x, y = model_and_data()
    opt = build(model, inner, True)
    train(model, opt, x, y, 7)  # group k=3 at step 1 of its cycle, group k=5 at step 2
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, buffer)
    train(model, opt, x, y, 8)
    want = tensors(model, opt)

    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    resumed, _, _ = model_and_data(seed=1)
    resumed.load_state_dict(saved["model"])
    opt2 = build(resumed, inner, True)
    opt2.load_state_dict(saved["opt"])
    train(resumed, opt2, x, y, 8)
    got = tensors(resumed, opt2)
    assert got.keys() == want.keys()
    assert all(torch.equal(got[name], want[name]) for name in want), [
        n for n in want if not torch.equal(got[n], want[n])
    ]
    assert opt2.fused_step.check.passed  # the resumed optimizer checked its first fused step again


@pytest.mark.parametrize("mode", ["reset", "pullback"])
def test_momentum_modes_act_after_the_fused_sync(eager, mode):
    unfused, fused, opt = run_both("sgd_nesterov", 40, pullback_momentum=mode)
    assert opt.fused_step.check.passed
    assert_same(unfused, fused)


def test_closure_is_evaluated_once_before_the_step(eager):
    model, x, y = model_and_data()
    opt = build(model, "adam", True)
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        return loss

    losses = [opt.step(closure) for _ in range(6)]
    assert len(calls) == 6 and all(isinstance(loss, torch.Tensor) for loss in losses)
    assert opt.fused_step.check.passed and losses[-1] < losses[0]


# -- fall-backs ---------------------------------------------------------------------------------------
def group_of(params, **settings):
    return {"params": list(params), **settings}


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda ps: torch.optim.RMSprop(ps), "RMSprop is not one of SGD, Adam, AdamW"),
        (lambda ps: torch.optim.SGD(ps, lr=0.1, fused=True), "the inner optimizer has fused=True"),
        (lambda ps: torch.optim.Adam(ps, capturable=True), "the inner optimizer has capturable=True"),
        (
            lambda ps: torch.optim.SGD(ps, lr=0.1, differentiable=True),
            "the inner optimizer has differentiable=True",
        ),
    ],
)
def test_unsupported_optimizers_are_named(make, why):
    p = nn.Parameter(torch.ones(3))
    p.grad = torch.ones(3)
    inner = make([p])
    assert unsupported(inner, inner.param_groups[0], [p.detach().clone()]) == why


def test_unsupported_tensors_and_state_are_named():
    p = nn.Parameter(torch.ones(3))
    inner = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    group, slow = inner.param_groups[0], [p.detach().clone()]
    assert unsupported(inner, group, slow) == "no parameter of the group has a gradient"
    p.grad = torch.ones(3)
    assert unsupported(inner, group, slow) == (
        "the inner optimizer's state is not created yet (its first step does that)"
    )
    inner.step()
    assert unsupported(inner, group, slow) is None
    assert unsupported(inner, group, [slow[0].double()]) == (
        "a parameter, gradient or slow weight is not float32 (torch.float32, torch.float32, torch.float64)"
    )
    half = nn.Parameter(torch.ones(3, dtype=torch.bfloat16))
    half.grad = torch.ones(3, dtype=torch.bfloat16)
    bf16 = torch.optim.SGD([half], lr=0.1)
    assert unsupported(bf16, bf16.param_groups[0], [torch.ones(3)]).startswith(
        "a parameter, gradient or slow weight is not float32 (torch.bfloat16"
    )
    q = nn.Parameter(torch.ones(2))
    adam = torch.optim.Adam([p, q])
    q.grad = torch.ones(2)
    adam.step()
    adam.state[q]["step"] += 1
    assert unsupported(adam, adam.param_groups[0], [p.detach(), q.detach()]) == (
        "the parameters of the group are at different Adam steps"
    )


def test_an_unsupported_inner_optimizer_warns_once_and_runs_unfused_bit_for_bit():
    results = []
    for fused in (False, True):
        model, x, y = model_and_data()
        opt = Lookahead(torch.optim.RMSprop(model.parameters(), lr=1e-2), k=2, fused_step=fused)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            train(model, opt, x, y, 6)
        results.append(tensors(model, opt))
    messages = [str(w.message) for w in caught]
    assert messages == [
        "Lookahead(fused_step=True): group 0 takes the unfused step: RMSprop is not one of SGD, Adam, AdamW"
    ]
    assert opt.fused_step.check is None and opt.fused_step.notes == {
        0: "RMSprop is not one of SGD, Adam, AdamW"
    }
    assert all(torch.equal(results[0][n], results[1][n]) for n in results[0])


def test_a_missing_state_leaves_that_step_unfused_without_a_warning(eager):
    """k = 1: the first step is also a k-th step, before SGD has made its momentum buffer."""
    model, x, y = model_and_data()
    opt = Lookahead(torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9), k=1, fused_step=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train(model, opt, x, y, 1)
        assert opt.fused_step.check is None and "not created yet" in opt.fused_step.notes[0]
        train(model, opt, x, y, 1)
    assert opt.fused_step.check.passed and opt.fused_step.notes == {}


def test_fused_step_must_be_a_bool():
    with pytest.raises(ValueError, match="fused_step must be True or False, got 'yes'"):
        Lookahead(torch.optim.SGD([nn.Parameter(torch.ones(1))], lr=0.1), fused_step="yes")


# -- the self-check -------------------------------------------------------------------------------------
def forgets_the_momentum(params, grads, bufs, slows, scalars, momentum, nesterov, maximize, decay):
    """A broken fused SGD step: the momentum buffer is not updated and the gradient step is plain."""
    lr, _, _, wd, alpha = scalars.unbind()
    for p, g, s in zip(params, grads, slows):
        s.lerp_(p - lr * (g + wd * p), alpha)
        p.copy_(s)


def raises(*args, **kwargs):
    raise RuntimeError("the compiler could not build the step\nsecond line")


@pytest.mark.parametrize(
    ("broken", "detail"), [(forgets_the_momentum, "worst: "), (raises, "raised RuntimeError")]
)
def test_a_broken_fused_step_is_caught_and_the_run_goes_on_unfused_bit_for_bit(monkeypatch, broken, detail):
    monkeypatch.setattr(fused_step, "_COMPILED", {"sgd": broken, "adam": fused_step._adam})
    results = []
    for fused in (False, True):
        model, x, y = model_and_data()
        opt = build(model, "sgd_nesterov", fused)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            train(model, opt, x, y, 20)
        results.append(tensors(model, opt))
    check = opt.fused_step.check
    assert not check.passed and check.error > STEP_TOLERANCE and detail in check.detail
    if broken is raises:
        assert check.detail == "the fused step raised RuntimeError: the compiler could not build the step"
    assert [str(w.message).split(" (")[0] for w in caught] == ["fused_step self-check failed"]
    assert "this run goes on with the unfused step (inner step, then the foreach sync)" in str(
        caught[0].message
    )
    assert set(opt.fused_step.notes.values()) == {"the self-check failed"}
    # The checked step got the unfused results and every later step was unfused: bit for bit.
    assert all(torch.equal(results[0][n], results[1][n]) for n in results[0])


def test_the_self_check_passes_within_one_rounding(eager):
    model, x, y = model_and_data()
    opt = build(model, "adamw_amsgrad", True)
    train(model, opt, x, y, 3)
    check = opt.fused_step.check
    assert check.path == "fused_step" and check.passed and 0 <= check.error <= 2.0
    assert check.detail.startswith("fused vs unfused k-th AdamW step of 1 tensors, alpha=0.5; worst: ")


def test_a_parameter_without_a_gradient_is_still_synced(eager):
    results = []
    for fused in (False, True):
        model, x, y = model_and_data()
        spare = nn.Parameter(torch.ones(4))  # in the group, never in the loss: no gradient
        inner = torch.optim.SGD([*model.parameters(), spare], lr=0.05, momentum=0.9)
        opt = Lookahead(inner, k=2, alpha=0.5, fused_step=fused)
        train(model, opt, x, y, 4)
        with torch.no_grad():
            spare.add_(1.0)  # moved by hand: the next sync pulls its slow weight halfway toward it
        train(model, opt, x, y, 2)
        results.append((spare.detach().clone(), opt.state[spare]["slow"].clone()))
    assert opt.fused_step.check.passed and opt.fused_step.notes == {}
    assert torch.equal(results[1][0], torch.full((4,), 1.5)) and torch.equal(
        results[1][1], torch.full((4,), 1.5)
    )
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])
