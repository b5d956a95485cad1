"""The seam between the trainer and a workload (fairseq's ``train_step``, AlgoPerf's per-split eval).

A workload owns its data (train batches that are a pure function of (seed, epoch, batch) and can start
mid-epoch, named evaluation splits), what its model needs to be built, the loss of one batch, and what
evaluation measures. The trainer owns everything else: the optimizer chain, schedule, precision,
gradient accumulation and clipping, ranks, logging and checkpoints.

Metrics travel as *summed logging values* (``{"loss": sum of losses, "correct": ..., "count": ...}``):
sums add up across batches, micro-batches and ranks (one all-reduce), and ``reduce`` turns them into the
reported metrics (mean loss, accuracy, perplexity = exp(mean token loss)). Reported metric names are
``<split>_<name>``: ``train_loss``, ``valid_perplexity``, ``test_accuracy``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

Batch = Any  # whatever the workload's iterator yields and its train_step consumes
Logs = dict[str, torch.Tensor | float | tuple[torch.Tensor, float]]  # see Metrics


@dataclass
class StepOutput:
    """What one training batch gives the trainer.

    ``loss`` is the mean over the batch's ``sample_size`` units (samples, or target tokens); the trainer
    back-propagates it, re-weighted by ``sample_size`` when it accumulates micro-batches or averages
    ranks, so the gradient is that of the mean over the whole optimizer step. ``logs`` are sums over
    the batch (kept on the device; the trainer reads them only every few steps). ``carry`` is state for
    the next batch (an LSTM's hidden state, detached), or None. ``lr_scale`` multiplies the learning
    rate of the optimizer step this batch ends (AWD-LSTM scales it by seq_len / bptt); 1.0 otherwise.
    """

    loss: torch.Tensor
    sample_size: int | torch.Tensor
    logs: Logs
    carry: Any = None
    lr_scale: float = 1.0


@dataclass(frozen=True)
class Measure:
    """How tables and figures show one reduced metric (``accuracy``, ``perplexity``, ``mse``), on every
    split: ``label`` names it on axes and captions, ``unit`` follows the label ("accuracy (%)"), the
    stored value times ``scale`` is what is shown (a fraction x 100 = %), ``bounds`` (stored units) is
    the range it can take (confidence intervals are clipped to it), ``log`` draws it on a log axis."""

    label: str
    unit: str = ""
    scale: float = 1.0
    bounds: tuple[float, float] | None = None
    log: bool = False


# The measures of the shipped workloads (a user's workload declares its own).
ACCURACY = Measure("accuracy", "%", 100.0, (0.0, 1.0))
CROSS_ENTROPY = Measure("cross-entropy", log=True)
PERPLEXITY = Measure("perplexity", log=True)
BLEU = Measure("BLEU", bounds=(0.0, 100.0))


@dataclass
class Split:
    """A named evaluation split (``valid``, ``test``) and its size in samples."""

    name: str
    size: int


class Workload(ABC):
    """One paper workload: data, model inputs, loss and metrics. Subclass and fill in the abstract parts.

    Class attributes a subclass sets:
      ``name``: the dataset label used by tables (``cifar10``, ``ptb``);
      ``target``: the metric "best" is chosen on (a validation metric, never a test one), or None when
      the workload has no validation split;
      ``higher_is_better``: the direction of ``target`` (accuracy, BLEU up; perplexity down);
      ``divergence_metric``: the reduced train metric checked for non-finite values;
      ``unit``: what ``sample_size`` counts (``samples``, ``tokens``), for the throughput log;
      ``fast_precision``: the precision the GPU fast path picks (``bf16``; ``fp32`` where bf16 has not
      been validated for the workload);
      ``capturable``: ``train_step`` may be captured as a CUDA graph and replayed: no carry, no
      ``lr_scale``, no host sync, and batches of one shape (a batch of another shape, or whose
      non-tensor parts differ, runs eagerly);
      ``targets``: convergence targets on ``target`` (a valid perplexity of 150, an accuracy of 0.9):
      every run records when validation first reached each (lookahead/train/targets.py);
      ``dataset.targets`` in the config replaces them;
      ``measures``: how tables and figures show the reduced metrics, by name (``{"accuracy":
      Measure("accuracy", "%", 100, (0, 1))}``); a metric without one is shown as it is, under its name.
      Recorded in summary.json, so reports follow what the runs declare.
    """

    name: str = "workload"
    target: str | None = "valid_accuracy"
    higher_is_better: bool = True
    divergence_metric: str = "loss"
    unit: str = "samples"
    fast_precision: str = "bf16"
    capturable: bool = False
    targets: tuple[float, ...] = ()
    measures: ClassVar[dict[str, Measure]] = {}

    @property
    def convergence_metric(self) -> str | None:
        """The metric ``targets`` apply to: ``target`` (a workload without a validation split may name
        a test metric instead, as the paper's CIFAR runs report test accuracy)."""
        return self.target

    # -- data --------------------------------------------------------------------------------------
    @abstractmethod
    def steps_per_epoch(self) -> int:
        """Global batches per epoch (the same on every rank)."""

    @abstractmethod
    def train_batches(self, epoch: int, start: int = 0, rank: int = 0, world: int = 1) -> Iterator[Batch]:
        """This rank's share of each global batch of ``epoch``, from batch ``start`` on.

        Must be a pure function of (seed, epoch, batch index, rank, world): a resumed run sees exactly
        the batches the interrupted one would have seen.
        """

    @abstractmethod
    def splits(self) -> list[Split]:
        """The evaluation splits, in the order they are evaluated and logged."""

    def model_kwargs(self) -> dict[str, Any]:
        """Keyword arguments the model builder needs from the data (``num_classes``, ``vocab_size``)."""
        return {}

    # -- training ----------------------------------------------------------------------------------
    def sample_size(self, batch: Batch) -> int | torch.Tensor:
        """A batch's sample size, known without a forward pass (used to weight micro-batches and ranks);
        by default the number of labels, the batch's last element. Token workloads count tokens."""
        return len(batch[-1])

    def init_carry(self, model: nn.Module) -> Any:
        """State carried from batch to batch within an epoch (an LSTM's hidden state); None if none."""
        return None

    @abstractmethod
    def train_step(self, model: nn.Module, batch: Batch, carry: Any) -> StepOutput:
        """Forward one batch in training mode; return its mean loss, sample size and summed logs."""

    # -- evaluation --------------------------------------------------------------------------------
    @abstractmethod
    def eval_logs(self, model: nn.Module, split: str, rank: int = 0, world: int = 1) -> Logs:
        """Summed logging values of the model (already in eval mode, no grad) on this rank's shard of
        ``split``; the trainer all-reduces them across ranks and calls ``reduce``."""

    @abstractmethod
    def reduce(self, logs: dict[str, float]) -> dict[str, float]:
        """Summed logging values (over batches and ranks) -> metrics, e.g. loss and accuracy."""

    def final_evaluation(self, model: nn.Module, out_dir: Path | None) -> dict[str, float]:
        """Metrics computed once at the end of training on rank 0 (e.g. BLEU from beam search, with the
        translations written to ``out_dir``); returns ``<split>_<metric>`` names. None by default.
        Non-numeric facts about them (a sacreBLEU signature) go to ``self.summary_extra``."""
        return {}

    summary_extra: ClassVar[
        dict[str, Any]
    ] = {}  # copied into summary.json's ``extra`` after final_evaluation


@dataclass
class Metrics:
    """Summed logging values: tensors accumulate on their device (read, with one host sync, only when
    asked), plain Python numbers as Python numbers (no tensor op per step). A ``(tensor, weight)`` pair
    adds ``weight * tensor`` in one op (a batch's mean loss times its size)."""

    sums: dict[str, Any] = field(default_factory=dict)

    def add(self, logs: Logs) -> None:
        for key, value in logs.items():
            weight = 1
            if isinstance(value, tuple):
                value, weight = value
            total = self.sums.get(key)
            if isinstance(value, torch.Tensor):
                if total is None or not isinstance(total, torch.Tensor):
                    # float64: epoch sums of float32 values stay exact
                    dtype = torch.float64 if value.is_floating_point() else torch.long
                    total = torch.zeros((), dtype=dtype, device=value.device).add_(total or 0)
                    self.sums[key] = total
                total.add_(value, alpha=weight)
            else:
                self.sums[key] = (total or 0) + value * weight

    def pop(self) -> dict[str, float]:
        """The sums as Python numbers, and reset."""
        out = {k: v.item() if isinstance(v, torch.Tensor) else v for k, v in self.sums.items()}
        self.sums.clear()
        return out
