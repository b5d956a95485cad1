"""Reports after sweeps: scripts/report.py and scripts/tables.py group by every config field that differs
within a workload x method cell, share one set of selection flags, and test against the right baseline."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import report
import tables

from tests.conftest import run_cli, tiny_overrides, write_summary


def write_run(root: Path, method: str, seed: int, acc: float, **lookahead) -> Path:
    """A run directory as the trainer writes it; ``lookahead`` fields only for Lookahead runs."""
    name = "_".join(f"{k}{v}" for k, v in lookahead.items()) or "default"
    run = root / f"mnist1d_{method}" / name / f"seed{seed}"
    run.mkdir(parents=True)
    config = {
        "dataset": {"name": "mnist1d"},
        "optimizer": {"lr": 0.1, "momentum": 0.9},
        "lookahead": {"enabled": bool(lookahead), **lookahead},
        "trainer": {"max_epochs": 3},
        "method": method,
        "seed": seed,
        "paths": {"runs": str(root)},
        "overrides": [f"seed={seed}"],
    }
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    summary = {"status": "completed", "dataset": "mnist1d", "method": method, "seed": seed}
    summary["final"] = {"test_accuracy": acc}
    write_summary(run, **summary)
    records = [
        {"epoch": e, "step": 10 * e, "train_loss": 1 / e, "test_accuracy": acc * e / 3} for e in (1, 2, 3)
    ]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return run


@pytest.fixture
def sweep(tmp_path) -> Path:
    """The README's sweep: lookahead.alpha=0.5,0.8 x lookahead.k=5,10, 2 seeds, next to plain SGD."""
    root = tmp_path / "runs"
    for seed in (1, 2):
        write_run(root, "sgd", seed, 0.90 + seed / 100)  # 91, 92
        for alpha in (0.5, 0.8):
            for k in (5, 10):
                # accuracy encodes the cell: alpha 0.5 -> 93 + seed, alpha 0.8 -> 95 + seed (%); k 10 adds 0.5
                acc = (0.93 if alpha == 0.5 else 0.95) + seed / 100 + (0.005 if k == 10 else 0)
                write_run(root, "lookahead", seed, acc, alpha=alpha, k=k)
    return root


def rows(markdown: str) -> list[list[str]]:
    lines = [line for line in markdown.splitlines() if line.startswith("|")][2:]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines]


def test_report_groups_a_sweep_by_both_swept_fields(sweep, tmp_path, capsys):
    assert report.main([str(sweep), "--out", str(tmp_path / "out"), "--plot"]) == 0
    captured = capsys.readouterr()
    markdown = (tmp_path / "out" / "table.md").read_text()
    assert markdown.splitlines()[0].startswith(
        "| dataset | method | lookahead.alpha | lookahead.k | mean ± std |"
    )
    table = {tuple(r[:4]): r[4:] for r in rows(markdown)}
    # SGD has no alpha/k: shown as "-", one cell
    assert table[("mnist1d", "sgd", "-", "-")][:2] == ["91.50 ± 0.71", "2"]
    # each Lookahead cell holds exactly its own 2 seeds (means by hand: 94.5, 95.0, 96.5, 97.0)
    assert table[("mnist1d", "lookahead", "0.5", "5")][:2] == ["94.50 ± 0.71", "2"]
    assert table[("mnist1d", "lookahead", "0.5", "10")][:2] == ["95.00 ± 0.71", "2"]
    assert table[("mnist1d", "lookahead", "0.8", "5")][:2] == ["96.50 ± 0.71", "2"]
    assert table[("mnist1d", "lookahead", "0.8", "10")][:2] == ["97.00 ± 0.71", "2"]
    # every Lookahead cell is tested against the one SGD cell: Welch with equal std 0.7071, n = 2 each:
    # t = 3 / sqrt(0.5) = 4.243, dof 2 -> p = 1 - t / sqrt(t^2 + 2) = 0.0513 for alpha 0.5, k 5
    assert table[("mnist1d", "lookahead", "0.5", "5")][3] == "0.0513"
    assert "also grouped by lookahead.alpha, lookahead.k" in captured.err
    assert (tmp_path / "out" / "curves.png").stat().st_size > 10_000


def test_tables_and_report_take_the_same_selection_flags(sweep, tmp_path, capsys):
    flags = ["--where", "lookahead.k=10", "--where", "method=lookahead", "--baseline", "none"]
    assert report.main([str(sweep), *flags]) == 0
    from_report = capsys.readouterr().out
    assert tables.main([str(sweep), *flags]) == 0
    from_tables = capsys.readouterr().out
    assert from_report == from_tables
    # k is now constant, so only alpha is a column; two rows
    assert from_tables.splitlines()[0].startswith("| dataset | method | lookahead.alpha | mean ± std |")
    assert [r[2:4] for r in rows(from_tables)] == [["0.5", "95.00 ± 0.71"], ["0.8", "97.00 ± 0.71"]]


def test_explicit_by_comes_first_and_one_changed_field_is_found(tmp_path, capsys):
    root = tmp_path / "runs"
    for seed in (1, 2):
        write_run(root, "lookahead", seed, 0.9, alpha=0.5, k=5)
        run = write_run(root / "longer", "lookahead", seed, 0.8, alpha=0.5, k=5)
        config = yaml.safe_load((run / "config.yaml").read_text())
        config["trainer"]["max_epochs"] = 6
        (run / "config.yaml").write_text(yaml.safe_dump(config))
    assert tables.main([str(root), "--by", "lookahead.alpha", "--baseline", "none"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("| dataset | method | lookahead.alpha | trainer.max_epochs |")
    assert [r[3:5] for r in rows(out)] == [["3", "90.00 ± 0.00"], ["6", "80.00 ± 0.00"]]


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("lookahead.k=7", "error: no run matches --where lookahead.k=7"),
        ("nothing.here=1", "error: --where nothing.here: no run has the field 'nothing.here'"),
        ("lookahead.k", "error: --where needs FIELD=VALUE, got 'lookahead.k'"),
    ],
)
def test_bad_selection_is_one_clear_error(sweep, capsys, where, message):
    assert report.main([str(sweep), "--where", where]) == 1
    err = capsys.readouterr().err.strip()
    assert err == message


@pytest.mark.slow  # 27 s on the shared 2-core CPU (4 trainer runs)
def test_readme_sweep_end_to_end(data_root, tmp_path, capsys):
    """The README's sweep, shrunk (two alphas x two seeds, a few steps), through the real trainer."""
    sweep = ["--multirun", "experiment=mnist1d_lookahead", "lookahead.alpha=0.5,0.8", "seed=1,2"]
    tiny = [
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=5",  # at least k = 5 steps: Lookahead syncs once
        *tiny_overrides(data_root, tmp_path / "runs"),
    ]
    result = run_cli([*sweep, *tiny], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert report.main([str(tmp_path / "runs")]) == 0
    captured = capsys.readouterr()
    table = rows(captured.out)
    assert [(r[1], r[2], r[4]) for r in table] == [("lookahead", "0.5", "2"), ("lookahead", "0.8", "2")]
    assert "also grouped by lookahead.alpha" in captured.err
