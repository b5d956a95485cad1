"""Final test accuracy by dataset x method: mean +- std over seeds, next to the paper's Table 1.

    python scripts/report.py results/runs --out results/report [--plot]

Only completed runs enter the statistics; diverged/failed/unfinished ones are counted in their own
columns. Writes table.md and table.csv (and curves.png with --plot) to --out, and prints the table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from lookahead.analysis.paper_numbers import TABLE1
from lookahead.analysis.runs import NoRunsError, load_metrics, load_summaries

METHOD_ORDER = ["sgd", "polyak", "adam", "lookahead", "lookahead_adam"]


def table(runs: pd.DataFrame) -> pd.DataFrame:
    done = runs[runs.status == "completed"]
    acc = done.groupby(["dataset", "method"]).final_test_accuracy.agg(["mean", "std", "count"]) * [
        100,
        100,
        1,
    ]
    status = runs.groupby(["dataset", "method"]).status.value_counts().unstack(fill_value=0)
    out = acc.join(status.drop(columns="completed", errors="ignore"), how="outer").reset_index()
    out["count"] = out["count"].fillna(0).astype(int)
    out["paper_mean"] = [TABLE1.get((d, m), (None, None))[0] for d, m in zip(out.dataset, out.method)]
    out["paper_std"] = [TABLE1.get((d, m), (None, None))[1] for d, m in zip(out.dataset, out.method)]
    out["method"] = pd.Categorical(
        out["method"],
        [m for m in METHOD_ORDER if m in set(out.method)] + sorted(set(out.method) - set(METHOD_ORDER)),
    )
    return out.sort_values(["dataset", "method"]).rename(columns={"count": "n"})


def to_markdown(t: pd.DataFrame) -> str:
    extra = [
        c for c in t.columns if c not in ("dataset", "method", "mean", "std", "n", "paper_mean", "paper_std")
    ]
    lines = [
        "| dataset | method | test accuracy (%) | n | paper (%) |" + "".join(f" {c} |" for c in extra),
        "|---|---|---|---|---|" + "---|" * len(extra),
    ]
    for _, r in t.iterrows():
        std = "" if pd.isna(r["std"]) else f" ± {r['std']:.2f}"
        ours = "missing" if r.n == 0 else f"{r['mean']:.2f}{std}"
        paper = "" if pd.isna(r.paper_mean) else f"{r.paper_mean:.2f} ± {r.paper_std:.2f}"
        lines.append(
            f"| {r.dataset} | {r.method} | {ours} | {r.n} | {paper} |"
            + "".join(f" {int(r[c])} |" for c in extra)
        )
    return "\n".join(lines) + "\n"


def plot_curves(metrics: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = dict(zip(METHOD_ORDER, ["#0072B2", "#009E73", "#E69F00", "#D55E00", "#CC79A7"]))
    datasets = sorted(metrics.dataset.unique())
    fig, axes = plt.subplots(len(datasets), 2, figsize=(10, 3.6 * len(datasets)), squeeze=False)
    for row, dataset in zip(axes, datasets):
        data = metrics[metrics.dataset == dataset]
        for method, group in data.groupby("method"):
            for ax, column in zip(row, ("train_loss", "test_accuracy")):
                stats = group.groupby("epoch")[column].agg(["mean", "std"]).fillna(0)
                ax.plot(stats.index, stats["mean"], label=method, color=colors.get(method))
                ax.fill_between(
                    stats.index,
                    stats["mean"] - stats["std"],
                    stats["mean"] + stats["std"],
                    alpha=0.2,
                    color=colors.get(method),
                )
        row[0].set(title=f"{dataset}: training loss", xlabel="epoch", ylabel="cross-entropy", yscale="log")
        row[1].set(
            title=f"{dataset}: test accuracy (mean ± std over seeds)", xlabel="epoch", ylabel="accuracy"
        )
        row[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("paths", nargs="+", help="run directories or folders containing them")
    parser.add_argument("--out", type=Path, help="folder for table.md / table.csv (and curves.png)")
    parser.add_argument("--plot", action="store_true", help="also plot training curves (mean ± std)")
    args = parser.parse_args(argv)
    try:
        runs = load_summaries(args.paths)
    except NoRunsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    result = table(runs)
    markdown = to_markdown(result)
    print(markdown)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "table.md").write_text(markdown)
        result.to_csv(args.out / "table.csv", index=False)
        if args.plot:
            plot_curves(load_metrics(args.paths), args.out / "curves.png")
        print(f"wrote {args.out}/table.md, table.csv" + (", curves.png" if args.plot else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
