"""SLURM through hydra-submitit-launcher: the launcher config, and preemption/time-limit requeue tested
with submitit's local executor (the same job code path; there is no cluster here)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import yaml

from tests.conftest import ROOT, run_cli, tiny_overrides, wait_for

ARGS = [
    "experiment=mnist1d_lookahead",
    "model=mnist1d_mlp",
    "model.hidden=512",
    "trainer.max_epochs=30",
    "trainer.batch_size=32",
    "trainer.checkpoint_every_steps=5",
]


def test_slurm_launcher_config_one_rank_per_gpu_and_overridable_fields(tmp_path):
    result = run_cli(
        [
            "hydra/launcher=slurm",
            "hydra.launcher.partition=gpu",
            "hydra.launcher.gpus_per_node=8",
            "hydra.launcher.timeout_min=600",
            "experiment=cifar10_lookahead",
            "--cfg",
            "hydra",
            "--package",
            "hydra.launcher",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    launcher = yaml.safe_load(result.stdout)  # the "# @package hydra.launcher" node
    assert launcher["_target_"].endswith("SlurmLauncher")
    assert launcher["partition"] == "gpu" and launcher["timeout_min"] == 600
    assert launcher["gpus_per_node"] == 8 and launcher["tasks_per_node"] == "${.gpus_per_node}"
    assert launcher["max_num_timeout"] > 0 and launcher["signal_delay_s"] > 0


def test_sigusr2_checkpoints_requeues_and_ends_like_an_uninterrupted_run(data_root, tmp_path):
    reference = run_cli([*ARGS, *tiny_overrides(data_root, tmp_path / "ref")], cwd=tmp_path)
    assert reference.returncode == 0, reference.stderr
    (ref_summary,) = (tmp_path / "ref").rglob("summary.json")
    expected = json.loads(ref_summary.read_text())

    runs = tmp_path / "slurm"
    sweep = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "experiments/train.py"),
            "-m",
            "hydra/launcher=submitit_local",
            *ARGS,
            *tiny_overrides(data_root, runs),
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "WANDB_SILENT": "true"},
    )
    assert wait_for(runs, "checkpoints/last.pt", sweep), "the run ended before writing checkpoints/last.pt"
    (controller,) = [p.name for p in (runs / ".submitit").iterdir() if p.name.isdigit()]  # job id = its pid
    (task,) = subprocess.run(["pgrep", "-P", controller], capture_output=True, text=True).stdout.split()
    os.kill(int(task), signal.SIGUSR2)  # what SLURM sends signal_delay_s before the time limit
    output, _ = sweep.communicate()
    assert sweep.returncode == 0, output

    log = next((runs / ".submitit").rglob("*_0_log.out")).read_text()
    assert "stopped by signal SIGUSR2" in log and "Requeued job" in log and "resuming" in log
    (summary,) = runs.rglob("summary.json")
    final = json.loads(summary.read_text())
    assert final["status"] == "completed" and final["final"] == expected["final"]  # exactly
    epochs = [
        json.loads(line)["epoch"] for line in next(runs.rglob("metrics.jsonl")).read_text().splitlines()
    ]
    assert epochs == list(range(1, 31))
