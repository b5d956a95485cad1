"""Load run directories (the files described in docs/architecture.md) into pandas."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from lookahead.train.state import Summary, legacy_summary


class NoRunsError(ValueError):
    """No run directory (summary.json) under the given paths."""


FIRST_RUNS = (
    "Train some first (`make demo` writes results/local/demo/runs in a few minutes; the training targets "
    "of `make help` write results/runs), or name the folders that hold them"
)


def find_runs(paths: Iterable[str | Path]) -> list[Path]:
    """Every directory holding a summary.json at or below ``paths``."""
    found = []
    for path in map(Path, paths):
        if not path.exists():
            raise NoRunsError(f"{path} does not exist: no runs there yet. {FIRST_RUNS}")
        found += sorted(p.parent for p in path.rglob("summary.json"))
    if not found:
        raise NoRunsError(f"no runs (summary.json files) under {', '.join(map(str, paths))}. {FIRST_RUNS}")
    return found


# summary.json fields that become table columns as they are (see lookahead.train.state.Summary)
SUMMARY_COLUMNS = (
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
    "unit",
    "target",
    "higher_is_better",
    "targets_metric",
    "targets",
    "reached",
    "measures",
)


def read_summary(run: Path) -> Summary:
    """The run's summary.json, read through :class:`Summary` (a damaged one is a SummaryError)."""
    summary = Summary.read(run / "summary.json")
    assert summary is not None  # find_runs only lists directories holding one
    return summary


def load_summaries(paths: Iterable[str | Path]) -> pd.DataFrame:
    """One row per run: identity columns, status, what the run declares about its metrics (target,
    direction, convergence targets and when they were reached), and the final/best metrics flattened."""
    rows = []
    for run in find_runs(paths):
        summary = read_summary(run).to_dict()
        row = {k: summary.get(k) for k in SUMMARY_COLUMNS}
        row["targets"] = tuple(row["targets"] or ())
        row.update({f"final_{k}": v for k, v in (summary.get("final") or {}).items()})
        row.update({f"best_{k}": v for k, v in (summary.get("best") or {}).items()})
        row["run_dir"] = str(run)
        row["config"] = flat_config(run / "config.yaml")
        rows.append(row)
    return pd.DataFrame(rows)


def read_metrics(run: Path) -> list[dict]:
    """The run's evaluation records (metrics.jsonl), in order; none when the file is missing."""
    path = Path(run) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_index(paths: Iterable[str | Path]) -> pd.DataFrame:
    """One row per configuration (experiment x run key): its defining overrides, the seeds present and
    their statuses; what the short keys of the run directories stand for."""
    from lookahead.train.run_dir import defining_overrides

    rows = []
    for run in find_runs(paths):
        summary = read_summary(run)
        rows.append(
            {
                "experiment": run.parent.parent.name,
                "key": run.parent.name,
                "overrides": " ".join(defining_overrides(summary.overrides)) or "(none)",
                "seed": summary.seed,
                "status": summary.status,
            }
        )
    frame = pd.DataFrame(rows)
    return (
        frame.groupby(["experiment", "key", "overrides"], sort=True)
        .agg(
            seeds=("seed", lambda s: ",".join(map(str, sorted(s)))),
            statuses=("status", lambda s: ",".join(sorted(set(s)))),
        )
        .reset_index()
    )


def flat_config(path: Path) -> dict[str, object]:
    """A run's config.yaml as {"dotted.key": value} (empty when the file is missing)."""
    if not path.exists():
        return {}
    return flatten(OmegaConf.to_container(OmegaConf.load(path), resolve=False))


def flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = tuple(value) if isinstance(value, list) else value
    return out


def load_metrics(paths: Iterable[str | Path]) -> pd.DataFrame:
    """One row per evaluation record of every run, with the run's identity columns."""
    frames = []
    for run in find_runs(paths):
        summary = read_summary(run).to_dict()
        metrics = run / "metrics.jsonl"
        if not metrics.exists() or not metrics.read_text().strip():
            continue
        frame = pd.read_json(metrics, lines=True)
        for key in ("experiment", "dataset", "model", "method", "seed", "status"):
            frame[key] = summary.get(key)
        frame["run_dir"] = str(run)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def add_metric_at_epoch(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Add column ``name@epoch`` (e.g. ``valid_top1@50``) read from each run's metrics.jsonl: the last
    record of that epoch holding ``name`` (with mid-epoch evaluations, the one at the epoch's end)."""
    name, epoch = metric.split("@")
    values = []
    for run_dir in runs["run_dir"]:
        records = read_metrics(Path(run_dir))
        at_epoch = [r[name] for r in records if r.get("epoch") == int(epoch) and r.get(name) is not None]
        values.append(at_epoch[-1] if at_epoch else None)
    runs = runs.copy()
    runs[metric] = pd.to_numeric(pd.Series(values, index=runs.index), errors="coerce")
    return runs


def load_wandb_runs(api, path: str, group: str | None = None) -> pd.DataFrame:
    """Runs of a W&B project (``entity/project``), in load_summaries' schema.

    ``api`` is a ``wandb.Api()`` (or anything with the same ``runs(path, filters)`` method); the
    trainer logs ``final/*`` and ``best/*`` summary keys and the resolved config, which map back here.
    """
    rows = []
    for run in api.runs(path, filters={"group": group} if group else None):
        config, summary = dict(run.config), dict(run.summary)
        row = {
            "experiment": config.get("experiment_name"),
            "dataset": (config.get("dataset") or {}).get("name"),
            "model": (config.get("model") or {}).get("_target_", "").rsplit(".", 1)[-1],
            "method": config.get("method"),
            "seed": config.get("seed"),
            "status": summary.get("status", "running" if run.state == "running" else "failed"),
            "epochs_completed": summary.get("epochs_completed"),
            "max_epochs": (config.get("trainer") or {}).get("max_epochs"),
            "wall_time_s": summary.get("wall_time_s"),
            "samples_per_s": summary.get("samples_per_s"),
        }
        for key, value in summary.items():
            if key.startswith(("final/", "best/")):
                row[key.replace("/", "_", 1)] = value
        # W&B holds no declarations: read as a summary written before they existed
        final = {k.removeprefix("final_"): v for k, v in row.items() if k.startswith("final_")}
        declared = legacy_summary({"final": final})
        row.update({k: declared.get(k) for k in ("target", "targets_metric", "higher_is_better", "measures")})
        row["run_dir"] = f"wandb:{path}/{run.id}"
        row["config"] = flatten(config)
        rows.append(row)
    if not rows:
        raise NoRunsError(f"no W&B runs in {path}" + (f" (group {group})" if group else ""))
    return pd.DataFrame(rows)
