"""Lookahead optimizer (Zhang, Lucas, Hinton, Ba, NeurIPS 2019) and its reproduction suite.

``Lookahead`` is loaded on first use, so that ``import lookahead.progress`` (a command's first line,
printed before torch loads) does not import torch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lookahead.optim.lookahead import Lookahead

__all__ = ["Lookahead"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "Lookahead":
        from lookahead.optim.lookahead import Lookahead

        return Lookahead
    raise AttributeError(f"module 'lookahead' has no attribute {name!r}")
