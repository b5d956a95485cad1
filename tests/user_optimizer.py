"""A user's optimizer as some are written: no type hints, bare asserts (kept out of the test modules,
whose asserts pytest rewrites)."""

import torch


class NoHints(torch.optim.Optimizer):
    def __init__(self, params, lr=0.1, decay=0.9, shape="round"):
        assert lr > 0
        assert shape in ("round", "square"), f"unknown shape {shape}"
        super().__init__(params, {"lr": lr, "decay": decay})
