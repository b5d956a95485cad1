"""Muon(+AdamW), Lion and schedule-free AdamW as inner optimizers, alone and inside Lookahead."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from schedulefree import AdamWScheduleFree
from torch import nn

from lookahead import Lookahead
from lookahead.models.awd_lstm import lstm_small
from lookahead.models.mnist1d import mlp
from lookahead.optim.muon import MuonAdamW
from lookahead.train import evaluation
from lookahead.train.build import build_optimizer
from lookahead.train.schema import validate
from lookahead.train.trainer import train
from tests.conftest import compose_config, tiny_overrides

MODERN = ("muon", "lion", "schedulefree_adamw")


def make_mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return mlp(num_classes=3, input_length=6, hidden=8, depth=2)


def batches(n: int, seed: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(16, 6, generator=g), torch.randint(0, 3, (16,), generator=g)) for _ in range(n)]


def run(model: nn.Module, opt: torch.optim.Optimizer, data) -> None:
    for x, y in data:
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


def assert_same(a: list[torch.Tensor], b: list[torch.Tensor]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert torch.equal(x, y)


# -- MuonAdamW ----------------------------------------------------------------------------------------
def test_param_groups_of_gives_muon_the_hidden_matrices_only():
    model = make_mlp()  # Flatten, Linear(6,8), ReLU, Linear(8,8), ReLU, Linear(8,3)
    muon, adamw = MuonAdamW.param_groups_of(model)
    assert muon["use_muon"] and not adamw["use_muon"]
    assert [p is q for p, q in zip(muon["params"], (model[1].weight, model[3].weight))] == [True, True]
    expected = {model[1].bias, model[3].bias, model[5].weight, model[5].bias}  # the output layer whole
    assert set(adamw["params"]) == expected and len(adamw["params"]) == 4

    lm = lstm_small(vocab_size=50, emb_size=16, hidden_size=16, adaptive_cutoffs=[10, 30])
    muon, adamw = MuonAdamW.param_groups_of(lm)
    names = {id(p): n for n, p in lm.named_parameters()}
    muon_names = sorted(names[id(p)] for p in muon["params"])
    assert muon_names and all(n.startswith("rnns.") and "weight" in n for n in muon_names)
    adamw_names = {names[id(p)] for p in adamw["params"]}
    assert "encoder.weight" in adamw_names  # the embedding
    assert all(n in adamw_names for n in names.values() if n.startswith("adaptive."))  # the output layer
    assert len(muon_names) + len(adamw_names) == len(names)


def test_muon_adamw_steps_exactly_as_muon_and_adamw_side_by_side():
    a, b = make_mlp(), make_mlp()
    combined = MuonAdamW(MuonAdamW.param_groups_of(a), lr=0.02, weight_decay=0.01, adamw_lr=3e-3)
    hidden = [b[1].weight, b[3].weight]
    rest = [p for p in b.parameters() if all(p is not h for h in hidden)]
    muon = torch.optim.Muon(hidden, lr=0.02, weight_decay=0.01, adjust_lr_fn="match_rms_adamw")
    adamw = torch.optim.AdamW(rest, lr=3e-3, weight_decay=0.01)
    data = batches(6)
    run(a, combined, data)
    for x, y in data:
        muon.zero_grad(), adamw.zero_grad()
        nn.functional.cross_entropy(b(x), y).backward()
        muon.step(), adamw.step()
    assert_same(list(a.parameters()), list(b.parameters()))
    assert torch.equal(
        combined.state[a[1].weight]["momentum_buffer"], muon.state[b[1].weight]["momentum_buffer"]
    )


def test_muon_adamw_routes_added_groups_and_refuses_bad_ones():
    model = make_mlp()
    opt = MuonAdamW([model[1].weight])
    opt.add_param_group({"params": [model[3].weight]})  # 2-D: Muon by default
    opt.add_param_group({"params": [model[1].bias, model[3].bias]})  # vectors: AdamW
    opt.add_param_group({"params": [model[5].weight], "use_muon": False})  # the output layer: AdamW
    assert [g["use_muon"] for g in opt.param_groups] == [True, True, False, False]
    assert opt.muon.param_groups == opt.param_groups[:2] and opt.adamw.param_groups == opt.param_groups[2:]
    with pytest.raises(ValueError, match=r"not 2-D: shapes \[\(3,\)\]"):
        opt.add_param_group({"params": [model[5].bias], "use_muon": True})
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [model[1].weight], "use_muon": False})
    state = opt.state_dict()
    state["param_groups"][0]["use_muon"] = False
    with pytest.raises(ValueError, match="groups use Muon as"):
        MuonAdamW(copy.deepcopy(opt.param_groups)).load_state_dict(state)


def test_schedulers_and_lookahead_see_one_list_across_load_state_dict():
    model = make_mlp()
    opt = Lookahead(MuonAdamW(MuonAdamW.param_groups_of(model), lr=0.01), k=3)
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    run(model, opt, batches(2))
    opt.load_state_dict(opt.state_dict())
    scheduler.step()
    inner = opt.optimizer
    assert opt.param_groups is inner.param_groups
    assert inner.muon.param_groups[0] is inner.param_groups[0] and inner.muon.state is inner.state
    assert inner.muon.param_groups[0]["lr"] == inner.adamw.param_groups[0]["lr"] == 0.005


# -- each modern optimizer inside Lookahead, built from its config ------------------------------------
def built(name: str, lookahead: bool = True) -> tuple[nn.Module, torch.optim.Optimizer]:
    overrides = [f"optimizer={name}", f"lookahead={'on' if lookahead else 'off'}"]  # k = 5
    cfg = compose_config(overrides)
    model = make_mlp()
    return model, build_optimizer(validate(cfg), model)


@pytest.mark.parametrize("name", MODERN)
def test_alpha_one_reproduces_the_inner_optimizer(name):
    data = batches(10)
    model, opt = built(name, lookahead=False)
    wrapped_model, wrapped = built(name)
    for g in wrapped.param_groups:
        g["lookahead_alpha"] = 1.0
    run(model, opt, data)
    run(wrapped_model, wrapped, data)
    for p, q in zip(model.parameters(), wrapped_model.parameters()):
        # schedule-free: one eval/train swap per sync rounds y; the others are exact
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6 if name == "schedulefree_adamw" else 0)


# -- what Lookahead around schedule-free means --------------------------------------------------------
def test_schedule_free_lookahead_is_algorithm_1_on_the_averaged_weights():
    """phi_0 = x_0; every k steps, in eval mode (params = x): phi <- lerp(phi, x, alpha), x <- phi."""
    k, alpha, data = 3, 0.5, batches(10)
    model = make_mlp()
    opt = Lookahead(AdamWScheduleFree(model.parameters(), lr=1e-2), k=k, alpha=alpha)
    opt.optimizer.train()
    ref_model = make_mlp()
    ref = AdamWScheduleFree(ref_model.parameters(), lr=1e-2)
    ref.train()
    params = list(ref_model.parameters())
    phi = [p.detach().clone() for p in params]
    for t, (x, y) in enumerate(data, start=1):
        ref.zero_grad()
        nn.functional.cross_entropy(ref_model(x), y).backward()
        ref.step()
        if t % k == 0:
            ref.eval()
            with torch.no_grad():
                for s, p in zip(phi, params):
                    s.lerp_(p, alpha)
                    p.copy_(s)
            ref.train()
    run(model, opt, data)
    assert_same(list(model.parameters()), params)
    assert_same([opt.state[p]["slow"] for p in model.parameters()], phi)
    assert_same(
        [opt.optimizer.state[p]["z"] for p in model.parameters()], [ref.state[p]["z"] for p in params]
    )


def test_evaluation_sees_the_slow_weights_then_x_and_training_resumes_in_train_mode(monkeypatch):
    model = make_mlp()
    inner = AdamWScheduleFree(model.parameters(), lr=1e-2)
    inner.train()
    opt = Lookahead(inner, k=5)
    run(model, opt, batches(7))  # mid-cycle
    y = [p.detach().clone() for p in model.parameters()]
    beta1 = inner.param_groups[0]["betas"][0]
    x = [p.lerp(inner.state[p]["z"], 1 - 1 / beta1) for p in model.parameters()]  # schedulefree's eval()
    slow = [opt.state[p]["slow"].clone() for p in model.parameters()]
    seen = []

    def fake_evaluate_model(workload, net, ranks, device, autocast):
        seen.append(([p.detach().clone() for p in net.parameters()], inner.param_groups[0]["train_mode"]))
        return {"loss": 0.0}

    monkeypatch.setattr(evaluation, "evaluate_model", fake_evaluate_model)
    results = evaluation.evaluate(
        None, model, opt, None, eval_weights="both", bn_batches=0, epoch=0, ranks=None, device="cpu"
    )
    assert set(results) == {"loss", "loss_fast"}
    (slow_seen, mode_slow), (fast_seen, mode_fast) = seen
    assert (mode_slow, mode_fast) == (False, False)
    assert_same(slow_seen, slow)
    assert_same(fast_seen, x)
    assert inner.param_groups[0]["train_mode"]
    for p, q in zip(model.parameters(), y):  # y again, up to the swap's rounding
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6)


# -- the trainer ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["muon", "lion", "schedulefree"])
def test_trainer_evaluates_slow_and_fast_weights_of_each_modern_optimizer(name, data_root, tmp_path):
    overrides = [
        f"experiment=mnist1d_{name}",
        "lookahead=on",
        "trainer.max_epochs=1",
        "trainer.eval_weights=both",
        *tiny_overrides(data_root, tmp_path),
    ]
    summary = train(validate(compose_config(overrides)), tmp_path / "run")
    assert summary.status == "completed"
    (record,) = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert record["step"] % 5 != 0  # mid-cycle: slow and fast weights differ
    assert 0.0 < record["test_loss"] < 10 and record["test_loss"] != record["test_loss_fast"]


@pytest.mark.parametrize("name", ["muon", "lion", "schedulefree"])
def test_ptb_study_presets_train_a_few_steps_with_and_without_lookahead(name, tmp_path):
    # (the MNIST-1D presets run in tests/test_configs.py and in the test above)
    from tests.test_ptb import ptb_overrides, random_corpus

    corpus = random_corpus(tmp_path / "ptb", words=600)
    for lookahead in ("off", "on"):
        overrides = [
            *ptb_overrides(f"ptb_small_{name}", corpus, tmp_path / lookahead),
            f"lookahead={lookahead}",
        ]
        cfg = compose_config([*overrides, "trainer.max_epochs=1", "trainer.limit_train_batches=5"])
        summary = train(validate(cfg), tmp_path / lookahead / "run")
        assert summary.status == "completed" and summary.steps == 5
        assert summary.method == (f"lookahead_{name}" if lookahead == "on" else name)
        assert 1 < summary.final["valid_perplexity"] < 1e4


def test_modern_cpu_sweeps_every_preset_with_and_without_lookahead_into_ignored_folders():
    import subprocess

    from tests.conftest import ROOT
    from tests.test_make import make, written_paths

    dry = make("-n", "modern-cpu", "-o", ".venv/.installed", "VENV=.venv")
    assert dry.returncode == 0, dry.stderr
    for preset in ("mnist1d", "ptb_small"):
        for name in ("muon", "lion", "schedulefree"):
            assert f"experiment={preset}_{name} lookahead=off,on" in " ".join(dry.stdout.split())
    assert dry.stdout.count("seed=1,2,3,4,5") == 3 and dry.stdout.count("seed=1,2,3 ") == 3
    for path in written_paths("modern-cpu"):
        probe = subprocess.run(["git", "check-ignore", "-q", "--no-index", f"{path}/probe"], cwd=ROOT)
        assert probe.returncode == 0, f"make modern-cpu writes {path}, which git does not ignore"
