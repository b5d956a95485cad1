"""Lookahead against a hand-written reference of Algorithm 1, and as a drop-in torch.optim optimizer."""

from __future__ import annotations

import copy
import io

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from lookahead import Lookahead
from lookahead.optim import fused_sync
from tests.triton_interpreter import interpreted

INNER = {
    "sgd": lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=1e-3),
    "sgd_foreach": lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, foreach=True),
    "sgd_plain": lambda ps: torch.optim.SGD(ps, lr=0.1),
    "adam": lambda ps: torch.optim.Adam(ps, lr=1e-2),
    "adam_foreach": lambda ps: torch.optim.Adam(ps, lr=1e-2, foreach=True),
    "adam_fused": lambda ps: torch.optim.Adam(ps, lr=1e-2, fused=True),
    "adamw": lambda ps: torch.optim.AdamW(ps, lr=1e-2, weight_decay=0.1),
    "rmsprop": lambda ps: torch.optim.RMSprop(ps, lr=1e-3, momentum=0.5),
}


def make_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))


def batches(n: int, seed: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(16, 6, generator=g), torch.randint(0, 3, (16,), generator=g)) for _ in range(n)]


def train(model: nn.Module, opt: torch.optim.Optimizer, data) -> None:
    for x, y in data:
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


def reference_lookahead(model, inner, data, ks, alphas):
    """Algorithm 1 written out per parameter, one group at a time; returns the slow weights."""
    groups = inner.param_groups
    slow = [[p.detach().clone() for p in g["params"]] for g in groups]
    for t, (x, y) in enumerate(data, start=1):
        inner.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        inner.step()
        for gi, g in enumerate(groups):
            if t % ks[gi] == 0:
                with torch.no_grad():
                    for s, p in zip(g["params"], slow[gi]):
                        p.add_(alphas[gi] * (s - p))  # phi <- phi + alpha (theta - phi)
                        s.copy_(p)  # theta <- phi
    return slow


def two_groups(model: nn.Module, ks, alphas):
    first, second = model[0], model[2]
    return [
        {"params": list(first.parameters()), "lookahead_k": ks[0], "lookahead_alpha": alphas[0]},
        {"params": list(second.parameters()), "lookahead_k": ks[1], "lookahead_alpha": alphas[1]},
    ]


@settings(max_examples=25, deadline=None)
@given(
    k=st.integers(1, 7),
    k2=st.integers(1, 7),
    alpha=st.floats(0.05, 1.0),
    alpha2=st.floats(0.05, 1.0),
    inner=st.sampled_from(sorted(INNER)),
    grouped=st.booleans(),
    steps=st.integers(1, 17),
)
def test_matches_algorithm_1(k, k2, alpha, alpha2, inner, grouped, steps):
    data = batches(steps)
    ref_model, la_model = make_model(), make_model()
    if grouped:
        ks, alphas = (k, k2), (alpha, alpha2)
        ref_opt = INNER[inner](two_groups(ref_model, ks, alphas))
        opt = Lookahead(INNER[inner](two_groups(la_model, ks, alphas)), k=3, alpha=0.3)
    else:
        ks, alphas = (k,), (alpha,)
        ref_opt = INNER[inner](ref_model.parameters())
        opt = Lookahead(INNER[inner](la_model.parameters()), k=k, alpha=alpha)
    slow_ref = reference_lookahead(ref_model, ref_opt, data, ks, alphas)
    train(la_model, opt, data)
    for gi, group in enumerate(opt.param_groups):
        assert group["lookahead_step"] == steps
        for p, p_ref, s_ref in zip(group["params"], ref_opt.param_groups[gi]["params"], slow_ref[gi]):
            torch.testing.assert_close(p, p_ref, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(opt.state[p]["slow"], s_ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("inner", sorted(INNER))
def test_alpha_one_is_the_inner_optimizer_exactly(inner):
    data = batches(12)
    a, b = make_model(), make_model()
    train(a, INNER[inner](a.parameters()), data)
    train(b, Lookahead(INNER[inner](b.parameters()), k=5, alpha=1.0), data)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


def test_sync_schedule_is_every_kth_step():
    model = make_model()
    opt = Lookahead(torch.optim.SGD(model.parameters(), lr=0.1), k=3, alpha=0.5)
    initial = [p.detach().clone() for p in model.parameters()]
    for t, (x, y) in enumerate(batches(6), start=1):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        slow = [opt.state[p]["slow"] for p in model.parameters()]
        if t < 3:  # phi_0 = theta_0 until the first sync
            assert all(torch.equal(s, i) for s, i in zip(slow, initial))
        if t % 3 == 0:  # at a sync the fast weights restart from the slow ones
            assert all(torch.equal(s, p) for s, p in zip(slow, model.parameters()))
        else:
            assert not all(torch.equal(s, p) for s, p in zip(slow, model.parameters()))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "k must be a positive int"),
        ({"k": -2}, "k must be a positive int"),
        ({"k": 2.5}, "k must be a positive int"),
        ({"k": True}, "k must be a positive int"),
        ({"alpha": 0.0}, r"alpha must be a number in \(0, 1\]"),
        ({"alpha": 1.5}, r"alpha must be a number in \(0, 1\]"),
        ({"alpha": float("nan")}, r"alpha must be a number in \(0, 1\]"),
        ({"pullback_momentum": "sideways"}, "pullback_momentum must be one of"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, message):
    model = make_model()
    with pytest.raises(ValueError, match=message):
        Lookahead(torch.optim.SGD(model.parameters(), lr=0.1), **kwargs)


def test_rmsprop_alpha_is_not_lookahead_alpha():
    model = make_model()
    opt = Lookahead(torch.optim.RMSprop(model.parameters(), alpha=0.99), alpha=0.5)
    assert opt.param_groups[0]["alpha"] == 0.99 and opt.param_groups[0]["lookahead_alpha"] == 0.5


def test_bad_group_override_raises():
    model = make_model()
    with pytest.raises(ValueError, match="k must be a positive int"):
        Lookahead(torch.optim.SGD([{"params": model.parameters(), "lookahead_k": 0}], lr=0.1))
    opt = Lookahead(torch.optim.SGD(model[0].parameters(), lr=0.1))
    with pytest.raises(ValueError, match="alpha must be"):
        opt.add_param_group({"params": model[2].parameters(), "lookahead_alpha": 2})


def test_is_a_real_optimizer_with_shared_groups_hooks_and_closure():
    model = make_model()
    inner = torch.optim.Adam(model.parameters(), lr=1e-3)
    opt = Lookahead(inner, k=2, alpha=0.5)
    assert isinstance(opt, torch.optim.Optimizer)
    assert opt.param_groups is inner.param_groups
    assert opt.defaults["betas"] == (0.9, 0.999) and opt.defaults["lookahead_k"] == 2
    calls = []
    opt.register_step_pre_hook(lambda o, args, kwargs: calls.append("pre"))
    opt.register_step_post_hook(lambda o, args, kwargs: calls.append("post"))
    x, y = batches(1)[0]

    def closure():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert calls == ["pre", "post"]
    assert torch.is_tensor(loss) and loss.item() > 0
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in model.parameters())
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())


SCHEDULERS = {
    "step": lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5),
    "multistep": lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones=[2, 5], gamma=0.2),
    "cosine": lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10),
    "onecycle": lambda o: torch.optim.lr_scheduler.OneCycleLR(
        o, max_lr=0.1, total_steps=30, cycle_momentum=True
    ),
    "lambda": lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda e: 1 / (1 + e)),
    "plateau": lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, patience=0, factor=0.5),
}


def _run_with_scheduler(opt, sched, model, data):
    lrs = []
    for x, y in data:
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        sched.step(1.0) if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau) else sched.step()
        lrs.append((opt.param_groups[0]["lr"], opt.param_groups[0]["momentum"]))
    return lrs


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_schedulers_drive_the_inner_optimizer_before_and_after_loading(name):
    data = batches(12)
    a, b = make_model(), make_model()
    plain = torch.optim.SGD(a.parameters(), lr=0.1, momentum=0.9)
    inner = torch.optim.SGD(b.parameters(), lr=0.1, momentum=0.9)
    opt = Lookahead(inner, k=4, alpha=1.0)
    expected = _run_with_scheduler(plain, SCHEDULERS[name](plain), a, data)
    got = _run_with_scheduler(opt, SCHEDULERS[name](opt), b, data)
    assert got == expected
    assert inner.param_groups[0]["lr"] == expected[-1][0]
    assert len({lr for lr, _ in got}) > 1  # the schedule really moved the LR

    # Resume both into fresh objects: the scheduler still drives the (new) inner groups.
    c = make_model()
    inner2 = torch.optim.SGD(c.parameters(), lr=0.1, momentum=0.9)
    opt2 = Lookahead(inner2, k=4, alpha=1.0)
    sched2 = SCHEDULERS[name](opt2)
    opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(SCHEDULERS[name](opt).state_dict())
    assert opt2.param_groups is inner2.param_groups
    before = inner2.param_groups[0]["lr"]
    _run_with_scheduler(opt2, sched2, c, batches(3))
    if name != "plateau":
        assert inner2.param_groups[0]["lr"] != before


def _roundtrip(state_dict):
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize("inner", ["sgd", "adam", "adamw", "rmsprop"])
@pytest.mark.parametrize("pullback", ["none", "reset", "pullback"])
@pytest.mark.parametrize("split", [1, 7, 10])  # first step, mid-cycle, at a sync
def test_checkpoint_resumes_bit_for_bit(inner, pullback, split):
    data = batches(17)
    ref = make_model()
    ref_opt = Lookahead(INNER[inner](ref.parameters()), k=5, alpha=0.6, pullback_momentum=pullback)
    train(ref, ref_opt, data)

    first = make_model()
    first_opt = Lookahead(INNER[inner](first.parameters()), k=5, alpha=0.6, pullback_momentum=pullback)
    train(first, first_opt, data[:split])
    checkpoint = _roundtrip({"model": first.state_dict(), "opt": first_opt.state_dict()})

    resumed = make_model(seed=123)  # different init: everything must come from the checkpoint
    resumed_opt = Lookahead(INNER[inner](resumed.parameters()), k=5, alpha=0.6, pullback_momentum=pullback)
    resumed.load_state_dict(checkpoint["model"])
    resumed_opt.load_state_dict(checkpoint["opt"])
    train(resumed, resumed_opt, data[split:])
    for p, q in zip(ref.parameters(), resumed.parameters()):
        assert torch.equal(p, q)
        assert torch.equal(ref_opt.state[p]["slow"], resumed_opt.state[q]["slow"])


def test_state_dict_is_keyed_by_parameter_index():
    model = make_model()
    opt = Lookahead(torch.optim.Adam(model.parameters()), k=2, pullback_momentum="pullback")
    train(model, opt, batches(3))
    sd = opt.state_dict()
    assert sorted(sd["state"]) == [0, 1, 2, 3]
    assert {"step", "exp_avg", "exp_avg_sq", "lookahead_slow", "lookahead_momentum_prev"} <= set(
        sd["state"][0]
    )
    assert sd["param_groups"][0]["lookahead_step"] == 3 and sd["param_groups"][0]["params"] == [0, 1, 2, 3]
    # state_dict() must not leak Lookahead entries into the live inner state
    assert "lookahead_slow" not in opt.optimizer.state[next(model.parameters())]


def test_loads_a_plain_inner_optimizer_checkpoint():
    data = batches(8)
    model = make_model()
    plain = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    train(model, plain, data[:4])
    checkpoint = _roundtrip({"model": model.state_dict(), "opt": plain.state_dict()})

    fresh = make_model(seed=5)
    opt = Lookahead(torch.optim.SGD(fresh.parameters(), lr=0.1, momentum=0.9), k=2, alpha=0.5)
    fresh.load_state_dict(checkpoint["model"])
    opt.load_state_dict(checkpoint["opt"])
    assert opt.param_groups[0]["lookahead_k"] == 2 and opt.param_groups[0]["lookahead_step"] == 0
    start = [p.detach().clone() for p in fresh.parameters()]
    assert torch.equal(
        opt.optimizer.state[next(fresh.parameters())]["momentum_buffer"],
        plain.state[next(model.parameters())]["momentum_buffer"],
    )
    x, y = data[4]
    opt.zero_grad()
    nn.functional.cross_entropy(fresh(x), y).backward()
    opt.step()
    # slow weights were taken from the restored weights at the first step
    assert all(torch.equal(opt.state[p]["slow"], s) for p, s in zip(fresh.parameters(), start))


def test_add_param_group_gets_slow_weights_and_is_interpolated():
    model = make_model()
    opt = Lookahead(torch.optim.SGD(model[0].parameters(), lr=0.1), k=2, alpha=0.5)
    train(model, opt, batches(3))
    opt.add_param_group({"params": list(model[2].parameters()), "lookahead_alpha": 0.25})
    group = opt.param_groups[1]
    assert (
        opt.optimizer.param_groups[1] is group
        and group["lookahead_k"] == 2
        and group["lookahead_alpha"] == 0.25
    )
    start = [p.detach().clone() for p in model[2].parameters()]
    train(model, opt, batches(2, seed=9))  # group 1 syncs after its 2nd step
    for p, s0 in zip(model[2].parameters(), start):
        slow = opt.state[p]["slow"]
        assert torch.equal(slow, p)
        # slow = s0 + 0.25 (fast_2 - s0) and fast restarted from it: p - s0 is 1/4 of the fast displacement
        assert not torch.equal(slow, s0)


def test_reset_zeroes_momentum_at_each_sync():
    model = make_model()
    opt = Lookahead(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), k=3, pullback_momentum="reset")
    data = batches(3)
    train(model, opt, data[:2])
    assert all(opt.optimizer.state[p]["momentum_buffer"].abs().sum() > 0 for p in model.parameters())
    train(model, opt, data[2:])
    assert all(not opt.optimizer.state[p]["momentum_buffer"].any() for p in model.parameters())


@pytest.mark.parametrize(
    "inner, key", [("sgd", "momentum_buffer"), ("adam", "exp_avg"), ("adamw", "exp_avg")]
)
def test_pullback_interpolates_a_copy_of_the_momentum(inner, key):
    model = make_model()
    alpha = 0.3
    opt = Lookahead(INNER[inner](model.parameters()), k=2, alpha=alpha, pullback_momentum="pullback")
    ref_model = make_model()
    ref = INNER[inner](ref_model.parameters())
    data = batches(4)
    p0, r0 = next(model.parameters()), next(ref_model.parameters())

    train(model, opt, data[:2])  # first sync: m_prev starts at zero
    train(ref_model, ref, data[:2])
    m_before = ref.state[r0][key].clone()
    if inner == "adam":
        sq_ref = ref.state[r0]["exp_avg_sq"].clone()
        assert torch.equal(opt.optimizer.state[p0]["exp_avg_sq"], sq_ref)  # second moment untouched
    torch.testing.assert_close(opt.optimizer.state[p0][key], alpha * m_before)
    prev = opt.state[p0]["momentum_prev"]
    assert torch.equal(prev, opt.optimizer.state[p0][key])
    assert prev.data_ptr() != opt.optimizer.state[p0][key].data_ptr()  # a copy, not an alias

    saved = prev.clone()
    captured = []  # the inner optimizer's own momentum right after its step, before the sync
    opt.optimizer.register_step_post_hook(lambda o, a, kw: captured.append(o.state[p0][key].clone()))
    train(model, opt, data[2:3])
    assert torch.equal(opt.state[p0]["momentum_prev"], saved)  # untouched between syncs
    train(model, opt, data[3:4])  # second sync
    torch.testing.assert_close(opt.optimizer.state[p0][key], alpha * captured[-1] + (1 - alpha) * saved)
    assert torch.equal(opt.state[p0]["momentum_prev"], opt.optimizer.state[p0][key])


def test_slow_weights_context_restores_fast_weights_even_on_error():
    model = make_model()
    opt = Lookahead(torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9), k=4, alpha=0.5)
    train(model, opt, batches(6))
    fast = [p.detach().clone() for p in model.parameters()]
    slow = [opt.state[p]["slow"].clone() for p in model.parameters()]
    assert not all(torch.equal(f, s) for f, s in zip(fast, slow))
    with opt.slow_weights():
        assert all(torch.equal(p, s) for p, s in zip(model.parameters(), slow))
    assert all(torch.equal(p, f) for p, f in zip(model.parameters(), fast))
    with pytest.raises(RuntimeError, match="boom"), opt.slow_weights():
        raise RuntimeError("boom")
    assert all(torch.equal(p, f) for p, f in zip(model.parameters(), fast))


def test_grad_scaler_skipped_steps_do_not_count():
    model = make_model()
    opt = Lookahead(torch.optim.SGD(model.parameters(), lr=0.1), k=2, alpha=0.5)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**4)
    x, y = batches(1)[0]
    for poison in (False, True, True, False):
        opt.zero_grad()
        scaler.scale(nn.functional.cross_entropy(model(x), y)).backward()
        if poison:
            model[0].weight.grad[0, 0] = float("inf")
        scaler.step(opt)
        scaler.update()
    assert opt.param_groups[0]["lookahead_step"] == 2
    assert all(torch.equal(opt.state[p]["slow"], p) for p in model.parameters())  # synced after 2 real steps


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_params_keep_fp32_slow_weights_that_move(dtype):
    def run(fp32: bool) -> torch.Tensor:
        w = nn.Parameter(torch.ones(4, dtype=dtype))
        opt = Lookahead(torch.optim.SGD([w], lr=1.0), k=1, alpha=0.2, fp32_slow_weights=fp32)
        step = float(torch.finfo(dtype).eps)  # one ulp below 2 == the grid spacing around 1
        for _ in range(3):
            w.grad = torch.full_like(w, step)
            opt.step()
        return opt.state[w]["slow"]

    slow32, slow_low = run(True), run(False)
    assert slow32.dtype == torch.float32 and slow_low.dtype == dtype
    assert (slow32 < 1).all()  # 0.2 * ulp moves accumulate in fp32
    assert (slow_low == 1).all()  # ... and are rounded away in low precision


def test_sync_is_vectorised_over_the_group(monkeypatch):
    model = make_model()
    opt = Lookahead(torch.optim.SGD(model.parameters(), lr=0.1), k=2)
    calls = {"lerp": 0, "copy": 0}
    lerp, copy_ = torch._foreach_lerp_, torch._foreach_copy_

    def counting(name, fn):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(torch, "_foreach_lerp_", counting("lerp", lerp))
    monkeypatch.setattr(torch, "_foreach_copy_", counting("copy", copy_))
    train(model, opt, batches(4))
    assert calls == {"lerp": 2, "copy": 2}  # one fused call per sync for all 4 tensors


def test_deepcopy_keeps_the_inner_optimizer_and_shared_groups():
    model = make_model()
    opt = Lookahead(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), k=2)
    train(model, opt, batches(3))
    clone = copy.deepcopy(opt)
    assert clone.param_groups is clone.optimizer.param_groups
    assert clone.param_groups[0]["lookahead_step"] == 3


# -- the one-pass sync kernel (lookahead.optim.fused_sync), run by Triton's interpreter on CPU ---------
needs_triton = pytest.mark.skipif(fused_sync.triton is None, reason="Triton is not installed")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def foreach_sync(fast, slow, alpha):
    Lookahead._foreach_sync(fast, slow, alpha)


def pairs(sizes, fast_dtype, slow_dtype, seed=0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    fast = [torch.randn(n, generator=g).to(device=device, dtype=fast_dtype) for n in sizes]
    slow = [torch.randn(n, generator=g).to(device=device, dtype=slow_dtype) for n in sizes]
    return fast, slow


def clones(tensors):
    return [t.clone(memory_format=torch.preserve_format) for t in tensors]


# Sizes around the chunk size, a 1-element tensor and a tail-only one: every masking case of the kernel.
SIZES = [1, 3, fused_sync.BLOCK - 1, fused_sync.BLOCK, fused_sync.BLOCK + 1, 2 * fused_sync.BLOCK + 7, 1000]


@needs_triton
@pytest.mark.parametrize("alpha", [0.2, 0.5, 0.8, 1.0])
@pytest.mark.parametrize(
    "fast_dtype, slow_dtype",
    [(torch.float32, torch.float32), (torch.bfloat16, torch.float32), (torch.float16, torch.float32)],
)
def test_kernel_is_bitwise_the_foreach_sync(alpha, fast_dtype, slow_dtype):
    fast, slow = pairs(SIZES, fast_dtype, slow_dtype)
    fast_ref, slow_ref = clones(fast), clones(slow)
    plan = fused_sync.SyncPlan(fast, slow)
    assert plan.fallback == [] and plan.buckets[0].num_chunks == 1 + 1 + 1 + 1 + 2 + 3 + 1
    interpreted(plan, alpha)
    foreach_sync(fast_ref, slow_ref, alpha)  # torch.lerp: one fma per element, like the kernel
    for got, want in zip(fast + slow, fast_ref + slow_ref):
        assert got.dtype == want.dtype and torch.equal(got, want)


@needs_triton
def test_kernel_groups_dtype_pairs_and_handles_channels_last():
    conv = torch.randn(8, 5, 3, 3).to(memory_format=torch.channels_last)
    fast = [
        conv,
        torch.randn(77, dtype=torch.bfloat16),
        torch.randn(4097),
        torch.randn(9, dtype=torch.bfloat16),
    ]
    slow = [conv.clone(memory_format=torch.preserve_format) + 1] + [torch.randn(t.shape) for t in fast[1:]]
    assert slow[0].stride() == conv.stride() != torch.empty(8, 5, 3, 3).stride()
    fast_ref, slow_ref = clones(fast), clones(slow)
    plan = fused_sync.SyncPlan(fast, slow)
    assert plan.fallback == [] and len(plan.buckets) == 2  # (fp32, fp32) and (bf16, fp32): 2 launches
    interpreted(plan, 0.3)
    foreach_sync(fast_ref, slow_ref, 0.3)
    assert all(torch.equal(a, b) for a, b in zip(fast + slow, fast_ref + slow_ref))


@needs_triton
def test_tensors_the_kernel_cannot_address_fall_back():
    base = torch.randn(6, 8)
    fast = [base[:, ::2], torch.randn(5, 4).t(), torch.randn(10, dtype=torch.float64), torch.randn(12)]
    slow = [torch.randn(6, 4), torch.randn(4, 5), torch.randn(10, dtype=torch.float64), torch.randn(12)]
    # not dense; strides differ from the slow copy's; fp64 (the kernel computes in fp32); eligible
    assert [fused_sync.eligible(f, s) for f, s in zip(fast, slow)] == [False, False, False, True]
    assert fused_sync.SyncPlan(fast, slow).fallback == [0, 1, 2]


@needs_triton
def test_lookahead_through_the_kernel_matches_foreach_and_follows_reallocation(monkeypatch):
    """End to end: Lookahead with the kernel (interpreted) vs fused=False, bit for bit, including a
    conv model moved to channels_last after the first sync (new data_ptrs: the tables are rebuilt)."""
    monkeypatch.setattr(fused_sync, "unavailable_reason", lambda device: None)
    launches = []

    def counting(plan, alpha):
        launches.append(len(plan.buckets))
        interpreted(plan, alpha)

    monkeypatch.setattr(fused_sync, "launch", counting)
    data = [torch.randn(4, 3, 6, 6, generator=torch.Generator().manual_seed(i)) for i in range(8)]

    def run(fused):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(64, 2))
        opt = Lookahead(
            torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), k=2, alpha=0.6, fused=fused
        )
        for i, x in enumerate(data):
            if i == 4:
                model.to(memory_format=torch.channels_last)
            opt.zero_grad()
            model(x).square().mean().backward()
            opt.step()
        return model, opt

    model, opt = run(True)
    assert launches == [1, 1, 1, 1]
    assert opt.sync_check.passed and opt.sync_check.error == 0.0  # the first sync, checked: bit for bit
    plan = opt._plans[0][1]
    assert plan.fallback == [0]  # the conv weight is channels_last now, its slow copy is not
    assert plan.key == fused_sync.SyncPlan.addresses(*opt._group_tensors(0)[:2])
    ref_model, ref_opt = run(False)
    for p, q in zip(model.parameters(), ref_model.parameters()):
        assert torch.equal(p, q) and torch.equal(opt.state[p]["slow"], ref_opt.state[q]["slow"])


def test_fused_true_without_cuda_says_why():
    model = make_model()
    opt = Lookahead(torch.optim.SGD(model.parameters(), lr=0.1), k=1, fused=True)
    why = "Triton is not installed" if fused_sync.triton is None else "the parameters are on cpu"
    with pytest.raises(RuntimeError, match=f"fused=True.*{why}"):
        train(model, opt, batches(1))
    with pytest.raises(ValueError, match="fused must be None, True or False"):
        Lookahead(torch.optim.SGD(model.parameters(), lr=0.1), fused="yes")


@pytest.mark.parametrize("kernel_can_run", [False, True])
def test_the_default_is_the_foreach_path_even_where_the_kernel_could_run(monkeypatch, kernel_can_run):
    # The kernel has never run on a GPU: fused=None keeps the foreach sync (docs/gpu.md).
    if kernel_can_run:
        monkeypatch.setattr(fused_sync, "unavailable_reason", lambda device: None)
    model = make_model()
    opt = Lookahead(torch.optim.SGD(model.parameters(), lr=0.1), k=1)
    monkeypatch.setattr(fused_sync, "launch", lambda plan, alpha: pytest.fail("the kernel ran"))
    train(model, opt, batches(2))
    assert opt._plans == {} and opt.sync_check is None


# -- the kernel's self-check: its first sync against the foreach sync on copies ---------------------------
if fused_sync.triton is not None:
    import triton
    import triton.language as tl

    @triton.jit
    def _kernel_without_tails(
        fast_ptrs,
        slow_ptrs,
        numels,
        chunk_tensor,
        chunk_start,
        coeff,
        SMALL_ALPHA: tl.constexpr,
        ALIGNED: tl.constexpr,
        FAST: tl.constexpr,
        SLOW: tl.constexpr,
        BLOCK: tl.constexpr,
    ):
        """The sync kernel with a masking bug: chunks that are not full (each tensor's tail) are skipped."""
        chunk = tl.program_id(0)
        t = tl.load(chunk_tensor + chunk)
        start = tl.load(chunk_start + chunk)
        n = tl.load(numels + t)
        f_ptr = tl.load(fast_ptrs + t).to(tl.pointer_type(FAST))
        s_ptr = tl.load(slow_ptrs + t).to(tl.pointer_type(SLOW))
        offs = start + tl.arange(0, BLOCK)
        if start + BLOCK <= n:
            f = tl.load(f_ptr + offs).to(tl.float32)
            s = tl.load(s_ptr + offs).to(tl.float32)
            new = tl.fma(coeff, f - s, s if SMALL_ALPHA else f)
            tl.store(s_ptr + offs, new.to(SLOW))
            tl.store(f_ptr + offs, new.to(FAST))


def wrong_kernel(plan, alpha):
    from triton.runtime.interpreter import InterpretedFunction

    plan(alpha, InterpretedFunction(_kernel_without_tails.fn))


def one_ulp_off(plan, alpha):
    """The right kernel, then one element of the first fast tensor moved by one ulp (another correct
    order of rounding could do that): within the tolerance."""
    interpreted(plan, alpha)
    first = ONE_ULP_TARGET[0]
    first.view(torch.int32 if first.dtype == torch.float32 else torch.int16)[0] += 1  # the next float


ONE_ULP_TARGET: list[torch.Tensor] = []


@needs_triton
@pytest.mark.parametrize("fast_dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(
    ("kernel", "passes"), [("right", True), ("without tails", False), ("one ulp off", True)]
)
def test_the_self_check_catches_a_wrong_kernel_and_passes_a_right_one(
    monkeypatch, fast_dtype, kernel, passes
):
    launch = {"right": interpreted, "without tails": wrong_kernel, "one ulp off": one_ulp_off}
    monkeypatch.setattr(fused_sync, "launch", launch[kernel])
    fast, slow = pairs(SIZES, fast_dtype, torch.float32)
    fast_ref, slow_ref = clones(fast), clones(slow)
    ONE_ULP_TARGET[:] = fast
    check = fused_sync.checked_launch(fused_sync.SyncPlan(fast, slow), 0.8, fast, slow, foreach_sync)
    foreach_sync(fast_ref, slow_ref, 0.8)

    assert check.path == "sync_kernel" and check.passed is passes
    assert check.tolerance == fused_sync.SYNC_TOLERANCE == 1.0
    if kernel == "right":
        assert check.error == 0.0
    if kernel == "one ulp off":
        assert 0 < check.error <= 1.0
    if not passes:  # every tensor has a tail: alpha x |fast - slow| off, thousands of eps
        assert check.error > 100 and "worst: " in check.detail
    # Whatever the kernel did, a failed check leaves the foreach results: the sync is right either way.
    exact = [torch.equal(a, b) for a, b in zip(fast + slow, fast_ref + slow_ref)]
    assert all(exact) if kernel != "one ulp off" else exact.count(False) == 1


@needs_triton
def test_the_self_check_fails_on_a_nan_the_foreach_sync_does_not_make(monkeypatch):
    def nan_kernel(plan, alpha):
        interpreted(plan, alpha)
        ONE_ULP_TARGET[0][3] = float("nan")

    monkeypatch.setattr(fused_sync, "launch", nan_kernel)
    fast, slow = pairs([5, 9], torch.float32, torch.float32)
    fast[1][2] = float("nan")  # a NaN in the weights: both paths give NaN there, not a mismatch
    ONE_ULP_TARGET[:] = fast
    check = fused_sync.checked_launch(fused_sync.SyncPlan(fast, slow), 0.5, fast, slow, foreach_sync)
    assert not check.passed and check.error == float("inf") and "fast tensor 0 (5,)" in check.detail
    assert check.to_dict()["error"] == "inf"  # summary.json stays strict JSON
    assert not fast[0].isnan().any() and fast[1][2].isnan()


@needs_triton
def test_a_wrong_kernel_sends_lookahead_to_the_foreach_sync_with_one_warning(monkeypatch):
    monkeypatch.setattr(fused_sync, "unavailable_reason", lambda device: None)
    launches = []

    def counting(plan, alpha):
        launches.append(alpha)
        wrong_kernel(plan, alpha)

    monkeypatch.setattr(fused_sync, "launch", counting)

    def run(fused):
        model = nn.Sequential(nn.Linear(6, 700), nn.Tanh(), nn.Linear(700, 3))  # 4200 > BLOCK: a tail
        torch.manual_seed(0)
        for p in model.parameters():
            nn.init.normal_(p, std=0.1)
        opt = Lookahead(
            torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), k=2, alpha=0.6, fused=fused
        )
        train(model, opt, batches(8))
        return model, opt

    with pytest.warns(RuntimeWarning, match="sync_kernel self-check failed") as warned:
        model, opt = run(True)
    assert len([w for w in warned if "self-check" in str(w.message)]) == 1
    assert launches == [0.6]  # the first sync only; the 3 others by foreach
    assert not opt.sync_check.passed and opt._plans[0][1] is not None
    assert opt._plan(0, *opt._group_tensors(0)[:2]) is None
    ref_model, ref_opt = run(False)
    for p, q in zip(model.parameters(), ref_model.parameters()):
        assert torch.equal(p, q) and torch.equal(opt.state[p]["slow"], ref_opt.state[q]["slow"])


@pytest.mark.parametrize("inner", ["sgd", "adam"])
def test_step_is_inner_step_then_advance(inner):
    data = batches(9)
    a, b = make_model(), make_model()
    via_step = Lookahead(INNER[inner](a.parameters()), k=3, alpha=0.7, pullback_momentum="pullback")
    via_advance = Lookahead(INNER[inner](b.parameters()), k=3, alpha=0.7, pullback_momentum="pullback")
    train(a, via_step, data)
    for i, (x, y) in enumerate(data):
        via_advance.zero_grad()
        nn.functional.cross_entropy(b(x), y).backward()
        if i == 0:
            via_advance.step()  # the eager warm-up step takes the slow weights before the first update
        else:
            via_advance.optimizer.step()  # e.g. replayed from a CUDA graph
            via_advance.advance()
    assert via_step.param_groups[0]["lookahead_step"] == via_advance.param_groups[0]["lookahead_step"] == 9
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
        for key in via_step.state[p]:
            assert torch.equal(via_step.state[p][key], via_advance.state[q][key])


def test_advance_takes_missing_slow_weights_before_counting():
    model = make_model()
    opt = Lookahead(torch.optim.SGD(model.parameters(), lr=0.1), k=2)
    before = [p.detach().clone() for p in model.parameters()]
    opt.advance()  # no inner step taken: counts one, slow weights = current weights, no sync yet
    assert opt.param_groups[0]["lookahead_step"] == 1
    assert all(torch.equal(opt.state[p]["slow"], w) for p, w in zip(model.parameters(), before))


@needs_cuda
@needs_triton
@pytest.mark.parametrize("fast_dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("alpha", [0.3, 0.8])
def test_gpu_kernel_is_bitwise_the_foreach_sync(fast_dtype, alpha):
    fast, slow = pairs(SIZES, fast_dtype, torch.float32, device="cuda")
    fast_ref, slow_ref = clones(fast), clones(slow)
    fused_sync.SyncPlan(fast, slow)(alpha)
    foreach_sync(fast_ref, slow_ref, alpha)
    assert all(torch.equal(a, b) for a, b in zip(fast + slow, fast_ref + slow_ref))


@needs_cuda
@needs_triton
def test_gpu_kernel_passes_its_self_check_matches_foreach_and_is_graph_safe():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)).cuda()
    ref = copy.deepcopy(model)
    opt = Lookahead(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), k=2, fused=True)
    ref_opt = Lookahead(torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9), k=2, fused=False)
    x = torch.randn(32, 64, device="cuda")
    for m, o in ((model, opt), (ref, ref_opt)):
        for _ in range(5):
            o.zero_grad()
            m(x).square().mean().backward()
            o.step()
    assert isinstance(opt._plans[0][1], fused_sync.SyncPlan)
    assert opt.sync_check.passed, opt.sync_check
    for p, q in zip(model.parameters(), ref.parameters()):
        assert torch.equal(p, q)
    with torch.cuda.stream(torch.cuda.Stream()):  # the sync itself can be captured (no host sync)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            opt._sync(0)
    graph.replay()
    torch.cuda.synchronize()


def test_state_dict_hooks_run_like_torch_optim():
    model = make_model()
    opt = Lookahead(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), k=2)
    train(model, opt, batches(3))
    calls = []
    opt.register_state_dict_pre_hook(lambda o: calls.append("save-pre"))
    opt.register_state_dict_post_hook(lambda o, sd: {**sd, "note": "tagged"})
    opt.register_load_state_dict_pre_hook(lambda o, sd: calls.append(("load-pre", sd["note"])))
    opt.register_load_state_dict_post_hook(lambda o: calls.append("load-post"))
    sd = opt.state_dict()
    assert sd["note"] == "tagged"
    opt.load_state_dict(sd)
    assert calls == ["save-pre", ("load-pre", "tagged"), "load-post"]
