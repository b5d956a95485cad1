"""What a run knows about itself: the typed state a checkpoint restores, and the one summary schema.

``summary.json`` is written here and read back (by the trainer on resume, by the report and tables)
only through :class:`Summary`, so its keys are defined once.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from lookahead.train.run_dir import write_json
from lookahead.workloads.base import ACCURACY, BLEU, CROSS_ENTROPY, PERPLEXITY, Measure


class Status(StrEnum):
    """Where a run is: running until it completes, diverges, fails or is interrupted by a signal."""

    RUNNING = "running"
    COMPLETED = "completed"
    DIVERGED = "diverged"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


STATUSES = tuple(Status)


@dataclass
class RunState:
    """Counters and results that a checkpoint restores; everything else is rebuilt from the config."""

    epoch: int = 0  # completed epochs
    batch: int = 0  # batches of the current epoch already trained
    step: int = 0  # optimizer steps
    wall_time_s: float = 0.0  # since the run began, across resumes (evaluation included)
    train_time_s: float = 0.0  # inside the training loop only
    samples: int = 0  # sample_size units trained (samples or tokens), for the throughput
    sums: dict[str, float] = field(default_factory=dict)  # summed train logs of the current epoch
    best: dict[str, Any] = field(default_factory=dict)  # the evaluation with the best target value
    final: dict[str, float] = field(default_factory=dict)  # the last evaluation
    reached: dict[str, dict[str, Any]] = field(default_factory=dict)  # convergence targets (targets.py)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunState:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


# What a summary written before ``measures`` existed meant: the shipped workloads' metrics (accuracies
# as fractions shown in %, BLEU 0-100, cross-entropy losses), and, without a declared target, the test
# accuracy of the CIFAR / MNIST-1D runs of that time.
LEGACY_MEASURES = {
    "accuracy": ACCURACY,
    "top1": Measure("top-1 accuracy", "%", 100.0, (0.0, 1.0)),
    "top5": Measure("top-5 accuracy", "%", 100.0, (0.0, 1.0)),
    "loss": CROSS_ENTROPY,
    "nll_loss": CROSS_ENTROPY,
    "perplexity": PERPLEXITY,
    "bleu": BLEU,
}


def legacy_summary(data: dict[str, Any]) -> dict[str, Any]:
    """An old summary's fields with what it left implicit made explicit (see LEGACY_MEASURES)."""
    data = {**data, "measures": measures_of(LEGACY_MEASURES)}
    if (
        not data.get("target")
        and not data.get("targets_metric")
        and "test_accuracy" in (data.get("final") or {})
    ):
        data["targets_metric"], data["higher_is_better"] = "test_accuracy", True
    return data


def measures_of(declared: dict[str, Measure]) -> dict[str, dict[str, Any]]:
    """A workload's measures as summary.json holds them."""
    return {name: asdict(m) for name, m in declared.items()}


class SummaryError(ValueError):
    """A summary.json that cannot be read."""


@dataclass
class Summary:
    """The run's outcome, rewritten atomically after every evaluation and at exit."""

    status: str
    experiment: str
    dataset: str
    model: str
    method: str
    seed: int
    max_epochs: int
    run_dir: str
    epochs_completed: int = 0
    steps: int = 0
    final: dict[str, float] = field(default_factory=dict)
    best: dict[str, Any] = field(default_factory=dict)
    target: str | None = None  # the metric "best" and the convergence targets are judged on
    higher_is_better: bool | None = None  # the direction of ``target`` and ``targets_metric``
    targets: list[float] = field(default_factory=list)  # convergence targets on ``targets_metric``
    targets_metric: str | None = None  # ``target``, or a test metric where there is no validation split
    # per target (its key, targets.target_key) first reached: step, epoch, <unit> trained, wall_time_s;
    # a target never reached has no entry
    reached: dict[str, dict[str, Any]] = field(default_factory=dict)
    wall_time_s: float = 0.0
    samples_per_s: float | None = None
    unit: str = "samples"
    world_size: int = 1
    reason: str | None = None  # why a run failed or was interrupted
    overrides: list[str] = field(default_factory=list)
    git_sha: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    device: str = ""
    hostname: str = ""
    torch_threads: int = 0
    threads_reason: str | None = None  # why torch_threads (lookahead/train/threads.py); absent before it
    fast_path: dict[str, Any] = field(default_factory=dict)  # the speed settings used (trainer.fast_path)
    extra: dict[str, Any] = field(default_factory=dict)  # workload-specific (e.g. sacreBLEU signature)
    # how reports show each reduced metric (workloads.base.Measure as a dict), as the workload declares
    measures: dict[str, dict[str, Any]] = field(default_factory=dict)

    def write(self, path: Path) -> None:
        write_json(path, asdict(self))

    @classmethod
    def read(cls, path: Path) -> Summary | None:
        """The summary in ``path``, None when there is none; a damaged file is one clear error."""
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise SummaryError(f"{path} is damaged ({err}); delete it to let the run resume") from None
        if not isinstance(data, dict) or data.get("status") not in STATUSES:
            raise SummaryError(f"{path} is not a run summary (no 'status'); delete it to let the run resume")
        known = {f.name for f in fields(cls)}
        if "measures" not in data:  # written before workloads declared them
            data = legacy_summary(data)
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as err:  # a required key is missing
            raise SummaryError(f"{path} is incomplete ({err}); delete it to let the run resume") from None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
