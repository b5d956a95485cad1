"""Decoding backends: NVIDIA DALI, TorchCodec's batched nvJPEG decoding on the GPU, CPU workers
(libjpeg-turbo); an unavailable choice falls back with a warning saying why. TorchCodec's image decoders
replace torchvision.io's (deprecated in torchvision 0.29; same outputs).
"""

from __future__ import annotations

import io
import logging

import numpy as np
import torch
from torchcodec.decoders import decode_image, decode_jpeg

from lookahead.data.imagenet.views import MEAN, STD, Views, eval_view, normalize, train_view
from lookahead.errors import ConfigError

log = logging.getLogger("lookahead.data.imagenet")

DECODERS = ("auto", "dali", "nvjpeg", "cpu")
Decoded = tuple[torch.Tensor, torch.Tensor, list[tuple[int, str]]]  # images, labels, (position, why) failed


def image_size_from_header(data: bytes) -> tuple[int, int]:
    """(height, width) read from the JPEG header only (no decoding)."""
    from PIL import Image

    width, height = Image.open(io.BytesIO(data)).size
    return height, width


def decode_cpu(data: torch.Tensor) -> torch.Tensor:
    """JPEG (or a PNG/CMYK file named .JPEG, as ImageNet has) -> uint8 RGB CHW, libjpeg-turbo on the CPU."""
    return decode_image(data, mode="RGB")


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
