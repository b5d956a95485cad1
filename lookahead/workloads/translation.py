"""Machine translation (WMT14 En-De and the synthetic task): label-smoothed loss, beam search, sacreBLEU.

Training minimises label-smoothed cross-entropy per target token (``loss``); validation also reports
the plain per-token negative log-likelihood (``nll_loss``) and ``perplexity = exp(nll_loss)``, the
target that picks the best evaluation. At the end, ``final_evaluation`` translates the test set with
beam search, detokenises with the SentencePiece model, scores with sacreBLEU and writes
``translations/`` to the run directory: ``test.hyp.<tgt>``, ``test.ref.<tgt>`` and ``bleu.json`` (score,
signature and the ``sacrebleu`` command that gives the same number from those two files).
"""

from __future__ import annotations

import json
import logging
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from lookahead.data import synthetic_translation
from lookahead.data import translation as data
from lookahead.errors import ConfigError
from lookahead.extras import require
from lookahead.models.generate import beam_search, greedy
from lookahead.ranges import Count, Dropout, NonNegativeFloat, PositiveInt
from lookahead.workloads.base import BLEU, PERPLEXITY, Logs, Measure, Split, StepOutput, Workload

log = logging.getLogger(__name__)
VOCAB_HINT = (
    "python scripts/translation_data.py vocab --root {root} --src {src} --tgt {tgt} --vocab-size {size}"
)


def label_smoothed_loss(
    logits: torch.Tensor, target: torch.Tensor, smoothing: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed label-smoothed cross-entropy and summed NLL over the non-padding target tokens.

    Smoothing puts ``1 - smoothing`` on the reference and spreads ``smoothing`` uniformly over the whole
    vocabulary (PyTorch's ``label_smoothing``, as tensor2tensor): loss = (1 - eps) nll + eps mean_v(-log p_v).
    """
    logits, target = logits.reshape(-1, logits.size(-1)).float(), target.reshape(-1)
    loss = F.cross_entropy(logits, target, ignore_index=data.PAD, label_smoothing=smoothing, reduction="sum")
    nll = F.cross_entropy(logits, target, ignore_index=data.PAD, reduction="sum")
    return loss, nll


class Translation(Workload):
    """Parallel text in ``root`` (see :mod:`lookahead.data.translation`), a joint subword vocabulary,
    batches of ``max_tokens`` padded tokens; BLEU of ``beam``-search translations of ``bleu_split``."""

    unit = "tokens"
    target = "valid_perplexity"
    higher_is_better = False
    measures: ClassVar[dict[str, Measure]] = {
        "perplexity": PERPLEXITY,
        "bleu": BLEU,
        "loss": Measure("label-smoothed cross-entropy per token", log=True),
        "nll_loss": Measure("cross-entropy per token", log=True),
    }

    def __init__(
        self,
        root: str | Path,
        name: str = "wmt14",
        src: str = "en",
        tgt: str = "de",
        vocab_size: PositiveInt = 32000,
        max_tokens: PositiveInt = 4096,
        eval_max_tokens: PositiveInt = 8192,
        max_len: PositiveInt = 256,
        max_len_ratio: Annotated[float, Field(ge=1)] | None = None,
        label_smoothing: Dropout = 0.1,
        beam: PositiveInt = 4,
        length_penalty: NonNegativeFloat = 0.6,
        decode_extra_len: Count = 50,
        bleu_split: Literal["valid", "test"] | None = "test",
        bleu_max_sentences: PositiveInt | None = None,
        sacrebleu_tokenize: str = "13a",
        seed: int = 1,
        device: torch.device | str = "cpu",
    ) -> None:
        if beam < 1:
            raise ConfigError(f"dataset.beam must be >= 1 (1 = greedy decoding), got {beam}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ConfigError(f"dataset.label_smoothing must be in [0, 1), got {label_smoothing}")
        self.root, self.name, self.src, self.tgt = Path(root).expanduser(), name, src, tgt
        self.device = torch.device(device)
        self.label_smoothing, self.beam, self.length_penalty = label_smoothing, beam, length_penalty
        self.decode_extra_len, self.bleu_split = decode_extra_len, bleu_split
        self.bleu_max_sentences, self.sacrebleu_tokenize = bleu_max_sentences, sacrebleu_tokenize
        self.summary_extra: dict[str, str] = {}  # the sacreBLEU signature, once final_evaluation has run
        require(f"dataset {name}", "sentencepiece", "sacrebleu")  # now, not at the final BLEU
        self.prepare()
        hint = self.data_hint()
        for split in data.SPLITS:  # missing text first: the vocabulary command needs it too
            for lang in (src, tgt):
                if not data.split_path(self.root, split, lang).is_file():
                    raise data.DataError(f"{data.split_path(self.root, split, lang)} not found: {hint}")
        self.sp = data.load_vocab(
            self.root, vocab_size, VOCAB_HINT.format(root=self.root, src=src, tgt=tgt, size=vocab_size)
        )
        train = data.encode_split(self.root, "train", src, tgt, self.sp, hint)
        self.train = data.length_filter(train, max_len, max_len_ratio)
        if len(self.train) < len(train):
            log.info("length filter kept %d of %d training pairs", len(self.train), len(train))
        self.batcher = data.TokenBatcher(*self.train.lengths(), max_tokens, seed=seed, shuffle=True)
        self.eval_sets: dict[str, data.ParallelCorpus] = {}
        self.eval_batches: dict[str, list[np.ndarray]] = {}
        for split in ("valid", "test"):
            corpus = data.encode_split(self.root, split, src, tgt, self.sp, hint)
            self.eval_sets[split] = corpus
            src_len, tgt_len = corpus.lengths()
            longest = int(max(src_len.max(), tgt_len.max()))  # evaluation keeps every sentence
            batcher = data.TokenBatcher(src_len, tgt_len, max(eval_max_tokens, longest), shuffle=False)
            self.eval_batches[split] = list(batcher.epoch(0))

    # -- data ----------------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Create missing data (the synthetic task does); real corpora are downloaded by the user."""

    def data_hint(self) -> str:
        return "see docs/wmt.md for the files and how to get them"

    def model_kwargs(self) -> dict[str, int]:
        return {"vocab_size": self.sp.get_piece_size(), "pad_id": data.PAD}

    def steps_per_epoch(self) -> int:
        return len(self.batcher)

    def train_batches(
        self, epoch: int, start: int = 0, rank: int = 0, world: int = 1
    ) -> Iterator[data.TranslationBatch]:
        for indices in self.batcher.epoch(epoch, start):
            yield data.collate(self.train, data.shard(indices, rank, world), self.device)

    def splits(self) -> list[Split]:
        return [Split(name, len(corpus)) for name, corpus in self.eval_sets.items()]

    # -- training ------------------------------------------------------------------------------------
    def sample_size(self, batch: data.TranslationBatch) -> int:
        return batch.num_tokens

    def train_step(self, model: nn.Module, batch: data.TranslationBatch, carry: Any) -> StepOutput:
        logits = model(batch.src, batch.tgt_in)
        loss, nll = label_smoothed_loss(logits, batch.tgt_out, self.label_smoothing)
        tokens = batch.num_tokens
        logs = {
            "loss": loss.detach().double(),
            "nll_loss": nll.detach().double(),
            "tokens": tokens,
            "sentences": len(batch.indices),
        }
        return StepOutput(loss / tokens, tokens, logs)

    # -- evaluation ----------------------------------------------------------------------------------
    def eval_logs(self, model: nn.Module, split: str, rank: int = 0, world: int = 1) -> Logs:
        loss_sum = nll_sum = 0.0
        tokens = sentences = 0
        corpus = self.eval_sets[split]
        for b, indices in enumerate(self.eval_batches[split]):
            if b % world != rank:  # whole batches round-robin over ranks
                continue
            batch = data.collate(corpus, indices, self.device)
            loss, nll = label_smoothed_loss(
                model(batch.src, batch.tgt_in), batch.tgt_out, self.label_smoothing
            )
            loss_sum, nll_sum = loss_sum + loss.item(), nll_sum + nll.item()
            tokens, sentences = tokens + batch.num_tokens, sentences + len(indices)
        return {"loss": loss_sum, "nll_loss": nll_sum, "tokens": tokens, "sentences": sentences}

    def reduce(self, logs: dict[str, float]) -> dict[str, float]:
        tokens = max(logs["tokens"], 1)
        nll = logs["nll_loss"] / tokens
        return {"loss": logs["loss"] / tokens, "nll_loss": nll, "perplexity": float(np.exp(min(nll, 700.0)))}

    def translate(self, model: nn.Module, split: str, limit: int | None = None) -> list[str]:
        """Detokenised translations of ``split`` (the first ``limit`` sentences), in file order."""
        corpus = self.eval_sets[split]
        out: dict[int, str] = {}
        was_training = model.training
        model.eval()
        try:
            for indices in self.eval_batches[split]:
                if limit is not None:
                    indices = indices[indices < limit]
                    if not len(indices):
                        continue
                src = data.collate(corpus, indices, self.device).src
                max_len = src.size(1) + self.decode_extra_len
                if self.beam == 1:
                    hyps = greedy(model, src, data.BOS, data.EOS, max_len)
                else:
                    hyps = beam_search(
                        model, src, data.BOS, data.EOS, max_len, self.beam, self.length_penalty
                    )
                out.update(zip(indices.tolist(), self.sp.decode(hyps)))
        finally:
            model.train(was_training)
        return [out[i] for i in sorted(out)]

    def final_evaluation(self, model: nn.Module, out_dir: Path | None) -> dict[str, float]:
        if self.bleu_split is None:
            return {}
        split = self.bleu_split
        hyps = self.translate(model, split, self.bleu_max_sentences)
        refs = data.read_lines(data.split_path(self.root, split, self.tgt))[: len(hyps)]
        result = bleu(hyps, refs, self.sacrebleu_tokenize)
        # Not a number, so not a metric: for the run summary's ``extra`` (and translations/bleu.json).
        self.summary_extra = {f"{split}_bleu_signature": result["signature"]}
        if out_dir is not None:
            write_translations(Path(out_dir) / "translations", split, self.tgt, hyps, refs, result)
        return {f"{split}_bleu": result["score"]}


def bleu(hyps: list[str], refs: list[str], tokenize: str = "13a") -> dict[str, Any]:
    """sacreBLEU's corpus BLEU (its Python API), with the signature that says how it was computed."""
    from sacrebleu.metrics import BLEU

    metric = BLEU(tokenize=tokenize)
    score = metric.corpus_score(hyps, [refs])
    return {"score": score.score, "signature": str(metric.get_signature()), "text": str(score)}


def write_translations(
    folder: Path, split: str, lang: str, hyps: list[str], refs: list[str], result: dict[str, Any]
) -> None:
    """Hypotheses, references and the score, so that ``sacrebleu`` on the command line can recheck it."""
    folder.mkdir(parents=True, exist_ok=True)
    hyp_file, ref_file = folder / f"{split}.hyp.{lang}", folder / f"{split}.ref.{lang}"
    hyp_file.write_text("".join(h + "\n" for h in hyps), encoding="utf-8")
    ref_file.write_text("".join(r + "\n" for r in refs), encoding="utf-8")
    tokenize = result["signature"].split("tok:")[1].split("|")[0] if "tok:" in result["signature"] else "13a"
    command = (
        f"sacrebleu {shlex.quote(ref_file.name)} -i {shlex.quote(hyp_file.name)} -m bleu -tok {tokenize}"
    )
    record = {**result, "sentences": len(hyps), "command": command}
    (folder / "bleu.json").write_text(json.dumps(record, indent=2) + "\n")


class SyntheticTranslation(Translation):
    """The synthetic task (:mod:`lookahead.data.synthetic_translation`): generated on first use, with
    its vocabulary, into a folder of its parameters under ``root``; then read like any other corpus."""

    def __init__(
        self,
        root: str | Path,
        num_train: int = 10_000,
        num_valid: int = 500,
        num_test: int = 500,
        data_seed: int = 0,
        vocab_size: int = 400,
        **kwargs: Any,
    ) -> None:
        self.generate_args = {
            "num_train": num_train,
            "num_valid": num_valid,
            "num_test": num_test,
            "seed": data_seed,
        }
        self.vocab_size = vocab_size
        kwargs.setdefault("name", "synth")
        kwargs.setdefault("src", "src")
        kwargs.setdefault("tgt", "tgt")
        super().__init__(root, vocab_size=vocab_size, **kwargs)

    def prepare(self) -> None:
        # The corpus of these parameters, in its own folder under root (generated on first use).
        self.root = synthetic_translation.prepare(
            self.root, self.src, self.tgt, self.vocab_size, **self.generate_args
        )

    def data_hint(self) -> str:
        return "delete the folder to regenerate the synthetic task"
