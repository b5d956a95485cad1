"""Datasets as device tensors, and the batch loader that augments them with tensor ops."""

from lookahead.data.batches import TensorLoader
from lookahead.data.dataset import DataError, Dataset

__all__ = ["DataError", "Dataset", "TensorLoader"]
