"""Several processes with torchrun (gloo on CPU): same metrics as one process, rank faults, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, tiny_overrides, wait_for

ARGS = [
    "experiment=mnist1d_lookahead",
    "trainer.max_epochs=3",
    "trainer.batch_size=32",
    "device=cpu",
]


def torchrun(args: list[str], cwd: Path, nproc: int = 2) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        str(ROOT / "experiments" / "train.py"),
        *args,
    ]


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_SILENT": "true"}
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env)


def summary_of(runs: Path) -> dict:
    (path,) = runs.rglob("summary.json")
    return json.loads(path.read_text())


def test_two_ranks_end_with_the_metrics_of_one_process(data_root, tmp_path):
    one = run(
        [
            sys.executable,
            str(ROOT / "experiments/train.py"),
            *ARGS,
            *tiny_overrides(data_root, tmp_path / "one"),
        ],
        tmp_path,
    )
    assert one.returncode == 0, one.stderr
    runs = tmp_path / "two"
    two = run(torchrun([*ARGS, *tiny_overrides(data_root, runs)], tmp_path), tmp_path)
    assert two.returncode == 0, two.stderr
    assert "terminate called" not in two.stderr  # no rank aborted at exit (distributed.run_rank)
    single, double = summary_of(tmp_path / "one"), summary_of(runs)
    assert double["world_size"] == 2 and double["status"] == "completed"
    assert double["extra"]["replicas_identical"]  # fast and slow weights agree on both ranks
    assert double["steps"] == single["steps"] == 3 * 15  # 480 samples / global batch 32
    # Each rank takes 16 of every 32 samples; DDP averages the two half-batch mean gradients, which
    # equals the full-batch mean up to float32 rounding (~1e-8 relative per step), so losses agree to
    # far better than 1e-4 after 45 steps and accuracies to within one of the 120 test samples.
    for key, value in single["final"].items():
        if key.endswith("accuracy"):
            assert abs(double["final"][key] - value) <= 1 / 120 + 1e-12, key
        else:
            assert double["final"][key] == pytest.approx(value, rel=1e-4), key
    # rank 0 alone wrote: one metrics file with one record per epoch, no other rank's files
    records = (next((tmp_path / "two").rglob("metrics.jsonl"))).read_text().splitlines()
    assert [json.loads(r)["epoch"] for r in records] == [1, 2, 3]


def test_a_rank_killed_takes_the_job_down_and_the_relaunch_resumes_exactly(data_root, tmp_path):
    args = [
        *ARGS,
        "trainer.max_epochs=4",
        "trainer.checkpoint_every_steps=5",
        "model=mnist1d_mlp",
        "model.hidden=256",
    ]
    reference = run(torchrun([*args, *tiny_overrides(data_root, tmp_path / "ref")], tmp_path), tmp_path)
    assert reference.returncode == 0, reference.stderr
    expected = summary_of(tmp_path / "ref")

    runs = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    job = subprocess.Popen(
        torchrun([*args, *tiny_overrides(data_root, runs)], tmp_path),
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert wait_for(runs, "checkpoints/last.pt", job), "the run ended before writing checkpoints/last.pt"
    workers = subprocess.run(["pgrep", "-P", str(job.pid)], capture_output=True, text=True).stdout.split()
    assert len(workers) == 2
    os.kill(int(workers[-1]), signal.SIGKILL)  # one rank dies without a word
    job.wait()  # ... and the job ends instead of hanging in a collective (the hang guard: --timeout)
    assert job.returncode != 0
    interrupted = summary_of(runs)
    assert interrupted["status"] in ("running", "failed") and interrupted["epochs_completed"] < 4

    resumed = run(torchrun([*args, *tiny_overrides(data_root, runs)], tmp_path), tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout
    final = summary_of(runs)
    assert final["status"] == "completed" and final["final"] == expected["final"]  # exactly
    records = (next(runs.rglob("metrics.jsonl"))).read_text().splitlines()
    assert [json.loads(r)["epoch"] for r in records] == [1, 2, 3, 4]
