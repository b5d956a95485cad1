"""Prepare translation data: the joint SentencePiece vocabulary, or the synthetic task.

    python scripts/translation_data.py vocab --root data/wmt14_en_de --src en --tgt de --vocab-size 32000
    python scripts/translation_data.py synthetic --root data/synthetic_translation

``vocab`` trains spm<N>.model on train.<src> + train.<tgt> and caches it next to them (an hour or so
for full WMT14 on a few cores, once; SentencePiece subsamples 10M sentences). ``synthetic`` writes the
generated task's files and its vocabulary (the synthetic presets also do this on first use).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from lookahead.data import DataError
from lookahead.data.synthetic_translation import generate_corpus
from lookahead.data.translation import train_vocab


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
    synth.add_argument("--num-train", type=int, default=20_000)
    synth.add_argument("--num-valid", type=int, default=500)
    synth.add_argument("--num-test", type=int, default=500)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--vocab-size", type=int, default=400)
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
        else:
            generate_corpus(args.root, args.num_train, args.num_valid, args.num_test, args.seed, "src", "tgt")
            path = train_vocab(args.root, "src", "tgt", args.vocab_size)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {path} ({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
