"""Batches of one split as device tensors: seeded keys -> DataLoader workers (file reads, and decoding
with the CPU backend) -> the decoder; the epoch's order is ``randperm(seed, epoch)`` and each rank
takes its share of every global batch. Corrupt files are skipped (counted) or raised.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from lookahead.data.batches import _generator, rank_share
from lookahead.data.dataset import DataError
from lookahead.data.imagenet.decoders import (
    CpuDecoder,
    DaliDecoder,
    NvjpegDecoder,
    decode_cpu,
    image_size_from_header,
)
from lookahead.data.imagenet.layout import ImageList
from lookahead.data.imagenet.views import Views, eval_view, train_params, train_view
from lookahead.errors import ConfigError

log = logging.getLogger("lookahead.data.imagenet")

ON_CORRUPT = ("skip", "error")


class Items(torch.utils.data.Dataset):
    """Key ``(index, epoch)`` (epoch -1: evaluation view) -> one image's worker output.

    ``decode=True`` (the CPU backend): ``(uint8 image, label, error)``, decoded and cropped in the worker.
    ``decode=False`` (GPU backends): ``(file bytes, crop params, label, path, error)``; the crop box comes
    from the JPEG header, so the GPU decodes and crops exactly what the CPU path would. A file that cannot
    be read gives label -1 and the error text; the main process skips it or raises (``on_corrupt``). A file
    whose header reads but whose data do not decode is caught by the GPU decoder instead.
    """

    def __init__(self, images: ImageList, views: Views, seed: int, decode: bool) -> None:
        self.images, self.views, self.seed, self.decode = images, views, seed, decode

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: tuple[int, int]) -> tuple:
        index, epoch = key
        path, label = self.images.paths[index], self.images.labels[index]
        size = self.views.size
        try:
            data = Path(path).read_bytes()
            if self.decode:
                image = decode_cpu(torch.frombuffer(bytearray(data), dtype=torch.uint8))
                if epoch < 0:
                    return eval_view(image, self.views.eval_resize, size), label, ""
                params = train_params(image.shape[-2], image.shape[-1], self.seed, epoch, index)
                return train_view(image, params, size), label, ""
            height, width = image_size_from_header(data)
        except Exception as err:  # any unreadable file: the main process decides (skip or error)
            blank = torch.zeros(3, size, size, dtype=torch.uint8)
            reason = f"{path}: {type(err).__name__}: {err}"
            if self.decode:
                return blank, -1, reason
            return torch.empty(0, dtype=torch.uint8), (), -1, path, reason
        params = (
            (0, 0, height, width, 0) if epoch < 0 else train_params(height, width, self.seed, epoch, index)
        )
        return torch.frombuffer(bytearray(data), dtype=torch.uint8), params, label, path, ""


def collate_bytes(
    items: list[tuple],
) -> tuple[list[torch.Tensor], list[tuple], torch.Tensor, list[str], list[str]]:
    data, params, labels, paths, errors = zip(*items)
    return list(data), list(params), torch.tensor(labels, dtype=torch.long), list(paths), list(errors)


class Stream:
    """Batches of one split as device tensors: a DataLoader (``workers`` processes) over seeded keys,
    then the decoder. Corrupt files are skipped (counted in ``skipped``) or raised, per ``on_corrupt``."""

    def __init__(
        self,
        images: ImageList,
        batch_size: int,
        seed: int,
        device: torch.device,
        decoder: CpuDecoder | NvjpegDecoder | DaliDecoder,
        views: Views,
        workers: int,
        on_corrupt: str = "skip",
    ) -> None:
        if on_corrupt not in ON_CORRUPT:
            raise ConfigError(
                f"dataset.on_corrupt must be one of {', '.join(ON_CORRUPT)}, got {on_corrupt!r}"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.images, self.batch_size, self.seed, self.device = images, batch_size, seed, device
        self.decoder, self.workers, self.on_corrupt = decoder, workers, on_corrupt
        self.items = Items(images, views, seed, decode=decoder.decode_in_workers)
        self.skipped: set[str] = set()

    def train_steps(self) -> int:
        """Full global batches per epoch (the last partial one is dropped, as in the PyTorch example)."""
        return len(self.images) // self.batch_size

    def eval_steps(self) -> int:
        return -(-len(self.images) // self.batch_size)

    def order(self, epoch: int) -> torch.Tensor:
        return torch.randperm(len(self.images), generator=_generator(torch.device("cpu"), self.seed, epoch))

    def _loader(self, keys: list[list[tuple[int, int]]]) -> DataLoader:
        return DataLoader(
            self.items,
            batch_sampler=keys,
            num_workers=self.workers,
            pin_memory=self.device.type == "cuda",
            collate_fn=None if self.decoder.decode_in_workers else collate_bytes,
            prefetch_factor=4 if self.workers else None,
        )

    def _batches(self, keys: list[list[tuple[int, int]]], train: bool) -> Iterator[tuple[torch.Tensor, ...]]:
        for batch in self._loader(keys):
            errors = batch[-1]
            unread = [i for i, e in enumerate(errors) if e]  # unreadable in the worker (no header, I/O)
            if unread:
                self._report([errors[i] for i in unread], len(errors))
                keep = [i for i in range(len(errors)) if i not in set(unread)]
                batch = tuple(
                    part[torch.tensor(keep)] if isinstance(part, torch.Tensor) else [part[i] for i in keep]
                    for part in batch
                )
            x, y, failed = self.decoder(batch, train)  # failed: header read, data did not decode
            if failed:
                self._report([why for _, why in failed], len(y))
                keep = torch.tensor(
                    [i for i in range(len(y)) if i not in {i for i, _ in failed}], device=y.device
                )
                x, y = x[keep], y[keep]
            yield x, y, len(unread) + len(failed)

    def _report(self, errors: list[str], batch_size: int) -> None:
        """Raise on the first unreadable file (``on_corrupt=error``), or warn once per file (``skip``)."""
        if self.on_corrupt == "error":
            raise DataError(
                f"cannot decode {errors[0]}; replace or delete the file, or run with dataset.on_corrupt=skip"
            )
        if len(errors) >= batch_size:
            raise DataError(f"every image of a batch is unreadable, e.g. {errors[0]}")
        for error in errors:
            if error not in self.skipped:  # warn once per file, count every time
                self.skipped.add(error)
                log.warning("skipping unreadable image %s", error)

    def train_epoch(self, epoch: int, start: int = 0, rank: int = 0, world: int = 1) -> Iterator[tuple]:
        """(x, y, n_skipped) of this rank's share of each global batch of ``epoch`` from ``start`` on."""
        order = self.order(epoch).tolist()
        part = rank_share(self.batch_size, rank, world)
        keys = [
            [(i, epoch) for i in order[b * self.batch_size : (b + 1) * self.batch_size][part]]
            for b in range(start, self.train_steps())
        ]
        return self._batches(keys, train=True)

    def eval_epoch(self, rank: int = 0, world: int = 1) -> Iterator[tuple]:
        """(x, y, n_skipped) of the whole split in file order, whole batches round-robin over ranks."""
        n, size = len(self.images), self.batch_size
        keys = [[(i, -1) for i in range(b * size, min(n, (b + 1) * size))] for b in range(self.eval_steps())]
        return self._batches(keys[rank::world], train=False)
