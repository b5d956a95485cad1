"""Figure generation from fixture run directories and the theory/inner-loop entry points."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from lookahead.theory import nqm as theory
from tests.conftest import MNIST1D_SAMPLES, ROOT, write_summary

sys.path.insert(0, str(ROOT / "scripts"))
import figures


def write_grid_run(root: Path, k: int, alpha: float, seed: int, acc: float | None, status: str = "completed"):
    run = root / f"k{k}_a{alpha}" / f"seed{seed}"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(
        yaml.safe_dump(
            {
                "dataset": {"name": "mnist1d"},
                "method": "lookahead",
                "seed": seed,
                "lookahead": {"k": k, "alpha": alpha},
            }
        )
    )
    write_summary(
        run,
        status=status,
        dataset="mnist1d",
        method="lookahead",
        seed=seed,
        final={} if acc is None else {"test_accuracy": acc},
    )
    (run / "metrics.jsonl").write_text(
        "".join(
            json.dumps({"epoch": e, "step": e, "train_loss": 1 / e, "test_accuracy": (acc or 0.1) * e / 2})
            + "\n"
            for e in (1, 2)
        )
    )


def test_grid_figure_with_diverged_and_missing_cells(tmp_path, monkeypatch):
    from lookahead.analysis import plotting

    drawn, save = [], plotting.save
    monkeypatch.setattr(plotting, "save", lambda fig, *a, **kw: (drawn.append(fig), save(fig, *a, **kw))[1])
    for k in (1, 5):
        for alpha in (0.5, 1.0):
            for seed in (1, 2):
                diverged = (k, alpha) == (5, 1.0) or (k, alpha, seed) == (1, 1.0, 2)  # all / some
                write_grid_run(
                    tmp_path / "runs",
                    k,
                    alpha,
                    seed,
                    None if diverged else 0.8 + k / 100 + seed / 100,
                    status="diverged" if diverged else "completed",
                )
    out = tmp_path / "fig" / "alpha_k"
    assert (
        figures.main(
            [
                "grid",
                str(tmp_path / "runs"),
                "--x",
                "lookahead.k",
                "--y",
                "lookahead.alpha",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert out.with_suffix(".png").stat().st_size > 5000 and out.with_suffix(".pdf").exists()
    # the colour bar is on the cells' scale: percent, from the lowest to the highest mean (82.0-86.5)
    (colorbar,) = [ax for ax in drawn[0].axes if ax.get_ylabel().startswith("final test accuracy (%")]
    assert colorbar.get_ylim() == pytest.approx((82.0, 86.5))
    assert {t.get_text() for t in drawn[0].axes[0].texts} >= {"82.5", "86.5"}
    grid = pd.read_csv(out.with_suffix(".csv"))
    cell = grid[(grid["lookahead.k"] == 1) & (grid["lookahead.alpha"] == 0.5)].iloc[0]
    assert cell["n"] == 2 and abs(cell["mean"] - 0.825) < 1e-9  # mean of 0.82 and 0.83
    bad = grid[(grid["lookahead.k"] == 5) & (grid["lookahead.alpha"] == 1.0)].iloc[0]
    assert bad["n"] == 0 and bad["n_diverged"] == 2 and pd.isna(bad["mean"])  # never averaged as zero
    partial = grid[(grid["lookahead.k"] == 1) & (grid["lookahead.alpha"] == 1.0)].iloc[0]
    assert partial["n"] == 1 and partial["n_diverged"] == 1 and abs(partial["mean"] - 0.82) < 1e-9


def test_curves_figure_and_clear_errors(tmp_path, capsys):
    write_grid_run(tmp_path / "runs", 5, 0.5, 1, 0.9)
    assert figures.main(["curves", str(tmp_path / "runs"), "--out", str(tmp_path / "curves")]) == 0
    assert (tmp_path / "curves.png").exists()
    assert (
        figures.main(
            [
                "grid",
                str(tmp_path / "runs"),
                "--x",
                "optimizer.lr",
                "--y",
                "lookahead.k",
                "--out",
                str(tmp_path / "g"),
            ]
        )
        == 1
    )
    assert "no run has config field(s) optimizer.lr" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert figures.main(["curves", str(tmp_path / "empty"), "--out", str(tmp_path / "c")]) == 1


def _run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "experiments" / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
    )


def test_theory_entry_points_write_figures(tmp_path):
    small = ["dim=20", "steps=300", "monte_carlo_chains=300", "alphas=10", "points=12", "matched_loss=0.5"]
    variants = ["~variants", "+variants={small:[20,1.0,1.0]}"]
    nqm = _run("nqm.py", f"out={tmp_path}", *small, *variants, cwd=tmp_path)
    assert nqm.returncode == 0, nqm.stderr
    data = json.loads((tmp_path / "nqm.json").read_text())
    # the figure's numbers are the closed form's: every matched curve settles at the common final loss,
    # and each plotted Lookahead point is (steady loss, rate) of its step size
    a = 1.0 / np.arange(1, 21)
    for curve in data["matched"].values():
        assert theory.steady_loss(a, 1 / a, curve["lr"], curve["k"], curve["alpha"]) == pytest.approx(0.5)
        assert curve["monte_carlo_rel_error"] < 0.2
        first = next(t for t, loss in zip(curve["steps"], curve["loss"]) if loss <= 1.05 * 0.5)
        assert curve["steps_to_5pct"] == first
    assert set(data["lookahead_frontiers"]) == {f"{i / 10:g}" for i in range(1, 11)}
    curve = data["lookahead_frontiers"]["0.3"]
    for lr, loss, rate in list(zip(curve["lr"], curve["loss"], curve["rate"]))[::4]:
        assert loss == pytest.approx(theory.steady_loss(a, 1 / a, lr, 5, 0.3))
        assert rate == pytest.approx(theory.convergence_rate(a, lr, 5, 0.3))
    assert max(data["speedup"]["small"]["speedup"]) > 1
    quad = _run("quadratic.py", f"out={tmp_path}", "points=50", cwd=tmp_path)
    assert quad.returncode == 0, quad.stderr
    assert {"nqm.png", "nqm.pdf", "quadratic.png", "quadratic.pdf"} <= {p.name for p in tmp_path.iterdir()}
    bad = _run("quadratic.py", f"out={tmp_path}", "alpha=0", cwd=tmp_path)
    assert bad.returncode == 1 and bad.stderr.strip().startswith("error: need k >= 1 and 0 < alpha <= 1")


@pytest.mark.slow  # 38 s (trains 4 small models) on the shared 2-core CPU
def test_inner_loop_entry_points(tmp_path, data_root):
    common = [
        f"out={tmp_path}",
        f"paths.data={data_root}",
        f"dataset.num_samples={MNIST1D_SAMPLES}",
        "warmup_epochs=1",
        "window=10",
    ]
    fast_slow = _run("fast_slow.py", *common, "seeds=[1,2]", cwd=tmp_path)
    assert fast_slow.returncode == 0, fast_slow.stderr
    summary = json.loads((tmp_path / "fast_slow.json").read_text())
    assert summary["seeds"] == [1, 2] and 0 <= summary["slow_accuracy_mean"] <= 1
    surface = _run("surface.py", *common, "grid=5", "surface_seeds=[1,2]", cwd=tmp_path)
    assert surface.returncode == 0, surface.stderr
    spread = json.loads((tmp_path / "surface.json").read_text())
    assert [s["seed"] for s in spread["per_seed"]] == [1, 2] and spread["slow_minus_fast_points_std"] >= 0
    gaps = [100 * (s["slow_accuracy_mean"] - s["fast_accuracy_mean"]) for s in spread["per_seed"]]
    assert spread["slow_minus_fast_points_mean"] == pytest.approx(sum(gaps) / 2)
    assert (tmp_path / "surface.png").exists() and (tmp_path / "fast_slow.pdf").exists()
    off = _run("fast_slow.py", *common, "lookahead=off", cwd=tmp_path)
    assert off.returncode == 1 and "needs lookahead=on" in off.stderr
