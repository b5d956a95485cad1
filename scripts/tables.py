"""Comparison tables with statistics from run directories (and W&B), as Markdown, LaTeX and CSV.

    python scripts/tables.py results/runs                                 # dataset x method
    python scripts/tables.py results/cpu/grid --by lookahead.k,lookahead.alpha --baseline none
    python scripts/tables.py results/runs --preset table1 --out results/tables
    python scripts/tables.py --wandb my-entity/lookahead --group cifar10_lookahead/default

Per cell: mean ± std over completed seeds (with --mark-best, and for the ptb presets, the best of each
group in bold: highest accuracy, lowest perplexity or loss), n, 95% t confidence interval, Welch's p-value against the baseline method, the paper's
value and our difference. Diverged/failed/unfinished runs are counted in
their own column and never averaged in. Cells whose runs differ in an un-grouped config field are an
error: group by the field (--by) or select fewer runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lookahead.analysis.paper_numbers import TABLE1, paper_preset
from lookahead.analysis.runs import NoRunsError, add_metric_at_epoch, load_summaries, load_wandb_runs
from lookahead.analysis.tables import MismatchedRunsError, comparison_table, to_latex, to_markdown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("paths", nargs="*", help="run directories or folders containing them")
    parser.add_argument(
        "--preset", help="table1 | table2_top1_epoch50 | table2_top5_epoch60 | ... | ptb | ptb_cpu | wmt"
    )
    parser.add_argument("--metric", default=None, help="summary column (final_test_accuracy) or name@epoch")
    parser.add_argument("--by", default="", help="extra config fields to group by, comma separated")
    parser.add_argument(
        "--baseline",
        default=None,
        help="method for Welch's test, 'inner' (each wrapper vs its inner optimizer) or 'none' "
        "(default: the preset's, else sgd)",
    )
    parser.add_argument("--scale", type=float, default=None, help="multiply the metric (100 for %%)")
    parser.add_argument("--out", type=Path, help="write table.md, table.tex, table.csv here")
    parser.add_argument("--mark-best", action="store_true", help="bold the best mean of each group")
    parser.add_argument("--name", default="table", help="file name stem under --out")
    parser.add_argument("--wandb", metavar="ENTITY/PROJECT", help="also read runs from W&B")
    parser.add_argument("--group", help="W&B group filter")
    args = parser.parse_args(argv)
    if not args.paths and not args.wandb:
        parser.error("give run directories and/or --wandb ENTITY/PROJECT")
    try:
        preset = (
            paper_preset(args.preset)
            if args.preset
            else {
                "metric": "final_test_accuracy",
                "scale": 100.0,
                "by": ["dataset", "method"],
                "expected": [],
                "paper": dict(TABLE1),
                "caption": "final test accuracy (%)",
            }
        )
        metric = args.metric or preset["metric"]
        baseline = args.baseline or preset.get("baseline", "sgd")
        by = preset["by"] + [f for f in args.by.split(",") if f]
        frames = [load_summaries(args.paths)] if args.paths else []
        if args.wandb:
            import pandas as pd
            import wandb

            frames.append(load_wandb_runs(wandb.Api(), args.wandb, args.group))
            runs = pd.concat(frames, ignore_index=True)
        else:
            runs = frames[0]
        if "@" in metric:
            runs = add_metric_at_epoch(runs, metric)
        table = comparison_table(
            runs,
            metric=metric,
            by=by,
            baseline=None if baseline == "none" else baseline,
            paper=preset["paper"],
            scale=args.scale or preset["scale"],
            expected=preset["expected"],
            higher_better=preset.get("higher_better"),
        )
    except (NoRunsError, MismatchedRunsError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    # Bold "best" cells where asked, and always for presets that state their metric's direction.
    markdown = to_markdown(table, by, mark_best=args.mark_best or "higher_better" in preset)
    print(markdown)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"{args.name}.md").write_text(markdown)
        (args.out / f"{args.name}.tex").write_text(to_latex(table, by, preset["caption"]))
        table.to_csv(args.out / f"{args.name}.csv", index=False)
        print(f"wrote {args.out}/{args.name}.md, .tex, .csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
