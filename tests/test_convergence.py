"""Convergence targets: the trainer's record of when validation first reached each target, and the
steps-to-target columns of the comparison tables (lookahead/train/targets.py, analysis/convergence.py)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from lookahead.analysis.convergence import speedup, with_targets
from lookahead.analysis.plotting import seed_band
from lookahead.analysis.runs import load_summaries
from lookahead.analysis.tables import comparison_table, inner_method, to_markdown
from lookahead.train.schema import ConfigError
from lookahead.train.targets import check_targets, is_reached, reached_in_curve, target_key
from tests.conftest import run_cli, tiny_overrides, write_summary

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import tables

CURVE = [  # a valid-perplexity curve with a relapse and a NaN at the end
    {"step": 100, "epoch": 0.5, "tokens": 1000, "wall_time_s": 1.0, "valid_perplexity": 500.0},
    {"step": 200, "epoch": 1.0, "tokens": 2000, "wall_time_s": 2.0, "valid_perplexity": 180.0},
    {"step": 300, "epoch": 1.5, "tokens": 3000, "wall_time_s": 3.0, "valid_perplexity": 190.0},
    {"step": 400, "epoch": 2.0, "tokens": 4000, "wall_time_s": 4.0, "valid_perplexity": 140.0},
    {"step": 500, "epoch": 2.5, "tokens": 5000, "wall_time_s": 5.0, "valid_perplexity": math.nan},
]


def test_first_evaluation_at_or_past_each_target_is_recorded_once():
    reached = reached_in_curve(
        CURVE, "valid_perplexity", [200, 150, 100], higher_is_better=False, unit="tokens"
    )
    assert reached == {
        "200": {"step": 200, "epoch": 1.0, "tokens": 2000, "wall_time_s": 2.0},
        "150": {"step": 400, "epoch": 2.0, "tokens": 4000, "wall_time_s": 4.0},
    }  # 100 never reached: no entry
    up = [{"step": s, "valid_accuracy": a} for s, a in ((1, 0.5), (2, 0.9), (3, 0.95))]
    assert {k: v["step"] for k, v in reached_in_curve(up, "valid_accuracy", [0.9], True).items()} == {
        "0.9": 2
    }
    assert not is_reached(math.nan, 1e9, False) and not is_reached(math.inf, 0.0, True)
    assert target_key(150) == "150" and target_key(0.9) == "0.9" and target_key(1.15) == "1.15"


@pytest.mark.parametrize("bad", ["abc", [1, "x"], [math.nan], [True], 3])
def test_targets_must_be_a_list_of_finite_numbers(bad):
    with pytest.raises(
        ConfigError, match=r"dataset.targets=.* is not allowed: a list of finite numbers or null"
    ):
        check_targets(bad)
    assert check_targets(None) == () and check_targets([150, 0.5]) == (150.0, 0.5)


def test_baselines_come_from_the_method_labels():
    assert inner_method("lookahead") == "sgd" and inner_method("polyak") == "sgd"
    assert inner_method("lookahead_adam") == "adam" and inner_method("lookahead_muon") == "muon"
    assert inner_method("polyak_adam") == "adam" and inner_method("adam") is None


def declared_run(
    root: Path, method: str, seed: int, metric: str, value: float, higher: bool, **extra
) -> None:
    """A completed run whose summary declares ``metric`` (and its direction) as its target."""
    run = root / method / f"seed{seed}"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"method": method, "seed": seed}))
    write_summary(
        run,
        method=method,
        seed=seed,
        final={metric: value},
        target=metric,
        higher_is_better=higher,
        targets_metric=metric,
        **extra,
    )


def accuracy_run(root: Path, method: str, seed: int, step: int | None, acc: float) -> None:
    """A completed run whose validation reached 0.9 at ``step`` (None: never) and 0.99 never."""
    reached = {} if step is None else {"0.9": {"step": step, "epoch": 1, "samples": 10 * step}}
    declared_run(
        root, method, seed, "valid_accuracy", acc, True, dataset="toy", targets=[0.9, 0.99], reached=reached
    )


def test_table_counts_seeds_that_never_reached_and_gives_the_speed_up(tmp_path):
    for seed, step in enumerate([100, 120, 140], start=1):
        accuracy_run(tmp_path, "sgd", seed, step, 0.91)
    for seed, step in enumerate([60, 80, None], start=1):
        accuracy_run(tmp_path, "lookahead", seed, step, 0.92)
    table = comparison_table(load_summaries([tmp_path]), metric="final_valid_accuracy", baseline="sgd")
    row = table.set_index("method").loc["lookahead"]
    assert row["steps_to_0.9"] == 70 and row["reached_0.9"] == 2 and row["declared_0.9"] == 3
    assert row["steps_to_0.9_std"] == pytest.approx(math.sqrt(200))  # 60 and 80
    assert row["speedup_0.9"] == pytest.approx(120 / 70)
    assert row["speedup_0.9_low"] <= 120 / 70 <= row["speedup_0.9_high"]
    md = to_markdown(table, ["dataset", "method"])
    head = md.splitlines()[0]
    assert "steps to valid_accuracy ≥ 0.9 |" in head and "steps to valid_accuracy ≥ 0.99 |" in head
    line = next(x for x in md.splitlines() if "| lookahead |" in x)
    assert "| 70 ± 14 (2/3) ×1.71 [" in line and line.endswith("| never (0/3) |")
    sgd = next(x for x in md.splitlines() if "| sgd |" in x)
    assert "| 120 ± 20 (3/3) |" in sgd  # the baseline has no speed-up against itself
    assert bool(row["best"]) and not table.set_index("method").loc["sgd", "best"]  # declared: higher better


def test_direction_comes_from_the_summaries_not_the_metric_name(tmp_path):
    """The architecture doc's regression workload: valid_mse, lower is better (no name says so)."""
    for method, values in (("adam", [0.30, 0.32]), ("lookahead_adam", [0.10, 0.12])):
        for seed, mse in enumerate(values, start=1):
            declared_run(tmp_path, method, seed, "valid_mse", mse, False, dataset="sine")
    table = comparison_table(load_summaries([tmp_path]), metric="final_valid_mse", baseline="inner", scale=1)
    best = table.set_index("method")["best"]
    assert bool(best["lookahead_adam"]) and not best["adam"]
    assert not math.isnan(table.set_index("method").loc["lookahead_adam", "p_vs_baseline"])


def test_targets_flag_recomputes_reach_from_metrics_jsonl(tmp_path, capsys):
    run = tmp_path / "sgd" / "seed1"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"method": "sgd", "seed": 1}))
    write_summary(
        run,
        dataset="ptb_small",
        final={"valid_perplexity": 140.0},
        target="valid_perplexity",
        higher_is_better=False,
        targets_metric="valid_perplexity",
        unit="tokens",
    )  # an older run: no targets declared
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in CURVE[:4]))
    rebuilt = with_targets(load_summaries([tmp_path]), [150])
    assert rebuilt.loc[0, "reached"] == {
        "150": {"step": 400, "epoch": 2.0, "tokens": 4000, "wall_time_s": 4.0}
    }
    assert (
        tables.main(
            [str(tmp_path), "--metric", "final_valid_perplexity", "--targets", "200,150", "--scale", "1"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "steps to valid_perplexity ≤ 200 | steps to valid_perplexity ≤ 150 |" in out
    assert "| 200 (1/1) | 400 (1/1) |" in out


def test_speed_up_interval_is_deterministic_and_degenerate_cases_are_nan():
    a = speedup([100, 120, 140], [60, 70, 80])
    assert a == speedup([100, 120, 140], [60, 70, 80]) and a[0] == pytest.approx(120 / 70)
    assert all(math.isnan(v) for v in speedup([100], [60, 70]))
    assert speedup([100, 100], [50, 50]) == (2.0, 2.0, 2.0)


def test_seed_bands_against_wall_time_interpolate_each_seed():
    runs = pd.DataFrame(
        {
            "run_dir": ["a"] * 3 + ["b"] * 3,
            "wall_time_s": [0.0, 1.0, 2.0, 0.0, 2.0, 4.0],
            "valid_loss": [0.0, 1.0, 2.0, 0.0, 4.0, 8.0],  # a(t) = t, b(t) = 2t
        }
    )
    band = seed_band(runs, "wall_time_s", "valid_loss", points=5)
    assert list(band.index) == [0.0, 0.5, 1.0, 1.5, 2.0]  # up to the shorter seed's end
    np.testing.assert_allclose(band["mean"], 1.5 * band.index.to_numpy())
    np.testing.assert_allclose(band["std"], math.sqrt(0.5) * band.index.to_numpy())
    shared = runs.assign(wall_time_s=[0, 1, 2] * 2)  # same x values: averaged point by point
    assert list(seed_band(shared, "wall_time_s", "valid_loss")["mean"]) == [0.0, 2.5, 5.0]


def test_trainer_records_reached_and_never_reached_targets(data_root, tmp_path):
    runs = tmp_path / "runs"
    result = run_cli(
        [
            "experiment=mnist1d_sgd",
            *tiny_overrides(data_root, runs),
            "trainer.max_epochs=2",
            "dataset.targets=[0.0,1.01]",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    (path,) = runs.rglob("summary.json")
    summary = json.loads(path.read_text())
    records = [json.loads(line) for line in path.with_name("metrics.jsonl").read_text().splitlines()]
    first = records[0]
    assert summary["targets"] == [0.0, 1.01] and summary["targets_metric"] == "valid_accuracy"
    assert summary["higher_is_better"] is True
    # 0.0 is reached at the first evaluation; an accuracy of 1.01 never is (no entry, never dropped)
    assert summary["reached"] == {
        "0": {
            "step": first["step"],
            "epoch": 1,
            "samples": first["samples"],
            "wall_time_s": first["wall_time_s"],
        }
    }
    assert first["samples"] == 480  # MNIST-1D fixture: 480 training samples in the first epoch
