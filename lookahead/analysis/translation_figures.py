"""Figure 7b: Transformer training loss against inner (optimizer) steps, one curve per preset.

    python -m lookahead.analysis.translation_figures results/runs/wmt14_* --out results/figures/figure7b

Each run directory's metrics.jsonl gives ``train_loss`` at every logged step; seeds of one experiment
(Adam+warmup, Adafactor, LA(Adam)+warmup, LA(Adam) without warmup, ...) become a mean ± std band.
"""

from __future__ import annotations

from lookahead.progress import announce

announce(__name__, "the translation training-loss figure")

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from lookahead.analysis.paper_numbers import FIGURE7B_LABELS as LABELS
from lookahead.analysis.plotting import OKABE_ITO, figure, mean_std_band, save
from lookahead.analysis.runs import NoRunsError, load_metrics


def regular_records(metrics: pd.DataFrame) -> pd.DataFrame:
    """Drop records that average far fewer steps than the run's usual interval.

    With ``eval_every_steps`` not dividing the epoch, an end-of-epoch record comes a few steps after a
    step-cadence one; its training loss averages only those steps and makes a spurious dent in a curve.
    """
    keep = []
    for _, run in metrics.sort_values("step").groupby("run_dir", sort=False):
        gaps = run["step"].diff()
        keep.append(run[gaps.isna() | (gaps >= 0.5 * gaps.median())])
    return pd.concat(keep) if keep else metrics


def training_loss_figure(
    metrics: pd.DataFrame,
    path: Path,
    title: str = "Transformer: training loss",
    column: str = "train_loss",
    formats: tuple[str, ...] = ("png",),
) -> list[Path]:
    """Mean ± std over seeds of ``column`` against ``step`` for every experiment in ``metrics``."""
    if metrics.empty or column not in metrics or "step" not in metrics:
        raise NoRunsError(f"no '{column}' against 'step' in the runs' metrics.jsonl")
    if "run_dir" in metrics:
        metrics = regular_records(metrics)
    fig, axes = figure(1, 1, width=5.5, height=3.8)
    ax = axes[0][0]
    order = [e for e in LABELS if e in set(metrics.experiment)]
    order += sorted(set(metrics.experiment) - set(order))
    for i, experiment in enumerate(order):
        data = metrics[(metrics.experiment == experiment) & metrics[column].notna()]
        stats = data.groupby("step")[column].agg(["mean", "std", "count"]).fillna(0)
        seeds = data.seed.nunique()
        label = f"{LABELS.get(experiment, experiment)} (n={seeds})"
        mean_std_band(ax, stats.index, stats["mean"], stats["std"], label, OKABE_ITO[i % len(OKABE_ITO)])
    ax.set(
        title=title, xlabel="inner (optimizer) steps", ylabel="training loss (label-smoothed CE per token)"
    )
    ax.legend()
    return save(fig, path, formats)


def figure_7b(
    paths: Iterable[str | Path], out: Path, title: str = "Transformer: training loss"
) -> list[Path]:
    """Figure 7b from run directories (or folders holding them)."""
    return training_loss_figure(load_metrics(paths), out, title, formats=("png", "pdf"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("paths", nargs="+", help="run directories or folders containing them")
    parser.add_argument(
        "--out", type=Path, default=Path("results/figures/figure7b"), help="output path (no suffix)"
    )
    parser.add_argument("--title", default="Transformer: training loss")
    args = parser.parse_args(argv)
    try:
        written = figure_7b(args.paths, args.out, args.title)
    except NoRunsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print("wrote " + ", ".join(map(str, written)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
