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

import argparse
import sys
from pathlib import Path

import pandas as pd

from lookahead.analysis import selection
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


def make_table(args: argparse.Namespace):
    """(selection, table) for the parsed flags; raises ValueError (NoRunsError, ...) on bad input.

    A combined preset (``table2``: top-1/top-5 at epochs 50 and 60) stacks its parts' tables with a
    leading ``metric`` column."""
    parts = paper_preset(args.preset).get("parts") if args.preset else None
    tables = []
    for part in parts or [args.preset]:
        chosen = selection.select(argparse.Namespace(**{**vars(args), "preset": part}))
        table = comparison_table(
            chosen.runs,
            metric=chosen.metric,
            by=chosen.by,
            baseline=chosen.baseline,
            paper=chosen.paper,
            scale=chosen.scale,
            expected=chosen.expected,
            higher_better=chosen.higher_better,
        )
        if parts:
            table.insert(0, "metric", chosen.metric)
        tables.append(table)
    if parts:
        chosen.by = ["metric", *chosen.by]
        chosen.caption = paper_preset(args.preset)["caption"]
        return chosen, pd.concat(tables, ignore_index=True)
    return chosen, tables[0]


def print_index(paths: list[str]) -> None:
    index = run_index(paths)
    print("| " + " | ".join(index.columns) + " |\n|" + "---|" * len(index.columns))
    for row in index.itertuples(index=False):
        print("| " + " | ".join(map(str, row)) + " |")


def plot_curves(chosen: selection.Selection, path: Path) -> None:
    """Training curves of the selected local runs, one curve per configuration as in the table."""
    local = chosen.runs[~chosen.runs["run_dir"].str.startswith("wandb:")]
    metrics = load_metrics(list(local["run_dir"]))
    if chosen.auto_fields:
        metrics = metrics.merge(local[["run_dir", *chosen.auto_fields]], on="run_dir")
    curves(metrics, path, by=chosen.auto_fields)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.index:
            print_index(args.paths)
            return 0
        chosen, table = make_table(args)
    except (NoRunsError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    note = selection.grouping_note(chosen)
    if note:
        print(note, file=sys.stderr)
    markdown = to_markdown(table, chosen.by, mark_best=chosen.mark_best)
    print(markdown)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"{args.name}.md").write_text(markdown)
        (args.out / f"{args.name}.tex").write_text(to_latex(table, chosen.by, chosen.caption))
        table.to_csv(args.out / f"{args.name}.csv", index=False)
        if args.plot:
            plot_curves(chosen, args.out / "curves.png")
        print(f"wrote {args.out}/{args.name}.md, .tex, .csv" + (", curves.png" if args.plot else ""))
    elif args.plot:
        print("error: --plot needs --out (the folder for curves.png)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
