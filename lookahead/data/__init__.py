"""Datasets as device tensors, and the batch loader that augments them with tensor ops.

The names below load on first use, so that ``python -m lookahead.data.imagenet_fixture`` says what it
does before torch loads (:mod:`lookahead.progress`)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lookahead.data.batches import TensorLoader
    from lookahead.data.dataset import DataError, Dataset

__all__ = ["DataError", "Dataset", "TensorLoader"]
_HOME = {"DataError": "dataset", "Dataset": "dataset", "TensorLoader": "batches"}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(f"lookahead.data.{_HOME[name]}"), name)
    raise AttributeError(f"module 'lookahead.data' has no attribute {name!r}")
