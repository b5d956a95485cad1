"""Statistics against values computed by hand."""

from __future__ import annotations

import math

import pytest

from lookahead.analysis.stats import summarize, welch_p


def test_summary_of_a_small_sample():
    s = summarize([95.0, 96.0, 94.0])
    assert (s.n, s.mean) == (3, 95.0)
    assert s.std == pytest.approx(1.0)  # sqrt(((0)^2 + 1^2 + 1^2) / 2)
    # t_{0.975, 2} = 4.302653; half width = 4.302653 * 1 / sqrt(3) = 2.484138
    assert s.ci_low == pytest.approx(95.0 - 2.484138, abs=1e-5)
    assert s.ci_high == pytest.approx(95.0 + 2.484138, abs=1e-5)


def test_summary_of_one_and_zero_values():
    one = summarize([0.9])
    assert one.n == 1 and one.mean == 0.9 and math.isnan(one.std) and math.isnan(one.ci_low)
    assert summarize([]).n == 0 and math.isnan(summarize([]).mean)


def test_welch_matches_the_hand_computation():
    a, b = [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0]
    # mean 2.5 vs 4; var 1.6667 / 4 = 0.41667 and 4 / 3 = 1.33333; t = -1.5 / sqrt(1.75) = -1.133893
    # Welch dof = 1.75^2 / (0.41667^2/3 + 1.33333^2/2) = 3.0625 / 0.94676 = 3.23469
    # two-sided p = 2 * T_cdf(-1.133893; 3.23469) = 0.33380
    assert welch_p(a, b) == pytest.approx(0.33380, abs=1e-4)
    assert welch_p(a, b) == pytest.approx(welch_p(b, a))


def test_welch_is_undefined_for_tiny_or_constant_samples():
    assert math.isnan(welch_p([1.0], [1.0, 2.0]))
    assert math.isnan(welch_p([1.0, 1.0], [1.0, 1.0]))


def test_the_interval_is_clipped_to_the_metrics_range():
    # 99, 99.5, 100 (BLEU or accuracy in %): mean 99.5, std 0.5, half width 4.302653 * 0.5 / sqrt(3)
    values = [99.0, 99.5, 100.0]
    free, bounded = summarize(values), summarize(values, bounds=(0.0, 100.0))
    assert free.ci_high == pytest.approx(99.5 + 1.242069, abs=1e-5)  # past 100
    assert bounded.ci_high == 100.0 and bounded.ci_low == pytest.approx(free.ci_low)
    assert (bounded.mean, bounded.std) == (free.mean, free.std)
