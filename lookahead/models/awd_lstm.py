"""LSTM language models: AWD-LSTM (Merity, Keskar, Socher 2017, arXiv:1708.02182) and a plain small LSTM.

One class covers both: a stack of single-layer LSTMs with AWD-LSTM's regularisers, each of which can be
switched off (all dropouts 0 and no weight drop is the plain LSTM of Zaremba et al. 2014):

* embedding dropout (``dropoute``): whole words of the embedding matrix dropped per batch;
* variational ("locked") dropout: one mask per sequence, shared over time, on the embeddings
  (``dropouti``), between LSTM layers (``dropouth``) and on the last layer's output (``dropout``);
* weight drop (``wdrop``): DropConnect on each layer's hidden-to-hidden matrix, one mask per batch;
* activation regularisation (``alpha``) on the dropped last-layer output and temporal activation
  regularisation (``beta``) on the change of the raw last-layer output between time steps;
* tied input and output embeddings (the last LSTM layer then has the embedding's width).

The model computes the per-token negative log-likelihood itself, so an adaptive softmax
(``adaptive_cutoffs``, needs frequency-ordered ids) and a full softmax look the same to the workload.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from lookahead.errors import ConfigError
from lookahead.ranges import Dropout, NonNegativeFloat, PositiveFloat, PositiveInt

Hidden = list[tuple[torch.Tensor, torch.Tensor]]  # per layer (h, c), each [1, batch, width]


@dataclass
class LMOutput:
    """``nll``: per-token negative log-likelihood, [time * batch]; ``hidden``: the state after the last
    step (not detached); ``regularizer``: AR + TAR to add to the mean loss (0 in eval mode)."""

    nll: torch.Tensor
    hidden: Hidden
    regularizer: torch.Tensor | float


def locked_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Dropout with one mask per sequence, shared across time; ``x`` is [time, batch, features]."""
    if not training or p == 0:
        return x
    mask = x.new_empty(1, x.size(1), x.size(2)).bernoulli_(1 - p) / (1 - p)
    return x * mask


def embedding_dropout(embed: nn.Embedding, words: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Drop whole rows of the embedding matrix (every occurrence of a word in the batch)."""
    weight = embed.weight
    if training and p > 0:
        mask = weight.new_empty(weight.size(0), 1).bernoulli_(1 - p) / (1 - p)
        weight = weight * mask
    return F.embedding(words, weight)


class WeightDropLSTM(nn.Module):
    """A one-layer ``nn.LSTM`` whose hidden-to-hidden matrix gets DropConnect in training mode.

    ``functional_call`` runs the LSTM with the dropped matrix in place of its parameter, so the gradient
    reaches the raw weight and cuDNN/the fused CPU kernel are still used.
    """

    def __init__(self, input_size: int, hidden_size: int, wdrop: float = 0.0) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size)
        self.wdrop = wdrop

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        if not self.training or self.wdrop == 0:
            return self.lstm(x, state)
        dropped = F.dropout(self.lstm.weight_hh_l0, self.wdrop, training=True)
        return functional_call(self.lstm, {"weight_hh_l0": dropped}, (x, state))


class LSTMLanguageModel(nn.Module):
    """Embedding -> stacked LSTMs -> (tied) softmax, with AWD-LSTM's regularisers (see the module doc)."""

    def __init__(
        self,
        vocab_size: int,
        emb_size: PositiveInt = 400,
        hidden_size: PositiveInt = 1150,
        num_layers: PositiveInt = 3,
        dropout: Dropout = 0.4,
        dropouth: Dropout = 0.3,
        dropouti: Dropout = 0.65,
        dropoute: Dropout = 0.1,
        wdrop: Dropout = 0.5,
        tie_weights: bool = True,
        alpha: NonNegativeFloat = 2.0,
        beta: NonNegativeFloat = 1.0,
        init_range: PositiveFloat = 0.1,
        adaptive_cutoffs: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if tie_weights and adaptive_cutoffs:
            raise ConfigError("model.tie_weights=true needs a full softmax; set model.adaptive_cutoffs=null")
        if num_layers < 1:
            raise ConfigError(f"model.num_layers must be >= 1, got {num_layers}")
        self.dropout, self.dropouth, self.dropouti, self.dropoute = dropout, dropouth, dropouti, dropoute
        self.alpha, self.beta = alpha, beta
        self.encoder = nn.Embedding(vocab_size, emb_size)
        out_size = emb_size if tie_weights else hidden_size
        widths = [emb_size] + [hidden_size] * (num_layers - 1) + [out_size]
        self.rnns = nn.ModuleList(WeightDropLSTM(i, o, wdrop) for i, o in itertools.pairwise(widths))
        self.widths = widths[1:]
        nn.init.uniform_(self.encoder.weight, -init_range, init_range)
        if adaptive_cutoffs:
            self.decoder = None
            self.adaptive = nn.AdaptiveLogSoftmaxWithLoss(out_size, vocab_size, list(adaptive_cutoffs))
        else:
            self.adaptive = None
            self.decoder = nn.Linear(out_size, vocab_size)
            nn.init.zeros_(self.decoder.bias)
            if tie_weights:
                self.decoder.weight = self.encoder.weight
            else:
                nn.init.uniform_(self.decoder.weight, -init_range, init_range)

    def init_hidden(self, batch_size: int) -> Hidden:
        weight = self.encoder.weight
        return [(weight.new_zeros(1, batch_size, w), weight.new_zeros(1, batch_size, w)) for w in self.widths]

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor, hidden: Hidden | None = None) -> LMOutput:
        """``inputs``/``targets``: [time, batch] token ids; ``hidden``: the previous window's state or None
        (zeros)."""
        if hidden is None:
            hidden = self.init_hidden(inputs.size(1))
        x = embedding_dropout(self.encoder, inputs, self.dropoute, self.training)
        x = locked_dropout(x, self.dropouti, self.training)
        new_hidden = []
        for layer, rnn in enumerate(self.rnns):
            x, state = rnn(x, hidden[layer])
            new_hidden.append(state)
            if layer < len(self.rnns) - 1:
                x = locked_dropout(x, self.dropouth, self.training)
        raw = x
        x = locked_dropout(raw, self.dropout, self.training)
        flat, flat_targets = x.reshape(-1, x.size(-1)), targets.reshape(-1)
        if self.adaptive is not None:
            nll = -self.adaptive(flat, flat_targets).output
        else:
            nll = F.cross_entropy(self.decoder(flat).float(), flat_targets, reduction="none")
        regularizer: torch.Tensor | float = 0.0
        if self.training and self.alpha:
            regularizer = regularizer + self.alpha * x.float().pow(2).mean()
        if self.training and self.beta and raw.size(0) > 1:
            regularizer = regularizer + self.beta * (raw[1:] - raw[:-1]).float().pow(2).mean()
        return LMOutput(nll, new_hidden, regularizer)


def awd_lstm(vocab_size: int, **kwargs) -> LSTMLanguageModel:
    """AWD-LSTM; defaults are the AWD-LSTM code's PTB settings (3 x 1150, 400 embedding, tied)."""
    return LSTMLanguageModel(vocab_size, **kwargs)


def lstm_small(
    vocab_size: int,
    emb_size: PositiveInt = 200,
    hidden_size: PositiveInt = 200,
    num_layers: PositiveInt = 2,
    dropout: Dropout = 0.0,
    tie_weights: bool = False,
    init_range: PositiveFloat = 0.1,
    adaptive_cutoffs: Sequence[int] | None = None,
) -> LSTMLanguageModel:
    """Zaremba et al. (2014)'s small LSTM: 2 x 200, no regularisation, untied (dropout optional)."""
    model = LSTMLanguageModel(
        vocab_size,
        emb_size=emb_size,
        hidden_size=hidden_size,
        num_layers=num_layers,
        dropout=dropout,
        dropouth=dropout,
        dropouti=dropout,
        dropoute=0.0,
        wdrop=0.0,
        tie_weights=tie_weights,
        alpha=0.0,
        beta=0.0,
        init_range=init_range,
        adaptive_cutoffs=adaptive_cutoffs,
    )
    # Zaremba et al.'s code draws every parameter, biases included, uniformly from [-0.1, 0.1]
    # (`module:getParameters():uniform(...)`); the embedding and decoder weight already are.
    for p in (*model.rnns.parameters(), *(model.decoder.parameters() if model.decoder is not None else ())):
        nn.init.uniform_(p, -init_range, init_range)
    return model
