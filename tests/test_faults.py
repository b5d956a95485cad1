"""Bad values and faults, each through the command line as a user meets it: the exit code, one `error:`
line naming the field or file, no traceback, and what is (not) on disk afterwards."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT, run_cli, tiny_overrides, wait_for

BASE = ["experiment=mnist1d_lookahead", "trainer.max_epochs=2"]

# (overrides, text the one error line must contain): every one is refused before anything is written.
BAD_VALUES = [
    (["optimizer.lr=abc"], "optimizer.lr='abc'"),
    (["optimizer.lr=-0.1"], "optimizer.lr=-0.1"),
    (["optimizer.lr=1e300"], "optimizer.lr=1e+300"),
    (["optimizer.lr=nan"], "optimizer.lr=nan"),
    (["optimizer.weight_decay=-1"], "optimizer.weight_decay=-1"),
    (["trainer.max_epochs=abc"], "trainer.max_epochs='abc'"),
    (["trainer.max_epochs=0"], "trainer.max_epochs=0"),
    (["trainer.max_epochs=1.5"], "trainer.max_epochs=1.5"),
    (["trainer.max_epochs="], "trainer.max_epochs=''"),
    (["seed=1.5"], "seed=1.5"),
    (["seed=-1"], "seed=-1"),
    (["schedule=multistep", "schedule.milestones=abc"], "schedule.milestones='abc'"),
    (["schedule=multistep", "schedule.milestones=[-5]"], "schedule.milestones=[-5]"),
    (["schedule=multistep", "schedule.milestones=[1,50]"], "epochs within the run"),
    (["schedule=multistep", "schedule.gamma=0"], "schedule.gamma=0"),
    (["schedule=cosine", "schedule.min_factor=2"], "schedule.min_factor=2"),
    (["schedule=plateau", "schedule.patience=0"], "schedule.patience=0"),
    (["+schedule.warmup_steps=10"], "unknown field schedule.warmup_steps"),
    (["device=tpu"], "device='tpu'"),
    (["trainer.log_every_steps=0"], "trainer.log_every_steps=0"),
    (["trainer.precision=fp8"], "trainer.precision='fp8'"),
    (["trainer.fast_path=maybe"], "trainer.fast_path='maybe'"),
    (["trainer.compile=fast"], "trainer.compile='fast'"),
    (["trainer.cuda_graphs=true"], "trainer.cuda_graphs=true cannot be used: CUDA graphs need a CUDA device"),
    (["trainer.progress=fancy"], "trainer.progress='fancy'"),
    (["trainer.eval_weights=median"], "trainer.eval_weights='median'"),
    (["trainer.checkpoint_every_steps=-5"], "trainer.checkpoint_every_steps=-5"),
    (["trainer.batch_size=0"], "trainer.batch_size=0"),
    (["trainer.eval_batch_size=-1"], "trainer.eval_batch_size=-1"),
    (["trainer.accumulate_steps=0"], "trainer.accumulate_steps=0"),
    (["trainer.clip_grad_norm=-1"], "trainer.clip_grad_norm=-1"),
    (["trainer.bn_recalibration_batches=-1"], "trainer.bn_recalibration_batches=-1"),
    (["trainer.limit_train_batches=0"], "trainer.limit_train_batches=0"),
    (["trainer.dist_timeout_s=0"], "trainer.dist_timeout_s=0"),
    (["+trainer.foo=1"], "unknown field trainer.foo"),
    (["+lookahead.beta=2"], "unknown field lookahead.beta"),
    (["lookahead.k=0"], "lookahead.k=0"),
    (["lookahead.k=2.5"], "lookahead.k=2.5"),
    (["lookahead.k=1e20"], "lookahead.k=1e+20"),
    (["lookahead.k=100000"], "at most the run's 16 optimizer steps"),
    (["lookahead.alpha=1.5"], "lookahead.alpha=1.5"),
    (["lookahead.alpha=0"], "lookahead.alpha=0"),
    (["lookahead.pullback_momentum=sideways"], "lookahead.pullback_momentum='sideways'"),
    (["averaging=polyak", "averaging.start_epoch=-1"], "averaging.start_epoch=-1"),
    (["averaging=polyak", "averaging.start_epoch=5"], "averaging.start_epoch=5"),
    (["logger.name=tensorboard"], "logger.name='tensorboard'"),
    (["experiment_name=../../../escaped"], "experiment_name='../../../escaped'"),
    (["experiment_name=a/b"], "experiment_name='a/b'"),
    (["dataset.name=a/b"], "dataset.name='a/b'"),
    (["optimizer=adagrad_typo"], "Could not find 'optimizer/adagrad_typo'"),
    (["foo=1"], "Could not override 'foo'"),
    (["trainer.max_epochs=[1"], "cannot parse 'trainer.max_epochs=[1'"),
    (["trainer.accumulate_steps=100"], "fewer than trainer.accumulate_steps=100"),
]


def one_error_line(result: subprocess.CompletedProcess) -> str:
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ")
    return line


def nothing_written(runs: Path) -> bool:
    return not runs.exists() or not any(p.is_file() for p in runs.rglob("*"))


@pytest.mark.parametrize(("overrides", "expected"), BAD_VALUES, ids=[" ".join(o) for o, _ in BAD_VALUES])
def test_bad_values_give_one_clear_line_and_write_nothing(overrides, expected, data_root, tmp_path):
    runs = tmp_path / "runs"
    result = run_cli([*BASE, *tiny_overrides(data_root, runs), *overrides], cwd=tmp_path)  # ours win
    assert result.returncode == 1
    assert expected in one_error_line(result)
    assert nothing_written(runs)


# -- faults in files a run left behind ---------------------------------------------------------------


def stopped_run(data_root: Path, tmp_path: Path) -> Path:
    """A run directory whose run stopped after epoch 1 of 2 (as if killed), ready to resume."""
    assert resume(data_root, tmp_path).returncode == 0
    (summary_path,) = (tmp_path / "runs").rglob("summary.json")
    summary = json.loads(summary_path.read_text())
    summary["status"] = "interrupted"
    summary_path.write_text(json.dumps(summary))
    return summary_path.parent


def resume(data_root: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    return run_cli([*BASE, *extra, *tiny_overrides(data_root, tmp_path / "runs")], cwd=tmp_path)


@pytest.mark.parametrize("cut", [40_000, 100, 0])
def test_a_cut_checkpoint_is_one_corrupt_checkpoint_line_and_is_kept(cut, data_root, tmp_path):
    run = stopped_run(data_root, tmp_path)
    ckpt = run / "checkpoints" / "last.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:cut])
    before = ckpt.read_bytes()
    result = resume(data_root, tmp_path)
    assert result.returncode == 1
    assert "checkpoint" in one_error_line(result) and "corrupt" in result.stderr
    assert ckpt.read_bytes() == before


def test_an_old_format_checkpoint_is_refused_by_name(data_root, tmp_path):
    run = stopped_run(data_root, tmp_path)
    torch.save({"model": {}, "optimizer": {}, "state": {}}, run / "checkpoints" / "last.pt")
    result = resume(data_root, tmp_path)
    assert result.returncode == 1 and "older version" in one_error_line(result)


def test_a_checkpoint_that_does_not_fit_the_model_names_the_tensor_and_both_shapes(data_root, tmp_path):
    # The same config (hash) after the model's code changed: the checkpoint's tensors no longer fit.
    run = stopped_run(data_root, tmp_path)
    ckpt = run / "checkpoints" / "last.pt"
    state = torch.load(ckpt, weights_only=True)
    name, tensor = next(iter(state["setup"]["model"].items()))
    state["setup"]["model"][name] = tensor[1:]  # one row fewer than the model has
    torch.save(state, ckpt)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    result = resume(data_root, tmp_path)
    assert result.returncode == 1
    assert one_error_line(result) == (
        f"error: checkpoint {ckpt} does not fit the model (its code changed since?): {name} has shape "
        f"{tuple(tensor[1:].shape)} there, {tuple(tensor.shape)} in the model; move it away to start the "
        f"run afresh"
    )
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before  # nothing lost


def test_a_deleted_config_cannot_let_another_config_resume_the_checkpoint(data_root, tmp_path):
    run = stopped_run(data_root, tmp_path)
    (run / "config.yaml").unlink()
    # same directory (hydra.run.dir), different learning rate: the checkpoint knows its config
    result = resume(data_root, tmp_path, "optimizer.lr=0.5", f"hydra.run.dir={run}")
    assert result.returncode == 1
    assert "written under another config" in one_error_line(result)
    assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"


def test_a_garbled_config_yaml_names_the_file(data_root, tmp_path):
    run = stopped_run(data_root, tmp_path)
    (run / "config.yaml").write_text("trainer: [unclosed\n  : : :")
    result = resume(data_root, tmp_path)
    assert result.returncode == 1 and str(run / "config.yaml") in one_error_line(result)


@pytest.mark.parametrize("content", [b"\x80\x81\x00binary", b'{"final": {}}', b"[1, 2]"])
def test_a_damaged_summary_names_the_file(content, data_root, tmp_path):
    run = stopped_run(data_root, tmp_path)
    (run / "summary.json").write_bytes(content)
    result = resume(data_root, tmp_path)
    assert result.returncode == 1 and str(run / "summary.json") in one_error_line(result)


def test_a_torn_last_metrics_line_is_dropped_and_the_run_resumes(data_root, tmp_path):
    run = stopped_run(data_root, tmp_path)
    (run / "checkpoints" / "last.pt").unlink()  # resume from scratch is not the point: keep epoch 1 ...
    run_dir_args = [f"hydra.run.dir={run}"]
    metrics = run / "metrics.jsonl"
    first = metrics.read_text().splitlines()[0]
    metrics.write_text(first + "\n" + first[:50])  # ... and a second line cut by a full disk
    result = resume(data_root, tmp_path, *run_dir_args)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]


def test_a_diverged_run_stays_diverged_when_run_again(data_root, tmp_path):
    args = ["optimizer.lr=1e5", "lookahead.alpha=1.0"]
    first = resume(data_root, tmp_path, *args)
    assert first.returncode == 0
    (summary,) = (tmp_path / "runs").rglob("summary.json")
    assert json.loads(summary.read_text())["status"] == "diverged"
    before = {p: p.read_bytes() for p in summary.parent.rglob("*") if p.is_file()}
    again = resume(data_root, tmp_path, *args)
    assert again.returncode == 0 and "already diverged" in again.stdout
    assert {p: p.read_bytes() for p in summary.parent.rglob("*") if p.is_file()} == before


def test_a_read_only_runs_folder_is_one_line(data_root, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root ignores directory permissions")
    runs = tmp_path / "runs"
    runs.mkdir()
    runs.chmod(0o500)
    result = resume(data_root, tmp_path)
    assert result.returncode == 1 and str(runs) in one_error_line(result)


def test_a_file_where_the_run_directory_should_be_is_one_line(data_root, tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "mnist1d_lookahead").write_text("in the way")
    result = resume(data_root, tmp_path)
    assert result.returncode == 1 and "mnist1d_lookahead" in one_error_line(result)


@pytest.mark.parametrize("inside", [False, True], ids=["the file", "a folder inside it"])
def test_an_existing_file_as_hydra_run_dir_is_one_line_and_is_kept(inside, data_root, tmp_path):
    existing = tmp_path / "notes.txt"
    existing.write_text("my notes")
    target = existing / "run" if inside else existing
    result = run_cli(
        [*BASE, *tiny_overrides(data_root, tmp_path / "runs"), f"hydra.run.dir={target}"], tmp_path
    )
    assert result.returncode == 1
    assert one_error_line(result) == f"error: cannot create the run directory {target}: a file is in the way"
    assert existing.read_text() == "my notes" and nothing_written(tmp_path / "runs")


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_sigint_checkpoint_record_interrupted_and_resume(sig, code, data_root, tmp_path):
    args = [
        *BASE,
        "trainer.max_epochs=30",
        "model=mnist1d_mlp",
        "model.hidden=512",
        "trainer.batch_size=32",
        *tiny_overrides(data_root, tmp_path / "runs"),
    ]
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "experiments" / "train.py"), *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert wait_for((tmp_path / "runs"), "metrics.jsonl", proc), "the run ended before writing metrics.jsonl"
    proc.send_signal(sig)
    out, err = proc.communicate()
    assert proc.returncode == code, err
    assert "Traceback" not in out + err and f"stopped by signal {signal.Signals(sig).name}" in out
    (summary_path,) = (tmp_path / "runs").rglob("summary.json")
    summary = json.loads(summary_path.read_text())
    assert summary["status"] == "interrupted" and summary["reason"] == f"signal {signal.Signals(sig).name}"
    assert not list(summary_path.parent.rglob("*.tmp"))
    resumed = run_cli(args, cwd=tmp_path)
    assert resumed.returncode == 0 and "resuming" in resumed.stdout
    assert json.loads(summary_path.read_text())["status"] == "completed"


def test_a_sweep_runs_its_good_jobs_past_a_bad_one_and_counts_it(data_root, tmp_path):
    result = run_cli(
        ["--multirun", *BASE, "lookahead.alpha=1.5,0.5", *tiny_overrides(data_root, tmp_path / "runs")],
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "lookahead.alpha=1.5" in errors[0]
    assert result.stderr.strip().splitlines()[-1] == "sweep: 1 of 2 jobs ran, 1 failed"
    (summary,) = (tmp_path / "runs").rglob("summary.json")
    assert json.loads(summary.read_text())["status"] == "completed"


# -- bad values in every group and workload, run in this process (a tenth of a second each) ------------
MNIST = ["experiment=mnist1d_lookahead"]
CIFAR = ["experiment=cifar10_sgd"]
PTB = ["experiment=ptb_small_lookahead"]
SYNTH = ["experiment=synth_lookahead_adam"]
WMT = ["experiment=wmt14_adam"]
IMAGENET = ["experiment=imagenet_sgd"]

# (base, overrides, the text the one error line must contain): all refused before any data is read.
GROUP_BAD_VALUES = [
    # top level
    (MNIST, ["seed=abc"], "seed='abc'"),
    (MNIST, ["seed=true"], "seed=True"),
    (MNIST, ["seed=99999999999"], "seed=99999999999"),
    *([] if torch.cuda.is_available() else [(MNIST, ["device=cuda"], "device='cuda'")]),
    (MNIST, ["device=cuda:x"], "device='cuda:x'"),
    (MNIST, ["method=a/b"], "method='a/b'"),
    (MNIST, ["paths.runs="], "paths.runs=''"),
    (MNIST, ["+extra_field=1"], "unknown field extra_field"),
    # lookahead
    (MNIST, ["lookahead.enabled=1"], "lookahead.enabled=1"),
    (MNIST, ["lookahead.enabled=maybe"], "lookahead.enabled='maybe'"),
    (MNIST, ["lookahead.k=nan"], "lookahead.k=nan"),
    (MNIST, ["lookahead.k=-3"], "lookahead.k=-3"),
    (MNIST, ["lookahead.alpha=nan"], "lookahead.alpha=nan"),
    (MNIST, ["lookahead.alpha=inf"], "lookahead.alpha=inf"),
    (MNIST, ["lookahead.k=null"], "lookahead.k=None"),
    # averaging
    (MNIST, ["averaging=polyak", "averaging.enabled=yes"], "averaging.enabled='yes'"),
    (MNIST, ["averaging=polyak", "averaging.start_epoch=nan"], "averaging.start_epoch=nan"),
    (MNIST, ["averaging=polyak", "+averaging.every=2"], "unknown field averaging.every"),
    # schedule
    (MNIST, ["schedule=warmup", "schedule.warmup_epochs=null"], "schedule.warmup_steps=None"),
    (MNIST, ["schedule=warmup", "schedule.warmup_steps=-1"], "schedule.warmup_steps=-1"),
    (MNIST, ["schedule=warmup", "schedule.warmup_epochs=abc"], "schedule.warmup_epochs='abc'"),
    (MNIST, ["schedule=cosine", "schedule.min_factor=nan"], "schedule.min_factor=nan"),
    (MNIST, ["schedule=plateau", "schedule.factor=0"], "schedule.factor=0"),
    (MNIST, ["schedule=plateau", "schedule.factor=1.5"], "schedule.factor=1.5"),
    (MNIST, ["schedule=plateau", "schedule.patience=2.5"], "schedule.patience=2.5"),
    (MNIST, ["schedule=multistep", "schedule.gamma=-1", "schedule.milestones=[1]"], "schedule.gamma=-1"),
    (MNIST, ["schedule=multistep", "schedule.milestones=[1.5]"], "schedule.milestones=[1.5]"),
    (MNIST, ["schedule.name=fancy"], "schedule.name='fancy'"),
    # trainer
    (MNIST, ["trainer.fast_path=1"], "trainer.fast_path=1"),
    (MNIST, ["trainer.channels_last=maybe"], "trainer.channels_last='maybe'"),
    (MNIST, ["trainer.cudnn_benchmark=2"], "trainer.cudnn_benchmark=2"),
    (MNIST, ["trainer.cuda_graphs=yes"], "trainer.cuda_graphs='yes'"),
    (MNIST, ["trainer.compile=1"], "trainer.compile=1"),
    (MNIST, ["trainer.log_every_steps=1.5"], "trainer.log_every_steps=1.5"),
    (MNIST, ["trainer.eval_every_steps=-1"], "trainer.eval_every_steps=-1"),
    (MNIST, ["trainer.clip_grad_norm=nan"], "trainer.clip_grad_norm=nan"),
    (MNIST, ["trainer.clip_grad_norm=inf"], "trainer.clip_grad_norm=inf"),
    (MNIST, ["trainer.dist_timeout_s=abc"], "trainer.dist_timeout_s='abc'"),
    (MNIST, ["trainer.batch_size=true"], "trainer.batch_size=True"),
    (MNIST, ["trainer.max_epochs=nan"], "trainer.max_epochs=nan"),
    (MNIST, ["~trainer.accumulate_steps"], "trainer.accumulate_steps is missing"),
    # logger
    (MNIST, ["logger=wandb", "logger.project="], "logger.project=''"),
    (MNIST, ["logger=wandb", "logger.mode=sometimes"], "logger.mode='sometimes'"),
    (MNIST, ["logger=wandb", "logger.tags=abc"], "logger.tags='abc'"),
    (MNIST, ["+logger.foo=1"], "unknown field logger.foo"),
    # optimizer: every option
    (MNIST, ["optimizer.momentum=abc"], "optimizer.momentum='abc'"),
    (MNIST, ["optimizer.momentum=nan"], "optimizer.momentum=nan"),
    (MNIST, ["optimizer.nesterov=maybe"], "optimizer.nesterov='maybe'"),
    (MNIST, ["optimizer.lr=inf"], "optimizer.lr=inf"),
    (MNIST, ["+optimizer.betas=[0.9,0.99]"], "unknown field optimizer.betas: torch.optim.SGD takes"),
    (MNIST, ["optimizer=adam", "optimizer.betas=abc"], "optimizer.betas='abc'"),
    (MNIST, ["optimizer=adam", "optimizer.eps=nan"], "optimizer.eps=nan"),
    (MNIST, ["optimizer=adamw", "+optimizer.amsgrad=1"], "optimizer.amsgrad=1"),
    (MNIST, ["optimizer=rmsprop", "optimizer.alpha=abc"], "optimizer.alpha='abc'"),
    (MNIST, ["optimizer=adagrad", "optimizer.eps=inf"], "optimizer.eps=inf"),
    (MNIST, ["optimizer=adafactor", "optimizer.d=abc"], "optimizer.d='abc'"),
    (MNIST, ["optimizer._target_=torch.optim.Nope"], "optimizer._target_='torch.optim.Nope'"),
    (MNIST, ["optimizer=adam", "optimizer.betas=[0.9,1.5]"], "optimizer.betas=[0.9, 1.5] is not allowed"),
    (MNIST, ["optimizer=adam", "optimizer.betas=[0.9]"], "optimizer.betas=[0.9]"),
    (MNIST, ["optimizer.momentum=-1"], "optimizer.momentum=-1 is not allowed"),
    (MNIST, ["optimizer=adam", "optimizer.eps=-1"], "optimizer.eps=-1 is not allowed: torch.optim.Adam"),
    # optimizers whose signatures carry no ranges (lookahead/train/declared.py), and their own asserts
    (MNIST, ["optimizer=muon", "optimizer.momentum=1.5"], "optimizer.momentum=1.5 is not allowed"),
    (MNIST, ["optimizer=muon", "optimizer.ns_steps=0"], "optimizer.ns_steps=0 is not allowed"),
    (MNIST, ["optimizer=muon", "optimizer.ns_steps=-3"], "optimizer.ns_steps=-3 is not allowed"),
    (MNIST, ["optimizer=muon", "optimizer.adamw_betas=[0.9,1.5]"], "optimizer.adamw_betas=[0.9, 1.5]"),
    (MNIST, ["optimizer=schedulefree_adamw", "optimizer.betas=[0.9,1.5]"], "optimizer.betas=[0.9, 1.5]"),
    (MNIST, ["optimizer=schedulefree_adamw", "optimizer.warmup_steps=-1"], "optimizer.warmup_steps=-1"),
    (MNIST, ["optimizer=schedulefree_adamw", "optimizer.eps=-1e-8"], "optimizer.eps=-1e-08 is not"),
    (MNIST, ["optimizer=lion", "optimizer.lr=0"], "optimizer.lr=0 is not allowed"),
    (MNIST, ["optimizer=lion", "optimizer.lr=-1e-4"], "optimizer.lr=-0.0001 is not allowed"),
    (MNIST, ["optimizer=lion", "optimizer.betas=[1.5,0.99]"], "optimizer.betas=[1.5, 0.99] is not allowed"),
    (MNIST, ["optimizer=lion", "optimizer.weight_decay=-0.1"], "optimizer.weight_decay=-0.1 is not"),
    (MNIST, ["optimizer=adafactor", "optimizer.beta2_decay=0.5"], "optimizer.beta2_decay=0.5 is not"),
    # model
    (MNIST, ["model.channels=0"], "model.channels=0"),
    (MNIST, ["model.batch_norm=maybe"], "model.batch_norm='maybe'"),
    (MNIST, ["model=mnist1d_mlp", "model.depth=-1"], "model.depth=-1"),
    (MNIST, ["model=mnist1d_mlp", "model.hidden=abc"], "model.hidden='abc'"),
    (MNIST, ["+model.foo=1"], "unknown field model.foo"),
    (MNIST, ["model._target_=nope.nothing"], "model._target_='nope.nothing'"),
    (MNIST, ["model=awd_lstm"], "does not fit dataset=mnist1d"),
    # dataset: MNIST-1D
    (MNIST, ["dataset.num_samples=0"], "dataset.num_samples=0"),
    (MNIST, ["dataset.train_split=1.5"], "dataset.train_split=1.5"),
    (MNIST, ["dataset.train_split=nan"], "dataset.train_split=nan"),
    (MNIST, ["+dataset.foo=1"], "unknown field dataset.foo"),
    (MNIST, ["dataset.targets=[0.5,nan]"], "dataset.targets=[0.5, nan]"),
    (MNIST, ["dataset.targets=abc"], "dataset.targets='abc'"),
    # CIFAR
    (CIFAR, ["dataset.augment=maybe"], "dataset.augment='maybe'"),
    (CIFAR, ["dataset.limit_train=0"], "dataset.limit_train=0"),
    (CIFAR, ["dataset.download=1"], "dataset.download=1"),
    (CIFAR, ["model.width=0"], "model.width=0"),
    # Penn Treebank
    (PTB, ["dataset.eval_bptt=-5"], "dataset.eval_bptt=-5"),
    (PTB, ["dataset.variable_bptt=maybe"], "dataset.variable_bptt='maybe'"),
    (PTB, ["dataset.bptt_p=1.5"], "dataset.bptt_p=1.5"),
    (PTB, ["dataset.source=web"], "dataset.source='web'"),
    (PTB, ["dataset.min_seq_len=0"], "dataset.min_seq_len=0"),
    (PTB, ["dataset.eval_batch_size=-2"], "dataset.eval_batch_size=-2 is not allowed"),
    (PTB, ["dataset.batch_size=0"], "dataset.batch_size=0 is not allowed"),
    (PTB, ["model.dropout=1.5"], "model.dropout=1.5"),
    (["experiment=ptb_lookahead"], ["model.wdrop=-0.1"], "model.wdrop=-0.1"),
    # translation
    (SYNTH, ["dataset.beam=0"], "dataset.beam=0"),
    (SYNTH, ["dataset.length_penalty=-1"], "dataset.length_penalty=-1"),
    (SYNTH, ["dataset.bleu_split=train"], "dataset.bleu_split='train'"),
    (SYNTH, ["dataset.max_len_ratio=-1"], "dataset.max_len_ratio=-1"),
    (SYNTH, ["dataset.label_smoothing=1.5"], "dataset.label_smoothing=1.5"),
    (SYNTH, ["dataset.bleu_max_sentences=0"], "dataset.bleu_max_sentences=0"),
    (SYNTH, ["model.heads=abc"], "model.heads='abc'"),
    (SYNTH, ["model.dropout=nan"], "model.dropout=nan"),
    (WMT, ["dataset.sacrebleu_tokenize=5"], "dataset.sacrebleu_tokenize=5"),
    (WMT, ["dataset.decode_extra_len=-1"], "dataset.decode_extra_len=-1"),
    # ImageNet
    (IMAGENET, ["dataset.workers=-1"], "dataset.workers=-1"),
    (IMAGENET, ["dataset.image_size=0"], "dataset.image_size=0"),
    (IMAGENET, ["dataset.channels_last=maybe"], "dataset.channels_last='maybe'"),
    (IMAGENET, ["model.zero_init_residual=maybe"], "model.zero_init_residual='maybe'"),
]


def run_in_process(args: list[str]) -> subprocess.CompletedProcess:
    """experiments/train.py run as ``__main__`` in this process (its startup is most of a subprocess's
    time), with its exit code and output as a CompletedProcess."""
    import contextlib
    import io
    import runpy

    import hydra._internal.utils as hydra_utils
    from hydra.core.global_hydra import GlobalHydra

    script = str(ROOT / "experiments" / "train.py")
    original, argv = hydra_utils.run_and_report, sys.argv
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level  # Hydra points the root logger at the captured stdout
    out, err, code = io.StringIO(), io.StringIO(), 0
    sys.argv = [script, *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            runpy.run_path(script, run_name="__main__")
    except SystemExit as exit_:
        code = exit_.code
    finally:
        hydra_utils.run_and_report, sys.argv = original, argv  # the script patches Hydra's reporting
        root.handlers[:], root.level = handlers, level
        GlobalHydra.instance().clear()  # @hydra.main leaves Hydra initialised: compose_config would fail
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


@pytest.mark.parametrize(
    ("base", "overrides", "expected"),
    GROUP_BAD_VALUES,
    ids=[" ".join(b + o) for b, o, _ in GROUP_BAD_VALUES],
)
def test_bad_values_in_every_group_and_workload_are_one_line_before_anything_runs(
    base, overrides, expected, data_root, tmp_path
):
    runs = tmp_path / "runs"
    common = [f"paths.data={data_root}", f"paths.runs={runs}", "trainer.progress=lines", "device=cpu"]
    result = run_in_process([*base, *common, *overrides])
    assert result.returncode == 1
    assert expected in one_error_line(result)
    assert nothing_written(runs)


def test_the_slurm_launcher_without_slurm_is_one_line(tmp_path):
    if shutil.which("srun"):
        pytest.skip("this machine has SLURM")
    runs = tmp_path / "runs"
    result = run_cli(
        ["-m", "hydra/launcher=slurm", "experiment=mnist1d_sgd", f"paths.runs={runs}"], cwd=tmp_path
    )
    assert result.returncode == 1
    assert "hydra/launcher=slurm needs a SLURM cluster" in one_error_line(result)
    assert nothing_written(runs)
