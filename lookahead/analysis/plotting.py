"""One figure style for the suite: Okabe-Ito colour-blind-safe palette, labelled axes, PNG + PDF."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from lookahead.analysis.tables import display_order

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


def save(fig, path: Path, formats: tuple[str, ...] = ("png",), tight_layout: bool = True) -> list[Path]:
    """Save as ``path`` with each suffix in ``formats``; returns the files written.

    ``tight_layout=False`` (figures with a shared colorbar) crops with ``bbox_inches="tight"`` instead.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if tight_layout:
        fig.tight_layout()
    written = []
    for fmt in formats:
        out = path.with_suffix(f".{fmt}")
        fig.savefig(out, bbox_inches=None if tight_layout else "tight")
        written.append(out)
    plt.close(fig)
    return written


def mean_std_band(ax, x, mean, std, label: str, color: str | None = None) -> None:
    ax.plot(x, mean, label=label, color=color)
    ax.fill_between(x, mean - std, mean + std, alpha=0.2, color=color, linewidth=0)


def curves(
    metrics: pd.DataFrame,
    path: Path,
    formats: tuple[str, ...] = ("png",),
    by: Sequence[str] = (),
    columns: Sequence[str] = ("train_loss", "test_accuracy"),
    x: str = "epoch",
) -> list[Path]:
    """``columns`` (training loss and test accuracy (%) by default) against ``x`` (epoch or step), mean ±
    std over seeds, one row per dataset and one curve per method (and per value of the ``by`` columns,
    e.g. a swept lookahead.alpha). Losses and perplexities are drawn on a log scale."""
    datasets = sorted(metrics.dataset.unique())
    fig, axes = figure(len(columns), len(datasets))
    keys = ["method", *by]
    for row, dataset in zip(axes, datasets):
        data = metrics[metrics.dataset == dataset]
        groups = sorted(data.groupby(keys, dropna=False), key=lambda kv: tuple(map(display_order, kv[0])))
        for index, (key, group) in enumerate(groups):
            fields = [f"{f.split('.')[-1]} {v}" for f, v in zip(by, key[1:]) if not pd.isna(v)]
            label = ", ".join([str(key[0]), *fields])  # a field the method lacks (SGD's alpha) is left out
            color = METHOD_COLORS.get(key[0]) if not by else OKABE_ITO[index % len(OKABE_ITO)]
            for ax, column in zip(row, columns):
                if column not in group:
                    continue
                scale = 100.0 if column.endswith("accuracy") else 1.0
                stats = seed_band(group.dropna(subset=[column, x]), x, column) * scale
                mean_std_band(ax, stats.index, stats["mean"], stats["std"], label, color)
        for ax, column in zip(row, columns):
            ax.set(**_labels(dataset, column, x))
            ax.legend()
    return save(fig, path, formats)


def seed_band(group: pd.DataFrame, x: str, column: str, points: int = 60) -> pd.DataFrame:
    """Mean and std of ``column`` over the seeds (runs) of ``group`` against ``x``. Where the seeds share
    their x values (epoch, step, samples) they are averaged point by point; where they do not (wall
    seconds) each seed's curve is interpolated onto a common grid up to the shortest seed's end."""
    runs = (
        [r.sort_values(x) for _, r in group.groupby("run_dir", sort=True)] if "run_dir" in group else [group]
    )
    shared = len({tuple(r[x]) for r in runs}) == 1
    if shared or len(runs) == 1:
        return group.groupby(x)[column].agg(["mean", "std"]).fillna(0)
    end = min(r[x].max() for r in runs)
    grid = np.linspace(max(r[x].min() for r in runs), end, points)
    values = np.stack([np.interp(grid, r[x].to_numpy(float), r[column].to_numpy(float)) for r in runs])
    return pd.DataFrame({"mean": values.mean(0), "std": values.std(0, ddof=1)}, index=grid)


X_LABELS = {
    "step": "optimizer step",
    "wall_time_s": "wall-clock seconds (evaluation included)",
    "samples": "samples trained",
    "tokens": "tokens trained",
}


def _labels(dataset: str, column: str, x: str) -> dict[str, str]:
    split, _, name = column.partition("_")
    if name in ("loss", "perplexity") or "perplexity" in name:
        what = "cross-entropy" if name == "loss" else name
        title = f"{dataset}: {'training' if split == 'train' else split} {name}"
        return {
            "title": title,
            "xlabel": X_LABELS.get(x, x),
            "ylabel": f"{what} (log scale)",
            "yscale": "log",
        }
    if name == "accuracy":
        return {
            "title": f"{dataset}: {split} accuracy (mean ± std over seeds)",
            "xlabel": X_LABELS.get(x, x),
            "ylabel": "accuracy (%)",
        }
    return {"title": f"{dataset}: {split} {name}", "xlabel": X_LABELS.get(x, x), "ylabel": name}


def training_loss_curves(
    metrics: pd.DataFrame,
    path: Path,
    panel: str = "model",
    accuracy: str | None = "valid_top1",
    formats: tuple[str, ...] = ("png",),
) -> tuple[list[Path], pd.DataFrame]:
    """The paper's Figure 6 (ImageNet): training loss per epoch, one panel per ``panel`` value (ResNet-50,
    ResNet-152), one line per method, mean ± std over seeds; with ``accuracy``, a second row of that
    validation metric. Uses each epoch's last record (runs may also log mid-epoch evaluations).
    Returns the files and the plotted means/stds."""
    metrics = metrics.dropna(subset=["train_loss"])
    if metrics.empty:
        raise ValueError("no metrics.jsonl record holds train_loss")
    metrics = metrics.groupby(["run_dir", "epoch"], as_index=False).last()
    panels = sorted(metrics[panel].dropna().unique(), key=str)
    rows = [("train_loss", "training loss (cross-entropy)")]
    if accuracy and accuracy in metrics and metrics[accuracy].notna().any():
        rows.append((accuracy, f"{accuracy.replace('_', ' ')} (%)"))
    fig, axes = figure(len(panels), len(rows), width=4.6, height=3.4)
    plotted = []
    for col, value in enumerate(panels):
        data = metrics[metrics[panel] == value]
        for row, (column, label) in enumerate(rows):
            ax = axes[row][col]
            scale = 100.0 if column != "train_loss" else 1.0
            for method, group in data.groupby("method"):
                stats = group.groupby("epoch")[column].agg(["mean", "std", "count"]).dropna(subset=["mean"])
                stats["std"] = stats["std"].fillna(0)
                mean_std_band(
                    ax,
                    stats.index,
                    scale * stats["mean"],
                    scale * stats["std"],
                    method,
                    METHOD_COLORS.get(method),
                )
                plotted.append(
                    stats.reset_index().assign(**{panel: value, "method": method, "metric": column})
                )
            ax.set(xlabel="epoch", ylabel=label, title=f"{value}: {label.split(' (')[0]}")
            ax.legend()
    return save(fig, path, formats), pd.concat(plotted, ignore_index=True)


def heatmap_panels(
    runs: pd.DataFrame,
    x: str,
    y: str,
    path: Path,
    panel: str | None = None,
    metric: str = "final_test_accuracy",
    title: str = "",
    formats: tuple[str, ...] = ("png",),
) -> tuple[list[Path], pd.DataFrame]:
    """Mean ``metric`` over completed seeds on an x-by-y grid of config values, one panel per value of
    ``panel``; cells whose runs all diverged are marked "div.", cells where some did show the count.
    Returns the files and the grid."""
    panels = sorted(runs[panel].dropna().unique(), key=str) if panel else [None]
    fig, axes = figure(len(panels), width=4.6, height=3.8)
    cells = []
    for value in panels:
        sub = runs if value is None else runs[runs[panel] == value]
        for (xv, yv), group in sub.groupby([x, y]):
            done = group[group.status == "completed"][metric].dropna()
            cells.append(
                {
                    "panel": value,
                    x: xv,
                    y: yv,
                    "mean": done.mean() if len(done) else float("nan"),
                    "std": done.std() if len(done) > 1 else float("nan"),
                    "n": len(done),
                    "n_diverged": int((group.status == "diverged").sum()),
                }
            )
    grid = pd.DataFrame(cells)
    # cells print percentages, so the colours (and the colour bar) are on the same 0-100 scale
    vmin, vmax = 100 * grid["mean"].min(), 100 * grid["mean"].max()
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="lightgrey")  # grey: no completed run
    for index, (ax, value) in enumerate(zip(axes[0], panels)):
        sub = grid if value is None else grid[grid.panel == value]
        table = 100 * sub.pivot(index=y, columns=x, values="mean")
        diverged = sub.pivot(index=y, columns=x, values="n_diverged")
        image = ax.imshow(table.values, origin="lower", cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
        ax.set_xticks(range(len(table.columns)), [f"{c:g}" for c in table.columns])
        ax.set_yticks(range(len(table.index)), [f"{r:g}" for r in table.index])
        for i in range(len(table.index)):
            for j in range(len(table.columns)):
                mean, div = table.values[i, j], diverged.values[i, j]
                text = "div." if mean != mean and div else ("" if mean != mean else f"{mean:.1f}")
                if mean == mean and div:  # some seeds diverged: the mean is over the others only
                    text += f"\n({int(div)} div.)"
                ax.text(
                    j,
                    i,
                    text,
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if mean == mean and mean < (vmin + vmax) / 2 else "black",
                )
        ax.set(
            xlabel=x,
            ylabel=y if index == 0 else "",
            title=f"{title}{'' if value is None else f' {panel} = {value}'}",
        )
        ax.grid(False)
    label = "final test accuracy" if metric == "final_test_accuracy" else metric
    fig.colorbar(image, ax=list(axes[0]), label=f"{label} (%, mean over seeds)")
    return save(fig, path, formats, tight_layout=False), grid
