"""The scorecard (scripts/scorecard.py): our Lookahead passes every property, and each property fails for a
deliberately broken variant (tests/broken_lookahead.py), so none of them passes vacuously; failures are
attributed to root causes by experiment; speed figures are ranked only where their intervals separate."""

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


PASS = sc.Outcome(True, "", "x")
FAIL = sc.Outcome(False, "first off at step 5 (by 3.5e-02)", "within 1e-09")


def table(failed: set[str]) -> dict:
    return {"_version": "peer 1.0", **{k: FAIL if k in failed else PASS for k in sc.PROPERTIES}}


def failing_from(outcomes: dict[frozenset, set[str]]):
    """A hand-built experiment: the rows that fail under each set of fixes."""
    return lambda fixes, rows: outcomes[fixes] & set(rows)


def test_attribution_gives_each_row_to_the_causes_whose_fix_it_needs():
    # "start" breaks three rows, "dtype" one of them too; "alpha" one row of its own.
    failed = ["exact_sgd", "per_group", "low_precision", "alpha_one"]
    every = frozenset({"start", "dtype", "alpha"})
    outcomes = {
        every: set(),
        every - {"start"}: {"exact_sgd", "per_group", "low_precision"},
        every - {"dtype"}: {"low_precision"},
        every - {"alpha"}: {"alpha_one"},
        frozenset({"start"}): {"low_precision", "alpha_one"},
        frozenset({"dtype"}): {"exact_sgd", "per_group", "low_precision", "alpha_one"},
        frozenset({"alpha"}): {"exact_sgd", "per_group", "low_precision"},
        frozenset(): set(failed),
    }
    a = sc.attribute(failed, ["start", "dtype", "alpha"], failing_from(outcomes))
    assert a.rows == {
        "start": ["exact_sgd", "per_group", "low_precision"],
        "dtype": ["low_precision"],
        "alpha": ["alpha_one"],
    }
    n = len(sc.PROPERTIES)
    assert a.alone == {"start": n - 2, "dtype": n - 4, "alpha": n - 3}
    assert (a.unexplained, a.broken, a.faithful, a.with_all) == ([], [], True, n)


def test_attribution_reports_rows_no_fix_explains_fixes_that_break_rows_and_unfaithful_scaffolding():
    failed = ["exact_sgd", "zero_grad"]
    every = frozenset({"start"})
    outcomes = {
        every: {
            "zero_grad",
            "closure",
        },  # zero_grad: no cause; closure: passed as published, broken by the fix
        frozenset(): {"exact_sgd"},  # the scaffolding alone no longer fails zero_grad
    }
    a = sc.attribute(failed, ["start"], failing_from(outcomes))
    assert a.rows == {"start": ["exact_sgd"]}
    assert a.unexplained == ["zero_grad"] and a.broken == ["closure"] and not a.faithful
    assert a.with_all == len(sc.PROPERTIES) - 2


def test_median_interval_is_the_median_with_a_bootstrap_interval_around_it():
    f = sc.median_interval([1.0, 1.2, 1.1, 1.3, 1.15])
    assert f.median == 1.15 and 1.0 <= f.low <= 1.15 <= f.high <= 1.3
    assert sc.median_interval([1.1, 1.1, 1.1]) == sc.Figure(1.1, 1.1, 1.1)
    assert sc.median_interval([1.0, 1.2, 1.1, 1.3, 1.15]) == f  # seeded: the same interval every run


def test_ranking_orders_only_where_intervals_separate():
    a, b, c = sc.Figure(1.05, 1.00, 1.10), sc.Figure(1.12, 1.08, 1.16), sc.Figure(1.40, 1.30, 1.50)
    # a and b overlap (1.08 < 1.10): a tie; c lies above both
    assert sorted(sc.separations({"a": a, "b": b, "c": c})) == [("a", "c"), ("b", "c")]
    assert sc.ranking({"a": a, "b": b, "c": c}) == "a < c, b < c; every other pair ties"
    assert sc.ranking({"a": a, "b": b}) == "no two intervals separate: all tie"
    assert sc.ranking({"c": c, "a": a}) == "a < c"
    touching = sc.Figure(1.20, 1.10, 1.30)  # shares the end point 1.10 with a: not separated
    assert sc.separations({"a": a, "t": touching}) == []


def grouping() -> dict:
    causes = [
        sc.Cause("peer", "start", sc.DEFECT, "starts late", "assert False, 'late'", "AssertionError"),
        sc.Cause("peer", "dtype", sc.FEATURE, "keeps bf16 slow weights"),
    ]
    a = sc.Attribution(
        rows={"start": ["exact_sgd", "low_precision"], "dtype": ["low_precision"]},
        alone={"start": 10, "dtype": 9},
        unexplained=[],
        broken=[],
        faithful=True,
        with_all=11,
    )
    repro = sc.ReproRun(True, True, "AssertionError: late")
    return {"peer": sc.Grouping(causes, a, {"start": repro})}


def test_the_markdown_lists_every_property_each_failure_each_cause_and_ranks_speed_only_where_separate():
    results = {
        "ours": {"_version": "this repository", **{k: PASS for k in sc.PROPERTIES}},
        "peer": table({"exact_sgd", "low_precision"}),
    }
    speed = sc.Speed(
        figures={
            "ours": {"AdamW": sc.Figure(1.05, 1.01, 1.09)},
            "peer": {"AdamW": sc.Figure(1.5, 1.4, 1.6)},
        },
        inner_ms={"AdamW": sc.Figure(20.0, 19.0, 21.0)},
        repeats=15,
        steps=10,
        threads=2,
        load=("9.50, 8.00, 7.00", "10.00, 9.00, 7.50"),
    )
    text = sc.markdown(results, {"gone": "not importable (ImportError)"}, speed, "test box", 3.0, grouping())
    for name, _ in sc.PROPERTIES.values():
        assert f"| {name} |" in text
    n = len(sc.PROPERTIES)
    assert f"| **passed** | {n} / {n} | {n - 2} / {n} |" in text
    assert "| **defects** (root causes) | 0 | 1 |" in text
    assert "| **features not offered** | 0 | 1 |" in text
    assert (
        "| peer | exact over 12 syncs, SGD(momentum) | first off at step 5 (by 3.5e-02) | within 1e-09 |"
        in text
    )
    assert (
        "| peer | defect ([reproduction](#peer-start)) | starts late | exact over 12 syncs, SGD(momentum); "
        f"bf16/fp16 params, fp32 slow weights | 10 / {n} |" in text
    )
    assert (
        f"| peer | feature | keeps bf16 slow weights | bf16/fp16 params, fp32 slow weights | 9 / {n} |"
        in text
    )
    assert f"* **peer** (peer 1.0): {n - 2} / {n} as published, {n} / {n} with every fix;" in text
    assert '<a id="peer-start"></a>' in text and "```python\nassert False, 'late'\n```" in text
    assert "fails with `AssertionError: late`; passes with the fix." in text
    assert "**gone**: not importable (ImportError)" in text
    assert "| ours | 1.050 [1.010, 1.090] |" in text and "| peer | 1.500 [1.400, 1.600] |" in text
    assert "* AdamW: ours < peer." in text
    assert "before the timings 9.50, 8.00, 7.00,\nafter 10.00, 9.00, 7.50." in text
    assert "Machine: test box." in text


def test_a_reproduction_that_does_not_show_its_defect_is_flagged():
    groups = grouping()
    groups["peer"].repros["start"] = sc.ReproRun(False, True, "")
    text = sc.markdown({"peer": table({"exact_sgd"})}, {}, None, "box", 1.0, groups)
    assert "**not verified**: as published its last line was `(none)` (expected `AssertionError...`)" in text


def test_a_fix_the_catalogue_does_not_have_is_refused():
    with pytest.raises(ValueError, match=r"no fix \['nonsense'\] for timm"):
        sc.scorecard_causes.with_fixes("timm", object, ["nonsense"])


def test_the_scorecard_says_each_stage_and_a_line_a_minute_while_it_times(monkeypatch, tmp_path, capsys):
    """Stage lines (i of n, time so far) and, inside the timings, a line whenever a minute passed: a
    clock that moves 61 s per reading, a pass for every property and a one-layer model instead of
    ResNet-18, so the test is bounded by its steps."""
    import torch
    import torchvision.models

    from lookahead.progress import Stages

    now = [0.0]

    def clock() -> float:
        now[0] += 61.0
        return now[0]

    monkeypatch.setattr(sc, "Stages", lambda name, total: Stages(name, total, clock=clock))
    monkeypatch.setattr(sc, "check", lambda key, path, fixes=None: sc.Outcome(True, "", ""))
    monkeypatch.setattr(torchvision.models, "resnet18", lambda: torch.nn.Linear(3, 2))
    out = tmp_path / "scorecard.md"
    assert sc.main(["--only", "lookahead", "--repeats", "2", "--out", str(out)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("scorecard")]
    assert lines[0] == "scorecard [1/2] lookahead (this suite): correctness battery (1 min 1 s so far)"
    assert lines[1].startswith("scorecard [2/2] step-time overhead, 2 repeats per inner optimizer (")
    assert "scorecard [2/2] timing SGD(momentum): repeat 1/2 (" in lines[2]
    assert sum("timing AdamW: repeat" in line for line in lines) == 2
    assert lines[-1].startswith("scorecard: done in ")
    assert "| lookahead (this suite) |" in out.read_text()
