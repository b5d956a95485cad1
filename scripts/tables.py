"""Comparison tables with statistics from run directories (and W&B), as Markdown, LaTeX and CSV
(scripts/report.py is the same command).

    python scripts/tables.py results/runs                                 # dataset x method (x sweeps)
    python scripts/tables.py results/runs --out results/local/report --plot   # + curves.png
    python scripts/tables.py results/runs --index        # what each run directory's short key stands for
    python scripts/tables.py results/runs --targets 150,130   # steps to other targets (metrics.jsonl)
    python scripts/tables.py results/cpu/alpha_k --baseline none          # grouped by alpha and k
    python scripts/tables.py results/runs --where lookahead.k=5 --by lookahead.alpha
    python scripts/tables.py results/runs/imagenet_sgd results/runs/imagenet_lookahead --preset table2
    python scripts/tables.py results/runs --preset table1 --out results/local/tables
    python scripts/tables.py --wandb my-entity/lookahead --group cifar10_lookahead/default

Per cell: mean ± std over completed seeds, n, 95% t confidence interval, Welch's p-value against the
baseline method, the paper's value and our difference. Diverged/failed/unfinished runs are counted in
their own column and never averaged in. Runs are grouped by workload x method, the --by fields, and
every config field that differs between runs of one cell (shown as columns; --where FIELD=VALUE
selects instead, --no-auto-by refuses such cells). --mark-best (and the ptb presets) put the best mean of
each group in bold, in the direction the runs declare for the metric (summary.json: higher accuracy,
lower perplexity, a user's workload's own). Each convergence target the runs declare adds a column:
steps to reach it, mean ± std over the seeds that did (reached/seeds; a seed that never did is counted,
never dropped), and the speed-up against the baseline with a 95% bootstrap interval.
"""

from __future__ import annotations

from lookahead.progress import announce

announce(__name__, "comparison tables of the runs")

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd

from lookahead.analysis import measures, selection
from lookahead.analysis.paper_numbers import paper_preset
from lookahead.analysis.plotting import curves
from lookahead.analysis.runs import NoRunsError, load_metrics, run_index
from lookahead.analysis.tables import comparison_table, to_latex, to_markdown


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    selection.add_arguments(parser)
    parser.add_argument("--out", type=Path, help="write <name>.md, <name>.tex, <name>.csv here")
    parser.add_argument("--name", default="table", help="file name stem under --out")
    parser.add_argument("--plot", action="store_true", help="also plot training curves (mean ± std) to --out")
    parser.add_argument(
        "--index", action="store_true", help="list each run key's overrides, seeds and statuses, and stop"
    )
    return parser


def make_table(
    args: argparse.Namespace,
) -> tuple[list[selection.Selection], selection.Selection, pd.DataFrame]:
    """(the parts, the selection the whole table is printed with, the table) for the parsed flags;
    raises ValueError (NoRunsError, ...) on bad input.

    Several parts (a combined preset such as ``table2``: top-1/top-5 at epochs 50 and 60; runs of
    workloads that declare different metrics) are stacked with a leading ``metric`` column."""
    parts = selection.select(args)
    tables = []
    for chosen in parts:
        table = comparison_table(
            chosen.runs,
            metric=chosen.metric,
            by=chosen.by,
            baseline=chosen.baseline,
            paper=chosen.paper,
            scale=chosen.scale,
            expected=chosen.expected,
            higher_better=chosen.higher_better,
            bounds=chosen.bounds,
        )
        if len(parts) > 1:
            table.insert(0, "metric", chosen.metric)
        tables.append(table)
    if len(parts) == 1:
        return parts, parts[0], tables[0]
    stacked = pd.concat(tables, ignore_index=True)
    stacked.attrs["targets"] = list(dict.fromkeys(t for table in tables for t in table.attrs["targets"]))
    by = list(dict.fromkeys(f for chosen in parts for f in chosen.by))
    preset = paper_preset(args.preset) if args.preset else {}
    whole = replace(
        parts[0],
        by=["metric", *by],
        caption=preset.get("caption") or "; ".join(chosen.caption for chosen in parts),
        auto_fields=list(dict.fromkeys(f for chosen in parts for f in chosen.auto_fields)),
        mark_best=any(chosen.mark_best for chosen in parts),
    )
    return parts, whole, stacked


def print_index(paths: list[str]) -> None:
    index = run_index(paths)
    print("| " + " | ".join(index.columns) + " |\n|" + "---|" * len(index.columns))
    for row in index.itertuples(index=False):
        print("| " + " | ".join(map(str, row)) + " |")


def plot_curves(parts: list[selection.Selection], path: Path) -> list[dict] | None:
    """Training curves of the selected local runs, one row of panels per workload (the training loss and
    the curve of its table's metric), one curve per configuration as in the table; writes ``path`` and
    the panels' description as JSON beside it. None when the runs have no metrics.jsonl records."""
    panels: dict = {}
    frames = []
    for chosen in parts:
        local = chosen.runs[~chosen.runs["run_dir"].str.startswith("wandb:")]
        frames.append(local)
        for dataset, shown in measures.panels(local, metric=chosen.metric).items():
            panels.setdefault(dataset, shown)
    local = pd.concat(frames).drop_duplicates("run_dir")
    metrics = load_metrics(list(local["run_dir"])) if len(local) else pd.DataFrame()
    if metrics.empty:
        return None
    auto = list(dict.fromkeys(f for chosen in parts for f in chosen.auto_fields))
    if auto:
        metrics = metrics.merge(local[["run_dir", *auto]], on="run_dir")
    _, described = curves(metrics, path, panels, by=auto)
    path.with_suffix(".json").write_text(json.dumps(described, indent=1) + "\n")
    return described


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.plot and not args.out:
        print("error: --plot needs --out (the folder for curves.png)", file=sys.stderr)
        return 1
    try:
        if args.index:
            print_index(args.paths)
            return 0
        parts, chosen, table = make_table(args)
    except (NoRunsError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for note in dict.fromkeys(filter(None, map(selection.grouping_note, parts))):
        print(note, file=sys.stderr)
    markdown = to_markdown(table, chosen.by, mark_best=chosen.mark_best)
    print(markdown)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"{args.name}.md").write_text(markdown)
        (args.out / f"{args.name}.tex").write_text(to_latex(table, chosen.by, chosen.caption))
        table.to_csv(args.out / f"{args.name}.csv", index=False)
        plotted = None
        if args.plot:
            try:
                plotted = plot_curves(parts, args.out / "curves.png")
            except ValueError as err:  # the table stands; the figure cannot be drawn
                print(f"note: no curves: {err}", file=sys.stderr)
            else:
                if plotted is None:
                    print(
                        "note: no curves: the selected runs have no metrics.jsonl records yet",
                        file=sys.stderr,
                    )
        print(
            f"wrote {args.out}/{args.name}.md, .tex, .csv" + (", curves.png, curves.json" if plotted else "")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
