"""Which runs a report covers and how they are grouped: one set of command-line flags and one function,
shared by scripts/report.py and scripts/tables.py (and anything else that tabulates runs).

Grouping starts from workload x method (or a paper preset's grouping), adds the ``--by`` fields, then
every config field that still differs between the runs of one cell (a sweep's lookahead.alpha, a changed
trainer.max_epochs), so a table never averages different configurations together and shows each such
field as a column. ``--where FIELD=VALUE`` keeps only matching runs; ``--no-auto-by`` refuses mixed
cells instead of splitting them.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field, replace

import pandas as pd
import yaml

from lookahead.analysis import measures
from lookahead.analysis.convergence import with_targets
from lookahead.analysis.paper_numbers import PAPER_BASELINE, paper_preset
from lookahead.analysis.runs import NoRunsError, add_metric_at_epoch, load_summaries, load_wandb_runs
from lookahead.analysis.tables import add_config_columns, check_consistent, differing_fields


@dataclass
class Selection:
    runs: pd.DataFrame
    by: list[str]  # grouping columns, in table order
    metric: str
    scale: float
    baseline: str | None
    paper: dict
    expected: list[tuple]
    caption: str
    auto_fields: list[str] = field(default_factory=list)  # added because they differ within a cell
    higher_better: bool | None = None  # the metric's direction when the preset states it
    mark_best: bool = False  # bold the best mean of each group
    bounds: tuple[float, float] | None = None  # the metric's range in stored units (runs declare it)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The selection and grouping flags (positional run paths included)."""
    parser.add_argument("paths", nargs="*", help="run directories or folders containing them")
    parser.add_argument(
        "--preset",
        help="paper table: table1 | table2 (all four) | table2_top1_epoch50 | table2_top5_epoch60 | ... | ptb | ptb_cpu | ptb_classic | wmt",
    )
    parser.add_argument(
        "--metric",
        help="summary column (final_test_accuracy) or name@epoch; default: what the runs declare "
        "(the test value of their target metric, else its final value)",
    )
    parser.add_argument("--by", default="", help="config fields to group by first, comma separated")
    parser.add_argument(
        "--no-auto-by",
        action="store_true",
        help="do not add the config fields that differ within a cell; refuse such cells instead",
    )
    parser.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="keep only runs whose config FIELD equals VALUE (repeatable), e.g. --where lookahead.k=5",
    )
    parser.add_argument(
        "--baseline",
        default=None,
        help="method for Welch's test, 'inner' (each wrapper vs its inner optimizer) or 'none' "
        f"(default: the preset's, else {PAPER_BASELINE} where the runs have it, else inner)",
    )
    parser.add_argument("--mark-best", action="store_true", help="bold the best mean of each group")
    parser.add_argument(
        "--targets",
        type=parse_targets,
        help="steps-to-target for these values of each run's target metric (comma separated), read "
        "from metrics.jsonl instead of the targets the runs declared",
    )
    parser.add_argument(
        "--scale", type=float, help="multiply the metric (default: the scale the runs declare for it)"
    )
    parser.add_argument("--wandb", metavar="ENTITY/PROJECT", help="also read runs from W&B")
    parser.add_argument("--group", help="W&B group filter")


def parse_targets(text: str) -> tuple[float, ...]:
    """``"150,130"`` -> ``(150.0, 130.0)``; argparse turns a ValueError into a usage error."""
    values = tuple(float(v) for v in text.split(",") if v.strip())
    if not values or not all(math.isfinite(v) for v in values):
        raise ValueError(text)
    return values


def parse_where(items: list[str]) -> dict[str, object]:
    """``["lookahead.k=5", "method=sgd"]`` -> ``{"lookahead.k": 5, "method": "sgd"}`` (YAML-typed)."""
    where = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ValueError(f"--where needs FIELD=VALUE, got {item!r}")
        where[name.strip()] = yaml.safe_load(value)
    return where


def filter_runs(runs: pd.DataFrame, where: dict[str, object]) -> pd.DataFrame:
    """Runs whose column (dataset, method, status, ...) or config field equals each value."""
    keep = pd.Series(True, index=runs.index)
    for name, value in where.items():
        if name in runs.columns and name != "config":
            column = runs[name]
        else:
            column = pd.Series(
                [c.get(name) if isinstance(c, dict) else None for c in runs["config"]], runs.index
            )
        if column.isna().all():
            raise ValueError(f"--where {name}: no run has the field {name!r}")
        keep &= column.map(lambda v, want=value: v == want or str(v) == str(want))
    selected = runs[keep]
    if selected.empty:
        shown = ", ".join(f"{k}={v}" for k, v in where.items())
        raise NoRunsError(f"no run matches --where {shown}")
    return selected


def resolve_by(runs: pd.DataFrame, by: list[str], auto: bool = True) -> tuple[list[str], list[str]]:
    """(grouping fields, the ones added automatically). With ``auto=False`` mixed cells are an error."""
    runs = add_config_columns(runs, [f for f in by if f not in runs.columns])
    added = differing_fields(runs, by) if auto else []
    full = by + added
    check_consistent(add_config_columns(runs, added), full)
    return full, added


def load(args: argparse.Namespace) -> pd.DataFrame:
    """The runs named by the flags (local paths and/or W&B), filtered by ``--where``."""
    if not args.paths and not args.wandb:
        raise NoRunsError("give run directories and/or --wandb ENTITY/PROJECT")
    frames = [load_summaries(args.paths)] if args.paths else []
    if args.wandb:
        import wandb

        frames.append(load_wandb_runs(wandb.Api(), args.wandb, args.group))
    runs = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return filter_runs(runs, parse_where(args.where))


def select(args: argparse.Namespace) -> list[Selection]:
    """The tables the flags of :func:`add_arguments` ask for: one per part of a paper preset, else one
    for ``--metric``, else one per metric the runs declare (runs of different workloads)."""
    runs = load(args)
    if args.preset:
        preset = paper_preset(args.preset)
        parts = [paper_preset(p) for p in preset.get("parts", [])] or [preset]
        return [part_selection(args, runs, part) for part in parts]
    if args.metric:
        return [part_selection(args, runs, {"metric": args.metric})]
    return [part_selection(args, sub, {"metric": m}) for m, sub in measures.default_metrics(runs).items()]


def part_selection(args: argparse.Namespace, runs: pd.DataFrame, preset: dict) -> Selection:
    """One table: ``preset`` states the metric, and for a paper table its grouping, expected cells, the
    paper's values, scale, direction, baseline and caption; the rest comes from the runs' declarations."""
    metric = args.metric or preset["metric"]
    if getattr(args, "targets", None):
        runs = with_targets(runs, args.targets, preset.get("higher_better"))
    if "@" in metric:
        runs = add_metric_at_epoch(runs, metric)
    shown = measures.measure(runs, metric)
    if args.scale and args.scale != shown.scale:  # the user's own scale: the declared unit no longer applies
        shown = replace(shown, unit="", scale=args.scale)
    direction = preset.get("higher_better", measures.declared_direction(runs, metric))
    default_baseline = PAPER_BASELINE if (runs["method"] == PAPER_BASELINE).any() else "inner"
    baseline = args.baseline or preset.get("baseline", default_baseline)
    preset_by = preset.get("by", ["dataset", "method"])
    base = list(preset_by) + [f for f in args.by.split(",") if f and f not in preset_by]
    by, added = resolve_by(runs, base, auto=not args.no_auto_by)
    return Selection(
        runs=add_config_columns(runs, [f for f in by if f not in runs.columns]),
        by=by,
        metric=metric,
        scale=args.scale or preset.get("scale", shown.scale),
        baseline=None if baseline == "none" else baseline,
        higher_better=preset.get("higher_better"),
        mark_best=args.mark_best or "higher_better" in preset,
        paper=preset.get("paper", {}),
        expected=[tuple(e) for e in preset.get("expected", [])],
        caption=preset.get("caption") or measures.caption(metric, shown, direction),
        auto_fields=added,
        bounds=shown.bounds,
    )


def grouping_note(selection: Selection) -> str | None:
    """One line saying which fields were added to the grouping, and how to select instead."""
    if not selection.auto_fields:
        return None
    fields = ", ".join(selection.auto_fields)
    return (
        f"note: also grouped by {fields} (they differ between runs of one {' x '.join(selection.by[:2])} "
        f"cell); select with --where {selection.auto_fields[0]}=VALUE"
    )
