"""The worked example of docs/architecture.md ("Adding a workload") runs exactly as written."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tests.conftest import ROOT, run_cli

sys.path.insert(0, str(ROOT / "scripts"))
import report


def test_the_documented_workload_example_trains_from_a_user_config_dir(tmp_path):
    text = (ROOT / "docs" / "architecture.md").read_text().split("## Adding a workload", 1)[1]
    python = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    dataset_yaml, model_yaml = re.findall(r"```yaml\n(.*?)```", text, re.S)
    (tmp_path / "my_project").mkdir()
    (tmp_path / "my_project" / "__init__.py").write_text("")
    (tmp_path / "my_project" / "sine.py").write_text(python)
    for group, name, body in (("dataset", "sine", dataset_yaml), ("model", "sine_mlp", model_yaml)):
        (tmp_path / "my_configs" / group).mkdir(parents=True)
        (tmp_path / "my_configs" / group / f"{name}.yaml").write_text(body)
    command = re.search(r"python experiments/train.py (.*)\n", text).group(1).split()
    result = run_cli(
        [
            *command,
            "trainer.max_epochs=3",
            "trainer.batch_size=32",
            f"paths.runs={tmp_path / 'runs'}",
            "device=cpu",
        ],
        cwd=tmp_path,
        env={"PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))},
    )
    assert result.returncode == 0, result.stderr
    (path,) = (tmp_path / "runs").rglob("summary.json")
    summary = json.loads(path.read_text())
    assert summary["status"] == "completed" and summary["method"] == "lookahead_adam"
    assert summary["dataset"] == "sine" and summary["target"] == "valid_mse"
    # the workload's own targets and direction reach the summary: steps-to-target without analysis code
    assert summary["targets"] == [0.3, 0.1] and summary["higher_is_better"] is False
    assert set(summary["reached"]) <= {"0.3", "0.1"}
    records = [json.loads(line) for line in path.with_name("metrics.jsonl").read_text().splitlines()]
    assert summary["best"]["valid_mse"] == min(r["valid_mse"] for r in records)
    assert records[-1]["valid_mse"] < records[0]["valid_mse"]  # it learns


# A user's optimizer without type hints: its arguments cannot be read from a signature's annotations.
HEAVY_BALL = """
import torch


class HeavyBall(torch.optim.Optimizer):
    def __init__(self, params, lr=0.05, momentum=0.9):
        super().__init__(params, {"lr": lr, "momentum": momentum})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    buf = self.state[p].setdefault("buf", torch.zeros_like(p))
                    p.sub_(buf.mul_(group["momentum"]).add_(p.grad), alpha=group["lr"])
"""


def write_user_project(root: Path) -> str:
    """The documented workload, its configs and a user's optimizer under ``root``; returns the doc's text."""
    text = (ROOT / "docs" / "architecture.md").read_text().split("## Adding a workload", 1)[1]
    python = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    dataset_yaml, model_yaml = re.findall(r"```yaml\n(.*?)```", text, re.S)
    (root / "my_project").mkdir()
    (root / "my_project" / "__init__.py").write_text("")
    (root / "my_project" / "sine.py").write_text(python)
    (root / "my_project" / "heavy_ball.py").write_text(HEAVY_BALL)
    optimizer_yaml = "_target_: my_project.heavy_ball.HeavyBall\n_partial_: true\nlr: 0.05\nmomentum: 0.9\n"
    for group, name, body in (
        ("dataset", "sine", dataset_yaml),
        ("model", "sine_mlp", model_yaml),
        ("optimizer", "heavy_ball", optimizer_yaml),
    ):
        (root / "my_configs" / group).mkdir(parents=True)
        (root / "my_configs" / group / f"{name}.yaml").write_text(body)
    return text


@pytest.mark.slow
def test_a_users_workload_and_optimizer_go_through_train_report_and_plot(tmp_path, capsys):
    """Train the documented workload with a user's optimizer, bare and inside Lookahead, 2 seeds each;
    then `scripts/report.py RUNS --out OUT --plot` (what `make demo` runs) tables and plots it from the
    runs' declarations alone: MSE as it is, lower is better, its own labels, no paper column."""
    write_user_project(tmp_path)
    runs = tmp_path / "runs"
    result = run_cli(
        [
            "--multirun",
            "--config-dir",
            "my_configs",
            "dataset=sine",
            "model=sine_mlp",
            "optimizer=heavy_ball",
            "lookahead=off,on",
            "seed=1,2",
            "trainer.max_epochs=2",
            "trainer.batch_size=32",
            f"paths.runs={runs}",
            "device=cpu",
        ],
        cwd=tmp_path,
        env={"PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))},
    )
    assert result.returncode == 0, result.stderr
    summaries = [json.loads(p.read_text()) for p in sorted(runs.rglob("summary.json"))]
    assert sorted((s["method"], s["seed"]) for s in summaries) == [
        ("heavyball", 1),
        ("heavyball", 2),
        ("lookahead_heavyball", 1),
        ("lookahead_heavyball", 2),
    ]
    assert all(s["status"] == "completed" for s in summaries)
    assert summaries[0]["measures"]["mse"] == {
        "label": "mean squared error",
        "unit": "",
        "scale": 1.0,
        "bounds": None,
        "log": True,
    }
    mse = {
        m: [s["final"]["valid_mse"] for s in summaries if s["method"] == m]
        for m in ("heavyball", "lookahead_heavyball")
    }

    out = tmp_path / "report"
    capsys.readouterr()
    assert report.main([str(runs), "--out", str(out), "--plot"]) == 0
    printed = capsys.readouterr()
    markdown = (out / "table.md").read_text()
    assert markdown in printed.out and "error" not in printed.err
    header, _, *rows = markdown.strip().splitlines()
    assert header == (
        "| dataset | method | mean ± std | n | 95% CI | p vs baseline | paper | diff | not completed "
        "| steps to valid_mse ≤ 0.3 | steps to valid_mse ≤ 0.1 |"
    )
    # rows in label order; the MSE as it is (not x100); no SGD among the runs, so Lookahead(HeavyBall)
    # is tested against HeavyBall (its inner optimizer); no paper value for a user's workload
    for row, method in zip(rows, ("heavyball", "lookahead_heavyball"), strict=True):
        values = np.array(mse[method])
        mean, std = values.mean(), values.std(ddof=1)
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[:4] == ["sine", method, f"{mean:.2f} ± {std:.2f}", "2"]
        assert cells[6:9] == ["", "", ""]
    table = pd.read_csv(out / "table.csv").set_index("method")
    for method, values in mse.items():
        assert table.loc[method, "mean"] == pytest.approx(np.mean(values), rel=1e-12)
        assert table.loc[method, "std"] == pytest.approx(np.std(values, ddof=1), rel=1e-12)
    welch = stats.ttest_ind(mse["lookahead_heavyball"], mse["heavyball"], equal_var=False).pvalue
    assert table.loc["lookahead_heavyball", "p_vs_baseline"] == pytest.approx(welch, rel=1e-9)
    assert np.isnan(table.loc["heavyball", "p_vs_baseline"])
    lower = min(mse, key=lambda m: np.mean(mse[m]))  # the declared direction: lower MSE is best
    assert table["best"].to_dict() == {m: m == lower for m in mse}
    tex = (out / "table.tex").read_text()
    assert r"\caption{final valid mean squared error, lower is better}" in tex

    # the figure: one row of panels for the one workload, labelled as the workload declares
    panels = json.loads((out / "curves.json").read_text())
    assert [(p["workload"], p["column"]) for p in panels] == [("sine", "train_loss"), ("sine", "valid_mse")]
    assert [p["title"] for p in panels] == [
        "sine: training loss (mean ± std over seeds)",
        "sine: valid mse (mean ± std over seeds)",
    ]
    assert [p["ylabel"] for p in panels] == ["squared error (log scale)", "mean squared error (log scale)"]
    assert {p["xlabel"] for p in panels} == {"epoch"} and {p["yscale"] for p in panels} == {"log"}
    for panel in panels:
        assert [line["label"] for line in panel["lines"]] == ["heavyball", "lookahead_heavyball"]
        assert all(line["color"] == line["band_color"] and line["points"] == 2 for line in panel["lines"])
        assert panel["lines"][0]["color"] != panel["lines"][1]["color"]
    assert (out / "curves.png").stat().st_size > 10_000
