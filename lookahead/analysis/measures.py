"""What a report shows, read from what the runs declare, never from metric names.

Each summary.json states the metric its workload is judged on (``targets_metric``, else ``target``),
its direction (``higher_is_better``) and how each reduced metric is shown (``measures``: label, unit,
scale, bounds, log axis; lookahead.workloads.base.Measure). From these come a table's default metric
(the declared quantity on the test split where the runs have one, else on the split they declare), its
scale, the bounds its intervals are clipped to, the caption, and the panels and axis labels of the
curves. A metric no run declares a measure for is shown as it is, under its own name.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from lookahead.workloads.base import Measure

# Every workload's reduce returns its training objective as "loss" (workloads/base.py: the seam), so
# the training curve of any run is this column of metrics.jsonl.
TRAINING_LOSS = "train_loss"


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def quantity(metric: str) -> str:
    """What a metric column measures, without run position and split: ``final_test_perplexity``,
    ``best_valid_perplexity`` and ``valid_perplexity@50`` all measure ``perplexity``."""
    name = curve_column(metric)
    return name.partition("_")[2] or name


def curve_column(metric: str) -> str:
    """The metrics.jsonl column behind a table metric: ``final_test_accuracy`` -> ``test_accuracy``,
    ``valid_top1@50`` -> ``valid_top1``."""
    name = metric.split("@", 1)[0]
    for prefix in ("final_", "best_"):
        name = name.removeprefix(prefix)
    return name


def declared_metric(run: pd.Series) -> str | None:
    """The metric a run declares it is judged on (``targets_metric``, else ``target``), or None."""
    for key in ("targets_metric", "target"):
        value = run.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def default_metrics(runs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The runs split by the table metric their declarations give: ``final_test_<quantity>`` where any
    run declaring the same metric has that value, else ``final_<declared metric>``. A run that declares
    nothing (an old or interrupted one) goes with the runs of its dataset. ValueError when no run
    declares a metric."""
    declared = runs.apply(declared_metric, axis=1) if len(runs) else pd.Series(dtype=object)
    by_dataset = {}
    for dataset, metric in zip(runs["dataset"], declared):
        if metric is not None:
            by_dataset.setdefault(dataset, metric)
    declared = pd.Series(
        [m if m is not None else by_dataset.get(d) for d, m in zip(runs["dataset"], declared)], runs.index
    )
    if declared.isna().all():
        raise ValueError(
            "the runs declare no target metric (summary.json: target, targets_metric); name one with --metric"
        )
    first = declared.dropna().iloc[0]
    declared = declared.fillna(first)  # runs of a dataset that declares nothing at all
    groups: dict[str, pd.DataFrame] = {}
    for metric in dict.fromkeys(declared):
        members = runs[declared == metric]
        test = f"final_test_{quantity(metric)}"
        chosen = test if test in members and members[test].notna().any() else f"final_{metric}"
        groups[chosen] = pd.concat([groups[chosen], members]) if chosen in groups else members
    return groups


def measure(runs: pd.DataFrame, metric: str) -> Measure:
    """How ``metric`` is shown, as the runs declare it for its quantity (``Measure(name)`` where none
    does); ValueError when runs declare it differently."""
    name = quantity(metric)
    found = {
        Measure(**{**m[name], "bounds": _bounds(m[name].get("bounds"))})
        for m in runs.get("measures", pd.Series(dtype=object))
        if isinstance(m, dict) and isinstance(m.get(name), dict)
    }
    if len(found) > 1:
        shown = " vs ".join(sorted(f"{m.label} x{m.scale:g}" for m in found))
        raise ValueError(
            f"the runs show {name} in different ways ({shown}); select runs of one workload with --where dataset=NAME"
        )
    return found.pop() if found else Measure(name)


def _bounds(value: Sequence[float] | None) -> tuple[float, float] | None:
    return None if value is None else (float(value[0]), float(value[1]))


def declared_direction(runs: pd.DataFrame, metric: str) -> bool | None:
    """Whether higher is better for ``metric``, as the runs' summaries declare it for the same quantity
    (a workload's target and its direction); None when no run says, or runs disagree."""
    if "higher_is_better" not in runs:
        return None
    said = {
        bool(higher)
        for (_, run), higher in zip(runs.iterrows(), runs["higher_is_better"])
        if not _missing(higher)
        and (name := declared_metric(run)) is not None
        and quantity(name) == quantity(metric)
    }
    return said.pop() if len(said) == 1 else None


def axis_label(shown: Measure) -> str:
    """``accuracy (%)``, ``perplexity (log scale)``, ``mse``."""
    notes = [n for n in (shown.unit, "log scale" if shown.log else "") if n]
    return shown.label + (f" ({', '.join(notes)})" if notes else "")


def caption(metric: str, shown: Measure, higher_better: bool | None) -> str:
    """``final test accuracy (%), higher is better``; ``valid top-1 accuracy (%) at epoch 50``."""
    name, _, epoch = metric.partition("@")
    when = next((p.rstrip("_") for p in ("final_", "best_") if name.startswith(p)), "")
    split = curve_column(metric).partition("_")[0] if "_" in curve_column(metric) else ""
    text = " ".join(w for w in (when, split, shown.label) if w)
    text += f" ({shown.unit})" if shown.unit else ""
    text += f" at epoch {epoch}" if epoch else ""
    if higher_better is not None:
        text += ", higher is better" if higher_better else ", lower is better"
    return text


def panels(
    runs: pd.DataFrame, metric: str | None = None, columns: Sequence[str] | None = None
) -> dict[str, list[tuple[str, Measure]]]:
    """Per dataset, the curves to draw and how: ``columns`` when given, else the training loss and the
    curve of the table metric (``metric``, else the one the dataset's runs declare)."""
    out: dict[str, list[tuple[str, Measure]]] = {}
    for dataset, group in runs.groupby("dataset", sort=True):
        if columns:
            chosen = list(columns)
        else:
            table_metric = metric or next(iter(default_metrics(group)))
            chosen = [TRAINING_LOSS, curve_column(table_metric)]
        out[str(dataset)] = [(c, measure(group, c)) for c in dict.fromkeys(chosen)]
    return out
