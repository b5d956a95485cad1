"""Final test accuracy by dataset x method (x whatever differs): mean ± std over seeds, next to the
paper's Table 1, as table.md and table.csv (and curves.png with --plot).

    python scripts/report.py results/runs --out results/local/report [--plot]
    python scripts/report.py results/runs --where lookahead.alpha=0.5
    python scripts/report.py results/runs --index        # what each run directory's short key stands for

The same selection and grouping flags as scripts/tables.py (which also writes LaTeX): runs are grouped
by workload x method, the --by fields, and every config field that differs between runs of one cell;
--where FIELD=VALUE selects. Only completed runs enter the statistics; the others are counted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tables import make_table

from lookahead.analysis import selection
from lookahead.analysis.plotting import curves
from lookahead.analysis.runs import NoRunsError, load_metrics, run_index
from lookahead.analysis.tables import to_markdown


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    selection.add_arguments(parser)
    parser.add_argument("--out", type=Path, help="folder for table.md / table.csv (and curves.png)")
    parser.add_argument("--plot", action="store_true", help="also plot training curves (mean ± std)")
    parser.add_argument(
        "--index", action="store_true", help="list each run key's overrides, seeds and statuses, and stop"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.index:
        try:
            index = run_index(args.paths)
        except NoRunsError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        print("| " + " | ".join(index.columns) + " |\n|" + "---|" * len(index.columns))
        for row in index.itertuples(index=False):
            print("| " + " | ".join(map(str, row)) + " |")
        return 0
    try:
        chosen, table = make_table(args)
    except (NoRunsError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    note = selection.grouping_note(chosen)
    if note:
        print(note, file=sys.stderr)
    markdown = to_markdown(table, chosen.by)
    print(markdown)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "table.md").write_text(markdown)
        table.to_csv(args.out / "table.csv", index=False)
        if args.plot:
            local = chosen.runs[~chosen.runs["run_dir"].str.startswith("wandb:")]
            metrics = load_metrics(list(local["run_dir"]))
            if chosen.auto_fields:  # one curve per configuration, as in the table
                metrics = metrics.merge(local[["run_dir", *chosen.auto_fields]], on="run_dir")
            curves(metrics, args.out / "curves.png", by=chosen.auto_fields)
        print(f"wrote {args.out}/table.md, table.csv" + (", curves.png" if args.plot else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
