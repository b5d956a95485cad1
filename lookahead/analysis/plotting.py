"""One figure style for the suite: Okabe-Ito colour-blind-safe palette, labelled axes, PNG + PDF.

Panels, labels and scales follow what the runs declare (lookahead/analysis/measures.py); colours are
given to the curves of one figure in table order, each curve's line and band alike."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import to_hex

from lookahead.analysis.measures import TRAINING_LOSS, axis_label
from lookahead.analysis.paper_numbers import PAPER_METHODS
from lookahead.analysis.tables import display_order
from lookahead.workloads.base import Measure

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
LINESTYLES = ["-", "--", ":", "-."]  # past eight curves the colours repeat with another dash


def styles(keys: Iterable) -> dict[Any, dict[str, str]]:
    """A colour (and, past eight, a dash) for each key (a method, or a (method, field values) tuple),
    in table order: the same key gets the same style in every panel of a figure."""
    order = sorted(set(keys), key=lambda k: tuple(map(display_order, k if isinstance(k, tuple) else (k,))))
    return {
        key: {"color": OKABE_ITO[i % len(OKABE_ITO)], "linestyle": LINESTYLES[i // len(OKABE_ITO) % 4]}
        for i, key in enumerate(order)
    }


METHOD_COLORS = {m: style["color"] for m, style in styles(PAPER_METHODS).items()}  # the studies' figures
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


def mean_std_band(ax, x, mean, std, label: str, color: str | None = None, linestyle: str = "-") -> None:
    """The mean as a line and mean ± std as a band of the same colour (the line's, when none is given)."""
    (line,) = ax.plot(x, mean, label=label, color=color, linestyle=linestyle)
    ax.fill_between(x, mean - std, mean + std, alpha=0.2, color=line.get_color(), linewidth=0)


def describe(ax) -> dict[str, Any]:
    """What one panel shows, read back from the Axes: title, axis labels and scale, and per curve its
    label, line colour, band colour, number of points and last point (x, y as drawn), for checks that do
    not compare pixels."""
    bands = [to_hex(c.get_facecolor()[0], keep_alpha=False) for c in ax.collections]
    lines = [
        {
            "label": line.get_label(),
            "color": to_hex(line.get_color()),
            "linestyle": line.get_linestyle(),
            "points": len(line.get_xdata()),
            "last": [float(line.get_xdata()[-1]), float(line.get_ydata()[-1])]
            if len(line.get_xdata())
            else None,
        }
        for line in ax.get_lines()
    ]
    for line, band in zip(lines, bands):
        line["band_color"] = band
    return {
        "title": ax.get_title(),
        "xlabel": ax.get_xlabel(),
        "ylabel": ax.get_ylabel(),
        "yscale": ax.get_yscale(),
        "lines": lines,
    }


def curves(
    metrics: pd.DataFrame,
    path: Path,
    panels: dict[str, list[tuple[str, Measure]]],
    formats: tuple[str, ...] = ("png",),
    by: Sequence[str] = (),
    x: str = "epoch",
) -> tuple[list[Path], list[dict[str, Any]]]:
    """One row of panels per workload (dataset), its ``panels``: metrics.jsonl columns and how each is
    shown (measures.panels). Each panel draws its column against ``x`` (epoch, step, samples, tokens,
    wall_time_s), mean ± std over seeds, one curve per method (and per value of the ``by`` columns,
    e.g. a swept lookahead.alpha). Returns the files and :func:`describe` of every panel."""
    datasets = [d for d in panels if d in set(metrics.dataset)]
    if not datasets:
        raise ValueError("no metrics.jsonl records of the selected runs to plot")
    fig, axes = figure(max(len(panels[d]) for d in datasets), len(datasets))
    keys = ["method", *by]
    style = styles(_key(k) for k in metrics[keys].itertuples(index=False, name=None))
    described = []
    for row, dataset in zip(axes, datasets):
        data = metrics[metrics.dataset == dataset]
        groups = sorted(data.groupby(keys, dropna=False), key=lambda kv: tuple(map(display_order, kv[0])))
        for ax, (column, shown) in zip(row, panels[dataset]):
            for key, group in groups:
                fields = [f"{f.split('.')[-1]} {v}" for f, v in zip(by, key[1:]) if not pd.isna(v)]
                label = ", ".join(
                    [str(key[0]), *fields]
                )  # a field the method lacks (SGD's alpha) is left out
                points = (
                    group.dropna(subset=[column, x]) if column in group and x in group else group.iloc[0:0]
                )
                if points.empty:
                    continue
                stats = seed_band(points, x, column) * shown.scale
                mean_std_band(ax, stats.index, stats["mean"], stats["std"], label, **style[_key(key)])
            ax.set(**_labels(dataset, column, shown, x))
            if ax.get_lines():
                ax.legend()
            else:
                ax.text(0.5, 0.5, f"no {column} records", ha="center", va="center", transform=ax.transAxes)
            described.append({"workload": dataset, "column": column, **describe(ax)})
        for ax in row[len(panels[dataset]) :]:
            ax.set_visible(False)
    return save(fig, path, formats), described


def _key(values: tuple) -> tuple:
    """A curve's key with missing values as None (NaN is not equal to itself)."""
    return tuple(None if pd.isna(v) else v for v in values)


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


def _labels(dataset: str, column: str, shown: Measure, x: str) -> dict[str, str]:
    split, _, name = column.partition("_")
    where = "training" if column == TRAINING_LOSS or split == "train" else split
    return {
        "title": f"{dataset}: {where} {name or column} (mean ± std over seeds)",
        "xlabel": X_LABELS.get(x, x),
        "ylabel": axis_label(shown),
        "yscale": "log" if shown.log else "linear",
    }


def training_loss_curves(
    metrics: pd.DataFrame,
    path: Path,
    shown: dict[str, Measure],
    panel: str = "model",
    metric: str | None = None,
    formats: tuple[str, ...] = ("png",),
) -> tuple[list[Path], pd.DataFrame]:
    """The paper's Figure 6 (ImageNet): training loss per epoch, one panel per ``panel`` value (ResNet-50,
    ResNet-152), one line per method, mean ± std over seeds; with ``metric`` (a metrics.jsonl column:
    the runs' target), a second row of it. ``shown``: how each column is shown (measures.measure).
    Uses each epoch's last record (runs may also log mid-epoch evaluations). Returns the files and the
    plotted means/stds (unscaled)."""
    if TRAINING_LOSS not in metrics or metrics[TRAINING_LOSS].isna().all():
        raise ValueError(f"no metrics.jsonl record holds {TRAINING_LOSS}")
    metrics = metrics.dropna(subset=[TRAINING_LOSS])
    metrics = metrics.groupby(["run_dir", "epoch"], as_index=False).last()
    panels = sorted(metrics[panel].dropna().unique(), key=str)
    rows = [TRAINING_LOSS]
    if metric and metric in metrics and metrics[metric].notna().any():
        rows.append(metric)
    fig, axes = figure(len(panels), len(rows), width=4.6, height=3.4)
    style = styles(metrics["method"])
    plotted = []
    for col, value in enumerate(panels):
        data = metrics[metrics[panel] == value]
        for row, column in enumerate(rows):
            ax, measure = axes[row][col], shown.get(column, Measure(column))
            for method, group in data.groupby("method"):
                stats = group.groupby("epoch")[column].agg(["mean", "std", "count"]).dropna(subset=["mean"])
                stats["std"] = stats["std"].fillna(0)
                scaled = measure.scale * stats[["mean", "std"]]
                mean_std_band(ax, stats.index, scaled["mean"], scaled["std"], method, **style[method])
                plotted.append(
                    stats.reset_index().assign(**{panel: value, "method": method, "metric": column})
                )
            ax.set(**_labels(str(value), column, measure, "epoch"))
            ax.legend()
    return save(fig, path, formats), pd.concat(plotted, ignore_index=True)


def heatmap_panels(
    runs: pd.DataFrame,
    x: str,
    y: str,
    path: Path,
    metric: str,
    shown: Measure,
    label: str,
    panel: str | None = None,
    title: str = "",
    formats: tuple[str, ...] = ("png",),
) -> tuple[list[Path], pd.DataFrame]:
    """Mean ``metric`` over completed seeds on an x-by-y grid of config values, one panel per value of
    ``panel``, shown as ``shown`` says (scale) with ``label`` on the colour bar; cells whose runs all
    diverged are marked "div.", cells where some did show the count. Returns the files and the grid
    (unscaled)."""
    done = runs[runs.status == "completed"]
    if metric not in done or done[metric].isna().all():
        statuses = ", ".join(f"{n} {s}" for s, n in runs.status.value_counts().sort_index().items())
        raise ValueError(f"no completed run has {metric} to draw ({statuses})")
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
    # cells print the shown values (% for a fraction), so the colours and the colour bar use them too
    vmin, vmax = shown.scale * grid["mean"].min(), shown.scale * grid["mean"].max()
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="lightgrey")  # grey: no completed run
    for index, (ax, value) in enumerate(zip(axes[0], panels)):
        sub = grid if value is None else grid[grid.panel == value]
        table = shown.scale * sub.pivot(index=y, columns=x, values="mean")
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
    fig.colorbar(image, ax=list(axes[0]), label=f"{label}; mean over seeds")
    return save(fig, path, formats, tight_layout=False), grid
