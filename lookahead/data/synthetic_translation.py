"""A synthetic translation task: two generated languages, a deterministic translation with reordering.

The source language is SVO with adjectives before the noun and prepositions; the target language is
SOV with adjectives after the noun in reverse order, postpositions, and case particles after the subject
and object. Every word has one translation (separate, disjoint lexicons), so a model must learn the
lexicon and the reordering; a small Transformer reaches a high BLEU on CPU in minutes. The files are
written in the same format as WMT (``<split>.<lang>``, one sentence per line), so the whole pipeline
(vocabulary, batching, training, beam search, sacreBLEU) runs on it unchanged.

Each set of parameters has its own folder under the root, with a manifest of the parameters it was
made with (:func:`prepare`): changing ``num_train`` or ``data_seed`` never reuses another corpus.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lookahead.data import manifest
from lookahead.writes import atomic_write

GENERATOR = 1  # bump when the generated text changes: folders of older versions are then regenerated
CATEGORIES = {"noun": 30, "adj": 12, "verb": 16, "prep": 6, "adv": 6}
SUBJECT, OBJECT = "ga", "o"  # target case particles (fixed words, disjoint from the generated lexicon)


def _words(rng: np.random.Generator, count: int, consonants: str, vowels: str, taken: set[str]) -> list[str]:
    """``count`` distinct CV-syllable words of 1-3 syllables, none in ``taken``."""
    out: list[str] = []
    while len(out) < count:
        syllables = int(rng.integers(1, 4))
        word = "".join(
            consonants[rng.integers(len(consonants))] + vowels[rng.integers(len(vowels))]
            for _ in range(syllables)
        )
        if word not in taken and len(word) > 1:
            taken.add(word)
            out.append(word)
    return out


def lexicon(seed: int = 0) -> dict[str, list[tuple[str, str]]]:
    """Per category, (source word, target word) pairs: the task's dictionary."""
    rng = np.random.default_rng([seed, 1])
    taken = {SUBJECT, OBJECT}
    return {
        cat: list(
            zip(_words(rng, n, "ptkbdgmnslr", "aeiou", taken), _words(rng, n, "fhjvwzcq", "aeiouy", taken))
        )
        for cat, n in CATEGORIES.items()
    }


def sentence(rng: np.random.Generator, lex: dict[str, list[tuple[str, str]]]) -> tuple[str, str]:
    """One random source sentence and its translation."""

    def pick(cat: str) -> tuple[str, str]:
        return lex[cat][rng.integers(len(lex[cat]))]

    def noun_phrase() -> tuple[list[str], list[str]]:
        adjectives = [pick("adj") for _ in range(int(rng.integers(0, 3)))]
        noun = pick("noun")
        return [a for a, _ in adjectives] + [noun[0]], [noun[1]] + [b for _, b in reversed(adjectives)]

    subj_s, subj_t = noun_phrase()
    verb = pick("verb")
    obj_s, obj_t = noun_phrase()
    src = [*subj_s, verb[0], *obj_s]
    tgt = [*subj_t, SUBJECT, *obj_t, OBJECT]
    if rng.random() < 0.5:
        prep = pick("prep")
        pp_s, pp_t = noun_phrase()
        src += [prep[0], *pp_s]
        tgt += [*pp_t, prep[1]]
    if rng.random() < 0.3:
        adv = pick("adv")
        src.append(adv[0])
        tgt.append(adv[1])
    tgt.append(verb[1])
    return " ".join(src), " ".join(tgt)


def generate_corpus(
    root: str | Path,
    num_train: int = 10_000,
    num_valid: int = 500,
    num_test: int = 500,
    seed: int = 0,
    src: str = "src",
    tgt: str = "tgt",
) -> Path:
    """Write ``{train,valid,test}.{src,tgt}`` under ``root``: a pure function of the arguments."""
    root = Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    lex = lexicon(seed)
    for split, count, stream in (("train", num_train, 2), ("valid", num_valid, 3), ("test", num_test, 4)):
        rng = np.random.default_rng([seed, stream])
        pairs = [sentence(rng, lex) for _ in range(count)]
        for lang, side in ((src, 0), (tgt, 1)):
            atomic_write(root / f"{split}.{lang}", "".join(p[side] + "\n" for p in pairs))
    return root


def prepare(
    root: str | Path,
    src: str = "src",
    tgt: str = "tgt",
    vocab_size: int = 400,
    num_train: int = 10_000,
    num_valid: int = 500,
    num_test: int = 500,
    seed: int = 0,
) -> Path:
    """The folder under ``root`` that holds the corpus made with these parameters and its vocabulary,
    generated on first use: ``<root>/train<N>_valid<N>_test<N>_seed<S>/`` with ``manifest.json``. A
    folder whose manifest records other parameters (an older generator) is regenerated."""
    for name, value in (("num_train", num_train), ("num_valid", num_valid), ("num_test", num_test)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"dataset.{name}={value!r} is not allowed: use a whole number >= 1")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"dataset.data_seed={seed!r} is not allowed: use a whole number >= 0")
    from lookahead.data.translation import train_vocab, vocab_path

    params = {
        "task": "synthetic_translation",
        "generator": GENERATOR,
        "num_train": num_train,
        "num_valid": num_valid,
        "num_test": num_test,
        "data_seed": seed,
        "src": src,
        "tgt": tgt,
    }
    folder = Path(root).expanduser() / f"train{num_train}_valid{num_valid}_test{num_test}_seed{seed}"
    record = folder / manifest.NAME
    if not manifest.matches(record, params):
        record.unlink(missing_ok=True)
        generate_corpus(folder, num_train, num_valid, num_test, seed, src, tgt)
        for stale in folder.glob("spm*.*"):  # vocabularies of the corpus that was replaced
            stale.unlink()
        manifest.write(record, params)
    if not vocab_path(folder, vocab_size).is_file():
        train_vocab(folder, src, tgt, vocab_size)
    return folder
