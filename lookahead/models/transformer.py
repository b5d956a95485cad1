"""Encoder-decoder Transformer (Vaswani et al., 2017) for translation with a joint vocabulary.

Source, target and output embeddings are one shared matrix (scaled by sqrt(d_model) on input),
positions are sinusoidal, attention is ``F.scaled_dot_product_attention`` (fused kernels on GPU).
``norm_first`` picks pre-norm (tensor2tensor's transformer_base, a final LayerNorm on each stack) or
post-norm (the original paper). Decoding keeps per-layer key/value caches so that each new token costs
one position (see :mod:`lookahead.models.generate`).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lookahead.errors import ConfigError
from lookahead.ranges import Count, Dropout, PositiveInt

Cache = list[dict[str, Any]]


def sinusoidal_positions(length: int, dim: int) -> torch.Tensor:
    """The (length, dim) table of sin/cos position encodings (sin on the first half, cos on the second)."""
    half = dim // 2
    freq = torch.exp(-math.log(10_000.0) * torch.arange(half, dtype=torch.float32) / max(half - 1, 1))
    angles = torch.arange(length, dtype=torch.float32)[:, None] * freq[None, :]
    table = torch.cat([angles.sin(), angles.cos()], dim=1)
    return F.pad(table, (0, dim - 2 * half))


class Attention(nn.Module):
    """Multi-head attention; self-attention when ``memory`` is None, else attention over ``memory``."""

    def __init__(self, d_model: int, heads: int, dropout: float, cross: bool) -> None:
        super().__init__()
        if d_model % heads:
            raise ConfigError(f"model.d_model={d_model} is not allowed: a multiple of model.heads ({heads})")
        self.heads, self.dropout, self.cross = heads, dropout, cross
        if cross:
            self.q, self.kv = nn.Linear(d_model, d_model), nn.Linear(d_model, 2 * d_model)
        else:
            self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        return x.view(b, t, self.heads, d // self.heads).transpose(1, 2)

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        causal: bool = False,
        cache: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        if self.cross:
            q = self._split(self.q(x))
            if cache is not None and "k" in cache:  # the memory's keys/values, computed at the first step
                k, v = cache["k"], cache["v"]
            else:
                k, v = map(self._split, self.kv(memory).chunk(2, dim=-1))
                if cache is not None:
                    cache["k"], cache["v"] = k, v
        else:
            q, k, v = map(self._split, self.qkv(x).chunk(3, dim=-1))
            if cache is not None:  # incremental decoding: append this step's keys/values
                if "k" in cache:
                    k, v = torch.cat([cache["k"], k], dim=2), torch.cat([cache["v"], v], dim=2)
                cache["k"], cache["v"] = k, v
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0, is_causal=causal
        )
        b, h, t, dh = out.shape
        return self.out(out.transpose(1, 2).reshape(b, t, h * dh))


class FeedForward(nn.Sequential):
    def __init__(self, d_model: int, ffn_dim: int, dropout: float) -> None:
        super().__init__(
            nn.Linear(d_model, ffn_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ffn_dim, d_model)
        )


class Block(nn.Module):
    """One encoder (self-attention, FFN) or decoder (self-, cross-attention, FFN) layer."""

    def __init__(
        self,
        d_model: int,
        heads: int,
        ffn_dim: int,
        dropout: float,
        attn_dropout: float,
        ffn_dropout: float,
        decoder: bool,
        norm_first: bool,
    ) -> None:
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = Attention(d_model, heads, attn_dropout, cross=False)
        self.cross_attn = Attention(d_model, heads, attn_dropout, cross=True) if decoder else None
        self.ffn = FeedForward(d_model, ffn_dim, ffn_dropout)
        self.norms = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(3 if decoder else 2))
        self.drop = nn.Dropout(dropout)

    def _residual(self, x: torch.Tensor, norm: nn.LayerNorm, fn) -> torch.Tensor:
        if self.norm_first:
            return x + self.drop(fn(norm(x)))
        return norm(x + self.drop(fn(x)))

    def forward(
        self,
        x: torch.Tensor,
        self_mask: torch.Tensor | None,
        causal: bool = False,
        memory: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
        cache: dict[str, Any] | None = None,
    ) -> torch.Tensor:
        x = self._residual(
            x,
            self.norms[0],
            lambda h: self.self_attn(
                h, mask=self_mask, causal=causal, cache=None if cache is None else cache["self"]
            ),
        )
        if self.cross_attn is not None:
            x = self._residual(
                x,
                self.norms[1],
                lambda h: self.cross_attn(
                    h, memory, mask=memory_mask, cache=None if cache is None else cache["cross"]
                ),
            )
        return self._residual(x, self.norms[-1], self.ffn)


class Transformer(nn.Module):
    """Encoder-decoder Transformer; ``forward(src, tgt_in)`` gives next-token logits (B, T, vocab)."""

    def __init__(
        self,
        vocab_size: int,
        d_model: PositiveInt = 512,
        heads: PositiveInt = 8,
        ffn_dim: PositiveInt = 2048,
        encoder_layers: PositiveInt = 6,
        decoder_layers: PositiveInt = 6,
        dropout: Dropout = 0.1,
        attn_dropout: Dropout = 0.0,
        ffn_dropout: Dropout = 0.0,
        norm_first: bool = True,
        pad_id: Count = 0,
        max_positions: PositiveInt = 1024,
    ) -> None:
        super().__init__()
        self.d_model, self.pad_id, self.norm_first = d_model, pad_id, norm_first
        self.embed = nn.Embedding(vocab_size, d_model, padding_idx=pad_id)
        self.register_buffer("positions", sinusoidal_positions(max_positions, d_model), persistent=False)
        self.drop = nn.Dropout(dropout)
        args = (d_model, heads, ffn_dim, dropout, attn_dropout, ffn_dropout)
        self.encoder = nn.ModuleList(
            Block(*args, decoder=False, norm_first=norm_first) for _ in range(encoder_layers)
        )
        self.decoder = nn.ModuleList(
            Block(*args, decoder=True, norm_first=norm_first) for _ in range(decoder_layers)
        )
        # Pre-norm stacks end with a LayerNorm (the residual stream is never normalised otherwise).
        self.encoder_norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()
        self.decoder_norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Glorot-uniform projections, N(0, d^-1/2) embeddings (fairseq/tensor2tensor).
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.embed.weight, std=self.d_model**-0.5)
        with torch.no_grad():
            self.embed.weight[self.pad_id].zero_()

    def _embed(self, tokens: torch.Tensor, start: int = 0) -> torch.Tensor:
        end = start + tokens.size(1)
        if end > len(self.positions):
            self.positions = sinusoidal_positions(2 * end, self.d_model).to(self.positions.device)
        x = self.embed(tokens) * math.sqrt(self.d_model) + self.positions[start:end].to(
            self.embed.weight.dtype
        )
        return self.drop(x)

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder states and the key mask (B, 1, 1, S; True = a real token) for attending to them."""
        mask = (src != self.pad_id)[:, None, None, :]
        x = self._embed(src)
        for layer in self.encoder:
            x = layer(x, self_mask=mask)
        return self.encoder_norm(x), mask

    def decode(
        self,
        tgt_in: torch.Tensor,
        memory: torch.Tensor,
        memory_mask: torch.Tensor,
        cache: Cache | None = None,
        start: int = 0,
    ) -> torch.Tensor:
        """Logits for ``tgt_in`` (causal). With ``cache``, ``tgt_in`` is the next position(s) from ``start``."""
        x = self._embed(tgt_in, start)
        # Padding sits at the end of a target, so the causal mask alone keeps real positions off it.
        causal = cache is None and tgt_in.size(1) > 1
        for i, layer in enumerate(self.decoder):
            x = layer(x, None, causal, memory, memory_mask, None if cache is None else cache[i])
        return F.linear(self.decoder_norm(x), self.embed.weight)

    def new_cache(self) -> Cache:
        return [{"self": {}, "cross": {}} for _ in self.decoder]

    @staticmethod
    def reorder_cache(cache: Cache, index: torch.Tensor) -> None:
        """Keep the cache rows ``index`` (beam search's surviving hypotheses), in place."""
        for layer in cache:
            for part in layer.values():
                for key in part:
                    part[key] = part[key].index_select(0, index)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        memory, mask = self.encode(src)
        return self.decode(tgt_in, memory, mask)


def transformer(vocab_size: int, **kwargs: Any) -> Transformer:
    """Config entry point (``_target_: lookahead.models.transformer.transformer``)."""
    return Transformer(vocab_size, **kwargs)
