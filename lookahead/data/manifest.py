"""Manifests of generated data: the parameters a file or folder was made with, stored next to it, so that
data made with other parameters is never reused in their place."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from lookahead.writes import atomic_write

NAME = "manifest.json"


def key(params: dict[str, Any]) -> str:
    """A short, stable hash of ``params`` (a folder or file name part)."""
    return hashlib.sha1(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:10]


def read(path: Path) -> dict[str, Any] | None:
    """The parameters recorded in ``path``; None when there is no (readable) manifest."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write(path: Path, params: dict[str, Any]) -> None:
    """Record ``params`` in ``path`` atomically; written last, after the data it describes."""
    atomic_write(path, json.dumps(params, indent=2, sort_keys=True, default=str) + "\n")


def plain(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` as JSON gives them back (tuples as lists): the form they are compared in."""
    return json.loads(json.dumps(params, default=str))


def matches(path: Path, params: dict[str, Any]) -> bool:
    """Whether ``path`` records exactly ``params``."""
    recorded = read(path)
    return recorded is not None and recorded == plain(params)


def describe(params: dict[str, Any]) -> str:
    """``k=v`` pairs in key order (a manifest read back and one built here read alike)."""
    return " ".join(f"{k}={v}" for k, v in sorted(params.items()))
