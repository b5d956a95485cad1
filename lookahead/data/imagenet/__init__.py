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

from lookahead.data.imagenet.decoders import (
    DECODERS,
    CpuDecoder,
    DaliDecoder,
    Decoded,
    NvjpegDecoder,
    decode_cpu,
    image_size_from_header,
    make_decoder,
    nvjpeg_works,
    resolve_decoder,
)
from lookahead.data.imagenet.layout import ARCHIVES, LAYOUTS, SPLIT_FOLDERS, ImageList, detect_layout, scan
from lookahead.data.imagenet.stream import ON_CORRUPT, Items, Stream, collate_bytes
from lookahead.data.imagenet.views import (
    MEAN,
    STD,
    Views,
    eval_view,
    normalize,
    random_resized_crop_box,
    sample_rng,
    train_params,
    train_view,
)

__all__ = [
    "ARCHIVES",
    "DECODERS",
    "LAYOUTS",
    "MEAN",
    "ON_CORRUPT",
    "SPLIT_FOLDERS",
    "STD",
    "CpuDecoder",
    "DaliDecoder",
    "Decoded",
    "ImageList",
    "Items",
    "NvjpegDecoder",
    "Stream",
    "Views",
    "collate_bytes",
    "decode_cpu",
    "detect_layout",
    "eval_view",
    "image_size_from_header",
    "make_decoder",
    "normalize",
    "nvjpeg_works",
    "random_resized_crop_box",
    "resolve_decoder",
    "sample_rng",
    "scan",
    "train_params",
    "train_view",
]
