"""Prepare translation data: the joint SentencePiece vocabulary, or the synthetic task.

    python scripts/translation_data.py vocab --root data/wmt14_en_de --src en --tgt de --vocab-size 32000
    python scripts/translation_data.py synthetic --root data/synthetic_translation
    python scripts/translation_data.py join --root data/wmt14_en_de --split train --src en --tgt de \
        --pairs europarl-v7.de-en.en:europarl-v7.de-en.de commoncrawl.de-en.en:commoncrawl.de-en.de ...

``vocab`` trains spm<N>.model on train.<src> + train.<tgt> and caches it next to them (an hour or so
for full WMT14 on a few cores, once; SentencePiece subsamples 10M sentences). ``synthetic`` writes the
generated task's files, its vocabulary and manifest into a folder of its parameters under --root (the
synthetic presets also do this on first use). ``join``
concatenates raw parallel files (SOURCE:TARGET pairs, aligned line by line) into <root>/<split>.<lang>,
dropping the pairs that have an empty side (the reader refuses empty lines).
"""

from __future__ import annotations

from lookahead.progress import announce

announce(__name__, "preparing translation data")

import argparse
import sys
import time
from pathlib import Path

from lookahead.data import DataError
from lookahead.data.synthetic_translation import prepare
from lookahead.data.translation import split_path, train_vocab


def _count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)


def join(root: Path, split: str, src: str, tgt: str, pairs: list[str]) -> tuple[Path, int, int]:
    """Concatenate ``SOURCE:TARGET`` file pairs into ``root/split.{src,tgt}``; returns (path, kept, dropped)."""
    files = []
    for pair in pairs:  # check every input before writing anything
        if pair.count(":") != 1:
            raise DataError(f"--pairs entry {pair!r} must be SOURCE_FILE:TARGET_FILE")
        a, b = map(Path, pair.split(":"))
        for path in (a, b):
            if not path.is_file():
                raise DataError(f"{path} not found")
        if (n_a := _count_lines(a)) != (n_b := _count_lines(b)):
            raise DataError(f"{a} has {n_a} lines but {b} has {n_b}: the pair is not aligned line by line")
        files.append((a, b))
    root.mkdir(parents=True, exist_ok=True)
    kept = dropped = 0
    out_src, out_tgt = split_path(root, split, src), split_path(root, split, tgt)
    with out_src.open("w", encoding="utf-8") as fs, out_tgt.open("w", encoding="utf-8") as ft:
        for a, b in files:
            with a.open(encoding="utf-8") as sa, b.open(encoding="utf-8") as sb:
                for x, y in zip(sa, sb):
                    x, y = x.strip(), y.strip()
                    if x and y:
                        fs.write(x + "\n")
                        ft.write(y + "\n")
                        kept += 1
                    else:
                        dropped += 1
    return out_src, kept, dropped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    vocab = sub.add_parser("vocab", help="train the joint SentencePiece vocabulary of a corpus")
    vocab.add_argument("--root", type=Path, required=True, help="folder holding train.<src> and train.<tgt>")
    vocab.add_argument("--src", default="en")
    vocab.add_argument("--tgt", default="de")
    vocab.add_argument("--vocab-size", type=int, default=32000)
    vocab.add_argument("--model-type", default="bpe", choices=["bpe", "unigram"])
    vocab.add_argument("--input-sentence-size", type=int, default=10_000_000, help="subsample this many")
    synth = sub.add_parser("synthetic", help="generate the synthetic translation task and its vocabulary")
    synth.add_argument("--root", type=Path, default=Path("data/synthetic_translation"))
    synth.add_argument("--num-train", type=int, default=10_000)
    synth.add_argument("--num-valid", type=int, default=500)
    synth.add_argument("--num-test", type=int, default=500)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--vocab-size", type=int, default=400)
    joiner = sub.add_parser("join", help="concatenate raw parallel files into <root>/<split>.<lang>")
    joiner.add_argument("--root", type=Path, required=True)
    joiner.add_argument("--split", default="train", choices=["train", "valid", "test"])
    joiner.add_argument("--src", default="en")
    joiner.add_argument("--tgt", default="de")
    joiner.add_argument("--pairs", nargs="+", required=True, help="SOURCE_FILE:TARGET_FILE ...")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        if args.command == "vocab":
            path = train_vocab(
                args.root,
                args.src,
                args.tgt,
                args.vocab_size,
                args.model_type,
                input_sentence_size=args.input_sentence_size,
            )
        elif args.command == "join":
            path, kept, dropped = join(args.root, args.split, args.src, args.tgt, args.pairs)
            print(f"kept {kept} pairs, dropped {dropped} with an empty side")
        else:
            path = prepare(
                args.root,
                "src",
                "tgt",
                args.vocab_size,
                args.num_train,
                args.num_valid,
                args.num_test,
                args.seed,
            )
    except (DataError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {path} ({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
