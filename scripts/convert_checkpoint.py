"""Convert a checkpoint written by an earlier version of this suite to today's weights-only format.

    python scripts/convert_checkpoint.py runs/.../seed1/checkpoints/last.pt [--out converted.pt]

Earlier checkpoints held the NumPy and Python RNG states as NumPy objects, which the trainer's
``torch.load(..., weights_only=True)`` refuses. This script loads the file with ``weights_only=False``
-- that runs whatever code the file names, so use it only on a file you wrote yourself and trust --
stores the RNG states as tensors and plain values, and writes the result atomically (in place unless
``--out``). The run then resumes exactly where it stopped.
"""

from __future__ import annotations

import argparse
import io
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lookahead.train import checkpoint


def convert_rng(state: dict[str, Any]) -> dict[str, Any]:
    """One rank's RNG state in today's format (a state already converted is returned as it is)."""
    out = dict(state)
    if isinstance(state.get("numpy"), tuple):
        name, keys, pos, has_gauss, cached_gaussian = state["numpy"]
        out["numpy"] = {
            "name": str(name),
            "keys": torch.from_numpy(np.asarray(keys).astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        }
    if isinstance(state.get("python"), tuple):
        version, internal, gauss_next = state["python"]
        out["python"] = {
            "version": int(version),
            "state": torch.tensor(internal, dtype=torch.int64),
            "gauss": gauss_next,
        }
    return out


def convert(ckpt: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(ckpt, dict) or "ranks" not in ckpt:
        raise ValueError("not a checkpoint of this suite's trainer (no 'ranks' entry)")
    return {**ckpt, "ranks": [{**rank, "rng": convert_rng(rank["rng"])} for rank in ckpt["ranks"]]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--out", type=Path, help="where to write the result (default: in place)")
    args = parser.parse_args(argv)
    try:
        old = torch.load(args.checkpoint, map_location="cpu", weights_only=False)  # trusted by the user
        new = convert(old)
        buffer = io.BytesIO()
        torch.save(new, buffer)
        buffer.seek(0)
        torch.load(buffer, weights_only=True)  # the trainer can read it: checked before anything is written
        out = args.out or args.checkpoint
        checkpoint.save(out, new)
    except (OSError, ValueError, RuntimeError, pickle.UnpicklingError) as err:
        print(f"error: {args.checkpoint}: {err}", file=sys.stderr)
        return 1
    print(f"wrote {out} (weights-only format)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
