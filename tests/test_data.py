"""The tensor data path: CIFAR's pickles through the restricted reader, batched augmentation, seeded order."""

from __future__ import annotations

import io
import pickle
import re
import struct
import warnings

import numpy as np
import pytest
import torch

from lookahead.data import DataError, TensorLoader
from lookahead.data.batches import _generator, random_crop_flip
from lookahead.data.cifar import load_cifar, read_batch
from lookahead.data.mnist1d import load_mnist1d
from tests.conftest import write_cifar


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_loads_the_pickles_torchvision_writes(tmp_path, name):
    expected = write_cifar(tmp_path, name, n_train=20, n_test=6, seed=3)
    data = load_cifar(name, tmp_path)
    assert data.train_x.dtype == torch.uint8 and data.train_x.shape == (20, 3, 32, 32)
    # torchvision reads the rows as CHW and transposes to HWC; we hand back CHW: the bytes on disk.
    assert np.array_equal(data.train_x.numpy(), expected["train_x"])
    assert np.array_equal(data.test_y.numpy(), expected["test_y"])
    assert data.num_classes == (10 if name == "cifar10" else 100)
    x = data.eval_transform(data.test_x[:2])
    mean = torch.tensor((0.4914, 0.4822, 0.4465) if name == "cifar10" else (0.5071, 0.4865, 0.4409))
    torch.testing.assert_close(
        x[0, :, 0, 0],
        (data.test_x[0, :, 0, 0] / 255 - mean)
        / x.new_tensor((0.2470, 0.2435, 0.2616) if name == "cifar10" else (0.2673, 0.2564, 0.2762)),
    )


def test_missing_cifar_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="cifar-100-python"):
        load_cifar("cifar100", tmp_path / "nope")


def reference_crop_flip(x: torch.Tensor, dy: int, dx: int, flip: bool, padding: int = 4) -> torch.Tensor:
    padded = torch.nn.functional.pad(x, (padding,) * 4)
    crop = padded[:, dy : dy + x.shape[1], dx : dx + x.shape[2]]
    return crop.flip(-1) if flip else crop


def test_random_crop_flip_equals_per_image_crop_then_flip():
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    out = random_crop_flip(x, _generator(torch.device("cpu"), 5))
    g = _generator(torch.device("cpu"), 5)  # replay the draws
    dy, dx = torch.randint(0, 9, (64,), generator=g), torch.randint(0, 9, (64,), generator=g)
    flip = torch.rand(64, generator=g) < 0.5
    assert flip.any() and (~flip).any() and len(set(dy.tolist())) > 3
    for i in range(64):
        assert torch.equal(out[i], reference_crop_flip(x[i], int(dy[i]), int(dx[i]), bool(flip[i])))


def test_loader_order_is_a_function_of_seed_and_epoch():
    x, y = torch.arange(10).float().unsqueeze(1), torch.arange(10)
    loader = TensorLoader(x, y, batch_size=3, shuffle=True, seed=1)
    assert len(loader) == 4
    epoch0 = [b for _, b in loader.epoch(0)]
    assert sorted(torch.cat(epoch0).tolist()) == list(range(10))
    assert [b.tolist() for _, b in loader.epoch(0)] == [b.tolist() for b in epoch0]
    assert [b.tolist() for _, b in loader.epoch(1)] != [b.tolist() for b in epoch0]
    # resuming mid-epoch yields exactly the remaining batches
    assert [b.tolist() for _, b in loader.epoch(0, start_batch=2)] == [b.tolist() for b in epoch0[2:]]
    other = TensorLoader(x, y, batch_size=3, shuffle=True, seed=2)
    assert [b.tolist() for _, b in other.epoch(0)] != [b.tolist() for b in epoch0]


def test_mnist1d_is_generated_once_and_cached(tmp_path):
    first = load_mnist1d(tmp_path, num_samples=200, valid_samples=50)
    caches = sorted(tmp_path.glob("mnist1d_*.pt"))  # train/test, and the validation draw (seed + 1)
    names = [re.sub(r"_[0-9a-f]{10}\.pt$", "", c.name) for c in caches]  # + the hash of every argument
    assert names == ["mnist1d_n200_seed42", "mnist1d_n50_seed43"]
    mtimes = [c.stat().st_mtime_ns for c in caches]
    second = load_mnist1d(tmp_path, num_samples=200, valid_samples=50)
    assert [c.stat().st_mtime_ns for c in caches] == mtimes
    assert first.train_x.shape == (160, 1, 40) and first.test_x.shape == (40, 1, 40)
    assert first.valid_x.shape == (50, 1, 40) and not torch.equal(first.valid_x[:40], first.test_x)
    assert torch.equal(first.train_x, second.train_x) and set(first.train_y.tolist()) <= set(range(10))
    assert load_mnist1d(tmp_path, num_samples=200, valid_samples=0).valid_x is None


def _repack(folder, fname: str) -> None:
    """Re-pickle a CIFAR file with the same arrays (protocol 2): valid content, different bytes and md5."""
    import pickle

    with open(folder / fname, "rb") as f:
        entry = pickle.load(f, encoding="latin1")
    with open(folder / fname, "wb") as f:
        pickle.dump(entry, f, protocol=2)


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_checksum_failure_is_named_and_can_be_skipped(tmp_path, name):
    expected = write_cifar(tmp_path, name, n_train=12, n_test=4, seed=7)
    folder = tmp_path / ("cifar-10-batches-py" if name == "cifar10" else "cifar-100-python")
    train_file = "data_batch_2" if name == "cifar10" else "train"
    _repack(folder, train_file)
    with pytest.raises(DataError) as err:
        load_cifar(name, tmp_path)
    message = str(err.value)
    assert f"md5 checksum of {train_file} in {folder} does not match" in message
    assert "dataset.check_integrity=false" in message and "not found" not in message
    data = load_cifar(name, tmp_path, check_integrity=False)  # the same images and labels as written
    assert np.array_equal(data.train_x.numpy(), expected["train_x"])
    assert np.array_equal(data.test_y.numpy(), expected["test_y"])


def python2_batch(data: np.ndarray, labels: list[int]) -> bytes:
    """A batch as the official files hold it: pickled by Python 2 (protocol 2) with NumPy 1, so the
    array's bytes are a Python 2 str and its module is numpy.core.multiarray."""

    def string(text: bytes) -> bytes:  # BINSTRING: a Python 2 str
        return b"T" + struct.pack("<i", len(text)) + text

    def integer(n: int) -> bytes:  # BININT
        return b"J" + struct.pack("<i", n)

    shape = b"(" + b"".join(integer(n) for n in data.shape) + b"t"
    state = b"(" + integer(3) + string(b"|") + b"NNN" + integer(-1) + integer(-1) + integer(0) + b"t"
    dtype = b"cnumpy\ndtype\n" + string(b"u1") + integer(0) + integer(1) + b"\x87R" + state + b"b"
    array = (
        b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n"
        + integer(0)
        + b"\x85"
        + string(b"b")
        + b"\x87R("
        + integer(1)
        + shape
        + dtype
        + b"\x89"
        + string(data.tobytes())
        + b"tb"
    )
    listed = b"](" + b"".join(integer(y) for y in labels) + b"e"
    return b"\x80\x02}(" + string(b"data") + array + string(b"labels") + listed + b"u."


@pytest.mark.parametrize("form", ["python2", "protocol2", "protocol2-numpy1", "protocol4", "protocol5"])
def test_cifar_batches_load_in_every_form_numpy_pickles(form):
    data = np.random.default_rng(0).integers(0, 256, (3, 3072), dtype=np.uint8)
    labels = [7, 0, 9]
    entry = {"data": data, "labels": labels, "batch_label": "training batch 1 of 5", "filenames": [b"a.png"]}
    if form == "python2":
        raw = python2_batch(data, labels)
        with warnings.catch_warnings():  # numpy.core is deprecated: Python's own unpickler as reference
            warnings.simplefilter("ignore", DeprecationWarning)
            reference = pickle.loads(raw, encoding="latin1")
        assert np.array_equal(reference["data"], data) and reference["labels"] == labels
        entry = {"data": data, "labels": labels}
    else:
        raw = pickle.dumps(entry, protocol=int(form[8]))
        if form.endswith("numpy1"):
            raw = raw.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
            assert b"numpy.core.multiarray" in raw
    loaded = read_batch(io.BytesIO(raw))
    assert loaded.keys() == entry.keys() and np.array_equal(loaded["data"], data)
    assert loaded["data"].dtype == np.uint8 and loaded["labels"] == labels
    assert {k: v for k, v in loaded.items() if k not in ("data",)} == {
        k: v for k, v in entry.items() if k not in ("data",)
    }


def test_incomplete_cifar_folder_names_the_missing_file(tmp_path):
    write_cifar(tmp_path, "cifar10", n_train=10, n_test=4)
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    for check in (True, False):
        with pytest.raises(DataError, match=r"cifar-10-batches-py lacks test_batch; re-extract"):
            load_cifar("cifar10", tmp_path, check_integrity=check)
