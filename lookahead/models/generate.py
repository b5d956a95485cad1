"""Greedy decoding and beam search for :class:`~lookahead.models.transformer.Transformer`.

Beam search follows fairseq/tensor2tensor: each step extends every live hypothesis, keeps the best
``2 x beam`` candidates, moves those ending in EOS (among the first ``beam``) to the finished list
scored by log-probability / length penalty, and continues the best ``beam`` others; a sentence is done
when it has ``beam`` finished hypotheses. The length penalty is GNMT's ``((5 + length) / 6) ** alpha``
(tensor2tensor's, alpha = 0.6 for WMT), the length counting the EOS. With ``beam = 1`` this is greedy
decoding exactly.
"""

from __future__ import annotations

import torch

from lookahead.models.transformer import Transformer


def length_penalty(length: int, alpha: float) -> float:
    return ((5.0 + length) / 6.0) ** alpha


def unwrap(model: torch.nn.Module) -> Transformer:
    """The Transformer inside DDP (``.module``) or ``torch.compile`` (``._orig_mod``) wrappers."""
    while not isinstance(model, Transformer):
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if inner is None:
            raise TypeError(f"decoding needs a lookahead Transformer, got {type(model).__name__}")
        model = inner
    return model


@torch.no_grad()
def greedy(model: torch.nn.Module, src: torch.Tensor, bos: int, eos: int, max_len: int) -> list[list[int]]:
    """The argmax continuation of each source sentence, without BOS/EOS, at most ``max_len`` tokens."""
    model = unwrap(model)
    memory, mask = model.encode(src)
    cache = model.new_cache()
    last = torch.full((src.size(0), 1), bos, dtype=torch.long, device=src.device)
    out: list[list[int]] = [[] for _ in range(src.size(0))]
    done = torch.zeros(src.size(0), dtype=torch.bool, device=src.device)
    for t in range(max_len):
        logits = model.decode(last, memory, mask, cache, start=t)[:, -1]
        last = logits.argmax(-1, keepdim=True)
        for i, (token, finished) in enumerate(zip(last[:, 0].tolist(), done.tolist())):
            if not finished and token != eos:
                out[i].append(token)
        done |= last[:, 0] == eos
        if done.all():
            break
    return out


@torch.no_grad()
def beam_search(
    model: torch.nn.Module,
    src: torch.Tensor,
    bos: int,
    eos: int,
    max_len: int,
    beam: int = 4,
    alpha: float = 0.6,
) -> list[list[int]]:
    """The best hypothesis of each source sentence (without BOS/EOS) by length-normalised log-probability."""
    model = unwrap(model)
    n, k = src.size(0), beam
    memory, mask = model.encode(src)
    memory, mask = memory.repeat_interleave(k, 0), mask.repeat_interleave(k, 0)
    cache = model.new_cache()
    scores = torch.full((n, k), float("-inf"), device=src.device)
    scores[:, 0] = 0.0  # one live hypothesis per sentence at first (the others are copies of it)
    tokens = torch.full((n * k, 1), bos, dtype=torch.long, device=src.device)
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(n)]
    done = [False] * n
    for t in range(max_len):
        logp = torch.log_softmax(
            model.decode(tokens[:, -1:], memory, mask, cache, start=t)[:, -1].float(), -1
        )
        vocab = logp.size(-1)
        top_scores, top_index = (scores.view(-1, 1) + logp).view(n, k * vocab).topk(2 * k, dim=1)
        top_beam, top_token = (top_index // vocab).tolist(), (top_index % vocab).tolist()
        top_scores = top_scores.tolist()
        next_scores = [[float("-inf")] * k for _ in range(n)]
        next_beam, next_token = [[0] * k for _ in range(n)], [[eos] * k for _ in range(n)]
        for i in range(n):
            if done[i]:
                continue
            live = 0
            for rank in range(2 * k):
                score, b, token = top_scores[i][rank], top_beam[i][rank], top_token[i][rank]
                if token == eos:
                    if rank < k:  # an EOS below the top `beam` candidates is not a better hypothesis
                        finished[i].append(
                            (score / length_penalty(t + 1, alpha), tokens[i * k + b, 1:].tolist())
                        )
                else:
                    next_scores[i][live], next_beam[i][live], next_token[i][live] = score, b, token
                    live += 1
                if live == k:
                    break
            done[i] = len(finished[i]) >= k
        if all(done):
            break
        index = (
            torch.arange(n, device=src.device)[:, None] * k + torch.tensor(next_beam, device=src.device)
        ).view(-1)
        tokens = torch.cat([tokens[index], torch.tensor(next_token, device=src.device).view(-1, 1)], dim=1)
        scores = torch.tensor(next_scores, device=src.device)
        model.reorder_cache(cache, index)
    else:  # max_len reached: unfinished sentences keep their live hypotheses as they are
        for i in range(n):
            if not done[i]:
                for b in range(k):
                    score = scores[i, b].item()
                    if score > float("-inf"):
                        finished[i].append(
                            (score / length_penalty(max_len, alpha), tokens[i * k + b, 1:].tolist())
                        )
    return [max(hyps, key=lambda h: h[0])[1] for hyps in finished]
