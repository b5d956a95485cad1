"""scripts/tables.py and lookahead.analysis.tables on fixture run directories and a stubbed W&B API."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from lookahead.analysis.runs import load_summaries, load_wandb_runs
from lookahead.analysis.tables import comparison_table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import tables

from tests.conftest import write_summary


def write_run(root, dataset, method, seed, acc, status="completed", lr=0.1, k=5, epochs=None, name=None):
    run = root / (name or f"{dataset}_{method}_lr{lr}_k{k}") / f"seed{seed}"
    run.mkdir(parents=True)
    config = {
        "dataset": {"name": dataset},
        "method": method,
        "seed": seed,
        "optimizer": {"lr": lr},
        "lookahead": {"k": k},
        "paths": {"runs": str(root)},
    }
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    final = {} if acc is None else {"test_accuracy": acc}
    write_summary(run, status=status, dataset=dataset, method=method, seed=seed, final=final)
    metric = "valid_top1" if dataset == "imagenet" else "test_accuracy"
    records = [{"epoch": e, "step": e, metric: a} for e, a in (epochs or {}).items()]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.fixture
def runs(tmp_path):
    for seed, (sgd, la) in enumerate([(0.90, 0.93), (0.91, 0.94), (0.92, 0.95)], start=1):
        write_run(tmp_path, "cifar10", "sgd", seed, sgd)
        write_run(tmp_path, "cifar10", "lookahead", seed, la)
    write_run(tmp_path, "cifar10", "lookahead", 4, None, status="diverged")
    write_run(tmp_path, "cifar10", "lookahead", 5, 0.5, status="running")  # partial: never averaged in
    return tmp_path


def test_cells_have_stats_welch_paper_and_counts(runs, tmp_path, capsys):
    out = tmp_path / "out"
    assert tables.main([str(runs), "--out", str(out), "--preset", "table1"]) == 0
    md = (out / "table.md").read_text()
    # means 94.00 / 91.00, std 1.00 each; Welch t = 3 / sqrt(2/3) = 3.674, dof 4, p = 0.02131
    assert (
        "| cifar10 | lookahead | 94.00 ± 1.00 | 3 | [91.52, 96.48] | 0.0213 | 95.27 ± 0.06 | -1.27 | "
        "1 diverged, 1 running |" in md
    )
    assert "| cifar10 | sgd | 91.00 ± 1.00 | 3 | [88.52, 93.48] |  | 95.23 ± 0.19 | -4.23 |  |" in md
    # preset cells without runs are shown as missing, never as zero
    assert "| cifar100 | polyak | missing | 0 |" in md
    tex = (out / "table.tex").read_text()
    assert r"\toprule" in tex and r"94.00 $\pm$ 1.00" in tex and r"\caption{Table 1" in tex
    assert (out / "table.csv").read_text().startswith("dataset,method,n,mean")


def test_group_by_a_swept_config_field(tmp_path):
    for seed in (1, 2):
        for k in (5, 10):
            write_run(tmp_path, "mnist1d", "lookahead", seed, 0.9 + k / 1000 + seed / 100, k=k)
    with pytest.raises(ValueError, match=r"differ in lookahead.k \(5 vs 10\).*--by lookahead.k"):
        comparison_table(load_summaries([tmp_path]), "final_test_accuracy")
    assert tables.main([str(tmp_path), "--by", "lookahead.k", "--baseline", "none"]) == 0


def test_mismatched_configs_are_split_into_columns_or_refused(tmp_path, capsys):
    write_run(tmp_path, "cifar10", "sgd", 1, 0.90, lr=0.1)
    write_run(tmp_path, "cifar10", "sgd", 2, 0.92, lr=0.2)
    assert tables.main([str(tmp_path)]) == 0
    captured = capsys.readouterr()
    # the differing field becomes a column, one row per value (never averaged together)
    assert "| dataset | method | optimizer.lr | mean ± std |" in captured.out
    assert "| cifar10 | sgd | 0.1 | 90.00 | 1 |" in captured.out
    assert "| cifar10 | sgd | 0.2 | 92.00 | 1 |" in captured.out
    assert captured.err.strip() == (
        "note: also grouped by optimizer.lr (they differ between runs of one dataset x method cell); "
        "select with --where optimizer.lr=VALUE"
    )
    assert tables.main([str(tmp_path), "--no-auto-by"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: runs grouped as ('cifar10', 'sgd') differ in optimizer.lr (0.1 vs 0.2)")
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize("args", [["{empty}"], ["{empty}/missing"], []])
def test_no_runs_is_one_clear_error(tmp_path, capsys, args):
    (tmp_path / "empty").mkdir()
    assert tables.main([a.format(empty=tmp_path / "empty") for a in args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    if args:  # it says what to run first
        assert "make demo" in err


def test_table2_reads_accuracy_at_an_epoch(tmp_path, capsys):
    for seed in (1, 2):
        write_run(tmp_path, "imagenet", "lookahead", seed, 0.76, epochs={50: 0.75 + seed / 100, 60: 0.77})
    assert tables.main([str(tmp_path), "--preset", "table2_top1_epoch50"]) == 0
    md = capsys.readouterr().out
    assert "| imagenet | lookahead | 76.50 ± 0.71 | 2 |" in md and "75.13" in md
    assert "| imagenet | sgd | missing | 0 |" in md and "74.43" in md


class StubApi:
    """The slice of wandb.Api the importer uses."""

    def __init__(self, runs):
        self._runs = runs
        self.calls = []

    def runs(self, path, filters=None):
        self.calls.append((path, filters))
        return self._runs


def stub_run(seed, acc, status="completed"):
    config = {
        "experiment_name": "cifar10_lookahead",
        "method": "lookahead",
        "seed": seed,
        "dataset": {"name": "cifar10"},
        "model": {"_target_": "x.resnet18_cifar"},
        "lookahead": {"k": 5},
        "trainer": {"max_epochs": 200},
    }
    summary = {
        "status": status,
        "final/test_accuracy": acc,
        "best/test_accuracy": acc,
        "epochs_completed": 200,
    }
    return SimpleNamespace(id=f"run{seed}", state="finished", config=config, summary=summary)


def test_wandb_import_maps_to_the_local_schema():
    api = StubApi([stub_run(1, 0.95), stub_run(2, 0.96), stub_run(3, None, status="failed")])
    runs = load_wandb_runs(api, "me/lookahead", group="cifar10_lookahead/default")
    assert api.calls == [("me/lookahead", {"group": "cifar10_lookahead/default"})]
    assert list(runs.method) == ["lookahead"] * 3 and runs.config[0]["lookahead.k"] == 5
    # W&B holds no declarations: the runs read as summaries from before them (test accuracy, in %)
    assert set(runs.targets_metric) == {"test_accuracy"} and runs.measures[0]["accuracy"]["scale"] == 100
    table = comparison_table(
        runs, "final_test_accuracy", scale=100, paper={("cifar10", "lookahead"): (95.27, 0.06)}
    )
    row = table.iloc[0]
    assert (row.n, round(row["mean"], 2), row.n_failed) == (2, 95.5, 1)
    with pytest.raises(ValueError, match="no W&B runs"):
        load_wandb_runs(StubApi([]), "me/empty")
