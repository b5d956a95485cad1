"""Parallel text for machine translation: files, a joint SentencePiece vocabulary, token-count batches.

On-disk format (WMT14 En-De and the synthetic task alike): one directory holding ``<split>.<lang>``
plain UTF-8 files, one untokenised sentence per line, line ``i`` of ``<split>.<src>`` translating to
line ``i`` of ``<split>.<tgt>``; splits ``train``, ``valid`` and ``test``. The joint subword model
(``spm<vocab_size>.model``) is trained once from ``train.<src>`` + ``train.<tgt>`` and cached next to
the files, and so are the encoded splits (``cache/``), so later runs start in seconds.

Training batches hold up to ``max_tokens`` padded tokens (sentence count x longest side). Sentences are
sorted by length (random tie-break per epoch), cut greedily into batches once, and the batch order is
shuffled per epoch: the batches of an epoch are a pure function of (seed, epoch), so a run resumes
mid-epoch exactly, and every rank takes its contiguous share of each global batch.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lookahead.data.batches import rank_share
from lookahead.data.dataset import DataError

SPLITS = ("train", "valid", "test")
PAD, UNK, BOS, EOS = 0, 1, 2, 3  # fixed SentencePiece ids: the model's padding_idx relies on PAD = 0


def split_path(root: str | Path, split: str, lang: str) -> Path:
    return Path(root).expanduser() / f"{split}.{lang}"


def read_lines(path: Path, hint: str = "") -> list[str]:
    """The sentences of one file (one per line); missing files and empty lines are errors."""
    if not path.is_file():
        raise DataError(f"{path} not found{': ' + hint if hint else ''}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":  # the final newline ends the last line, it does not start a new one
        lines.pop()
    for i, line in enumerate(lines):
        if not line.strip():
            raise DataError(
                f"{path}:{i + 1}: empty line; every line must hold one sentence "
                "(remove the pair from both files of the split)"
            )
    if not lines:
        raise DataError(f"{path} is empty")
    return [line.rstrip("\r") for line in lines]


def read_parallel(
    root: str | Path, split: str, src: str, tgt: str, hint: str = ""
) -> tuple[list[str], list[str]]:
    """Source and target sentences of ``split``; files of different lengths are misaligned: an error."""
    src_path, tgt_path = split_path(root, split, src), split_path(root, split, tgt)
    source, target = read_lines(src_path, hint), read_lines(tgt_path, hint)
    if len(source) != len(target):
        raise DataError(
            f"{src_path} has {len(source)} lines but {tgt_path} has {len(target)}: the files of a split "
            "must be aligned line by line"
        )
    return source, target


# -- vocabulary -------------------------------------------------------------------------------------
def vocab_path(root: str | Path, vocab_size: int) -> Path:
    return Path(root).expanduser() / f"spm{vocab_size}.model"


def train_vocab(
    root: str | Path,
    src: str,
    tgt: str,
    vocab_size: int,
    model_type: str = "bpe",
    character_coverage: float = 1.0,
    input_sentence_size: int = 10_000_000,
) -> Path:
    """Train the joint SentencePiece model on ``train.<src>`` + ``train.<tgt>``; returns its path.

    Written atomically next to the data (``spm<vocab_size>.model`` and ``.vocab``); an existing model is
    replaced. Large corpora are subsampled to ``input_sentence_size`` sentences, as SentencePiece advises.
    """
    import sentencepiece as spm

    root = Path(root).expanduser()
    read_parallel(
        root, "train", src, tgt, "see docs/wmt.md"
    )  # the clear errors (missing, misaligned, empty lines) first
    out = vocab_path(root, vocab_size)
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        prefix = Path(tmp) / "spm"
        try:
            spm.SentencePieceTrainer.train(
                input=[str(split_path(root, "train", src)), str(split_path(root, "train", tgt))],
                model_prefix=str(prefix),
                vocab_size=vocab_size,
                model_type=model_type,
                character_coverage=character_coverage,
                input_sentence_size=input_sentence_size,
                shuffle_input_sentence=True,
                pad_id=PAD,
                unk_id=UNK,
                bos_id=BOS,
                eos_id=EOS,
                num_threads=os.cpu_count() or 1,
                minloglevel=2,
            )
        except RuntimeError as err:
            raise DataError(
                f"SentencePiece could not train a {vocab_size}-piece vocabulary on {root}: {err}"
            ) from None
        os.replace(prefix.with_suffix(".vocab"), out.with_suffix(".vocab"))
        os.replace(prefix.with_suffix(".model"), out)
    return out


def load_vocab(root: str | Path, vocab_size: int, hint: str = ""):
    """The cached SentencePiece processor; a missing model is an error that names the command."""
    import sentencepiece as spm

    path = vocab_path(root, vocab_size)
    if not path.is_file():
        raise DataError(f"{path} not found: train the joint vocabulary first{': ' + hint if hint else ''}")
    sp = spm.SentencePieceProcessor(model_file=str(path))
    if (sp.pad_id(), sp.bos_id(), sp.eos_id()) != (PAD, BOS, EOS):
        raise DataError(
            f"{path} has pad/bos/eos ids {sp.pad_id()}/{sp.bos_id()}/{sp.eos_id()}, expected 0/2/3"
        )
    return sp


# -- encoded corpus ----------------------------------------------------------------------------------
@dataclass
class Side:
    """One side of a corpus as flat token ids (without BOS/EOS) and per-sentence offsets."""

    tokens: np.ndarray  # int32, all sentences concatenated
    offsets: np.ndarray  # int64, len(sentences) + 1

    @classmethod
    def from_ids(cls, ids: Sequence[Sequence[int]]) -> Side:
        lengths = np.fromiter((len(s) for s in ids), dtype=np.int64, count=len(ids))
        offsets = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = (
            np.concatenate([np.asarray(s, dtype=np.int32) for s in ids])
            if len(ids)
            else np.zeros(0, np.int32)
        )
        return cls(flat, offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.tokens[self.offsets[i] : self.offsets[i + 1]]

    def select(self, keep: np.ndarray) -> Side:
        """The sentences where the boolean mask ``keep`` is true."""
        lengths = self.lengths()
        offsets = np.zeros(int(keep.sum()) + 1, dtype=np.int64)
        np.cumsum(lengths[keep], out=offsets[1:])
        return Side(self.tokens[np.repeat(keep, lengths)], offsets)


@dataclass
class ParallelCorpus:
    src: Side
    tgt: Side

    def __len__(self) -> int:
        return len(self.src)

    def lengths(self) -> tuple[np.ndarray, np.ndarray]:
        """Model-side lengths: source + EOS, target + BOS (or + EOS)."""
        return self.src.lengths() + 1, self.tgt.lengths() + 1


def _fingerprint(*paths: Path) -> str:
    digest = hashlib.sha1()
    for path in paths:
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()[:16]


def encode_split(root: str | Path, split: str, src: str, tgt: str, sp, hint: str = "") -> ParallelCorpus:
    """``split`` as token ids, cached in ``<root>/cache/`` (keyed on the text files and the vocabulary)."""
    root = Path(root).expanduser()
    files = [split_path(root, split, src), split_path(root, split, tgt)]
    for path in files:
        if not path.is_file():
            raise DataError(f"{path} not found{': ' + hint if hint else ''}")
    model = vocab_path(root, sp.get_piece_size())
    cache = root / "cache" / f"{split}.{src}-{tgt}.spm{sp.get_piece_size()}.{_fingerprint(*files, model)}.pt"
    if cache.is_file():
        data = torch.load(cache, weights_only=True)
        return ParallelCorpus(
            Side(data["src_tokens"].numpy(), data["src_offsets"].numpy()),
            Side(data["tgt_tokens"].numpy(), data["tgt_offsets"].numpy()),
        )
    source, target = read_parallel(root, split, src, tgt, hint)
    threads = os.cpu_count() or 1
    corpus = ParallelCorpus(
        Side.from_ids(sp.encode(source, num_threads=threads)),
        Side.from_ids(sp.encode(target, num_threads=threads)),
    )
    cache.parent.mkdir(exist_ok=True)
    tmp = cache.with_suffix(f".tmp{os.getpid()}")
    torch.save(
        {
            "src_tokens": torch.from_numpy(corpus.src.tokens),
            "src_offsets": torch.from_numpy(corpus.src.offsets),
            "tgt_tokens": torch.from_numpy(corpus.tgt.tokens),
            "tgt_offsets": torch.from_numpy(corpus.tgt.offsets),
        },
        tmp,
    )
    os.replace(tmp, cache)
    return corpus


def length_filter(corpus: ParallelCorpus, max_len: int, max_ratio: float | None = None) -> ParallelCorpus:
    """Training pairs whose sides have at most ``max_len`` tokens (with EOS) and, if given, a length
    ratio of at most ``max_ratio`` either way (the usual cleaning of web-crawled parallel text)."""
    src_len, tgt_len = corpus.lengths()
    keep = (src_len <= max_len) & (tgt_len <= max_len)
    if max_ratio is not None:
        keep &= (src_len <= max_ratio * tgt_len) & (tgt_len <= max_ratio * src_len)
    if keep.all():
        return corpus
    if not keep.any():
        raise DataError(f"no training pair is at most {max_len} tokens long: raise dataset.max_len")
    return ParallelCorpus(corpus.src.select(keep), corpus.tgt.select(keep))


# -- batches -----------------------------------------------------------------------------------------
def batch_boundaries(sorted_src: np.ndarray, sorted_tgt: np.ndarray, max_tokens: int) -> np.ndarray:
    """Greedy cut points of length-sorted sentences so that ``count x longest side <= max_tokens``."""
    cuts = [0]
    longest = 0
    for i, (s, t) in enumerate(zip(sorted_src.tolist(), sorted_tgt.tolist())):
        n = max(s, t)
        if n > max_tokens:
            raise DataError(f"a sentence pair of {n} tokens does not fit max_tokens={max_tokens}: raise it")
        longest = max(longest, n)
        if (i - cuts[-1] + 1) * longest > max_tokens:
            cuts.append(i)
            longest = n
    cuts.append(len(sorted_src))
    return np.asarray(cuts, dtype=np.int64)


def _rng(*seeds: int) -> np.random.Generator:
    return np.random.default_rng([int(s) for s in seeds])


class TokenBatcher:
    """Index batches of at most ``max_tokens`` padded tokens, bucketed by length.

    With ``shuffle``, the order inside equal-length runs and the batch order are drawn from (seed,
    epoch); the batch sizes are the same every epoch (cut once from the sorted lengths).
    """

    def __init__(
        self, src_len: np.ndarray, tgt_len: np.ndarray, max_tokens: int, seed: int = 0, shuffle: bool = True
    ) -> None:
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        self.src_len, self.tgt_len = np.asarray(src_len), np.asarray(tgt_len)
        self.seed, self.shuffle = seed, shuffle
        order = self._sorted(np.arange(len(self.src_len)))
        self.cuts = batch_boundaries(self.src_len[order], self.tgt_len[order], max_tokens)

    def _sorted(self, order: np.ndarray) -> np.ndarray:
        # Stable sort by (target length, source length): ties keep the (random) order they came in.
        return order[np.lexsort((self.src_len[order], self.tgt_len[order]))]

    def __len__(self) -> int:
        return len(self.cuts) - 1

    def epoch(self, epoch: int, start: int = 0) -> Iterator[np.ndarray]:
        """The index batches of ``epoch``, from batch ``start`` on."""
        if self.shuffle:
            rng = _rng(self.seed, epoch)
            order = self._sorted(rng.permutation(len(self.src_len)))
            batch_order = rng.permutation(len(self))
        else:
            order = self._sorted(np.arange(len(self.src_len)))
            batch_order = np.arange(len(self))
        for b in batch_order[start:]:
            yield order[self.cuts[b] : self.cuts[b + 1]]


def shard(indices: np.ndarray, rank: int, world: int) -> np.ndarray:
    """Rank ``rank``'s contiguous share of a global batch (sizes differ by at most one)."""
    if len(indices) < world:
        raise DataError(
            f"a batch of {len(indices)} sentences cannot be split over {world} ranks: raise dataset.max_tokens"
        )
    return indices[rank_share(len(indices), rank, world)]


@dataclass
class TranslationBatch:
    """Padded id tensors: ``src`` ends with EOS, ``tgt_in`` = BOS + target, ``tgt_out`` = target + EOS."""

    src: torch.Tensor
    tgt_in: torch.Tensor
    tgt_out: torch.Tensor
    indices: np.ndarray
    num_tokens: int  # target tokens (with EOS) = the loss's normaliser; known on the host, no device sync


def collate(
    corpus: ParallelCorpus, indices: np.ndarray, device: torch.device | str = "cpu"
) -> TranslationBatch:
    n = len(indices)
    src_len = corpus.src.lengths()[indices] + 1
    tgt_len = corpus.tgt.lengths()[indices] + 1
    src = np.full((n, int(src_len.max())), PAD, dtype=np.int64)
    tgt_in = np.full((n, int(tgt_len.max())), PAD, dtype=np.int64)
    tgt_out = tgt_in.copy()
    for row, i in enumerate(indices.tolist()):
        s, t = corpus.src[i], corpus.tgt[i]
        src[row, : len(s)], src[row, len(s)] = s, EOS
        tgt_in[row, 0], tgt_in[row, 1 : len(t) + 1] = BOS, t
        tgt_out[row, : len(t)], tgt_out[row, len(t)] = t, EOS
    as_tensor = lambda a: torch.from_numpy(a).to(device, non_blocking=True)  # noqa: E731
    return TranslationBatch(
        as_tensor(src), as_tensor(tgt_in), as_tensor(tgt_out), indices, int(tgt_len.sum())
    )
