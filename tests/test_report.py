"""scripts/report.py on fixture run directories: statistics, paper column, statuses, bad input."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import report

from tests.conftest import write_summary


def write_run(root: Path, dataset: str, method: str, seed: int, acc: float | None, status: str = "completed"):
    run = root / f"{dataset}_{method}" / f"seed{seed}"
    run.mkdir(parents=True)
    final = {} if acc is None else {"test_accuracy": acc, "test_loss": 1 - acc}
    summary = {
        "status": status,
        "dataset": dataset,
        "method": method,
        "seed": seed,
        "final": final,
        "epochs_completed": 3,
        "max_epochs": 3,
    }
    write_summary(run, **summary)
    (run / "metrics.jsonl").write_text(
        "".join(
            json.dumps({"epoch": e, "step": 10 * e, "train_loss": 1 / e, "test_accuracy": (acc or 0) * e / 3})
            + "\n"
            for e in (1, 2, 3)
        )
    )


def test_table_statistics_paper_column_and_statuses(tmp_path, capsys):
    for seed, acc in zip((1, 2, 3), (0.95, 0.96, 0.94)):
        write_run(tmp_path, "cifar10", "lookahead", seed, acc)
    write_run(tmp_path, "cifar10", "sgd", 1, 0.90)
    write_run(tmp_path, "cifar10", "sgd", 2, None, status="diverged")
    assert report.main([str(tmp_path), "--preset", "table1", "--out", str(tmp_path / "out"), "--plot"]) == 0
    markdown = (tmp_path / "out" / "table.md").read_text()
    # mean 95.00, sample std of (95, 96, 94) = 1.00; the paper's 95.27 ± 0.06 beside it
    # 95% CI: 95 ± 4.302653 / sqrt(3); Welch vs the single SGD run is undefined (n = 1)
    assert (
        "| cifar10 | lookahead | 95.00 ± 1.00 | 3 | [92.52, 97.48] |  | 95.27 ± 0.06 | -0.27 |  |" in markdown
    )
    # the diverged run is counted in its own column, not averaged in (n = 1, no std)
    assert "| cifar10 | sgd | 90.00 | 1 |  |  | 95.23 ± 0.19 | -5.23 | 1 diverged |" in markdown
    csv = (tmp_path / "out" / "table.csv").read_text().splitlines()
    assert csv[0].startswith("dataset,method,n,mean,std,ci_low,ci_high")
    assert (tmp_path / "out" / "curves.png").stat().st_size > 10_000
    assert markdown in capsys.readouterr().out


@pytest.mark.parametrize("make_path", [lambda p: p / "missing", lambda p: p])
def test_no_runs_is_one_clear_error(tmp_path, capsys, make_path):
    assert report.main([str(make_path(tmp_path))]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1


def test_index_lists_what_each_run_key_stands_for(tmp_path, capsys):
    from lookahead.train.run_dir import run_key

    for seed, status in ((1, "completed"), (2, "running")):
        overrides = ["lookahead.k=10", f"seed={seed}", "trainer.progress=lines", "paths.runs=x"]
        run = tmp_path / "mnist1d_lookahead" / run_key(overrides) / f"seed{seed}"
        run.mkdir(parents=True)
        write_summary(run, status=status, seed=seed, overrides=overrides)
    assert report.main([str(tmp_path), "--index"]) == 0
    header, rule, row = capsys.readouterr().out.strip().splitlines()
    assert rule == "|---|---|---|---|---|"
    assert header == "| experiment | key | overrides | seeds | statuses |"
    key = run_key(["lookahead.k=10"])
    assert row == f"| mnist1d_lookahead | {key} | lookahead.k=10 | 1,2 | completed,running |"
