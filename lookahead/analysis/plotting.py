"""One figure style for the suite: Okabe-Ito colour-blind-safe palette, labelled axes, PNG + PDF."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
METHOD_COLORS = {
    "sgd": OKABE_ITO[0],
    "adam": OKABE_ITO[1],
    "polyak": OKABE_ITO[2],
    "lookahead": OKABE_ITO[3],
    "lookahead_adam": OKABE_ITO[4],
}
STYLE = {
    "figure.dpi": 120,
    "savefig.dpi": 150,
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.prop_cycle": matplotlib.cycler(color=OKABE_ITO),
}


def figure(ncols: int = 1, nrows: int = 1, width: float = 4.5, height: float = 3.4):
    plt.rcParams.update(STYLE)
    return plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)


def save(fig, path: Path, formats: tuple[str, ...] = ("png",)) -> list[Path]:
    """Save as ``path`` with each suffix in ``formats``; returns the files written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    written = []
    for fmt in formats:
        out = path.with_suffix(f".{fmt}")
        fig.savefig(out)
        written.append(out)
    plt.close(fig)
    return written


def mean_std_band(ax, x, mean, std, label: str, color: str | None = None) -> None:
    ax.plot(x, mean, label=label, color=color)
    ax.fill_between(x, mean - std, mean + std, alpha=0.2, color=color, linewidth=0)


def curves(metrics: pd.DataFrame, path: Path, formats: tuple[str, ...] = ("png",)) -> list[Path]:
    """Training loss and test accuracy per epoch, mean ± std over seeds, one row per dataset."""
    datasets = sorted(metrics.dataset.unique())
    fig, axes = figure(2, len(datasets))
    for row, dataset in zip(axes, datasets):
        data = metrics[metrics.dataset == dataset]
        for method, group in data.groupby("method"):
            for ax, column in zip(row, ("train_loss", "test_accuracy")):
                stats = group.groupby("epoch")[column].agg(["mean", "std"]).fillna(0)
                mean_std_band(ax, stats.index, stats["mean"], stats["std"], method, METHOD_COLORS.get(method))
        row[0].set(
            title=f"{dataset}: training loss",
            xlabel="epoch",
            ylabel="cross-entropy (log scale)",
            yscale="log",
        )
        row[1].set(
            title=f"{dataset}: test accuracy (mean ± std over seeds)", xlabel="epoch", ylabel="accuracy"
        )
        row[1].legend()
    return save(fig, path, formats)
