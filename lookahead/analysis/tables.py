"""Comparison tables: runs grouped by workload x method (x any swept config field), with statistics,
Welch's test against a baseline method, and the paper's reported value beside ours."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from lookahead.analysis.stats import summarize, welch_p

# Config fields that legitimately differ between the seeds of one cell (a workload's dataset config
# takes the run's seed as `seed: ${seed}`, for its batch order).
PER_RUN_FIELDS = (
    "seed",
    "dataset.seed",
    "run_name",
    "overrides",
    "paths.",
    "logger.",
    "device",
    "trainer.progress",
)


class MismatchedRunsError(ValueError):
    """Runs grouped into one cell differ in a config field the user did not group by."""


def check_consistent(runs: pd.DataFrame, by: Sequence[str]) -> None:
    """Every cell must hold runs of one configuration (up to seed); otherwise name the fields."""
    for key, cell in runs.groupby(list(by), dropna=False):
        configs = [c for c in cell["config"] if c]
        keys = set().union(*configs) if configs else set()
        differing = sorted(
            k
            for k in keys
            if not k.startswith(PER_RUN_FIELDS) and k not in by and len({repr(c.get(k)) for c in configs}) > 1
        )
        if differing:
            shown = ", ".join(
                f"{k} ({' vs '.join(_distinct(c.get(k) for c in configs))})" for k in differing[:3]
            )
            raise MismatchedRunsError(
                f"runs grouped as {key} differ in {shown}; group by them too (--by {','.join(differing[:3])}) "
                f"or select fewer runs"
            )


def _distinct(values) -> list[str]:
    unique = list({repr(v): v for v in values}.values())
    try:
        unique.sort()
    except TypeError:  # mixed types: order by their text
        unique.sort(key=repr)
    return [repr(v) for v in unique]


def add_config_columns(runs: pd.DataFrame, fields: Sequence[str]) -> pd.DataFrame:
    runs = runs.copy()
    for field in fields:
        runs[field] = [c.get(field) if isinstance(c, dict) else None for c in runs["config"]]
    return runs


def comparison_table(
    runs: pd.DataFrame,
    metric: str = "final_test_accuracy",
    by: Sequence[str] = ("dataset", "method"),
    baseline: str | None = "sgd",
    paper: dict[tuple, tuple[float, float | None]] | None = None,
    scale: float = 100.0,
    expected: Sequence[tuple] = (),
) -> pd.DataFrame:
    """One row per cell. Only completed runs enter the statistics; the others are counted.

    ``paper`` maps a (dataset, method) key to (mean, std) in the table's units; ``expected`` lists cells
    that must appear even without runs (shown as missing, never as zero).
    """
    by = list(by)
    extra = [f for f in by if f not in runs.columns]
    runs = add_config_columns(runs, extra) if extra else runs
    check_consistent(runs, by)
    rows = []
    cells = {k if isinstance(k, tuple) else (k,): g for k, g in runs.groupby(by, dropna=False)}
    for key in expected:
        cells.setdefault(tuple(key), runs.iloc[0:0])
    for key, cell in cells.items():
        done = cell[cell.status == "completed"]
        values = (done[metric].dropna() * scale).tolist() if metric in done else []
        s = summarize(values)
        row = dict(zip(by, key))
        row.update(n=s.n, mean=s.mean, std=s.std, ci_low=s.ci_low, ci_high=s.ci_high)
        for status in ("diverged", "failed", "interrupted", "running"):
            row[f"n_{status}"] = int((cell.status == status).sum())
        if baseline is not None and "method" in by:
            base_key = tuple(baseline if f == "method" else v for f, v in zip(by, key))
            base = cells.get(base_key)
            base_values = (
                [] if base is None else (base[base.status == "completed"][metric].dropna() * scale).tolist()
            )
            row["p_vs_baseline"] = math.nan if row.get("method") == baseline else welch_p(values, base_values)
        paper_value = (paper or {}).get(
            tuple(row.get(f) for f in ("dataset", "method")), (math.nan, math.nan)
        )
        row["paper"], row["paper_std"] = paper_value
        row["diff"] = s.mean - paper_value[0] if paper_value[0] == paper_value[0] else math.nan
        rows.append(row)
    table = pd.DataFrame(rows)
    return table.sort_values(by, key=lambda c: c.map(_order)).reset_index(drop=True)


METHOD_ORDER = ["sgd", "polyak", "adam", "lookahead", "lookahead_adam"]


def _order(value: object) -> tuple:
    """Sort key: methods in the paper's order, numbers numerically, anything else as text."""
    if value in METHOD_ORDER:
        return (0, METHOD_ORDER.index(value), "")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (1, value, "")
    return (2, 0, str(value))


def _fmt(mean: float, std: float, digits: int = 2) -> str:
    if mean != mean:
        return "missing"
    return f"{mean:.{digits}f}" + ("" if std is None or std != std else f" ± {std:.{digits}f}")


def _cells(table: pd.DataFrame, by: Sequence[str]) -> list[list[str]]:
    lines = []
    for _, r in table.iterrows():
        ci = "" if r.ci_low != r.ci_low else f"[{r.ci_low:.2f}, {r.ci_high:.2f}]"
        p = r.get("p_vs_baseline", math.nan)
        bad = ", ".join(
            f"{int(r[f'n_{s}'])} {s}" for s in ("diverged", "failed", "interrupted", "running") if r[f"n_{s}"]
        )
        lines.append(
            [
                *(str(r[f]) for f in by),
                _fmt(r["mean"], r["std"]),
                str(int(r.n)),
                ci,
                "" if p != p else f"{p:.3g}",
                _fmt(r.paper, r.paper_std) if r.paper == r.paper else "",
                "" if r["diff"] != r["diff"] else f"{r['diff']:+.2f}",
                bad,
            ]
        )
    return lines


HEADER = ["mean ± std", "n", "95% CI", "p vs baseline", "paper", "diff", "not completed"]


def to_markdown(table: pd.DataFrame, by: Sequence[str]) -> str:
    head = [*by, *HEADER]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(cells) + " |" for cells in _cells(table, by)]
    return "\n".join(out) + "\n"


def to_latex(table: pd.DataFrame, by: Sequence[str], caption: str = "") -> str:
    """A booktabs table (needs \\usepackage{booktabs})."""

    def esc(text: str) -> str:
        return text.replace("_", r"\_").replace("%", r"\%").replace("±", r"$\pm$")

    head = [*by, *HEADER]
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\begin{tabular}{" + "l" * len(by) + "r" * len(HEADER) + "}",
        r"\toprule",
        " & ".join(esc(h) for h in head) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(esc(c) for c in cells) + r" \\" for cells in _cells(table, by)]
    lines += [r"\bottomrule", r"\end{tabular}"]
    if caption:
        lines.append(rf"\caption{{{esc(caption)}}}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"
