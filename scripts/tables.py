"""Comparison tables with statistics from run directories (and W&B), as Markdown, LaTeX and CSV.

    python scripts/tables.py results/runs                                 # dataset x method (x sweeps)
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
each group in bold: highest accuracy, lowest perplexity or loss. scripts/report.py takes the same flags.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from lookahead.analysis import selection
from lookahead.analysis.paper_numbers import paper_preset
from lookahead.analysis.runs import NoRunsError
from lookahead.analysis.tables import comparison_table, to_latex, to_markdown


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    selection.add_arguments(parser)
    parser.add_argument("--out", type=Path, help="write <name>.md, <name>.tex, <name>.csv here")
    parser.add_argument("--name", default="table", help="file name stem under --out")
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
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
        print(f"wrote {args.out}/{args.name}.md, .tex, .csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
