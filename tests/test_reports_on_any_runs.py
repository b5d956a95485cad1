"""Every table, report and figure command on interrupted, failed, missing and mixed runs: a row that
says so, or one `error:` line and exit 1, never a traceback (issue 27); and what is shown follows what
the runs declare (issue 25): the metric, its scale and labels, one row of panels per workload, a style
per method for any number of methods."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pandas as pd
import pytest

from lookahead.workloads.base import Measure
from tests.conftest import ROOT, write_summary

sys.path.insert(0, str(ROOT / "scripts"))
import figures
import report
import tables

SINE = {  # what the architecture doc's regression workload declares
    "target": "valid_mse",
    "targets_metric": "valid_mse",
    "higher_is_better": False,
    "measures": {
        "mse": {"label": "mean squared error", "unit": "", "scale": 1.0, "bounds": None, "log": True}
    },
}


def write_run(root: Path, dataset: str, method: str, seed: int, status: str, final: dict, records, **fields):
    run = root / f"{dataset}_{method}" / "default" / f"seed{seed}"
    run.mkdir(parents=True)
    write_summary(run, status=status, dataset=dataset, method=method, seed=seed, final=final, **fields)
    (run / "config.yaml").write_text(f"method: {method}\nseed: {seed}\nlookahead:\n  k: 5\n")
    if records is not None:
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def curve(metric: str, values: list[float]) -> list[dict]:
    return [
        {"epoch": e, "step": 10 * e, "train_loss": 1.0 / e, metric: v} for e, v in enumerate(values, start=1)
    ]


def interrupted(root: Path, records: bool = True) -> Path:
    """One run stopped in its first epochs: no final metrics; its records only when ``records``."""
    write_run(
        root, "cifar10", "lookahead", 1, "interrupted", {}, curve("test_accuracy", [0.3]) if records else None
    )
    return root


def failed_and_diverged(root: Path) -> Path:
    """A completed run, a failed one (no final metrics, no records) and a diverged one."""
    write_run(
        root, "mnist1d", "sgd", 1, "completed", {"test_accuracy": 0.9}, curve("test_accuracy", [0.5, 0.9])
    )
    write_run(root, "mnist1d", "sgd", 2, "failed", {}, None)
    diverged = curve("test_accuracy", [0.1, math.nan])
    write_run(root, "mnist1d", "sgd", 3, "diverged", {"test_accuracy": 0.1, "train_loss": math.nan}, diverged)
    return root


def mixed(root: Path) -> Path:
    """Two workloads that declare different metrics: accuracy (shown in %) and a regression's MSE."""
    for seed, (acc, mse) in enumerate(((0.94, 0.30), (0.96, 0.20)), start=1):
        write_run(
            root, "mnist1d", "sgd", seed, "completed", {"test_accuracy": acc}, curve("test_accuracy", [acc])
        )
        write_run(
            root, "sine", "sgd", seed, "completed", {"valid_mse": mse}, curve("valid_mse", [mse]), **SINE
        )
    return root


def run(main, argv: list[str], capsys) -> tuple[int, str, str]:
    """A command's exit code, stdout and stderr; a traceback fails the test where it is raised."""
    code = main(argv)
    out, err = capsys.readouterr()
    if code:
        assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
    return code, out, err


COMMANDS = {
    "tables": lambda p, out: (tables.main, [str(p)]),
    "tables table1": lambda p, out: (tables.main, [str(p), "--preset", "table1"]),
    "tables index": lambda p, out: (tables.main, [str(p), "--index"]),
    "report plot": lambda p, out: (report.main, [str(p), "--out", str(out), "--plot"]),
    "figures curves": lambda p, out: (figures.main, ["curves", str(p), "--out", str(out / "curves")]),
    "figures grid": lambda p, out: (
        figures.main,
        ["grid", str(p), "--x", "lookahead.k", "--y", "seed", "--out", str(out / "grid")],
    ),
    "figures imagenet": lambda p, out: (figures.main, ["imagenet", str(p), "--out", str(out / "fig6")]),
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    "case",
    [
        "interrupted",
        "interrupted, no records",
        "failed and diverged",
        "empty folder",
        "missing folder",
        "mixed",
    ],
)
def test_every_command_copes_with_any_runs(tmp_path, capsys, command, case):
    runs = tmp_path / "runs"
    runs.mkdir()
    if case == "interrupted":
        interrupted(runs)
    elif case == "interrupted, no records":
        interrupted(runs, records=False)
    elif case == "failed and diverged":
        failed_and_diverged(runs)
    elif case == "missing folder":
        runs = tmp_path / "nothing"
    elif case == "mixed":
        mixed(runs)
    main, argv = COMMANDS[command](runs, tmp_path / "out")
    code, out, err = run(main, argv, capsys)
    if case in ("empty folder", "missing folder"):
        assert code == 1 and ("no runs" in err or "does not exist" in err)
    elif (command.startswith("tables") and command != "tables index") or command == "report plot":
        assert code == 0  # the table says what happened to each run
        if case.startswith("interrupted"):
            assert "| cifar10 | lookahead | missing | 0 |" in out and "| 1 interrupted |" in out
        if case == "failed and diverged":
            assert "| mnist1d | sgd | 90.00 | 1 |" in out and "| 1 diverged, 1 failed |" in out


def test_an_interrupted_run_alone_is_a_missing_row_in_the_paper_table(tmp_path, capsys):
    """`make tables` with one interrupted run under results/runs (was KeyError: 'final_test_accuracy')."""
    code, out, _ = run(tables.main, [str(interrupted(tmp_path)), "--preset", "table1"], capsys)
    assert code == 0
    assert "| cifar10 | lookahead | missing | 0 |  |  | 95.27 ± 0.06 |  | 1 interrupted |" in out
    assert "| cifar100 | sgd | missing | 0 |  |  | 78.24 ± 0.18 |  |  |" in out


def test_report_plot_without_records_keeps_the_table_and_says_why_there_is_no_figure(tmp_path, capsys):
    out = tmp_path / "out"
    code, printed, err = run(
        report.main, [str(interrupted(tmp_path / "runs", False)), "--out", str(out), "--plot"], capsys
    )
    assert code == 0 and (out / "table.md").exists() and not (out / "curves.png").exists()
    assert err == "note: no curves: the selected runs have no metrics.jsonl records yet\n"
    assert printed.strip().endswith("wrote " + f"{out}/table.md, .tex, .csv")


def test_curves_and_grid_of_runs_that_never_finished_are_one_line(tmp_path, capsys):
    runs = interrupted(tmp_path / "runs", records=False)
    code, _, err = run(figures.main, ["curves", str(runs), "--out", str(tmp_path / "c")], capsys)
    assert code == 1 and err == "error: the runs have no metrics.jsonl records yet\n"
    grid = ["grid", str(runs), "--x", "lookahead.k", "--y", "seed", "--out", str(tmp_path / "g")]
    code, _, err = run(figures.main, grid, capsys)
    assert code == 1 and err == "error: no completed run has final_valid_accuracy to draw (1 interrupted)\n"


def test_mixed_workloads_get_one_table_part_and_one_row_of_panels_each(tmp_path, capsys):
    runs, out = mixed(tmp_path / "runs"), tmp_path / "out"
    code, printed, _ = run(report.main, [str(runs), "--out", str(out), "--plot"], capsys)
    assert code == 0
    # each workload's own metric: accuracy x 100 (its declared scale), the MSE as it is
    assert "| final_test_accuracy | mnist1d | sgd | 95.00 ± 1.41 | 2 |" in printed
    assert "| final_valid_mse | sine | sgd | 0.25 ± 0.07 | 2 |" in printed
    tex = (out / "table.tex").read_text()
    caption = "final test accuracy (\\%), higher is better; final valid mean squared error, lower is better"
    assert f"\\caption{{{caption}}}" in tex
    panels = json.loads((out / "curves.json").read_text())
    assert [(p["workload"], p["column"], p["ylabel"]) for p in panels] == [
        ("mnist1d", "train_loss", "cross-entropy (log scale)"),
        ("mnist1d", "test_accuracy", "accuracy (%)"),
        ("sine", "train_loss", "loss"),  # the fixture declares no measure for its loss: its name
        ("sine", "valid_mse", "mean squared error (log scale)"),
    ]
    assert [p["yscale"] for p in panels] == ["log", "linear", "linear", "log"]
    # accuracy drawn in % (the mean of 94 and 96 at epoch 1), the MSE as it is
    assert panels[1]["lines"][0]["last"] == pytest.approx([1, 95.0])
    assert panels[3]["lines"][0]["last"] == pytest.approx([1, 0.25])
    code, _, err = run(
        figures.main,
        ["grid", str(runs), "--x", "lookahead.k", "--y", "seed", "--out", str(out / "g")],
        capsys,
    )
    assert code == 1
    assert err == (
        "error: the runs declare different metrics (final_test_accuracy, final_valid_mse); choose one with --metric\n"
    )


def test_any_number_of_methods_get_their_own_style_line_and_band_alike(tmp_path):
    from lookahead.analysis.plotting import curves

    methods = [f"method{i:02d}" for i in range(11)]
    records = [
        {"dataset": "d", "method": m, "run_dir": m, "epoch": e, "train_loss": 1.0 / e + i, "valid_x": 0.1 * i}
        for i, m in enumerate(methods)
        for e in (1, 2)
    ]
    panels = {"d": [("train_loss", Measure("loss")), ("valid_x", Measure("x", "%", 100.0))]}
    _, described = curves(pd.DataFrame(records), tmp_path / "c.png", panels)
    for panel in described:
        lines = panel["lines"]
        assert [line["label"] for line in lines] == methods
        assert all(line["color"] == line["band_color"] for line in lines)
        assert len({(line["color"], line["linestyle"]) for line in lines}) == 11
    styles = [[(line["label"], line["color"], line["linestyle"]) for line in p["lines"]] for p in described]
    assert styles[0] == styles[1]  # one style per method in every panel
    assert described[1]["ylabel"] == "x (%)"


def test_summaries_from_before_measures_read_with_the_shipped_workloads_conventions(tmp_path):
    from lookahead.train.state import Summary

    old = {"status": "completed", "experiment": "e", "dataset": "mnist1d", "model": "m", "method": "sgd"}
    old |= {"seed": 1, "max_epochs": 1, "run_dir": "r", "final": {"test_accuracy": 0.9}}
    (tmp_path / "old.json").write_text(json.dumps(old))
    summary = Summary.read(tmp_path / "old.json")
    assert summary.measures["accuracy"] == {
        "label": "accuracy",
        "unit": "%",
        "scale": 100.0,
        "bounds": (0.0, 1.0),
        "log": False,
    }
    assert (summary.targets_metric, summary.higher_is_better) == ("test_accuracy", True)
    # a run that declares no measures (a user's workload without them) keeps none
    (tmp_path / "new.json").write_text(json.dumps({**old, "measures": {}}))
    new = Summary.read(tmp_path / "new.json")
    assert new.measures == {} and new.targets_metric is None
