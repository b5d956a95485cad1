"""Lookahead optimizer (Zhang, Lucas, Hinton, Ba, NeurIPS 2019) and its reproduction suite."""

from lookahead.optim.lookahead import Lookahead

__all__ = ["Lookahead"]
__version__ = "0.1.0"
