"""Final test accuracy by dataset x method: mean ± std over seeds, next to the paper's Table 1.

    python scripts/report.py results/runs --out results/report [--plot]

A short form of scripts/tables.py (which adds config grouping, LaTeX, W&B and the other paper tables).
Only completed runs enter the statistics; diverged/failed/unfinished ones are counted. Writes
table.md and table.csv (and curves.png with --plot) to --out, and prints the table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lookahead.analysis.paper_numbers import TABLE1
from lookahead.analysis.plotting import curves
from lookahead.analysis.runs import NoRunsError, load_metrics, load_summaries
from lookahead.analysis.tables import MismatchedRunsError, comparison_table, to_markdown

BY = ["dataset", "method"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("paths", nargs="+", help="run directories or folders containing them")
    parser.add_argument("--out", type=Path, help="folder for table.md / table.csv (and curves.png)")
    parser.add_argument("--plot", action="store_true", help="also plot training curves (mean ± std)")
    args = parser.parse_args(argv)
    try:
        table = comparison_table(load_summaries(args.paths), by=BY, paper=dict(TABLE1))
    except (NoRunsError, MismatchedRunsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    markdown = to_markdown(table, BY)
    print(markdown)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "table.md").write_text(markdown)
        table.to_csv(args.out / "table.csv", index=False)
        if args.plot:
            curves(load_metrics(args.paths), args.out / "curves.png")
        print(f"wrote {args.out}/table.md, table.csv" + (", curves.png" if args.plot else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
