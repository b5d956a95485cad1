"""CIFAR-10/100 in torchvision's folder layout (the official python pickles), held as one uint8 tensor
on the device. The pickles are read by a restricted unpickler that builds only what the format holds,
so a planted batch file cannot run code, whether or not its md5 is checked."""

from __future__ import annotations

import pickle
from pathlib import Path
from types import SimpleNamespace
from typing import Any, BinaryIO

import numpy as np
import torch
import torchvision
from torchvision.datasets.utils import check_integrity, download_and_extract_archive

from lookahead.data.batches import normalize, random_crop_flip
from lookahead.data.dataset import DataError, Dataset
from lookahead.ranges import PositiveInt

# Per-channel statistics of the training sets (the values used by the Cutout / Lookahead code).
STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
CLASSES = {"cifar10": torchvision.datasets.CIFAR10, "cifar100": torchvision.datasets.CIFAR100}
NUM_CLASSES = {"cifar10": 10, "cifar100": 100}
FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}


# The format: a dict of lists, strings, bytes and ints, and NumPy arrays, pickled by NumPy as calls to
# these functions (``_reconstruct`` up to protocol 4, ``_frombuffer`` from 5; the module is
# ``numpy.core`` before NumPy 2). Each is answered by a stand-in below, never by NumPy's own code.
ARRAY_DTYPES = {np.dtype(t) for t in (np.uint8, np.int8, np.int16, np.int32, np.int64, np.uint16)}


class _Dtype:
    """``numpy.dtype(spec, align, copy)`` as the pickle calls it: one of ARRAY_DTYPES, nothing else."""

    dtype: np.dtype | None = None  # also on an instance the pickle made without calling __init__

    def __init__(self, spec: object, align: object = False, copy: object = True) -> None:
        try:
            dtype = np.dtype(spec) if isinstance(spec, str) else None
        except TypeError:  # not a dtype's name
            dtype = None
        if dtype not in ARRAY_DTYPES:
            raise pickle.UnpicklingError(f"an array of dtype {spec!r} is not CIFAR data")
        self.dtype = dtype

    def __setstate__(self, state: tuple) -> None:
        # (version, byte order, subarray, names, fields, ...): a plain number type, any byte order
        if (
            self.dtype is None
            or not isinstance(state, tuple)
            or len(state) < 5
            or any(x is not None for x in state[2:5])
        ):
            raise pickle.UnpicklingError("a structured dtype is not CIFAR data")
        if state[1] in ("<", ">"):
            self.dtype = self.dtype.newbyteorder(state[1])


def _array(buffer: object, dtype: object, shape: object, order: object = "C") -> np.ndarray:
    """The bytes of ``buffer`` as an array of ``dtype`` (a :class:`_Dtype`) and ``shape``."""
    if isinstance(buffer, str):  # written by Python 2 (the official files), read with latin-1
        buffer = buffer.encode("latin1")
    if (
        not isinstance(buffer, (bytes, bytearray))
        or not isinstance(dtype, _Dtype)
        or dtype.dtype is None
        or not isinstance(shape, tuple)
        or not all(isinstance(n, int) for n in shape)
        or order not in ("C", "F")
    ):
        raise pickle.UnpicklingError("an array that is not CIFAR data")
    return np.frombuffer(buffer, dtype=dtype.dtype).reshape(shape, order=order)


class _Reconstructed:
    """``_reconstruct(ndarray, (0,), b"b")``: the empty array whose ``__setstate__`` gets the content."""

    array: np.ndarray | None = None

    def __init__(self, cls: object, shape: object, code: object) -> None:
        if cls is not _NDARRAY:
            raise pickle.UnpicklingError("an array subclass is not CIFAR data")

    def __setstate__(self, state: tuple) -> None:
        # (version, shape, dtype, is_fortran, raw bytes); the version is missing in old pickles
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise pickle.UnpicklingError("an array that is not CIFAR data")
        shape, dtype, fortran, raw = state[-4:]
        self.array = _array(raw, dtype, shape, "F" if fortran else "C")


def _latin1(text: object, encoding: object = "latin1") -> bytes:
    """``_codecs.encode(text, "latin1")``: how Python 3 writes bytes at protocols 0-2."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("an encoding call that is not CIFAR data")
    return text.encode("latin1")


_NDARRAY = object()  # ``numpy.ndarray`` appears only as _reconstruct's first argument
_GLOBALS: dict[tuple[str, str], object] = {
    **{(f"numpy.{core}.multiarray", "_reconstruct"): _Reconstructed for core in ("core", "_core")},
    **{(f"numpy.{core}.numeric", "_frombuffer"): _array for core in ("core", "_core")},
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _Dtype,
    ("_codecs", "encode"): _latin1,
}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        try:
            return _GLOBALS[module, name]
        except KeyError:
            raise pickle.UnpicklingError(
                f"it refers to {module}.{name}, which CIFAR data never holds"
            ) from None


def _plain(value: object) -> object:
    """``value`` with the stand-ins replaced by their arrays; anything the format never holds (a
    tuple, a stray dtype, a function) is refused."""
    if isinstance(value, _Reconstructed):
        if value.array is None:
            raise pickle.UnpicklingError("an array without content")
        return value.array
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, np.ndarray) or type(value) in (str, bytes, int, float, bool):
        return value
    raise pickle.UnpicklingError(f"a {type(value).__name__} is not CIFAR data")


def read_batch(file: BinaryIO) -> dict[str, Any]:
    """One CIFAR batch file (a pickled dict): dicts, lists, strings, bytes, numbers and NumPy arrays
    of integers only. Anything else (a class, a function, an object array) is an UnpicklingError and
    nothing in the file runs."""
    try:
        entry = _plain(_BatchUnpickler(file, encoding="latin1").load())
    except (pickle.UnpicklingError, OSError):
        raise
    except Exception as err:  # a malformed stream: whatever the unpickler or a stand-in raised
        raise pickle.UnpicklingError(f"{type(err).__name__}: {err}") from None
    if not isinstance(entry, dict):
        raise pickle.UnpicklingError(f"a {type(entry).__name__}, not a dict")
    return entry


def _files(cls, train: bool | None = None) -> list[tuple[str, str]]:
    """(file name, official md5) of a split (None: every file, the class-name list included)."""
    splits = {True: cls.train_list, False: cls.test_list}
    chosen = [*cls.train_list, *cls.test_list] if train is None else splits[train]
    return [(f, md5) for f, md5 in chosen] + (
        [(cls.meta["filename"], cls.meta["md5"])] if train is None else []
    )


def _verify(name: str, root: Path, check: bool) -> None:
    """The folder holds every file of the archive, each with the official md5 when ``check``; else
    a DataError that says what is missing or which files differ."""
    cls, folder = CLASSES[name], root / FOLDERS[name]
    if not folder.is_dir():
        raise DataError(
            f"{name} not found: no folder {folder}. Put the extracted '{FOLDERS[name]}' folder under {root} "
            f"(from https://www.cs.toronto.edu/~kriz/cifar.html) or run with dataset.download=true on a "
            f"machine with internet"
        )
    missing = [f for f, _ in _files(cls) if not (folder / f).is_file()]
    if missing:
        raise DataError(f"{name}: {folder} lacks {', '.join(missing)}; re-extract the official archive there")
    failed = [f for f, md5 in _files(cls) if check and not check_integrity(str(folder / f), md5)]
    if failed:
        raise DataError(
            f"{name}: the md5 checksum of {', '.join(failed)} in {folder} does not match the official "
            f"archive (a re-packed or converted copy?). If the files are a valid CIFAR copy in the python "
            f"pickle format, run with dataset.check_integrity=false; otherwise re-extract the official "
            f"archive"
        )


def _download(name: str, root: Path, check: bool) -> None:
    """Fetch and extract the official archive (torchvision checks its md5) unless the folder is
    complete and, with ``check``, official (so with check_integrity=false a copy of your own is kept)."""
    try:
        _verify(name, root, check)
        return
    except DataError:
        pass
    cls = CLASSES[name]
    try:
        download_and_extract_archive(cls.url, str(root), filename=cls.filename, md5=cls.tgz_md5)
    except OSError as err:  # no network
        raise DataError(
            f"could not download {name} to {root} ({err}); put the extracted '{FOLDERS[name]}' folder there"
        ) from None


def _read(name: str, root: Path, train: bool) -> SimpleNamespace:
    """The split's batch files read through :func:`read_batch` (no file can run code): the arrays
    torchvision would return, NHWC uint8 images and integer labels."""
    folder = root / FOLDERS[name]
    images, labels = [], []
    for fname, _ in _files(CLASSES[name], train):
        path = folder / fname
        try:
            with open(path, "rb") as f:
                entry = read_batch(f)
            data = entry["data"]
            targets = np.asarray(entry["labels"] if "labels" in entry else entry["fine_labels"])
            if not isinstance(data, np.ndarray) or data.dtype != np.uint8:
                raise ValueError(f"'data' is {type(data).__name__}, not an array of uint8")
            if (
                (targets.size and targets.dtype.kind not in "iu")
                or targets.ndim != 1
                or len(targets) != len(data)
            ):
                raise ValueError("the labels are not one integer per image")
            images.append(data.reshape(-1, 3, 32, 32))
            labels += targets.tolist()
        except (pickle.UnpicklingError, KeyError, ValueError, TypeError) as err:
            raise DataError(
                f"{name}: {path} is not a CIFAR python pickle ({type(err).__name__}: {err})"
            ) from None
    return SimpleNamespace(data=np.concatenate(images).transpose(0, 2, 3, 1), targets=labels)


def load_cifar(
    name: str,
    root: str | Path,
    download: bool = False,
    augment: bool = True,
    device: str | torch.device = "cpu",
    limit_train: PositiveInt | None = None,
    limit_test: PositiveInt | None = None,
    check_integrity: bool = True,
) -> Dataset:
    """CIFAR as uint8 NCHW tensors on ``device``; crop/flip/normalise happen per batch on the device.

    ``check_integrity=False`` skips the md5 comparison with the official archive, for a copy in the same
    format whose bytes differ (re-packed, converted from another mirror). Either way the files are read
    by :func:`read_batch`, which runs no code from them."""
    if name not in CLASSES:
        raise DataError(f"unknown CIFAR variant {name!r}; expected one of {sorted(CLASSES)}")
    root = Path(root).expanduser()
    if download:
        _download(name, root, check_integrity)
    _verify(name, root, check_integrity)
    tensors = []
    for train, limit in ((True, limit_train), (False, limit_test)):
        split = _read(name, root, train)
        x = torch.from_numpy(split.data[:limit]).permute(0, 3, 1, 2).contiguous()  # NHWC -> NCHW uint8
        y = torch.as_tensor(split.targets[:limit], dtype=torch.long)
        tensors += [x.to(device), y.to(device)]
    mean, std = (torch.tensor(v, device=device) for v in STATS[name])

    def eval_transform(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return normalize(x, mean, std)

    def train_transform(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return normalize(random_crop_flip(x, generator, padding=4), mean, std)

    return Dataset(
        name=name,
        train_x=tensors[0],
        train_y=tensors[1],
        test_x=tensors[2],
        test_y=tensors[3],
        num_classes=NUM_CLASSES[name],
        input_shape=(3, 32, 32),
        train_transform=train_transform if augment else eval_transform,
        eval_transform=eval_transform,
    )
