"""Scorecard: the Lookahead implementations on PyPI side by side -> docs/scorecard.md (``make scorecard``).

Correctness: a battery of properties, each checked against a float64 reference of the paper's Algorithm 1
(slow weights phi = theta_0; k inner steps; phi <- phi + alpha (theta - phi); theta <- phi) run with the
same inner ``torch.optim`` optimizer. Speed: the optimizer step time of Lookahead(inner) over that of the
inner optimizer alone (ResNet-18's parameters, CPU, median of interleaved repeats).

Peers are imported if installed (``make scorecard`` installs requirements-scorecard.txt) and skipped, with
the reason, otherwise. Their failures are reported as observed; then grouped by root cause
(scripts/scorecard_causes.py): each cause has a fix, and a failed row is attributed to the causes whose fix
it needs (it fails with every fix but that one); each defect's reproduction is run with and without its
fix. Speed: each figure is the median of the per-repeat ratios with a 95 % bootstrap interval, and
implementations are ranked only where their intervals separate.

    python scripts/scorecard.py --out docs/scorecard.md [--machine "..."] [--only lookahead,timm]
"""

from __future__ import annotations

from lookahead.progress import announce

announce(
    __name__,
    "the Lookahead scorecard (correctness battery, root causes, step-time overhead)",
    quiet_flags=("--ddp-worker",),
)

import argparse
import importlib
import importlib.metadata
import io
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from scipy import stats
from torch import nn

from lookahead.progress import Stages

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # scorecard_causes, also when loaded by path

import scorecard_causes
from scorecard_causes import DEFECT, FEATURE, Cause

K, ALPHA = 5, 0.5
TOL = 1e-9  # float64: rounding differences between lerp formulas stay ~1e-15; any algorithmic one is >1e-4


@dataclass(frozen=True)
class Impl:
    name: str  # column title
    path: str  # "module:attr" of the wrapper class, called as cls(inner, k=..., alpha=...)
    distribution: str | None  # PyPI distribution (None: this repository)

    @property
    def short(self) -> str:
        return self.name.split()[0]


IMPLS = (
    Impl("lookahead (this suite)", "lookahead.optim.lookahead:Lookahead", None),
    Impl("pytorch_optimizer", "pytorch_optimizer:Lookahead", "pytorch_optimizer"),
    Impl("timm", "timm.optim:Lookahead", "timm"),
    Impl("torch-optimizer", "torch_optimizer:Lookahead", "torch-optimizer"),
)


@dataclass
class Outcome:
    passed: bool
    observed: str
    expected: str


Fixes = frozenset[str] | None  # None: the class as published; a set: with those causes removed


def load(path: str, fixes: Fixes = None) -> Callable[..., torch.optim.Optimizer]:
    module, attr = path.split(":")
    cls = getattr(importlib.import_module(module), attr)
    if fixes is None:
        return cls
    short = next(impl.short for impl in IMPLS if impl.path == path)
    return scorecard_causes.with_fixes(short, cls, fixes)


# -- the reference and the shared set-up ------------------------------------------------------------------
def make_model(seed: int = 0, dtype: torch.dtype = torch.float64) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 3)).to(dtype)


def make_data(n: int, seed: int = 1, batch: int = 16) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(batch, 6, generator=g, dtype=torch.float64), torch.randint(0, 3, (batch,), generator=g))
        for _ in range(n)
    ]


def loss_of(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    x, y = batch
    return nn.functional.cross_entropy(model(x), y)


def flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().double().flatten() for p in model.parameters()])


StepHook = Callable[[int], object] | None


def train(model: nn.Module, opt: torch.optim.Optimizer, data, on_step: StepHook = None) -> list[torch.Tensor]:
    """Plain steps (gradients cleared through the model, so every implementation sees the same ones);
    the parameters after each step. ``on_step(t)`` runs after step t (1-based)."""
    snaps = []
    for t, batch in enumerate(data, start=1):
        model.zero_grad(set_to_none=True)
        loss_of(model, batch).backward()
        opt.step()
        if on_step is not None:
            on_step(t)
        snaps.append(flat(model))
    return snaps


def algorithm1(
    model: nn.Module, inner: torch.optim.Optimizer, data, ks, alphas, on_step: StepHook = None, own_cycle=True
) -> list[torch.Tensor]:
    """Algorithm 1 written out per param group: slow weights = the group's weights at its first step; a
    sync every k-th inner step of the group (``own_cycle``) or of the optimizer (a group added later)."""
    slow: dict[int, list[torch.Tensor]] = {}
    counts: dict[int, int] = {}
    snaps = []
    for t, batch in enumerate(data, start=1):
        for gi, group in enumerate(inner.param_groups):
            if gi not in slow:
                slow[gi] = [p.detach().clone() for p in group["params"]]
                counts[gi] = 0 if own_cycle else t - 1
        model.zero_grad(set_to_none=True)
        loss_of(model, batch).backward()
        inner.step()
        with torch.no_grad():
            for gi, group in enumerate(inner.param_groups):
                counts[gi] += 1
                if counts[gi] % ks[gi] == 0:
                    for s, p in zip(slow[gi], group["params"]):
                        s.add_(alphas[gi] * (p - s))  # phi <- phi + alpha (theta - phi)
                        p.copy_(s)  # theta <- phi
        if on_step is not None:
            on_step(t)
        snaps.append(flat(model))
    return snaps


def compare(got: list[torch.Tensor], want: list[torch.Tensor], tol: float = TOL, what: str = "") -> Outcome:
    expected = f"parameters within {tol:.0e} of {what or 'the Algorithm 1 reference'} after every step"
    for t, (a, b) in enumerate(zip(got, want), start=1):
        gap = (a - b).abs().max().item()
        if not gap <= tol:
            worst = max((x - y).abs().max().item() for x, y in zip(got, want))
            return Outcome(False, f"first off at step {t} (by {gap:.1e}); max gap {worst:.1e}", expected)
    return Outcome(True, "", expected)


def sgd(params, lr: float = 0.1) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=lr, momentum=0.9)


def adamw(params) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=1e-2, weight_decay=0.01)


# -- the properties -----------------------------------------------------------------------------------------
def exact(wrap, make_inner, steps: int = 60) -> Outcome:
    data = make_data(steps)
    model, ref_model = make_model(), make_model()
    got = train(model, wrap(make_inner(model.parameters()), k=K, alpha=ALPHA), data)
    want = algorithm1(ref_model, make_inner(ref_model.parameters()), data, [K], [ALPHA])
    return compare(got, want)


def prop_exact_sgd(wrap) -> Outcome:
    """Exact over 12 syncs (SGD, momentum 0.9; k=5, alpha=0.5; 60 steps)."""
    return exact(wrap, sgd)


def prop_exact_adamw(wrap) -> Outcome:
    """Exact over 12 syncs (AdamW; k=5, alpha=0.5; 60 steps)."""
    return exact(wrap, adamw)


def prop_alpha_one(wrap) -> Outcome:
    """alpha = 1 reproduces the inner optimizer (AdamW, 20 steps)."""
    data = make_data(20)
    model, ref_model = make_model(), make_model()
    got = train(model, wrap(adamw(model.parameters()), k=K, alpha=1.0), data)
    want = train(ref_model, adamw(ref_model.parameters()), data)
    return compare(got, want, what="the inner optimizer alone")


def prop_per_group(wrap) -> Outcome:
    """Per-group k/alpha: groups' ``lookahead_k``/``lookahead_alpha`` (set before wrapping) are honoured."""
    data = make_data(30)
    settings = [(3, 0.8), (7, 0.3)]

    def groups(model: nn.Module) -> list[dict]:
        ps = list(model.parameters())
        return [
            {"params": ps[:2], "lookahead_k": 3, "lookahead_alpha": 0.8},
            {"params": ps[2:], "lookahead_k": 7, "lookahead_alpha": 0.3},
        ]

    model, ref_model = make_model(), make_model()
    got = train(model, wrap(sgd(groups(model)), k=K, alpha=ALPHA), data)
    want = algorithm1(ref_model, sgd(groups(ref_model)), data, *zip(*settings))
    return compare(got, want)


def prop_added_group(wrap) -> Outcome:
    """A param group added after wrapping (``add_param_group`` after step 4) is stepped and synced from
    then on (on its own k-step cycle or the optimizer's: either reading is accepted)."""
    data = make_data(24)
    model = make_model()
    opt = wrap(sgd(list(model.parameters())[:4]), k=K, alpha=ALPHA)
    got = train(model, opt, data, on_step=lambda t: add_rest(opt, model) if t == 4 else None)
    outcomes = [compare(got, _added_group_reference(data, own)) for own in (True, False)]
    expected = "parameters within 1e-09 of Algorithm 1 with the group joining after step 4"
    return (
        Outcome(True, "", expected)
        if any(o.passed for o in outcomes)
        else Outcome(False, outcomes[0].observed, expected)
    )


def add_rest(opt: torch.optim.Optimizer, model: nn.Module) -> None:
    opt.add_param_group({"params": list(model.parameters())[4:]})


def _added_group_reference(data, own_cycle: bool) -> list[torch.Tensor]:
    model = make_model()
    ref = sgd(list(model.parameters())[:4])
    return algorithm1(
        model,
        ref,
        data,
        [K, K],
        [ALPHA, ALPHA],
        on_step=lambda t: add_rest(ref, model) if t == 4 else None,
        own_cycle=own_cycle,
    )


def prop_resume(wrap) -> Outcome:
    """state_dict saved mid-cycle (step 7, k=5), torch.save/torch.load(weights_only=True) into fresh
    objects: the run continues exactly as the uninterrupted one (AdamW)."""
    data = make_data(15)
    expected = "after load_state_dict into fresh objects, the same parameters as the uninterrupted run"
    model = make_model()
    opt = wrap(adamw(model.parameters()), k=K, alpha=ALPHA)
    train(model, opt, data[:7])
    buffer = io.BytesIO()
    try:
        torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, buffer)
        uninterrupted = train(model, opt, data[7:])
        buffer.seek(0)
        ckpt = torch.load(buffer, weights_only=True)
        fresh = make_model(seed=1)
        fresh.load_state_dict(ckpt["model"])
        fresh_opt = wrap(adamw(fresh.parameters()), k=K, alpha=ALPHA)
        fresh_opt.load_state_dict(ckpt["opt"])
        resumed = train(fresh, fresh_opt, data[7:])
    except Exception as error:  # a peer's failure is an observation
        return Outcome(False, raised(error), expected)
    outcome = compare(resumed, uninterrupted, tol=0.0, what="the uninterrupted run")
    return Outcome(outcome.passed, outcome.observed, expected)


def prop_zero_grad(wrap) -> Outcome:
    """``zero_grad()`` sets gradients to None, as torch.optim does by default (so the inner optimizer
    skips parameters that get no gradient, instead of stepping them with zeros)."""
    model = make_model()
    opt = wrap(sgd(model.parameters()), k=K, alpha=ALPHA)
    loss_of(model, make_data(1)[0]).backward()
    opt.zero_grad()
    grads = [p.grad for p in model.parameters()]
    expected = "every .grad is None"
    if all(g is None for g in grads):
        return Outcome(True, "", expected)
    zeros = all(g is not None and not g.any() for g in grads)
    return Outcome(
        False, "gradients zero-filled, not None" if zeros else "gradients left as they were", expected
    )


def prop_closure(wrap) -> Outcome:
    """``step(closure)`` calls the closure once per step, returns its loss, and moves the weights as
    ``step()`` after a backward pass does (the implementation's own run, bit for bit)."""
    data = make_data(12)
    model, plain_model = make_model(), make_model()
    opt = wrap(sgd(model.parameters()), k=K, alpha=ALPHA)
    calls, returned, got = [], [], []
    for batch in data:

        def closure(batch=batch):
            model.zero_grad(set_to_none=True)
            loss = loss_of(model, batch)
            loss.backward()
            calls.append(loss.item())
            return loss

        out = opt.step(closure)
        returned.append(None if out is None else float(torch.as_tensor(out).detach()))
        got.append(flat(model))
    expected = "one call per step, its loss returned, the same weights as step() without a closure"
    if len(calls) != len(data):
        return Outcome(False, f"closure called {len(calls)} times in {len(data)} steps", expected)
    if returned != calls:
        return Outcome(
            False, f"step returned {returned[:2]}..., the closure's losses were {calls[:2]}...", expected
        )
    plain = train(plain_model, wrap(sgd(plain_model.parameters()), k=K, alpha=ALPHA), data)
    outcome = compare(got, plain, tol=0.0, what="step() without a closure")
    return Outcome(outcome.passed, outcome.observed, expected)


def prop_low_precision(wrap) -> Outcome:
    """bf16 and fp16 parameters with fp32 slow weights: interpolations below one ulp of the parameter
    dtype accumulate in the slow weights (a dyadic set-up that fp32 computes exactly)."""
    expected = "fast weights equal the exact reference (fp32 slow weights) after every step"
    for dtype, ulp in ((torch.bfloat16, 2.0**-7), (torch.float16, 2.0**-10)):
        weight = nn.Parameter(torch.ones(4, dtype=dtype))
        # gradient -1 and lr = one ulp in [1, 2): each inner step moves the weights up by exactly one ulp
        opt = wrap(torch.optim.SGD([weight], lr=ulp), k=K, alpha=ALPHA)
        theta = phi = 1.0
        for t in range(1, 41):
            weight.grad = torch.full_like(weight, -1.0)
            opt.step()
            theta += ulp
            if t % K == 0:
                phi += ALPHA * (theta - phi)
                theta = torch.tensor(phi, dtype=torch.float32).to(dtype).item()
            got = weight.detach().double()
            if not torch.all(got == theta):
                off = (got[0].item() - theta) / ulp
                name = str(dtype).removeprefix("torch.")
                return Outcome(False, f"{name}: off by {off:+.0f} ulp at step {t}", expected)
    return Outcome(True, "", expected)


def prop_scheduler(wrap) -> Outcome:
    """An LR scheduler built on the wrapper (StepLR, x0.5 every 4 steps) sets the lr the inner optimizer
    uses: the weights are those of the same implementation with the lr set by hand in the inner
    optimizer's groups (bit for bit)."""
    data = make_data(20)
    expected = "StepLR(wrapper) accepted; the same weights as with the inner lr set by hand"
    model, manual_model = make_model(), make_model()
    inner = sgd(model.parameters())
    try:
        opt = wrap(inner, k=K, alpha=ALPHA)
        scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.5)
    except Exception as error:
        return Outcome(False, raised(error), expected)
    got = train(model, opt, data, on_step=lambda t: scheduler.step())
    manual_inner = sgd(manual_model.parameters())
    manual = wrap(manual_inner, k=K, alpha=ALPHA)

    def set_lr(t: int) -> None:
        for group in manual_inner.param_groups:
            group["lr"] = 0.1 * 0.5 ** (t // 4)

    want = train(manual_model, manual, data, on_step=set_lr)
    if inner.param_groups[0]["lr"] != manual_inner.param_groups[0]["lr"]:
        lr = inner.param_groups[0]["lr"]
        return Outcome(
            False, f"inner lr {lr} after 20 steps, scheduled {manual_inner.param_groups[0]['lr']}", expected
        )
    outcome = compare(got, want, tol=0.0, what="the lr set by hand")
    return Outcome(outcome.passed, outcome.observed, expected)


def prop_ddp(path: str, fixes: Fixes = None) -> Outcome:
    """DDP, 2 CPU processes (gloo), ranks seeded differently and the optimizer built before DDP broadcasts
    rank 0's weights: replicas stay identical and equal to the same implementation in one process on the
    whole batch."""
    expected = "replicas bit-identical, and within 1e-9 of the one-process run on the whole batch"
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        env["OMP_NUM_THREADS"] = "1"
        procs = [
            subprocess.Popen(
                [sys.executable, __file__, "--ddp-worker", str(rank), tmp, path, _fix_arg(fixes)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for rank in (0, 1)
        ]
        logs = [p.communicate(timeout=300)[0] for p in procs]
        if any(p.returncode for p in procs):
            last = next(log for p, log in zip(procs, logs) if p.returncode).strip().splitlines()
            return Outcome(False, f"a rank failed: {last[-1] if last else '?'}", expected)
        r0, r1 = (torch.load(Path(tmp) / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    if not torch.equal(r0, r1):
        return Outcome(False, f"replicas differ by {(r0 - r1).abs().max().item():.1e}", expected)
    model = make_model(seed=0)
    data = [(torch.cat([a[0], b[0]]), torch.cat([a[1], b[1]])) for a, b in zip(*_ddp_shards())]
    single = train(model, load(path, fixes)(sgd(model.parameters()), k=K, alpha=ALPHA), data)[-1]
    gap = (single - r0).abs().max().item()
    if not gap <= TOL:
        return Outcome(False, f"replicas identical, {gap:.1e} from the one-process run", expected)
    return Outcome(True, "", expected)


def _ddp_shards() -> tuple[list, list]:
    return make_data(12, seed=11, batch=8), make_data(12, seed=12, batch=8)


def _fix_arg(fixes: Fixes) -> str:
    return "-" if fixes is None else ",".join(sorted(fixes))


def _parse_fixes(arg: str) -> Fixes:
    return None if arg == "-" else frozenset(filter(None, arg.split(",")))


def ddp_worker(rank: int, tmp: str, path: str, fixes: Fixes) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp}/init", rank=rank, world_size=2)
    model = make_model(seed=rank)  # every rank starts from different weights ...
    opt = load(path, fixes)(sgd(model.parameters()), k=K, alpha=ALPHA)  # ... and builds the optimizer first
    ddp = nn.parallel.DistributedDataParallel(model)
    for batch in _ddp_shards()[rank]:
        ddp.zero_grad(set_to_none=True)
        loss_of(ddp, batch).backward()
        opt.step()
    torch.save(flat(model), Path(tmp) / f"rank{rank}.pt")
    dist.destroy_process_group()


PROPERTIES: dict[str, tuple[str, Callable]] = {
    "exact_sgd": ("exact over 12 syncs, SGD(momentum)", prop_exact_sgd),
    "exact_adamw": ("exact over 12 syncs, AdamW", prop_exact_adamw),
    "alpha_one": ("alpha = 1 is the inner optimizer", prop_alpha_one),
    "per_group": ("per-group k / alpha", prop_per_group),
    "added_group": ("param group added after wrapping", prop_added_group),
    "resume": ("state_dict mid-cycle, exact resume", prop_resume),
    "zero_grad": ("zero_grad() sets grads to None", prop_zero_grad),
    "closure": ("step(closure)", prop_closure),
    "low_precision": ("bf16/fp16 params, fp32 slow weights", prop_low_precision),
    "scheduler": ("LR scheduler on the wrapper", prop_scheduler),
    "ddp": ("DDP (2 gloo processes), built before DDP", prop_ddp),
}


def raised(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"raises {type(error).__name__}: {text[0][:120] if text else ''}".rstrip(": ")


def check(key: str, path: str, fixes: Fixes = None) -> Outcome:
    """One property of one implementation (with ``fixes`` applied); an exception inside it is the observation."""
    _, fn = PROPERTIES[key]
    try:
        return fn(path, fixes) if key == "ddp" else fn(load(path, fixes))
    except Exception as error:
        if os.environ.get("SCORECARD_DEBUG"):
            traceback.print_exc()
        return Outcome(False, raised(error), " ".join((fn.__doc__ or "").split()))


# -- root causes ------------------------------------------------------------------------------------------
Failing = Callable[[frozenset[str], Sequence[str]], set[str]]  # (fixes, rows) -> the rows that fail


@dataclass
class Attribution:
    rows: dict[str, list[str]]  # cause -> the failed rows it explains (they fail with every fix but its own)
    alone: dict[str, int]  # cause -> properties passed with that fix alone
    unexplained: list[str]  # failed rows that still fail with every fix: no cause in the catalogue
    broken: list[str]  # rows that pass as published and fail with every fix: a fix that breaks something
    faithful: bool  # the fixes' scaffolding without a fix fails exactly the observed rows
    with_all: int  # properties passed with every fix


def attribute(
    failed: Sequence[str], causes: Sequence[str], failing: Failing, keys: Sequence[str] = tuple(PROPERTIES)
) -> Attribution:
    """Which failed rows each cause explains, by experiment: a row is the cause's when it passes with every
    fix and fails with every fix but that one (so a row two causes break belongs to both). "Alone" counts
    the properties passed with one fix, taking the rows that passed as published as still passing (every
    row is rechecked with every fix)."""
    every = frozenset(causes)
    still = failing(every, keys)
    rows = {}
    for cause in causes:
        without = failing(every - {cause}, failed)
        rows[cause] = [r for r in failed if r in without and r not in still]
    return Attribution(
        rows=rows,
        alone={c: len(keys) - len(failing(frozenset({c}), failed)) for c in causes},
        unexplained=[r for r in failed if r in still],
        broken=[r for r in keys if r in still and r not in failed],
        faithful=failing(frozenset(), keys) == set(failed),
        with_all=len(keys) - len(still),
    )


def battery_failing(impl: Impl) -> Failing:
    """``Failing`` for a peer: the battery with the named fixes applied, each (fixes, row) run once."""
    memo: dict[tuple[frozenset[str], str], bool] = {}

    def failing(fixes: frozenset[str], rows: Sequence[str]) -> set[str]:
        for row in rows:
            if (fixes, row) not in memo:
                memo[fixes, row] = not check(row, impl.path, fixes).passed
                print(
                    f"{impl.name:24s} {row:14s} fixes {','.join(sorted(fixes)) or '(none)':40s} {'FAIL' if memo[fixes, row] else 'pass'}"
                )
        return {row for row in rows if memo[fixes, row]}

    return failing


@dataclass(frozen=True)
class ReproRun:
    shows: bool  # it failed as the cause says (``Cause.shows``) with the peer as published
    fixed: bool  # it passed with the cause's fix applied
    last: str  # the last line of its stderr as published


def run_repro(impl: Impl, cause: Cause) -> ReproRun:
    """A defect's reproduction, as published and with its fix patched into the peer's module."""
    module = impl.path.split(":")[0]
    prelude = (
        f"import {module} as _m, scorecard_causes as _c\n"
        f"_m.Lookahead = _c.with_fixes({impl.short!r}, _m.Lookahead, [{cause.key!r}])\n"
    )
    path = os.pathsep.join([str(ROOT / "scripts"), str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
    runs = [
        subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
        for code in (cause.repro, prelude + cause.repro)
    ]
    lines = runs[0].stderr.strip().splitlines()
    last = lines[-1] if lines else ""
    return ReproRun(runs[0].returncode != 0 and last.startswith(cause.shows), runs[1].returncode == 0, last)


@dataclass
class Grouping:
    causes: list[Cause]
    attribution: Attribution | None  # None: no catalogue for this version
    repros: dict[str, ReproRun]  # cause key -> its reproduction's runs (defects)


def group(impl: Impl, version: str, failed: list[str]) -> Grouping:
    causes = scorecard_causes.causes_of(impl.short, version.rpartition(" ")[2])
    if not causes or not failed:
        return Grouping(causes, None, {})
    attribution = attribute(failed, [c.key for c in causes], battery_failing(impl))
    repros = {c.key: run_repro(impl, c) for c in causes if c.kind == DEFECT}
    return Grouping(causes, attribution, repros)


# -- speed ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Figure:
    median: float
    low: float  # 95 % percentile-bootstrap interval of the median
    high: float

    def __str__(self) -> str:
        return f"{self.median:.3f} [{self.low:.3f}, {self.high:.3f}]"


def median_interval(values: Sequence[float], seed: int = 0) -> Figure:
    """The median of repeated measurements and its 95 % percentile-bootstrap interval."""
    data = np.asarray(values, float)
    median = float(np.median(data))
    if len(data) < 2 or np.ptp(data) == 0:
        return Figure(median, median, median)
    ci = stats.bootstrap(
        (data,), np.median, method="percentile", n_resamples=2000, rng=np.random.default_rng(seed)
    ).confidence_interval
    return Figure(median, float(ci.low), float(ci.high))


def separations(figures: dict[str, Figure]) -> list[tuple[str, str]]:
    """(lower, higher) for every pair whose intervals do not overlap; every other pair is a tie."""
    return [(a, b) for a in figures for b in figures if figures[a].high < figures[b].low]


def ranking(figures: dict[str, Figure]) -> str:
    pairs = sorted(separations(figures), key=lambda p: (figures[p[0]].median, figures[p[1]].median))
    if not pairs:
        return "no two intervals separate: all tie"
    n = len(figures)
    text = ", ".join(f"{a} < {b}" for a, b in pairs)
    return text + ("" if len(pairs) == n * (n - 1) // 2 else "; every other pair ties")


@dataclass
class Speed:
    figures: dict[str, dict[str, Figure]]  # implementation -> inner -> step time / inner step time
    inner_ms: dict[str, Figure]  # inner -> its step time alone (ms)
    repeats: int
    steps: int
    threads: int
    load: tuple[str, str]  # `uptime`'s load averages before and after the timings


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


def speed(impls: list[Impl], repeats: int = 15, steps: int = 2 * K, stages: Stages | None = None) -> Speed:
    """Step time of Lookahead(inner) / inner alone on ResNet-18's parameters (fp32, CPU), per inner
    optimizer: in each repeat every variant runs ``steps`` steps (whole k-step cycles, syncs included) in
    turn, the order rotating, so that a slower or faster spell of a shared machine hits all of them alike;
    each repeat gives one ratio per implementation (against the inner optimizer's time in that repeat).
    ``stages``: where to say, at least once a minute, which repeat is being timed."""
    from torchvision.models import resnet18

    before = load_average()
    inners = {"SGD(momentum)": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9), "AdamW": adamw}
    figures: dict[str, dict[str, Figure]] = {impl.name: {} for impl in impls}
    inner_ms = {}
    for inner_name, make_inner in inners.items():
        variants: dict[str, tuple[torch.optim.Optimizer, list[float]]] = {}
        for impl in [None, *impls]:
            model = resnet18()
            for p in model.parameters():
                p.grad = torch.randn_like(p) * 1e-3
            inner = make_inner(model.parameters())
            opt = inner if impl is None else load(impl.path)(inner, k=K, alpha=ALPHA)
            for _ in range(K):  # warm-up: state allocated, one sync done
                opt.step()
            variants["inner" if impl is None else impl.name] = (opt, [])
        order = list(variants)
        for repeat in range(repeats):
            if stages is not None:
                stages.tick(f"timing {inner_name}: repeat {repeat + 1}/{repeats}")
            for name in order:
                opt, times = variants[name]
                start = time.perf_counter()
                for _ in range(steps):  # whole k-step cycles: the syncs' share is included
                    opt.step()
                times.append((time.perf_counter() - start) / steps)
            order = order[1:] + order[:1]
        base = variants["inner"][1]
        inner_ms[inner_name] = median_interval([t * 1e3 for t in base])
        for impl in impls:
            figures[impl.name][inner_name] = median_interval(
                [t / b for t, b in zip(variants[impl.name][1], base)]
            )
        print(f"timed {inner_name}: " + ", ".join(f"{n} {figures[n][inner_name]}" for n in figures))
    return Speed(figures, inner_ms, repeats, steps, torch.get_num_threads(), (before, load_average()))


# -- the report -------------------------------------------------------------------------------------------
def available(impl: Impl) -> tuple[bool, str]:
    try:
        load(impl.path)
    except Exception as error:  # ImportError, or a peer that fails to import with our torch
        return False, f"not importable ({type(error).__name__}: {str(error).splitlines()[0][:100]})"
    if impl.distribution is None:
        return True, "this repository"
    return True, f"{impl.distribution} {importlib.metadata.version(impl.distribution)}"


def title(key: str) -> str:
    return PROPERTIES[key][0]


def anchor(impl: str, cause: str) -> str:
    return f"{impl}-{cause}".replace("_", "-").lower()


def cause_section(results: dict, groups: dict[str, Grouping]) -> list[str]:
    """One line per root cause with the rows it explains, then each defect's reproduction."""
    lines = [
        "",
        "## Failures by root cause",
        "",
        "One line per cause, read in the peer's source at the pinned version. Each cause has a fix, a subclass",
        "of the peer's class that removes it and nothing else (scripts/scorecard_causes.py); the rows a cause",
        "explains are established by running the battery: a row is the cause's when the peer passes it with",
        "every fix and fails it with every fix but that one (a row that two causes break belongs to both).",
        "A **defect** gives a wrong result or a crash on a call `torch.optim` supports; a **feature** is",
        "something the implementation does not offer (per-group k/alpha, fp32 slow weights for bf16/fp16",
        "parameters, alpha = 1), refused or ignored, not a wrong result of what it offers.",
        "",
        "| implementation | kind | cause (what its code does) | rows it explains | passed with this fix alone |",
        "|---|---|---|---|---|",
    ]
    notes = []
    n = len(PROPERTIES)
    for name, grouping in groups.items():
        a = grouping.attribution
        if a is None:
            if grouping.causes == [] and any(not results[name][k].passed for k in PROPERTIES):
                notes.append(
                    f"* **{name}**: no cause catalogue for {results[name]['_version']}; its failures are listed above ungrouped."
                )
            continue
        for cause in grouping.causes:
            kind = (
                f"defect ([reproduction](#{anchor(name, cause.key)}))" if cause.kind == DEFECT else "feature"
            )
            rows = "; ".join(title(r) for r in a.rows[cause.key]) or "none (its fix changes no failed row)"
            lines.append(f"| {name} | {kind} | {cause.what} | {rows} | {a.alone[cause.key]} / {n} |")
        passed = sum(results[name][k].passed for k in PROPERTIES)
        note = f"* **{name}** ({results[name]['_version']}): {passed} / {n} as published, {a.with_all} / {n} with every fix"
        if a.unexplained:
            note += "; still failing with every fix (no cause found): " + "; ".join(map(title, a.unexplained))
        if a.broken:
            note += "; passing as published but failing with every fix (a fix breaks it): " + "; ".join(
                map(title, a.broken)
            )
        note += (
            "; the fixes' scaffolding without a fix fails exactly the rows above."
            if a.faithful
            else "; **the fixes' scaffolding without a fix does not reproduce the rows above: attribution not trusted**."
        )
        notes.append(note)
    lines += ["", *notes]
    defects = [
        (name, c, g.repros[c.key]) for name, g in groups.items() for c in g.causes if c.key in g.repros
    ]
    if defects:
        lines += [
            "",
            "### Defects: reproductions for the peers' maintainers",
            "",
            "Each was run by the scorecard twice: with the peer as published (it must fail as stated) and with",
            "that cause's fix patched into the peer's module (it must pass).",
        ]
        for name, cause, run in defects:
            verdict = (
                f"fails with `{run.last}`; passes with the fix."
                if run.shows and run.fixed
                else f"**not verified**: as published its last line was `{run.last or '(none)'}` "
                f"(expected `{cause.shows}...`); with the fix it {'passed' if run.fixed else 'failed'}."
            )
            lines += [
                "",
                f'<a id="{anchor(name, cause.key)}"></a>',
                f"#### {name}: {cause.key} ({results[name]['_version']})",
                "",
                cause.what[0].upper() + cause.what[1:] + ".",
                "",
                "```python",
                cause.repro.rstrip(),
                "```",
                "",
                f"Run with torch {torch.__version__}: {verdict}",
            ]
    return lines


def speed_section(names: list[str], measured: Speed) -> list[str]:
    cols = list(measured.inner_ms)
    lines = [
        "",
        "## Speed: step-time overhead on CPU",
        "",
        "Optimizer step time of Lookahead(inner) / inner alone (lower is faster; 1 is no overhead), k = 5",
        "(syncs included), ResNet-18's parameters (11.7 M, fp32), gradients fixed, torch's default inner",
        f"implementation, {measured.threads} threads. In each of {measured.repeats} repeats every variant runs",
        f"{measured.steps} steps in turn (the order rotating), and each repeat gives one ratio against the inner",
        "optimizer's time in the same repeat; a cell is the median ratio and its 95 % bootstrap interval.",
        f"Load average (`uptime`, 1/5/15 min, this process included) before the timings {measured.load[0]},",
        f"after {measured.load[1]}.",
        "",
        "| implementation | "
        + " | ".join(f"{c} (inner {measured.inner_ms[c].median:.1f} ms/step)" for c in cols)
        + " |",
        "|---" * (len(cols) + 1) + "|",
    ]
    for n in names:
        lines.append(f"| {n} | " + " | ".join(str(measured.figures[n][c]) for c in cols) + " |")
    lines += ["", "Ranked only where the intervals separate (`a < b`: a has the lower overhead):", ""]
    lines += [f"* {c}: {ranking({n: measured.figures[n][c] for n in names})}." for c in cols]
    return lines


def markdown(
    results: dict,
    skipped: dict[str, str],
    measured: Speed | None,
    machine: str,
    seconds: float,
    groups: dict[str, Grouping],
) -> str:
    names = list(results)
    lines = [
        "# Lookahead implementations: a scorecard",
        "",
        "Written by `make scorecard` (scripts/scorecard.py); do not edit by hand. What each property means",
        "and how it is checked: [below](#the-properties).",
        "",
        f"Machine: {machine}. torch {torch.__version__}, Python {platform.python_version()}, "
        f"{datetime.now(timezone.utc):%Y-%m-%d}; the battery, its attribution and the timings took {seconds:.0f} s.",
        "",
        "Implementations: " + "; ".join(f"**{n}** ({results[n]['_version']})" for n in names) + ".",
    ]
    if skipped:
        lines += ["", "Skipped: " + "; ".join(f"**{n}**: {why}" for n, why in skipped.items()) + "."]
    lines += ["", "## Correctness", "", "| property | " + " | ".join(names) + " |"]
    lines.append("|---" * (len(names) + 1) + "|")
    for key, (name, _) in PROPERTIES.items():
        cells = ["pass" if results[n][key].passed else "**FAIL**" for n in names]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append(
        "| **passed** | "
        + " | ".join(f"{sum(results[n][k].passed for k in PROPERTIES)} / {len(PROPERTIES)}" for n in names)
        + " |"
    )

    def count(n: str, kind: str) -> str:
        g = groups.get(n)
        if g is None or g.attribution is None:
            return "0" if all(results[n][k].passed for k in PROPERTIES) else "?"
        return str(sum(c.kind == kind for c in g.causes))

    lines.append("| **defects** (root causes) | " + " | ".join(count(n, DEFECT) for n in names) + " |")
    lines.append("| **features not offered** | " + " | ".join(count(n, FEATURE) for n in names) + " |")
    failures = [(n, k) for n in names for k in PROPERTIES if not results[n][k].passed]
    if failures:
        lines += ["", "### Failures as observed", "", "| implementation | property | observed | expected |"]
        lines.append("|---|---|---|---|")
        for n, k in failures:
            r = results[n][k]
            lines.append(f"| {n} | {title(k)} | {r.observed} | {r.expected} |")
    if any(g.attribution is not None or g.causes for g in groups.values()) or failures:
        lines += cause_section(results, groups)
    if measured is not None:
        lines += speed_section(names, measured)
    lines += ["", "## The properties", ""]
    for key, (name, fn) in PROPERTIES.items():
        doc = " ".join((fn.__doc__ or "").split())
        lines.append(f"* **{name}** (`{key}`): {doc}")
    lines += [
        "",
        "Each property builds a small float64 MLP (6-8-8-3) and runs the implementation and a written-out",
        "Algorithm 1 (slow weights = the weights at the first step, `phi <- phi + alpha (theta - phi)` and",
        "`theta <- phi` every k inner steps) around the same `torch.optim` inner optimizer on the same batches,",
        f"comparing the parameters after every step (tolerance {TOL:.0e}: lerp formulas differ by ~1e-16 in",
        "float64; a sync at the wrong step or from the wrong slow weights is off by > 1e-4). Implementations",
        "are built as `cls(inner, k=5, alpha=0.5)`.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "scorecard.md")
    parser.add_argument(
        "--machine", default=f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
    )
    parser.add_argument("--only", default="", help="comma-separated implementation names (default: all)")
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--no-causes", action="store_true", help="skip the root-cause experiments")
    parser.add_argument("--repeats", type=int, default=15, help="timing repeats per inner optimizer")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    impls, skipped = [], {}
    for impl in IMPLS:
        if args.only and impl.short not in args.only.split(","):
            continue
        ok, version = available(impl)
        if ok:
            impls.append((impl, version))
        else:
            skipped[impl.name] = version
            print(f"skipping {impl.name}: {version}", file=sys.stderr)
    results: dict[str, dict] = {}
    groups: dict[str, Grouping] = {}
    # one stage per implementation (its battery, then its root causes), then the timings
    stages = Stages("scorecard", len(impls) + (not args.no_speed))
    for impl, version in impls:
        causes = impl.distribution is not None and not args.no_causes
        stages.begin(f"{impl.name}: correctness battery{' and root causes' if causes else ''}")
        results[impl.name] = {"_version": version}
        for key in PROPERTIES:
            outcome = check(key, impl.path)
            results[impl.name][key] = outcome
            print(f"{impl.name:24s} {key:14s} {'pass' if outcome.passed else 'FAIL ' + outcome.observed}")
        if impl.distribution is not None and not args.no_causes:
            failed = [k for k in PROPERTIES if not results[impl.name][k].passed]
            groups[impl.name] = group(impl, version, failed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # The correctness part first, so that slow timings on a busy machine cannot lose it.
    args.out.write_text(markdown(results, skipped, None, args.machine, time.perf_counter() - start, groups))
    print(f"wrote {args.out} (correctness)")
    if not args.no_speed:
        stages.begin(f"step-time overhead, {args.repeats} repeats per inner optimizer")
        measured = speed([impl for impl, _ in impls], repeats=args.repeats, stages=stages)
        text = markdown(results, skipped, measured, args.machine, time.perf_counter() - start, groups)
        args.out.write_text(text)
        print(f"wrote {args.out} (with speed)")
    stages.done()
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--ddp-worker":
        ddp_worker(int(sys.argv[2]), sys.argv[3], sys.argv[4], _parse_fixes(sys.argv[5]))
    else:
        sys.exit(main())
