"""Every long command shows progress and stops cleanly: SIGINT (Ctrl-C) or SIGTERM after its first
progress output ends it with one `stopped by signal ...` line saying what was saved, exit code 130 / 143
and no traceback (the trainer's own stop is tested in test_faults.py)."""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import MNIST1D_SAMPLES, ROOT
from tests.test_ptb import random_corpus

CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


def stop_after(command: list[str], marker: str, sig: int, cwd: Path) -> str:
    """Start ``command``, send ``sig`` once a line with ``marker`` has been written whole (stdout and
    stderr together: up to its newline, or a tqdm bar up to the closing bracket of its rate), and return
    everything it printed."""
    proc = subprocess.Popen(
        command,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"},
        # A suite started in the background (`make test &`) inherits SIGINT ignored, and Python then
        # keeps ignoring it: give the child the disposition a terminal's Ctrl-C meets.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    seen = b""
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    while not re.search(re.escape(marker).encode() + rb"[^\r\n]*[\r\n\]]", seen):
        assert proc.poll() is None, seen.decode(errors="replace")  # ended before saying it
        if selector.select(timeout=1):
            seen += os.read(proc.stdout.fileno(), 65536)
    proc.send_signal(sig)
    rest, _ = proc.communicate()
    output = (seen + rest).decode(errors="replace")
    assert proc.returncode == CODES[sig], output
    assert "Traceback" not in output
    lines = [line for line in output.replace("\r", "\n").splitlines() if "stopped by signal" in line]
    assert lines == [lines[0]] and lines[0].startswith(f"stopped by signal {signal.Signals(sig).name}: ")
    assert output.rstrip().endswith(lines[0]), output  # the last thing said
    return output


def python(script: str, *args: str) -> list[str]:
    return [sys.executable, str(ROOT / script), *args]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_inner_loop_study_stops_with_one_line(sig, data_root, tmp_path):
    command = python(
        "experiments/fast_slow.py",
        f"out={tmp_path}",
        f"paths.data={data_root}",
        f"dataset.num_samples={MNIST1D_SAMPLES}",
        "warmup_epochs=1000",
    )
    output = stop_after(command, "seed 1: 1000 epochs", sig, tmp_path)
    assert "nothing saved (fast_slow.{png,pdf,json} are written at the end)" in output
    assert not list(tmp_path.glob("fast_slow.*"))


def test_surface_stops_during_the_grid(data_root, tmp_path):
    command = python(
        "experiments/surface.py",
        f"out={tmp_path}",
        f"paths.data={data_root}",
        f"dataset.num_samples={MNIST1D_SAMPLES}",
        "warmup_epochs=0",
        "window=5",
        "grid=400",
    )
    output = stop_after(command, "accuracy surface", signal.SIGINT, tmp_path)
    assert "surface.{png,pdf,json} are written at the end" in output


def test_nqm_shows_progress_and_stops(tmp_path):
    output = stop_after(
        python("experiments/nqm.py", f"out={tmp_path}", "dim=2000", "points=400"),
        "(a) one Lookahead frontier per alpha",
        signal.SIGTERM,
        tmp_path,
    )
    assert "nqm.{png,pdf,json}" in output and not list(tmp_path.glob("nqm.*"))


def test_quadratic_stops(tmp_path):
    command = python("experiments/quadratic.py", f"out={tmp_path}", "points=200000")
    output = stop_after(command, "condition numbers", signal.SIGINT, tmp_path)
    assert "quadratic.{png,pdf,json}" in output


def test_bench_trainer_stops(tmp_path):
    command = python("scripts/bench_trainer.py", "--epochs", "1", "--repeats", "1", "--data", str(tmp_path))
    stop_after(command, "1. trainer vs minimal loop", signal.SIGINT, tmp_path)


def test_bench_optimizer_stops(tmp_path):
    command = python(
        # --no-fused-step: its compile (minutes on a loaded machine) is not what this test is about
        "scripts/bench_optimizer.py",
        "--models",
        "resnet18",
        "--inners",
        "sgd",
        "--blocks",
        "1000",
        "--no-fused-step",
    )
    output = stop_after(command, "resnet18 sgd", signal.SIGTERM, tmp_path)
    assert "nothing saved (the benchmark only prints" in output


def test_bench_ptb_stops(tmp_path):
    random_corpus(tmp_path / "ptb")
    command = python("scripts/bench_ptb.py", "--data", str(tmp_path), "--source", "files", "--steps", "2")
    stop_after(command, "threads", signal.SIGINT, tmp_path)


def test_bench_gpu_stops(tmp_path):
    stop_after(python("scripts/bench_gpu.py"), "device:", signal.SIGTERM, tmp_path)


def test_bench_imagenet_stops(tmp_path):
    command = python("scripts/bench_imagenet.py", "--model", "resnet18", "--out", str(tmp_path / "out"))
    output = stop_after(command, "generating", signal.SIGINT, tmp_path)
    assert "the JSON and Markdown are written at the end" in output and not (tmp_path / "out").exists()


def test_a_trainer_run_inside_a_command_hands_its_stop_on(data_root, tmp_path):
    """A benchmark that calls train(): the trainer stops at a step boundary and checkpoints (in its
    own run folder), then the command stops with its one line."""
    run = tmp_path / "run"
    code = f"""
import contextlib, io, sys, threading, time
from pathlib import Path
sys.path.insert(0, {str(ROOT)!r})
from tests.conftest import compose_config
from lookahead.train.signals import stop_cleanly
from lookahead.train.trainer import train
from lookahead.train.schema import validate
cfg = compose_config(["experiment=mnist1d_lookahead", "trainer.max_epochs=1000", "paths.data={data_root}",
                      "dataset.num_samples={MNIST1D_SAMPLES}", "trainer.progress=lines", "device=cpu"])
def tell():  # the trainer's first evaluation is written: it is inside its loop
    while not (Path({str(run)!r}) / "metrics.jsonl").exists():
        time.sleep(0.02)
    print("training", file=sys.stderr, flush=True)
threading.Thread(target=tell, daemon=True).start()
with stop_cleanly("nothing saved (test)"), contextlib.redirect_stdout(io.StringIO()):
    train(validate(cfg), Path({str(run)!r}))
"""
    output = stop_after([sys.executable, "-c", code], "training", signal.SIGTERM, tmp_path)
    assert "nothing saved (test)" in output
    assert (run / "checkpoints" / "last.pt").exists()  # the trainer stopped at a step and checkpointed


def test_progress_lines_come_early_then_once_a_minute(capsys, monkeypatch):
    from lookahead.train import loggers

    clock = iter([0.0, 10.0, 70.0, 200.0])
    monkeypatch.setattr(loggers.time, "monotonic", lambda: next(clock))
    console = loggers.Console("lines")
    console.start_epoch(1, 3, 120, 30)  # resumed at step 150: epoch 2, batch 30 of 120
    console.update(50, loss=6.12345)  # step 200, t = 0: the first update is always said
    console.update(50, loss=5.5)  # step 250, t = 10: too soon
    console.update(50, loss=5.0)  # step 300, t = 70: a minute since the last line
    console.evaluation({"epoch": 3, "step": 360, "lr": 0.1, "valid_perplexity": 300.0})  # t = 200
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == [
        "epoch 2/3 | step 150 | training, 120 steps an epoch",  # at once, before the first steps
        "epoch 2/3 | step 200 | train_loss 6.1235",
        "epoch 2/3 | step 300 | train_loss 5.0000",
    ]
    assert len(lines) == 4 and "valid_ppl 300.0000" in lines[3]


def test_ctrl_c_while_a_multirun_job_is_being_built_is_one_line(data_root, tmp_path):
    """Hydra announces the job (`#0 : ...`) before it is composed and built: Ctrl-C there is not yet
    the training loop's, and still ends with one line and 130."""
    command = python(
        "experiments/train.py",
        "--multirun",
        "experiment=mnist1d_sgd",
        "seed=1,2",
        f"paths.data={data_root}",
        f"paths.runs={tmp_path / 'runs'}",
        f"dataset.num_samples={MNIST1D_SAMPLES}",
        "device=cpu",
    )
    output = stop_after(command, "#0 : ", signal.SIGINT, tmp_path)
    assert "the same command resumes or starts the rest" in output
