"""Steps-to-target statistics for comparison tables (AlgoPerf's time-to-target, per seed).

Every run's summary.json says which targets its workload declared on which metric, and at which step
(samples or tokens, wall seconds) validation first reached each (lookahead/train/targets.py). A table
cell gets, per target: the mean ± std of the steps over the seeds that reached it, how many seeds did
(a seed that never reached a target is counted, never dropped silently), and the speed-up against the
baseline cell: mean baseline steps / mean steps, with a 95% bootstrap confidence interval over seeds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from lookahead.analysis.runs import read_metrics
from lookahead.train.targets import reached_in_curve, target_key


@dataclass(frozen=True)
class Target:
    """One convergence target as a table column: ``metric`` at least as good as ``value``."""

    key: str  # summary.json's key (targets.target_key)
    value: float
    metric: str
    higher_is_better: bool

    @property
    def label(self) -> str:
        return f"steps to {self.metric} {'≥' if self.higher_is_better else '≤'} {self.key}"


def table_targets(runs: pd.DataFrame) -> list[Target]:
    """The targets the runs declare, in their declared order (a target several workloads share once)."""
    found: dict[tuple[str, str], Target] = {}
    columns = ("targets", "targets_metric", "higher_is_better")
    if any(c not in runs for c in columns):
        return []
    for targets, metric, higher in zip(*(runs[c] for c in columns)):
        if not metric or higher is None or not isinstance(targets, (list, tuple)):
            continue
        for value in targets:
            target = Target(target_key(value), float(value), metric, bool(higher))
            found.setdefault((metric, target.key), target)
    return list(found.values())


def with_targets(
    runs: pd.DataFrame, targets: Sequence[float], higher_is_better: bool | None = None
) -> pd.DataFrame:
    """The runs with ``targets`` in place of their own, reached-records rebuilt from each run's
    metrics.jsonl (the same rule the trainer applies): for runs that predate the record, or to ask
    about other targets. A run that predates the record is judged on its ``target`` metric, in the
    direction it declares or else ``higher_is_better`` (a table preset's); without either it gets none."""
    runs = runs.copy()
    metrics, directions, reached = [], [], []
    for run_dir, metric, target, higher, unit in zip(
        runs["run_dir"], runs["targets_metric"], runs["target"], runs["higher_is_better"], runs["unit"]
    ):
        metric = metric or target
        higher = higher_is_better if higher is None or higher != higher else bool(higher)
        metrics.append(metric)
        directions.append(higher)
        if not metric or higher is None or str(run_dir).startswith("wandb:"):
            reached.append({})
            continue
        reached.append(
            reached_in_curve(read_metrics(Path(run_dir)), metric, targets, higher, unit or "samples")
        )
    runs["targets"] = [tuple(float(t) for t in targets)] * len(runs)
    runs["targets_metric"], runs["higher_is_better"], runs["reached"] = metrics, directions, reached
    return runs


def steps_to(cell: pd.DataFrame, target: Target) -> tuple[list[float], int]:
    """(steps of the completed runs that reached ``target``, number of completed runs that declare it)."""
    steps, declared = [], 0
    done = cell[cell["status"] == "completed"] if "status" in cell else cell
    for targets, metric, reached in zip(done["targets"], done["targets_metric"], done["reached"]):
        if metric != target.metric or target.value not in tuple(map(float, targets or ())):
            continue
        declared += 1
        hit = (reached or {}).get(target.key)
        if hit is not None and hit.get("step") is not None:
            steps.append(float(hit["step"]))
    return steps, declared


def speedup(base: Sequence[float], steps: Sequence[float], seed: int = 0) -> tuple[float, float, float]:
    """mean(base) / mean(steps) and its 95% percentile-bootstrap interval (seeds resampled within each
    side); nan where either side has fewer than 2 values."""
    if len(base) < 2 or len(steps) < 2:
        return math.nan, math.nan, math.nan
    ratio = float(np.mean(base) / np.mean(steps))
    if np.ptp(base) == 0 and np.ptp(steps) == 0:
        return ratio, ratio, ratio
    result = stats.bootstrap(
        (np.asarray(base, float), np.asarray(steps, float)),
        lambda b, s, axis: np.mean(b, axis=axis) / np.mean(s, axis=axis),
        vectorized=True,
        paired=False,
        method="percentile",
        n_resamples=2000,
        rng=np.random.default_rng(seed),
    )
    return ratio, float(result.confidence_interval.low), float(result.confidence_interval.high)


def target_row(cell: pd.DataFrame, base: pd.DataFrame | None, target: Target) -> dict[str, float]:
    """The per-target columns of one table row (``steps_to_<key>``, ``..._std``, ``reached_<key>``,
    ``declared_<key>``, ``speedup_<key>`` with ``_low``/``_high``)."""
    steps, declared = steps_to(cell, target)
    mean = float(np.mean(steps)) if steps else math.nan
    std = float(np.std(steps, ddof=1)) if len(steps) > 1 else math.nan
    ratio = low = high = math.nan
    if base is not None:
        ratio, low, high = speedup(steps_to(base, target)[0], steps)
    k = target.key
    return {
        f"steps_to_{k}": mean,
        f"steps_to_{k}_std": std,
        f"reached_{k}": len(steps),
        f"declared_{k}": declared,
        f"speedup_{k}": ratio,
        f"speedup_{k}_low": low,
        f"speedup_{k}_high": high,
    }


def format_cell(row: pd.Series, target: Target) -> str:
    """``1,240 ± 55 (3/3) ×1.21 [1.05, 1.40]``; ``never (0/3)``; empty where the cell lacks the target."""
    k = target.key
    declared = row.get(f"declared_{k}")
    if declared is None or declared != declared or not declared:
        return ""
    reached = int(row[f"reached_{k}"])
    if not reached:
        return f"never (0/{int(declared)})"
    mean, std = row[f"steps_to_{k}"], row[f"steps_to_{k}_std"]
    text = f"{mean:,.0f}" + ("" if std != std else f" ± {std:,.0f}") + f" ({reached}/{int(declared)})"
    ratio = row.get(f"speedup_{k}", math.nan)
    if ratio == ratio:
        text += f" ×{ratio:.2f} [{row[f'speedup_{k}_low']:.2f}, {row[f'speedup_{k}_high']:.2f}]"
    return text
