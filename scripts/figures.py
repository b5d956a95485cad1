"""Figures from run directories, in one style (PNG + PDF).

    python scripts/figures.py curves results/cpu/methods --out results/figures/mnist1d_curves
    python scripts/figures.py grid results/cpu/alpha_k --x lookahead.k --y lookahead.alpha \
        --out results/figures/alpha_k
    python scripts/figures.py grid results/cpu/robustness --x optimizer.lr --y optimizer.momentum \
        --panel method --out results/figures/robustness

    python scripts/figures.py imagenet results/runs/imagenet_* --out results/figures/imagenet_loss

`curves`: per workload, the training loss and the metric the runs declare (MNIST-1D: test accuracy in
%; PTB: perplexity; a user's workload: its own), per epoch, mean ± std over seeds, per method; other
metrics.jsonl columns with --columns (PTB: --columns train_perplexity,valid_perplexity --x step). What
each panel shows (title, labels, curves and their colours) is also written as JSON next to the figure.
`imagenet`: the paper's Figure 6: training loss (and the runs' declared metric, validation top-1) per
epoch, one panel per model.
`grid`: the mean over completed seeds of the metric the runs declare (--metric another) on a grid of two
config fields (one panel per value of --panel); diverged cells are marked. The grid's numbers are also
written as CSV next to the figure.
The theory figures come from experiments/nqm.py and experiments/quadratic.py, the inner-loop ones
from experiments/fast_slow.py and experiments/surface.py (`make figures` runs them all).
"""

from __future__ import annotations

from lookahead.progress import announce

announce(__name__, "figures of the runs")

import argparse
import json
import sys
from pathlib import Path

from lookahead.analysis import measures
from lookahead.analysis.plotting import curves, heatmap_panels, training_loss_curves
from lookahead.analysis.runs import NoRunsError, load_metrics, load_summaries
from lookahead.analysis.tables import add_config_columns


def table_metric(runs, chosen: str | None) -> str:
    """``--metric``, else the one metric the runs declare (several workloads' runs: name one)."""
    if chosen:
        return chosen
    metrics = list(measures.default_metrics(runs))
    if len(metrics) > 1:
        raise ValueError(
            f"the runs declare different metrics ({', '.join(metrics)}); choose one with --metric"
        )
    return metrics[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("kind", choices=["curves", "grid", "imagenet"])
    parser.add_argument("paths", nargs="+", help="run directories or folders containing them")
    parser.add_argument("--out", type=Path, required=True, help="output path without suffix")
    parser.add_argument(
        "--x",
        help="config field on the x axis (grid); curves: epoch (default), step, samples or tokens "
        "(trained so far), wall_time_s (seeds interpolated onto one grid)",
    )
    parser.add_argument("--y", help="config field on the y axis (grid)")
    parser.add_argument(
        "--by", help="curves: one curve per value of these config fields too (comma separated)"
    )
    parser.add_argument("--panel", help="one panel per value of this field (grid), e.g. method")
    parser.add_argument("--title", default="")
    parser.add_argument(
        "--metric",
        help="grid: the summary column in the cells; curves, imagenet: the metric whose curve is drawn "
        "(default: the one the runs declare)",
    )
    parser.add_argument(
        "--columns",
        help="curves: metrics.jsonl columns, one panel each (e.g. train_perplexity,valid_perplexity; "
        "default: the training loss and the runs' declared metric, per workload)",
    )
    args = parser.parse_args(argv)
    try:
        runs = load_summaries(args.paths)
        if args.kind == "curves":
            metrics = load_metrics(args.paths)
            if metrics.empty:
                raise NoRunsError("the runs have no metrics.jsonl records yet")
            columns = tuple(c for c in (args.columns or "").split(",") if c)
            missing = [c for c in (*columns, args.x or "epoch") if c not in metrics]
            if missing:
                raise NoRunsError(f"no metrics.jsonl record has column(s) {', '.join(missing)}")
            by = [f for f in (args.by or "").split(",") if f]
            if by:  # one curve per value of these config fields (a swept lookahead.alpha)
                metrics = metrics.merge(add_config_columns(runs, by)[["run_dir", *by]], on="run_dir")
            panels = measures.panels(runs, metric=args.metric, columns=columns)
            written, described = curves(
                metrics, args.out, panels, formats=("png", "pdf"), by=by, x=args.x or "epoch"
            )
            written.append(write_json(args.out.with_suffix(".json"), described))
        elif args.kind == "imagenet":
            metrics = load_metrics(args.paths)
            if metrics.empty:
                raise NoRunsError("the runs have no metrics.jsonl records yet")
            column = measures.curve_column(table_metric(runs, args.metric))
            shown = {c: measures.measure(runs, c) for c in (measures.TRAINING_LOSS, column)}
            written, plotted = training_loss_curves(
                metrics, args.out, shown, metric=column, formats=("png", "pdf")
            )
            plotted.to_csv(args.out.with_suffix(".csv"), index=False)
            written.append(args.out.with_suffix(".csv"))
        else:
            if not (args.x and args.y):
                parser.error("grid needs --x and --y")
            fields = [f for f in (args.x, args.y, args.panel) if f and f != "method"]
            runs = add_config_columns(runs, fields)
            missing = [f for f in fields if runs[f].isna().all()]
            if missing:
                raise NoRunsError(f"no run has config field(s) {', '.join(missing)}")
            metric = table_metric(runs, args.metric)
            shown = measures.measure(runs, metric)
            label = measures.caption(metric, shown, measures.declared_direction(runs, metric))
            written, grid = heatmap_panels(
                runs,
                args.x,
                args.y,
                args.out,
                metric,
                shown,
                label,
                panel=args.panel,
                title=args.title,
                formats=("png", "pdf"),
            )
            grid.to_csv(args.out.with_suffix(".csv"), index=False)
            written.append(args.out.with_suffix(".csv"))
    except (NoRunsError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print("wrote " + ", ".join(map(str, written)))
    return 0


def write_json(path: Path, data: object) -> Path:
    """``data`` as indented JSON at ``path``; returns the path."""
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path


if __name__ == "__main__":
    sys.exit(main())
