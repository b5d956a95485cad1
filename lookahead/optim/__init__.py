"""Optimizers: Lookahead and the Polyak iterate-averaging baseline."""

from lookahead.optim.lookahead import Lookahead

__all__ = ["Lookahead"]
