"""The scorecard's battery (scripts/scorecard.py): our Lookahead passes every property, and each property
fails for a deliberately broken variant (tests/broken_lookahead.py), so none of them passes vacuously."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from tests.conftest import ROOT

_spec = importlib.util.spec_from_file_location("scorecard", ROOT / "scripts" / "scorecard.py")
sc = importlib.util.module_from_spec(_spec)
sys.modules["scorecard"] = sc  # dataclasses look their module up while the script is executed
_spec.loader.exec_module(sc)

OURS = "lookahead.optim.lookahead:Lookahead"
BROKEN = {
    "exact_sgd": "LazySlow",
    "exact_adamw": "LazySlow",
    "alpha_one": "ResetsMomentum",
    "per_group": "GlobalK",
    "added_group": "NoNewGroups",
    "resume": "ForgetsSlow",
    "zero_grad": "ZeroFills",
    "closure": "DropsLoss",
    "low_precision": "LowPrecisionSlow",
    "scheduler": "CopiedGroups",
    "ddp": "EagerSlow",
}
FAST = [key for key in sc.PROPERTIES if key != "ddp"]


def test_every_property_has_a_broken_variant():
    assert set(BROKEN) == set(sc.PROPERTIES)


@pytest.mark.parametrize("key", FAST)
def test_our_lookahead_passes(key):
    outcome = sc.check(key, OURS)
    assert outcome.passed, outcome.observed


@pytest.mark.parametrize("key", FAST)
def test_the_property_catches_its_defect(key):
    outcome = sc.check(key, f"tests.broken_lookahead:{BROKEN[key]}")
    assert not outcome.passed
    assert outcome.observed and outcome.expected


@pytest.mark.slow  # four processes importing torch: ~25 s on the shared 2-core CPU
def test_ddp_property_passes_for_ours_and_catches_slow_weights_taken_before_the_broadcast():
    assert sc.check("ddp", OURS).passed
    outcome = sc.check("ddp", "tests.broken_lookahead:EagerSlow")
    assert not outcome.passed and outcome.observed.startswith("replicas differ by")


def test_a_raising_implementation_is_reported_not_fatal():
    outcome = sc.check("exact_sgd", "tests.broken_lookahead:NoSuchClass")
    assert not outcome.passed and outcome.observed.startswith("raises AttributeError")


def test_a_missing_package_is_skipped_with_the_reason():
    ok, why = sc.available(sc.Impl("missing", "no_such_package_xyz:Lookahead", "no-such-package"))
    assert not ok and why.startswith("not importable (ModuleNotFoundError")


def test_the_markdown_table_lists_every_property_and_each_failure_as_observed():
    passed = sc.Outcome(True, "", "x")
    failed = sc.Outcome(False, "first off at step 5 (by 3.5e-02)", "within 1e-09")
    results = {
        "ours": {"_version": "this repository", **{k: passed for k in sc.PROPERTIES}},
        "peer": {"_version": "peer 1.0", **{k: passed for k in sc.PROPERTIES}, "exact_sgd": failed},
    }
    ratios = {"ours": {"AdamW": 1.05}, "peer": {"AdamW": 1.5}, "_inner_ms": {"AdamW": 20.0}}
    text = sc.markdown(results, {"gone": "not importable (ImportError)"}, ratios, "test box", 3.0)
    for title, _ in sc.PROPERTIES.values():
        assert f"| {title} |" in text
    n = len(sc.PROPERTIES)
    assert f"| **passed** | {n} / {n} | {n - 1} / {n} |" in text
    assert (
        "| peer | exact over 12 syncs, SGD(momentum) | first off at step 5 (by 3.5e-02) | within 1e-09 |"
        in text
    )
    assert "**gone**: not importable (ImportError)" in text
    assert "| peer | 1.500 |" in text and "Machine: test box." in text
