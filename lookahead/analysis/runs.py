"""Load run directories (the files described in docs/architecture.md) into pandas."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd


class NoRunsError(ValueError):
    """No run directory (summary.json) under the given paths."""


def find_runs(paths: Iterable[str | Path]) -> list[Path]:
    """Every directory holding a summary.json at or below ``paths``."""
    found = []
    for path in map(Path, paths):
        if not path.exists():
            raise NoRunsError(f"{path} does not exist")
        found += sorted(p.parent for p in path.rglob("summary.json"))
    if not found:
        raise NoRunsError(f"no runs (summary.json files) under {', '.join(map(str, paths))}")
    return found


def load_summaries(paths: Iterable[str | Path]) -> pd.DataFrame:
    """One row per run: identity columns, status, and the final/best metrics flattened."""
    rows = []
    for run in find_runs(paths):
        summary = json.loads((run / "summary.json").read_text())
        row = {
            k: summary.get(k)
            for k in (
                "experiment",
                "dataset",
                "model",
                "method",
                "seed",
                "status",
                "epochs_completed",
                "max_epochs",
                "wall_time_s",
                "samples_per_s",
            )
        }
        row.update({f"final_{k}": v for k, v in (summary.get("final") or {}).items()})
        row.update({f"best_{k}": v for k, v in (summary.get("best") or {}).items()})
        row["run_dir"] = str(run)
        rows.append(row)
    return pd.DataFrame(rows)


def load_metrics(paths: Iterable[str | Path]) -> pd.DataFrame:
    """One row per evaluation record of every run, with the run's identity columns."""
    frames = []
    for run in find_runs(paths):
        summary = json.loads((run / "summary.json").read_text())
        metrics = run / "metrics.jsonl"
        if not metrics.exists() or not metrics.read_text().strip():
            continue
        frame = pd.read_json(metrics, lines=True)
        for key in ("experiment", "dataset", "method", "seed", "status"):
            frame[key] = summary.get(key)
        frame["run_dir"] = str(run)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
