"""The shared trainer end to end: resume after SIGKILL, divergence, W&B offline, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lookahead.train.run_dir import RunDir, RunDirError, run_key
from lookahead.train.schema import validate
from lookahead.train.trainer import train
from tests.conftest import ROOT, compose_config, run_cli, tiny_overrides, wait_for
from tests.wandb_records import read_records


def only_run_dir(runs: Path) -> Path:
    (summary,) = runs.rglob("summary.json")
    return summary.parent


def test_resume_after_sigkill_matches_an_uninterrupted_run(data_root, tmp_path):
    # A wider MLP so that the run lasts long enough to be killed mid-way.
    args = [
        "experiment=mnist1d_lookahead",
        "model=mnist1d_mlp",
        "model.hidden=512",
        "trainer.max_epochs=4",
        "trainer.checkpoint_every_steps=5",
        "trainer.batch_size=32",
    ]
    reference = run_cli([*args, *tiny_overrides(data_root, tmp_path / "ref")], cwd=tmp_path)
    assert reference.returncode == 0, reference.stderr
    expected = json.loads((only_run_dir(tmp_path / "ref") / "summary.json").read_text())

    command = [
        sys.executable,
        str(ROOT / "experiments" / "train.py"),
        *args,
        *tiny_overrides(data_root, tmp_path / "killed"),
    ]
    proc = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for((tmp_path / "killed"), "checkpoints/last.pt", proc), (
        "the run ended before writing checkpoints/last.pt"
    )
    os.kill(proc.pid, signal.SIGKILL)  # no chance to clean up: mid-epoch, maybe mid-write
    proc.wait()
    run_dir = only_run_dir(tmp_path / "killed")
    interrupted = json.loads((run_dir / "summary.json").read_text())
    assert interrupted["status"] == "running" and interrupted["epochs_completed"] < 4

    resumed = run_cli([*args, *tiny_overrides(data_root, tmp_path / "killed")], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout
    final = json.loads((run_dir / "summary.json").read_text())
    assert final["status"] == "completed"
    assert final["final"] == expected["final"]  # exactly, not approximately
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]


def test_running_a_completed_run_again_changes_nothing(data_root, tmp_path):
    args = ["experiment=mnist1d_sgd", "trainer.max_epochs=1", *tiny_overrides(data_root, tmp_path)]
    assert run_cli(args, cwd=tmp_path).returncode == 0
    run_dir = only_run_dir(tmp_path)
    before = {p.name: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    again = run_cli(args, cwd=tmp_path)
    assert again.returncode == 0 and "already completed" in again.stdout
    assert {p.name: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before


def test_divergence_is_recorded_and_exits_cleanly(data_root, tmp_path):
    result = run_cli(
        [
            "experiment=mnist1d_sgd",
            "optimizer.lr=1e6",
            "trainer.max_epochs=3",
            "trainer.log_every_steps=1",
            *tiny_overrides(data_root, tmp_path),
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr  # a sweep goes on with the next job
    summary = json.loads((only_run_dir(tmp_path) / "summary.json").read_text())
    assert summary["status"] == "diverged" and summary["epochs_completed"] == 0
    assert "diverged" in result.stdout


def test_missing_cifar_says_where_to_put_it(tmp_path):
    result = run_cli(
        ["experiment=cifar10_sgd", f"paths.data={tmp_path / 'nothing'}", f"paths.runs={tmp_path}"],
        cwd=tmp_path,
    )
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: cifar10 not found") and "cifar-10-batches-py" in line
    assert str(tmp_path / "nothing" / "cifar") in line


def test_a_run_directory_is_never_shared(tmp_path):
    with RunDir(tmp_path / "run"), pytest.raises(RunDirError, match="in use by another process"):
        RunDir(tmp_path / "run")


def test_a_directory_with_another_config_is_refused(data_root, tmp_path):
    base = ["experiment=mnist1d_sgd", "trainer.max_epochs=1", *tiny_overrides(data_root, tmp_path)]
    train(validate(compose_config(base)), tmp_path / "run")
    with pytest.raises(RunDirError, match="different config"):
        train(validate(compose_config([*base, "optimizer.lr=0.5"])), tmp_path / "run")


def test_eval_weights_both_records_slow_and_fast(data_root, tmp_path):
    cfg = compose_config(
        [
            "experiment=mnist1d_lookahead",
            "trainer.max_epochs=1",
            "trainer.eval_weights=both",
            "lookahead.k=7",
            *tiny_overrides(data_root, tmp_path),
        ]
    )
    train(validate(cfg), tmp_path / "run")
    (record,) = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert {"test_accuracy", "test_accuracy_fast", "test_loss", "test_loss_fast"} <= set(record)
    assert record["step"] % 7 != 0  # mid-cycle: slow and fast weights differ
    assert record["test_loss"] != record["test_loss_fast"]


def test_wandb_offline_logs_config_metrics_and_summary(data_root, tmp_path):
    args = [
        "experiment=mnist1d_lookahead",
        "trainer.max_epochs=2",
        "logger=wandb",
        "logger.mode=offline",
        *tiny_overrides(data_root, tmp_path),
    ]
    result = run_cli(args, cwd=tmp_path, env={"WANDB_MODE": "offline"})
    assert result.returncode == 0, result.stderr
    (run_file,) = tmp_path.rglob("offline-run-*/run-*.wandb")
    records = read_records(run_file)
    kinds = [r.WhichOneof("record_type") for r in records]
    run = next(r.run for r in records if r.HasField("run"))
    key = run_key(["dataset.num_samples=600", "trainer.max_epochs=2"])
    assert run.run_group == f"mnist1d_lookahead/{key}"  # seeds share it
    config = {c.key: json.loads(c.value_json) for c in run.config.update}
    assert config["lookahead"]["k"] == 5 and config["method"] == "lookahead"
    assert kinds.count("history") == 2
    summary = {
        u.key: json.loads(u.value_json) for r in records if r.HasField("summary") for u in r.summary.update
    }
    on_disk = json.loads((only_run_dir(tmp_path) / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["final/test_accuracy"] == on_disk["final"]["test_accuracy"]
    # the summary's own values, not the last history row's
    assert summary["samples_per_s"] == on_disk["samples_per_s"]
    assert summary["wall_time_s"] == on_disk["wall_time_s"]
    assert next(r.exit for r in records if r.HasField("exit")).exit_code == 0


@pytest.mark.slow  # 40 s on the shared 2-core CPU
def test_user_dataset_and_model_from_their_own_config_dir(tmp_path):
    package = tmp_path / "my_project"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "stuff.py").write_text(
        "import torch\n"
        "from torch import nn\n"
        "from lookahead.data import Dataset\n\n"
        "def blobs(device='cpu', n=200, name='blobs'):\n"
        "    g = torch.Generator().manual_seed(0)\n"
        "    y = torch.randint(0, 3, (n,), generator=g)\n"
        "    x = torch.randn(n, 4, generator=g) + 3 * nn.functional.one_hot(y, 4).float()\n"
        "    return Dataset(name=name, train_x=x[:150].to(device), train_y=y[:150].to(device),\n"
        "                   test_x=x[150:].to(device), test_y=y[150:].to(device), num_classes=3, input_shape=(4,))\n\n"
        "def linear(num_classes, width=4):\n"
        "    return nn.Linear(width, num_classes)\n"
    )
    configs = tmp_path / "my_configs"
    (configs / "dataset").mkdir(parents=True)
    (configs / "model").mkdir()
    # no `name:`: the label falls back to the target's name (it used to be a Hydra AssertionError)
    (configs / "dataset" / "blobs.yaml").write_text("_target_: my_project.stuff.blobs\nn: 200\n")
    (configs / "model" / "linear.yaml").write_text("_target_: my_project.stuff.linear\nwidth: 4\n")
    result = run_cli(
        [
            "--config-dir",
            str(configs),
            "dataset=blobs",
            "model=linear",
            "lookahead=on",
            "trainer.max_epochs=3",
            f"paths.runs={tmp_path / 'runs'}",
            "device=cpu",
        ],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((only_run_dir(tmp_path / "runs") / "summary.json").read_text())
    assert summary["dataset"] == "blobs" and summary["experiment"] == "blobs_lookahead"
    assert summary["status"] == "completed" and summary["final"]["test_accuracy"] > 0.8


@pytest.mark.slow  # 38 s on the shared 2-core CPU
def test_polyak_evaluates_the_average_only_once_averaging_began(data_root, tmp_path):
    common = ["trainer.max_epochs=2", *tiny_overrides(data_root, tmp_path)]
    train(validate(compose_config(["experiment=mnist1d_sgd", *common])), tmp_path / "sgd")
    train(
        validate(compose_config(["experiment=mnist1d_polyak", "averaging.start_epoch=1", *common])),
        tmp_path / "polyak",
    )
    sgd, polyak = (
        [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
        for name in ("sgd", "polyak")
    )
    # same hyperparameters and seed: identical until averaging starts after epoch 1, then the average
    assert polyak[0]["test_loss"] == sgd[0]["test_loss"]
    assert polyak[1]["train_loss"] == sgd[1]["train_loss"] and polyak[1]["test_loss"] != sgd[1]["test_loss"]


def test_the_first_epoch_after_a_resume_counts_only_what_it_trained(data_root, tmp_path, monkeypatch):
    """The throughput of a resumed epoch is the samples trained since the resume over the time since:
    with a clock that moves 1 s per optimizer step, every epoch trains batch_size samples/s."""
    import signal

    from lookahead.train import trainer

    clock = [0.0]
    monkeypatch.setattr(trainer.time, "perf_counter", lambda: clock[0])
    step, between = trainer.Loop.optimizer_step, trainer.Loop.between_steps

    def timed_step(self, micro):
        clock[0] += 1.0
        step(self, micro)

    def stop_at_step_4(self):  # as Ctrl-C would, mid-epoch
        if self.state.step == 4 and not self.resumed:
            self.signals.requested = signal.SIGINT
        between(self)

    monkeypatch.setattr(trainer.Loop, "optimizer_step", timed_step)
    monkeypatch.setattr(trainer.Loop, "between_steps", stop_at_step_4)
    cfg = compose_config(
        [
            "experiment=mnist1d_sgd",
            "trainer.max_epochs=2",
            "trainer.batch_size=40",
            *tiny_overrides(data_root, tmp_path),
        ]
    )
    with pytest.raises(SystemExit) as stopped:
        train(validate(cfg), tmp_path / "run")
    assert stopped.value.code == 130
    train(validate(cfg), tmp_path / "run")
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]  # the first one resumed at step 4
    assert [r["samples_per_s"] for r in records] == [40.0, 40.0]  # was (4 + 8) x 40 / 8 = 60 before
