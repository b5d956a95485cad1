"""Comparison tables: runs grouped by workload x method (x any swept config field), with statistics,
Welch's test against a baseline method, and the paper's reported value beside ours."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from lookahead.analysis.convergence import format_cell, table_targets, target_row
from lookahead.analysis.measures import declared_direction
from lookahead.analysis.paper_numbers import PAPER_BASELINE, PAPER_METHODS, PAPER_WRAPPERS
from lookahead.analysis.stats import summarize, welch_p
from lookahead.train.run_dir import NOT_IDENTITY

# Config fields that legitimately differ between the seeds of one cell: the seed (also as a workload's
# interpolated `dataset.seed`) and what the trainer itself does not count as the run's identity.
PER_RUN_FIELDS = ("seed", "dataset.seed", *NOT_IDENTITY)


class MismatchedRunsError(ValueError):
    """Runs grouped into one cell differ in a config field the user did not group by."""


def _is_per_run(field: str) -> bool:
    return any(field == k or field.startswith(f"{k}.") for k in PER_RUN_FIELDS)


def group_cells(runs: pd.DataFrame, by: Sequence[str]) -> dict[tuple, pd.DataFrame]:
    """Runs split by the values of ``by``, keys as written in the configs (pandas' groupby would turn
    an int field that some runs lack into floats); a missing value is None."""
    members: dict[tuple, list] = {}
    for index, values in zip(runs.index, zip(*(runs[f] for f in by))):
        key = tuple(None if _missing(v) else v for v in values)
        members.setdefault(key, []).append(index)
    return {key: runs.loc[index] for key, index in members.items()}


def differing_fields(runs: pd.DataFrame, by: Sequence[str]) -> list[str]:
    """Config fields whose value differs between runs of one cell of ``by`` (seeds and run bookkeeping
    aside), in config order: the fields a table must also group by to compare like with like."""
    found: dict[str, None] = {}
    for cell in group_cells(runs, by).values():
        configs = [c for c in cell["config"] if isinstance(c, dict) and c]
        keys: dict[str, None] = {}
        for config in configs:
            keys.update(dict.fromkeys(config))
        for k in keys:
            if not _is_per_run(k) and k not in by and len({repr(c.get(k)) for c in configs}) > 1:
                found[k] = None
    return list(found)


def check_consistent(runs: pd.DataFrame, by: Sequence[str]) -> None:
    """Every cell must hold runs of one configuration (up to seed); otherwise name the fields."""
    for key, cell in group_cells(runs, by).items():
        differing = differing_fields(cell, by)
        if differing:
            configs = [c for c in cell["config"] if c]
            shown = ", ".join(
                f"{k} ({' vs '.join(_distinct(c.get(k) for c in configs))})" for k in differing[:3]
            )
            raise MismatchedRunsError(
                f"runs grouped as {key} differ in {shown}; group by them too (--by {','.join(differing[:3])}), "
                f"select fewer runs (--where {differing[0]}=VALUE) or drop --no-auto-by"
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
        # object dtype: an int field missing from some runs stays 5, not 5.0
        values = [c.get(field) if isinstance(c, dict) else None for c in runs["config"]]
        runs[field] = pd.Series(values, index=runs.index, dtype=object)
    return runs


def inner_method(method: str) -> str | None:
    """The inner optimizer of a wrapper method, from its label (lookahead.cli.method_name):
    ``lookahead_<inner>`` and ``polyak_<inner>`` wrap <inner>, the bare wrapper names wrap the paper's
    inner optimizer; None for a method that wraps nothing. baseline="inner" tests each wrapper against it."""
    for wrapper, bare in PAPER_WRAPPERS.items():
        if method == wrapper:
            return bare
        if method.startswith(f"{wrapper}_"):
            return method.removeprefix(f"{wrapper}_")
    return None


def comparison_table(
    runs: pd.DataFrame,
    metric: str,
    by: Sequence[str] = ("dataset", "method"),
    baseline: str | None = PAPER_BASELINE,
    paper: dict[tuple, tuple[float, float | None]] | None = None,
    scale: float = 1.0,
    expected: Sequence[tuple] = (),
    higher_better: bool | None = None,
    bounds: tuple[float, float] | None = None,
) -> pd.DataFrame:
    """One row per cell. Only completed runs enter the statistics; the others are counted.

    ``baseline`` is a method, or ``"inner"`` for each wrapper's inner optimizer (Lookahead(Adam) vs Adam).
    ``paper`` maps a (dataset, method) key to (mean, std) in the table's units; ``expected`` lists cells
    (leading ``by`` values) that must appear even without runs (shown as missing, never as zero). Column
    ``best`` marks the best mean among the methods of each group (``higher_better``; by default the
    direction the runs' summaries declare for the metric; none marked when they do not). ``bounds``: the
    range the metric can take in stored units (a fraction: (0, 1)); intervals are clipped to it. Each
    convergence target the runs declare adds steps-to-target columns (lookahead/analysis/convergence.py),
    with the speed-up against the same baseline.
    """
    by = list(by)
    targets = table_targets(runs)
    shown_bounds = None if bounds is None else (bounds[0] * scale, bounds[1] * scale)
    extra = [f for f in by if f not in runs.columns]
    runs = add_config_columns(runs, extra) if extra else runs
    if metric not in runs:  # no run has the metric yet (all interrupted, failed): every cell is missing
        runs = runs.assign(**{metric: math.nan})
    check_consistent(runs, by)
    rows = []
    cells = group_cells(runs, by)
    for key in map(tuple, expected):  # a preset's (dataset, method) cells, shown even without runs
        if not any(have[: len(key)] == key for have in cells):
            cells[key + (None,) * (len(by) - len(key))] = runs.iloc[0:0]
    for key, cell in cells.items():
        done = cell[cell.status == "completed"]
        values = (done[metric].dropna() * scale).tolist()
        s = summarize(values, bounds=shown_bounds)
        row = dict(zip(by, key))
        row.update(n=s.n, mean=s.mean, std=s.std, ci_low=s.ci_low, ci_high=s.ci_high)
        for status in ("diverged", "failed", "interrupted", "running"):
            row[f"n_{status}"] = int((cell.status == status).sum())
        base = None
        if baseline is not None and "method" in by:
            base_method = inner_method(row["method"] or "") if baseline == "inner" else baseline
            skip = base_method is None or row.get("method") == base_method
            base = None if skip else _baseline_cell(cells, by, key, base_method)
            base_values = (
                [] if base is None else (base[base.status == "completed"][metric].dropna() * scale).tolist()
            )
            row["p_vs_baseline"] = math.nan if skip else welch_p(values, base_values)
        for target in targets:
            row.update(target_row(cell, base, target))
        paper_value = (paper or {}).get(
            tuple(row.get(f) for f in ("dataset", "method")), (math.nan, math.nan)
        )
        row["paper"], row["paper_std"] = paper_value
        row["diff"] = s.mean - paper_value[0] if paper_value[0] == paper_value[0] else math.nan
        rows.append(row)
    table = pd.DataFrame(rows)
    for f in by:  # keep config values as written (5, not 5.0, where other rows lack the field)
        table[f] = pd.Series([r[f] for r in rows], index=table.index, dtype=object)
    direction = declared_direction(runs, metric) if higher_better is None else higher_better
    table["best"] = False if direction is None else _best(table, by, direction)
    table = table.sort_values(by, key=lambda c: c.map(display_order)).reset_index(drop=True)
    table.attrs["targets"] = targets  # the steps-to-target columns, for to_markdown / to_latex
    return table


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _baseline_cell(cells: dict[tuple, pd.DataFrame], by: list[str], key: tuple, baseline: str):
    """The baseline method's cell to test ``key`` against: the same value in every grouping field the
    two share. A field one side lacks (lookahead.alpha for SGD) does not count; ambiguity gives None."""
    exact = cells.get(tuple(baseline if f == "method" else v for f, v in zip(by, key)))
    if exact is not None:
        return exact
    matches = [
        cell
        for other, cell in cells.items()
        if dict(zip(by, other))["method"] == baseline
        and all(a == b or _missing(a) or _missing(b) for f, a, b in zip(by, key, other) if f != "method")
    ]
    return matches[0] if len(matches) == 1 else None


def _best(table: pd.DataFrame, by: Sequence[str], higher_better: bool) -> pd.Series:
    """True where the mean is the best of its group: the rows that differ only in method and in fields
    some method lacks (SGD has no lookahead.alpha), so every Lookahead alpha competes with SGD."""
    others = [f for f in by if f != "method" and not table[f].map(_missing).any()]
    means = table["mean"].astype(float)
    if not others:
        best = means.max() if higher_better else means.min()
        return means == best
    keys = table[others].apply(lambda r: "|".join(map(str, r)), axis=1)  # NaN (field absent) included
    best = means.groupby(keys).transform("max" if higher_better else "min")
    return means == best


def display_order(value: object) -> tuple:
    """Sort key: the paper's methods in its order, numbers numerically, anything else as text."""
    if value in PAPER_METHODS:
        return (0, PAPER_METHODS.index(value), "")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (1, value, "")
    return (2, 0, str(value))


def _fmt(mean: float, std: float, digits: int = 2) -> str:
    if mean != mean:
        return "missing"
    return f"{mean:.{digits}f}" + ("" if std is None or std != std else f" ± {std:.{digits}f}")


def _cells(table: pd.DataFrame, by: Sequence[str], mark_best: bool = False) -> list[list[str]]:
    targets = table.attrs.get("targets", [])
    lines = []
    for _, r in table.iterrows():
        mean = _fmt(r["mean"], r["std"])
        if mark_best and r.get("best", False):
            mean = f"**{mean}**"
        ci = "" if r.ci_low != r.ci_low else f"[{r.ci_low:.2f}, {r.ci_high:.2f}]"
        p = r.get("p_vs_baseline", math.nan)
        bad = ", ".join(
            f"{int(r[f'n_{s}'])} {s}" for s in ("diverged", "failed", "interrupted", "running") if r[f"n_{s}"]
        )
        lines.append(
            [
                *("-" if _missing(r[f]) else str(r[f]) for f in by),
                mean,
                str(int(r.n)),
                ci,
                "" if p != p else f"{p:.3g}",
                _fmt(r.paper, r.paper_std) if r.paper == r.paper else "",
                "" if r["diff"] != r["diff"] else f"{r['diff']:+.2f}",
                bad,
                *(format_cell(r, t) for t in targets),
            ]
        )
    return lines


HEADER = ["mean ± std", "n", "95% CI", "p vs baseline", "paper", "diff", "not completed"]


def header(table: pd.DataFrame, by: Sequence[str]) -> list[str]:
    """Column titles: the grouping fields, the statistics, one steps-to-target column per target."""
    return [*by, *HEADER, *(t.label for t in table.attrs.get("targets", []))]


def to_markdown(table: pd.DataFrame, by: Sequence[str], mark_best: bool = False) -> str:
    """A Markdown table; ``mark_best`` puts the best mean of each group in bold. Steps-to-target cells
    read ``mean ± std (reached/seeds) ×speed-up [95% CI]``."""
    head = header(table, by)
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(cells) + " |" for cells in _cells(table, by, mark_best)]
    return "\n".join(out) + "\n"


def to_latex(table: pd.DataFrame, by: Sequence[str], caption: str = "") -> str:
    """A booktabs table (needs \\usepackage{booktabs})."""

    def esc(text: str) -> str:
        return text.replace("_", r"\_").replace("%", r"\%").replace("±", r"$\pm$")

    head = header(table, by)
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\begin{tabular}{" + "l" * len(by) + "r" * (len(head) - len(by)) + "}",
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
