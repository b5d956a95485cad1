"""Resume of Lookahead around every shipped inner optimizer is bit-for-bit: a checkpoint taken mid-cycle,
with or without an evaluation before it, in float32 and float64, continues exactly as the run that was
never interrupted (every parameter after every step, then the slow weights and the inner state)."""

from __future__ import annotations

import io

import pytest
import torch
from lion_pytorch import Lion
from schedulefree import AdamWScheduleFree
from torch import nn

from lookahead import Lookahead
from lookahead.models.mnist1d import mlp
from lookahead.optim.muon import MuonAdamW
from lookahead.optim.schedule_free import eval_mode

K, STEPS, CHECKPOINT = 5, 13, 7  # 7 = one sync + 2 steps into the next cycle
EVALUATIONS = (3, CHECKPOINT)  # after these steps, when evaluating (the trainer evaluates, then saves)


def schedule_free(params):
    opt = AdamWScheduleFree(params, lr=1e-2, warmup_steps=2)
    opt.train()  # built in eval mode
    return opt


INNER = {
    "sgd": lambda params: torch.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=1e-3),
    "adam": lambda params: torch.optim.Adam(params, lr=1e-2),
    "adamw": lambda params: torch.optim.AdamW(params, lr=1e-2, weight_decay=1e-2),
    "muon": lambda params: MuonAdamW(params, lr=1e-2),
    "lion": lambda params: Lion(params, lr=1e-3, weight_decay=0.1),
    "schedulefree": schedule_free,
}


def built(name: str, dtype: torch.dtype) -> tuple[nn.Module, Lookahead]:
    torch.manual_seed(0)
    model = mlp(num_classes=3, input_length=6, hidden=8, depth=2).to(dtype)
    params = MuonAdamW.param_groups_of(model) if name == "muon" else model.parameters()
    return model, Lookahead(INNER[name](params), k=K, alpha=0.5)


def data(dtype: torch.dtype) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [
        (torch.randn(16, 6, generator=g, dtype=dtype), torch.randint(0, 3, (16,), generator=g))
        for _ in range(STEPS)
    ]


def train(model: nn.Module, opt: Lookahead, batches, start: int, stop: int, evaluate: bool):
    """Steps ``start + 1 .. stop``; the parameters after each one."""
    seen = []
    for step in range(start + 1, stop + 1):
        x, y = batches[step - 1]
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        seen.append([p.detach().clone() for p in model.parameters()])
        if evaluate and step in EVALUATIONS:  # as lookahead/train/evaluation.py does
            with torch.no_grad(), eval_mode(opt), opt.slow_weights():
                model(x)
    return seen


@pytest.mark.parametrize("evaluate", [False, True], ids=["no-eval", "eval"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(INNER))
def test_resume_mid_cycle_is_bit_for_bit(name, dtype, evaluate):
    batches = data(dtype)
    model, opt = built(name, dtype)
    train(model, opt, batches, 0, CHECKPOINT, evaluate)
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, buffer)
    assert any(g["lookahead_step"] % K for g in opt.param_groups)  # mid-cycle
    assert not all(torch.equal(p, opt.state[p]["slow"]) for p in model.parameters())
    uninterrupted = train(model, opt, batches, CHECKPOINT, STEPS, evaluate)

    buffer.seek(0)
    ckpt = torch.load(buffer, weights_only=True)
    resumed_model, resumed = built(name, dtype)
    resumed_model.load_state_dict(ckpt["model"])
    resumed.load_state_dict(ckpt["opt"])
    after_resume = train(resumed_model, resumed, batches, CHECKPOINT, STEPS, evaluate)

    for step, (a, b) in enumerate(zip(uninterrupted, after_resume, strict=True), start=CHECKPOINT + 1):
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True)), f"parameters differ at step {step}"
    for p, q in zip(model.parameters(), resumed_model.parameters(), strict=True):
        assert torch.equal(opt.state[p]["slow"], resumed.state[q]["slow"])
        ours, theirs = opt.optimizer.state[p], resumed.optimizer.state[q]
        assert ours.keys() == theirs.keys()
        for key in ours:
            assert torch.equal(torch.as_tensor(ours[key]), torch.as_tensor(theirs[key])), key


def test_a_full_checkpoint_resumes_without_touching_a_schedule_free_optimizer():
    """Loading a checkpoint that holds every slow weight leaves nothing to take at the next step: no
    eval/train swap of schedule-free (whose rounding moved y by up to 6e-8 in float32 before)."""
    model, opt = built("schedulefree", torch.float32)
    train(model, opt, data(torch.float32), 0, 2, evaluate=False)
    _, resumed = built("schedulefree", torch.float32)
    resumed.load_state_dict(opt.state_dict())
    assert not resumed._missing()
    calls = []
    resumed.optimizer.eval = lambda: calls.append("eval")  # type: ignore[method-assign]
    resumed._init_slow_weights()
    assert calls == []
