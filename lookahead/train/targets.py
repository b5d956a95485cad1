"""Convergence speed (AlgoPerf's time-to-target): when a run's validation metric first reached each of
its workload's targets, read off the evaluations the run already makes.

A workload declares a few targets on its target metric (``dataset.targets`` in its config, or the
``targets`` attribute of a user's own Workload); the trainer records, per target, the first evaluation
at which the metric was at least as good as the target: its optimizer step, epoch, the samples (or
tokens) trained so far and the wall seconds. A target never reached has no entry. The same function
rebuilds the record from a run's metrics.jsonl, for runs that predate it or for other targets.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lookahead.train.schema import ConfigError


def target_key(target: float) -> str:
    """The target as summary.json's key: ``150``, ``0.9`` (shortest exact form)."""
    return repr(float(target)).removesuffix(".0")


def is_reached(value: float, target: float, higher_is_better: bool) -> bool:
    """Whether ``value`` is at least as good as ``target`` (NaN and inf never reach one)."""
    if not math.isfinite(value):
        return False
    return value >= target if higher_is_better else value <= target


def record_reached(
    reached: dict[str, dict[str, Any]],
    record: Mapping[str, Any],
    metric: str,
    targets: Sequence[float],
    higher_is_better: bool,
    unit: str = "samples",
) -> None:
    """Add to ``reached`` each target that ``record`` (one evaluation: ``step``, ``epoch``,
    ``wall_time_s``, ``<unit>`` and the metric) reaches for the first time."""
    value = record.get(metric)
    if value is None:
        return
    for target in targets:
        key = target_key(target)
        if key not in reached and is_reached(float(value), float(target), higher_is_better):
            reached[key] = {
                "step": record.get("step"),
                "epoch": record.get("epoch"),
                unit: record.get(unit),
                "wall_time_s": record.get("wall_time_s"),
            }


def reached_in_curve(
    records: Iterable[Mapping[str, Any]],
    metric: str,
    targets: Sequence[float],
    higher_is_better: bool,
    unit: str = "samples",
) -> dict[str, dict[str, Any]]:
    """``record_reached`` over a run's evaluations in order (metrics.jsonl's lines)."""
    reached: dict[str, dict[str, Any]] = {}
    for record in records:
        record_reached(reached, record, metric, targets, higher_is_better, unit)
    return reached


def check_targets(targets: Any, field: str = "dataset.targets") -> tuple[float, ...]:
    """``targets`` (a list of finite numbers, or None) as a tuple; anything else is a ConfigError naming
    ``field``."""
    if targets is None:
        return ()
    if isinstance(targets, (str, bytes)) or not isinstance(targets, Iterable):
        raise ConfigError(f"{field}={targets!r} is not allowed: a list of finite numbers or null")
    values = list(targets)
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{field}={values!r} is not allowed: a list of finite numbers or null")
    return tuple(float(v) for v in values)
