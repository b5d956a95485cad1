"""ImageNet (ILSVRC2012) streamed from JPEG files: the two on-disk layouts, seeded per-rank batches, and
three decoding backends (NVIDIA DALI, TorchCodec's batched nvJPEG decoding on the GPU, CPU workers).
TorchCodec's image decoders replace torchvision.io's (deprecated in torchvision 0.29; same outputs).

Layouts (``layout=auto`` picks by what is under ``root``):
  ``torchvision``: the archives ``ILSVRC2012_devkit_t12.tar.gz``, ``ILSVRC2012_img_train.tar`` and
  ``ILSVRC2012_img_val.tar`` read through ``torchvision.datasets.ImageNet`` (it extracts them into
  ``train/`` and ``val/`` on first use and writes ``meta.bin``);
  ``folder``: an ImageFolder tree ``train/<wnid>/*.JPEG`` and ``val/<wnid>/*.JPEG``.
Both give label = index of the wnid in sorted order, so they read the same images with the same labels.

Randomness is a pure function of (seed, epoch, image index): the epoch's order is
``randperm(seed, epoch)`` and each image's RandomResizedCrop box and flip come from a generator keyed by
(seed, epoch, index). Any backend, worker count or resume point therefore sees the same crops.
"""

from __future__ import annotations

import io
import logging
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from torchcodec.decoders import decode_image, decode_jpeg
from torchvision.transforms.v2 import functional as TF

from lookahead.data.batches import _generator
from lookahead.data.dataset import DataError
from lookahead.errors import ConfigError

log = logging.getLogger(__name__)

# The per-channel statistics every torchvision ImageNet model is trained with.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
ARCHIVES = ("ILSVRC2012_devkit_t12.tar.gz", "ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar")
SPLIT_FOLDERS = {"train": "train", "valid": "val"}
LAYOUTS = ("auto", "folder", "torchvision")
DECODERS = ("auto", "dali", "nvjpeg", "cpu")
ON_CORRUPT = ("skip", "error")


# -- finding the images -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageList:
    """The images of one split: paths, integer labels and the class wnids (label i is ``classes[i]``)."""

    paths: list[str]
    labels: list[int]
    classes: list[str]

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, limit: int | None) -> ImageList:
        """About ``limit`` images spread evenly over the (class-sorted) list, so every class keeps some."""
        if limit is None or limit >= len(self):
            return self
        keep = np.linspace(0, len(self) - 1, limit).round().astype(int)
        return ImageList([self.paths[i] for i in keep], [self.labels[i] for i in keep], self.classes)


def detect_layout(root: Path) -> str:
    """``torchvision`` when the archives (or torchvision's ``meta.bin``) are there, else ``folder``."""
    if (root / "meta.bin").exists() or any((root / name).exists() for name in ARCHIVES):
        return "torchvision"
    return "folder"


def _scan_folder(split_dir: Path, classes: Sequence[str] | None) -> ImageList:
    """Images of ``split_dir/<wnid>/``; ``classes`` (the training classes) fixes the labels of val."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension

    if not split_dir.is_dir():
        raise DataError(
            f"ImageNet split folder {split_dir} is missing: expected {split_dir}/<wnid>/*.JPEG "
            f"(see docs/imagenet.md for both supported layouts)"
        )
    found = sorted(d.name for d in os.scandir(split_dir) if d.is_dir())
    if not found:
        raise DataError(f"{split_dir} holds no class folders: expected {split_dir}/<wnid>/*.JPEG")
    if classes is None:
        classes = found
    else:
        extra = sorted(set(found) - set(classes))
        if extra:
            raise DataError(
                f"{split_dir} has class folders that train/ lacks: {', '.join(extra[:5])}"
                f"{' ...' if len(extra) > 5 else ''} ({len(extra)}); train/ and val/ must hold the same wnids"
            )
    paths, labels, empty = [], [], []
    for label, wnid in enumerate(classes):
        folder = split_dir / wnid
        files = (
            sorted(
                e.path
                for e in os.scandir(folder)
                if e.is_file() and has_file_allowed_extension(e.name, IMG_EXTENSIONS)
            )
            if folder.is_dir()
            else []
        )
        if not files:
            empty.append(wnid)
        paths += files
        labels += [label] * len(files)
    if empty:
        raise DataError(
            f"{len(empty)} class folder(s) of {split_dir} are missing or hold no images: "
            f"{', '.join(str(split_dir / w) for w in empty[:5])}{' ...' if len(empty) > 5 else ''}; "
            f"the dataset is incomplete (re-extract it, or remove the class from train/ and val/)"
        )
    return ImageList(paths, labels, list(classes))


def _extract_torchvision_archives(root: Path) -> None:
    """torchvision.datasets.ImageNet's preparation (md5 check, devkit -> meta.bin, train/val tars ->
    wnid folders), run once; without building its ImageFolder, which would list 1.28M files twice."""
    from torchvision.datasets import imagenet as tv
    from torchvision.datasets.utils import check_integrity

    try:
        if not check_integrity(str(root / tv.META_FILE)):
            tv.parse_devkit_archive(str(root))
        if not (root / "train").is_dir():
            tv.parse_train_archive(str(root))
        if not (root / "val").is_dir():
            tv.parse_val_archive(str(root))
    except RuntimeError as err:  # torchvision: "The archive ... is not present ... or is corrupted."
        raise DataError(
            f"ImageNet under {root} (torchvision layout): {err} The files needed are "
            f"{', '.join(ARCHIVES)} from https://image-net.org/download (or use the ImageFolder layout)"
        ) from None


def scan(root: str | Path, layout: str = "auto") -> dict[str, ImageList]:
    """The ``train`` and ``valid`` image lists of ImageNet under ``root``, in either layout."""
    root = Path(root).expanduser()
    if layout not in LAYOUTS:
        raise ConfigError(f"dataset.layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if not root.is_dir():
        raise DataError(
            f"ImageNet not found: {root} does not exist. Put the ImageFolder tree (train/<wnid>/*.JPEG, "
            f"val/<wnid>/*.JPEG) or torchvision's archives ({', '.join(ARCHIVES)}) there, or point "
            f"paths.data= / LOOKAHEAD_DATA at their parent"
        )
    if (layout if layout != "auto" else detect_layout(root)) == "torchvision":
        _extract_torchvision_archives(root)
    train = _scan_folder(root / SPLIT_FOLDERS["train"], None)
    return {"train": train, "valid": _scan_folder(root / SPLIT_FOLDERS["valid"], train.classes)}


# -- what one image becomes ---------------------------------------------------------------------------
def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of image ``index``'s augmentation in ``epoch``: independent of order and workers."""
    return np.random.default_rng([seed % 2**32, epoch, index])


def random_resized_crop_box(
    height: int,
    width: int,
    rng: np.random.Generator,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> tuple[int, int, int, int]:
    """(top, left, h, w) of RandomResizedCrop: torchvision's algorithm (10 tries, then a centre crop)."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        h, w = height, round(height * ratio[1])
    else:
        h, w = height, width
    return (height - h) // 2, (width - w) // 2, h, w


def train_params(height: int, width: int, seed: int, epoch: int, index: int) -> tuple[int, ...]:
    """(top, left, h, w, flip) of image ``index`` in ``epoch``."""
    rng = sample_rng(seed, epoch, index)
    return (*random_resized_crop_box(height, width, rng), int(rng.random() < 0.5))


def train_view(image: torch.Tensor, params: Sequence[int], size: int) -> torch.Tensor:
    """RandomResizedCrop(size) + horizontal flip of a uint8 CHW image, on whatever device it is."""
    top, left, h, w, flip = (int(p) for p in params)
    out = TF.resized_crop(image, top, left, h, w, [size, size], antialias=True)
    return out.flip(-1) if flip else out


def eval_view(image: torch.Tensor, resize: int, size: int) -> torch.Tensor:
    """Resize the shorter side to ``resize``, then the centre ``size`` x ``size`` crop."""
    return TF.center_crop(TF.resize(image, [resize], antialias=True), [size, size])


def normalize(x: torch.Tensor) -> torch.Tensor:
    """uint8 NCHW on the device -> float32, (x / 255 - mean) / std."""
    mean = torch.tensor(MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=x.device).view(1, 3, 1, 1)
    return x.float().div_(255).sub_(mean).div_(std)


def image_size_from_header(data: bytes) -> tuple[int, int]:
    """(height, width) read from the JPEG header only (no decoding)."""
    from PIL import Image

    width, height = Image.open(io.BytesIO(data)).size
    return height, width


def decode_cpu(data: torch.Tensor) -> torch.Tensor:
    """JPEG (or a PNG/CMYK file named .JPEG, as ImageNet has) -> uint8 RGB CHW, libjpeg-turbo on the CPU."""
    return decode_image(data, mode="RGB")


# -- per-image work in the DataLoader workers ---------------------------------------------------------
@dataclass(frozen=True)
class Views:
    """The geometry of the train and eval views."""

    size: int = 224
    eval_resize: int = 256


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


Decoded = tuple[torch.Tensor, torch.Tensor, list[tuple[int, str]]]  # images, labels, (position, why) failed


# -- decoding backends --------------------------------------------------------------------------------
class CpuDecoder:
    """Images arrive decoded and cropped by the workers; stack -> device -> normalise."""

    name = "cpu"
    decode_in_workers = True

    def __init__(self, device: torch.device, views: Views) -> None:
        self.device = device

    def __call__(self, batch: tuple, train: bool) -> Decoded:
        x, y, _ = batch
        return normalize(x.to(self.device, non_blocking=True)), y.to(self.device, non_blocking=True), []


class NvjpegDecoder:
    """Batched JPEG decoding with ``torchcodec.decoders.decode_jpeg(list, device=...)`` (one nvJPEG call
    per batch on CUDA), then crop/resize/flip on the device. Runs on any device: on the CPU it gives
    exactly the CPU backend's batches (the tests check this)."""

    name = "nvjpeg"
    decode_in_workers = False

    def __init__(self, device: torch.device, views: Views) -> None:
        self.device, self.views = device, views

    def _decode(self, data: list[torch.Tensor], paths: list[str]) -> tuple[list, list[tuple[int, str]]]:
        try:
            return decode_jpeg(data, mode="RGB", device=self.device), []
        except (RuntimeError, ValueError):  # a PNG/CMYK file named .JPEG, or a damaged one: one by one
            images, failed = [], []
            for i, d in enumerate(data):
                try:
                    images.append(decode_jpeg(d, mode="RGB", device=self.device))
                except (RuntimeError, ValueError):
                    try:  # the CPU decoder detects the format (ImageNet has a PNG named .JPEG)
                        images.append(decode_cpu(d).to(self.device))
                    except (RuntimeError, ValueError) as err:
                        images.append(None)
                        failed.append((i, f"{paths[i]}: {type(err).__name__}: {err}"))
            return images, failed

    def __call__(self, batch: tuple, train: bool) -> Decoded:
        data, params, y, paths, _ = batch
        size, resize = self.views.size, self.views.eval_resize
        images, failed = self._decode(data, paths)
        blank = torch.zeros(3, size, size, dtype=torch.uint8, device=self.device)  # dropped by the caller
        x = [
            blank if im is None else train_view(im, p, size) if train else eval_view(im, resize, size)
            for im, p in zip(images, params)
        ]
        return normalize(torch.stack(x)), y.to(self.device, non_blocking=True), failed


class DaliDecoder:
    """NVIDIA DALI: decode with the hybrid nvjpeg decoder straight into the crop box ("image_slice"),
    resize, flip and normalise on the GPU. The crop boxes and flips are ours (from the header), fed with
    ``external_source``, so DALI sees the same augmentation as the other backends (up to interpolation).
    """

    name = "dali"
    decode_in_workers = False

    def __init__(self, device: torch.device, views: Views, max_batch: int = 256) -> None:
        from nvidia.dali import fn, pipeline_def, types

        self.device, self.views = device, views
        mean = [m * 255 for m in MEAN]
        std = [s * 255 for s in STD]
        device_id = device.index if device.index is not None else torch.cuda.current_device()
        # Synchronous: each batch is fed (external_source) and run at once, so no prefetch queue to prime.
        options = {"batch_size": max_batch, "num_threads": 4, "device_id": device_id}
        options.update(prefetch_queue_depth=1, exec_async=False, exec_pipelined=False)

        @pipeline_def(**options)
        def train_pipe():
            jpegs = fn.external_source(name="jpegs", dtype=types.UINT8)
            anchor = fn.external_source(name="anchor", dtype=types.FLOAT)  # (x, y) of the box
            shape = fn.external_source(name="shape", dtype=types.FLOAT)  # (w, h)
            mirror = fn.external_source(name="mirror", dtype=types.INT32)
            images = fn.decoders.image_slice(
                jpegs, anchor, shape, device="mixed", output_type=types.RGB, normalized_anchor=False,
                normalized_shape=False,
            )  # fmt: skip
            images = fn.resize(images, resize_x=views.size, resize_y=views.size, antialias=True)
            return fn.crop_mirror_normalize(
                images, dtype=types.FLOAT, output_layout="CHW", mean=mean, std=std, mirror=mirror
            )

        @pipeline_def(**options)
        def eval_pipe():
            jpegs = fn.external_source(name="jpegs", dtype=types.UINT8)
            images = fn.decoders.image(jpegs, device="mixed", output_type=types.RGB)
            images = fn.resize(images, resize_shorter=views.eval_resize, antialias=True)
            return fn.crop_mirror_normalize(
                images,
                dtype=types.FLOAT,
                output_layout="CHW",
                crop=(views.size, views.size),
                mean=mean,
                std=std,
            )

        self.pipes = {True: train_pipe(), False: eval_pipe()}
        for pipe in self.pipes.values():
            pipe.build()
        self.fallback = NvjpegDecoder(device, views)  # for a batch DALI cannot decode (a damaged file)

    def __call__(self, batch: tuple, train: bool) -> Decoded:
        try:
            return self._run(batch, train)
        except RuntimeError as err:  # DALI stops on an undecodable file: redo the batch image by image
            log.warning("DALI failed on a batch (%s); decoding it with TorchCodec", str(err).splitlines()[0])
            return self.fallback(batch, train)

    def _run(self, batch: tuple, train: bool) -> Decoded:
        from nvidia.dali.plugin.pytorch import feed_ndarray

        data, params, y, _, _ = batch
        pipe = self.pipes[train]
        pipe.feed_input("jpegs", [d.numpy() for d in data])
        if train:
            p = np.asarray(params, dtype=np.float32)  # rows (top, left, h, w, flip)
            pipe.feed_input("anchor", list(p[:, [1, 0]]))
            pipe.feed_input("shape", list(p[:, [3, 2]]))
            pipe.feed_input("mirror", [np.array(flip, dtype=np.int32) for flip in p[:, 4]])
        (out,) = pipe.run()
        out = out.as_tensor()
        x = torch.empty(out.shape(), dtype=torch.float32, device=self.device)
        feed_ndarray(out, x, cuda_stream=torch.cuda.current_stream(self.device))
        return x, y.to(self.device, non_blocking=True), []


def nvjpeg_works(device: torch.device) -> bool:
    """Whether TorchCodec decodes a JPEG on ``device`` (its CUDA build, with nvJPEG)."""
    from torchcodec.encoders import JpegEncoder

    try:
        decode_jpeg([JpegEncoder(torch.zeros(3, 8, 8, dtype=torch.uint8)).to_tensor()], device=device)
        return True
    except (RuntimeError, TypeError, ValueError, NotImplementedError):
        return False


def resolve_decoder(requested: str, device: torch.device) -> tuple[str, str]:
    """The backend to use for ``requested`` on ``device``, and why when it differs (the fallback)."""
    if requested not in DECODERS:
        raise ConfigError(f"dataset.decoder must be one of {', '.join(DECODERS)}, got {requested!r}")
    if requested == "cpu":
        return "cpu", ""
    if device.type != "cuda":
        return "cpu", f"no CUDA device ({device})" if requested != "auto" else ""
    reasons = []
    if requested in ("auto", "dali"):
        try:
            import nvidia.dali  # noqa: F401

            return "dali", ""
        except ImportError:
            reasons.append(
                "NVIDIA DALI is not installed (pip install nvidia-dali-cuda120, see docs/imagenet.md)"
            )
    if nvjpeg_works(device):
        return "nvjpeg", "; ".join(reasons) if requested == "dali" else ""
    reasons.append("TorchCodec cannot decode JPEGs on this GPU (a CPU-only build, or no nvJPEG)")
    return "cpu", "; ".join(reasons)


def make_decoder(
    requested: str, device: torch.device, views: Views, max_batch: int = 256
) -> CpuDecoder | NvjpegDecoder | DaliDecoder:
    """The decoder for ``requested``, falling back (with a warning saying why) when it is unavailable;
    ``max_batch`` is the largest batch it will see (DALI allocates for it)."""
    name, reason = resolve_decoder(requested, device)
    if reason:
        log.warning("ImageNet decoder %r unavailable, using %r: %s", requested, name, reason)
    if name == "dali":
        return DaliDecoder(device, views, max_batch)
    return {"cpu": CpuDecoder, "nvjpeg": NvjpegDecoder}[name](device, views)


# -- batches ------------------------------------------------------------------------------------------
def shard(batch_size: int, rank: int, world: int) -> slice:
    """Rank ``rank``'s contiguous share of a batch of ``batch_size`` (sizes differ by at most one)."""
    return slice(rank * batch_size // world, (rank + 1) * batch_size // world)


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
        part = shard(self.batch_size, rank, world)
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
