"""The intra-op thread decision (lookahead/train/threads.py) from faked machine inputs, and its record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lookahead.train import threads
from lookahead.train.schema import validate
from lookahead.train.state import Summary
from lookahead.train.threads import Threads, cgroup_cpus, concurrent_jobs, decide, granted
from lookahead.train.trainer import train
from tests.conftest import compose_config, tiny_overrides

BIG = 20_000_000  # parameters: above SMALL_MODEL_PARAMS
SMALL = 5_210  # MNIST-1D's CNN


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_quota_is_the_smallest_on_the_way_to_the_root(tmp_path):
    write(tmp_path / "proc", "0::/slurm/job7/step0\n")
    write(tmp_path / "cg" / "slurm" / "job7" / "step0" / "cpu.max", "max 100000\n")
    write(tmp_path / "cg" / "slurm" / "job7" / "cpu.max", "250000 100000\n")
    write(tmp_path / "cg" / "slurm" / "cpu.max", "800000 100000\n")
    assert cgroup_cpus(tmp_path / "cg", tmp_path / "proc") == 2.5


def test_cgroup_v1_quota_and_no_quota(tmp_path):
    write(tmp_path / "proc", "4:memory:/x\n3:cpu,cpuacct:/docker/abc\n")
    group = tmp_path / "cg" / "cpu,cpuacct" / "docker" / "abc"
    write(group / "cpu.cfs_quota_us", "150000\n")
    write(group / "cpu.cfs_period_us", "100000\n")
    assert cgroup_cpus(tmp_path / "cg", tmp_path / "proc") == 1.5
    write(group / "cpu.cfs_quota_us", "-1\n")  # v1's "no quota"
    assert cgroup_cpus(tmp_path / "cg", tmp_path / "proc") is None


def test_no_cgroup_files_means_no_quota(tmp_path):
    assert cgroup_cpus(tmp_path / "cg", tmp_path / "missing") is None
    write(tmp_path / "proc", "0::/\n")
    write(tmp_path / "cg" / "cpu.max", "max 100000\n")
    assert cgroup_cpus(tmp_path / "cg", tmp_path / "proc") is None


def test_the_smallest_grant_wins_and_is_named():
    assert granted(8, None, None) == (8, "8 CPUs in the affinity mask")
    assert granted(8, 2.5, "4") == (2, "cgroup CPU quota 2.5")  # 2.5 CPUs: 2 whole ones
    assert granted(8, 0.5, None) == (1, "cgroup CPU quota 0.5")  # never below one
    assert granted(8, 6.0, "3") == (3, "SLURM_CPUS_PER_TASK=3")
    assert granted(2, None, "16") == (2, "2 CPUs in the affinity mask")
    assert granted(4, None, "") == (4, "4 CPUs in the affinity mask")


def test_concurrent_jobs_from_torchrun_the_makefile_and_joblib():
    assert concurrent_jobs({}, None, 8) == (1, "")
    assert concurrent_jobs({"LOCAL_WORLD_SIZE": "4"}, None, 8) == (4, "LOCAL_WORLD_SIZE=4")
    assert concurrent_jobs({"LOOKAHEAD_JOBS": "2"}, None, 8) == (2, "LOOKAHEAD_JOBS=2")
    assert concurrent_jobs({}, 3, 8) == (3, "hydra.launcher.n_jobs=3")
    assert concurrent_jobs({}, -1, 8) == (8, "hydra.launcher.n_jobs=-1")  # joblib: every CPU
    assert concurrent_jobs({}, -2, 8) == (7, "hydra.launcher.n_jobs=-2")  # all but one
    assert concurrent_jobs({"LOCAL_WORLD_SIZE": "2"}, 4, 8) == (4, "hydra.launcher.n_jobs=4")


def test_the_user_wins_then_small_models_then_the_grant_shared():
    env = {"OMP_NUM_THREADS": "3", "LOCAL_WORLD_SIZE": "2"}
    assert decide(5, env, 8, None, None, "cpu", BIG) == Threads(5, "trainer.threads=5")
    assert decide(None, env, 8, None, None, "cpu", SMALL) == Threads(3, "OMP_NUM_THREADS=3")
    small = decide(None, {}, 8, None, None, "cpu", SMALL)
    assert small == Threads(1, "a small model (5,210 parameters) on a CPU runs fastest on one")
    assert decide(None, {}, 8, 4.0, None, "cpu", BIG) == Threads(4, "cgroup CPU quota 4")
    shared = decide(None, {"LOCAL_WORLD_SIZE": "3", "SLURM_CPUS_PER_TASK": "8"}, 16, None, None, "cpu", BIG)
    assert shared == Threads(2, "SLURM_CPUS_PER_TASK=8, shared by 3 jobs (LOCAL_WORLD_SIZE=3)")
    crowded = decide(None, {"LOOKAHEAD_JOBS": "4"}, 2, None, None, "cpu", BIG)
    assert crowded.threads == 1  # 2 CPUs for 4 jobs: still one each
    # on a GPU the host threads feed the device: the small-model rule is for CPU training only
    assert decide(None, {}, 6, None, None, "cuda", SMALL) == Threads(6, "6 CPUs in the affinity mask")


def test_an_unusable_omp_value_is_ignored():
    assert decide(None, {"OMP_NUM_THREADS": "0"}, 4, None, None, "cpu", BIG).threads == 4
    assert decide(None, {"OMP_NUM_THREADS": "x"}, 4, None, None, "cpu", BIG).threads == 4


@pytest.fixture
def restore_threads(monkeypatch):
    monkeypatch.setattr(threads, "_applied", None)
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize(("override", "expected"), [([], 1), (["trainer.threads=2"], 2)])
def test_the_summary_records_the_choice_and_why(
    data_root, tmp_path, monkeypatch, capsys, restore_threads, override, expected
):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    base = ["experiment=mnist1d_sgd", "trainer.max_epochs=1", *tiny_overrides(data_root, tmp_path)]
    train(validate(compose_config([*base, *override])), tmp_path / "run")
    summary = Summary.read(tmp_path / "run" / "summary.json")
    reason = (
        "trainer.threads=2" if override else "a small model (5,210 parameters) on a CPU runs fastest on one"
    )
    assert (summary.torch_threads, summary.threads_reason) == (expected, reason)
    out = capsys.readouterr().out
    assert out.count("threads: ") == 1 and f"threads: {expected} ({reason};" in out


def test_a_summary_written_before_threads_were_recorded_still_reads(tmp_path):
    data = {
        "status": "completed",
        "experiment": "e",
        "dataset": "d",
        "model": "m",
        "method": "sgd",
        "seed": 1,
    }
    (tmp_path / "summary.json").write_text(json.dumps({**data, "max_epochs": 1, "run_dir": "r"}))
    assert Summary.read(tmp_path / "summary.json").threads_reason is None
