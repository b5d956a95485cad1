"""Per-cell statistics for comparison tables: mean, sample std, t confidence interval, Welch's test."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    std: float  # sample standard deviation (ddof=1); nan for n < 2
    ci_low: float  # 95% confidence interval of the mean (t distribution, n - 1 dof); nan for n < 2
    ci_high: float


def summarize(
    values: Sequence[float], confidence: float = 0.95, bounds: tuple[float, float] | None = None
) -> Summary:
    """Mean, sample std and the t interval of the mean. ``bounds``: the range the metric can take
    (``(0, 100)`` for accuracy in % or BLEU); the interval is clipped to it, since a symmetric t interval
    near a bound can pass it (BLEU 97.6 ± 0.98 over 3 seeds gives an upper end of 100.03)."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(x.mean())
    if n < 2:
        return Summary(n, mean, math.nan, math.nan, math.nan)
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return Summary(n, mean, std, low, high)


def welch_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of Welch's t-test (unequal variances); nan when either side has < 2 values
    or both have zero variance."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or len(b) < 2 or (a.std() == 0 and b.std() == 0):
        return math.nan
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def paired_ratios(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """Median, smallest and largest of the per-pair ratios a[i] / b[i]. Benchmarks time two
    candidates in alternating pairs so that the machine's load moves both sides of a pair alike; the
    median of these ratios is then the figure to quote, not the ratio of the two sides' medians (which
    may come from different pairs)."""
    ratios = np.asarray(a, dtype=float) / np.asarray(b, dtype=float)
    return float(np.median(ratios)), float(ratios.min()), float(ratios.max())
