"""How many intra-op threads a run uses: the CPUs this process is actually granted, shared among the
jobs that run at once, and one per job for a small model on a CPU.

torch starts as many threads as the machine has cores, whatever the process may use. On a cluster node
(SLURM's cgroups), in a container with a CPU quota, or beside other jobs, those threads wait on each
other: MNIST-1D trained at 137-448 samples/s with 2 threads and 1,877-2,139 with 1 on a busy 2-core
machine (docs/cpu.md has the measurements). The decision is a pure function of its inputs
(:func:`decide`), read from the machine by :func:`configure`, which applies it once per process.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

# Models below this many parameters get one thread per job on a CPU: their matrix products are too
# small for threads to pay for their synchronisation (measured: MNIST-1D's CNN, the PTB small LSTM at
# 4.6M parameters; docs/cpu.md). ResNet-18 (11M) and larger keep the granted CPUs.
SMALL_MODEL_PARAMS = 10_000_000
CGROUP = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Threads:
    """The intra-op thread count and why, in words (printed once, recorded in summary.json)."""

    threads: int
    reason: str

    def line(self) -> str:
        return f"threads: {self.threads} ({self.reason}; trainer.threads=N or OMP_NUM_THREADS=N to choose)"


def cgroup_cpus(root: Path = CGROUP, membership: Path = Path("/proc/self/cgroup")) -> float | None:
    """The CPU quota of this process's cgroup in CPUs (quota / period), None without one.

    cgroup v2 ``cpu.max`` (``max 100000`` or ``200000 100000``) or v1 ``cpu.cfs_quota_us`` /
    ``cpu.cfs_period_us`` (-1: no quota), in the process's own group and every group above it (the
    smallest applies); inside a container the mount root is the container's own group.
    """
    try:
        lines = membership.read_text().splitlines()
    except OSError:
        lines = []
    candidates: list[tuple[Path, str]] = []
    for line in lines:
        _, controllers, group = line.split(":", 2)
        rel = Path(group.lstrip("/"))
        if controllers == "":  # v2, unified
            mounts = [root, root / "unified"]
        elif "cpu" in controllers.split(","):
            mounts = [root / controllers, root / "cpu", root / "cpu,cpuacct"]
        else:
            continue
        for mount in mounts:
            candidates += [(mount / part, controllers) for part in (rel, *rel.parents)]
    quotas = [q for path, v1 in dict.fromkeys(candidates) if (q := _quota(path, v1 != "")) is not None]
    return min(quotas) if quotas else None


def _quota(group: Path, v1: bool) -> float | None:
    try:
        if v1:
            quota = int((group / "cpu.cfs_quota_us").read_text())
            period = int((group / "cpu.cfs_period_us").read_text())
        else:
            quota_text, period_text = (group / "cpu.max").read_text().split()
            if quota_text == "max":
                return None
            quota, period = int(quota_text), int(period_text)
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def granted(affinity: int, quota: float | None, slurm: str | None) -> tuple[int, str]:
    """The CPUs this process may use, the smallest of its affinity mask, cgroup quota (rounded down: a
    thread on a fraction of a CPU is throttled) and ``SLURM_CPUS_PER_TASK``; and which one that was."""
    limits = [(affinity, f"{affinity} CPUs in the affinity mask")]
    if quota is not None:
        limits.append((max(1, math.floor(quota)), f"cgroup CPU quota {quota:g}"))
    if slurm and slurm.strip().isdigit() and int(slurm) > 0:
        limits.append((int(slurm), f"SLURM_CPUS_PER_TASK={int(slurm)}"))
    return min(limits, key=lambda limit: limit[0])


def concurrent_jobs(env: Mapping[str, str], launcher_jobs: int | None, cpus: int) -> tuple[int, str]:
    """How many training processes share those CPUs: torchrun's ``LOCAL_WORLD_SIZE``, a Hydra
    launcher's ``n_jobs`` (joblib's meaning: -1 all CPUs, -2 all but one) or ``LOOKAHEAD_JOBS`` (the
    Makefile's targets that run two commands side by side set it); the largest counts."""
    found = [(1, "")]
    for name in ("LOCAL_WORLD_SIZE", "LOOKAHEAD_JOBS"):
        value = env.get(name, "").strip()
        if value.isdigit() and int(value) > 1:
            found.append((int(value), f"{name}={int(value)}"))
    if launcher_jobs is not None:
        jobs = launcher_jobs if launcher_jobs > 0 else max(1, cpus + 1 + launcher_jobs)
        if jobs > 1:
            found.append((jobs, f"hydra.launcher.n_jobs={launcher_jobs}"))
    return max(found, key=lambda job: job[0])


def decide(
    requested: int | None,
    env: Mapping[str, str],
    affinity: int,
    quota: float | None,
    launcher_jobs: int | None,
    device_type: str,
    parameters: int,
) -> Threads:
    """The thread count: ``trainer.threads`` if set, else the user's ``OMP_NUM_THREADS``, else one for
    a small model on a CPU, else the granted CPUs divided among the concurrent jobs (at least one)."""
    if requested is not None:
        return Threads(requested, f"trainer.threads={requested}")
    omp = env.get("OMP_NUM_THREADS", "").strip()
    if omp.isdigit() and int(omp) > 0:
        return Threads(int(omp), f"OMP_NUM_THREADS={int(omp)}")
    if device_type == "cpu" and parameters < SMALL_MODEL_PARAMS:
        return Threads(1, f"a small model ({parameters:,} parameters) on a CPU runs fastest on one")
    cpus, why = granted(affinity, quota, env.get("SLURM_CPUS_PER_TASK"))
    jobs, shared = concurrent_jobs(env, launcher_jobs, cpus)
    if jobs == 1:
        return Threads(cpus, why)
    return Threads(max(1, cpus // jobs), f"{why}, shared by {jobs} jobs ({shared})")


def _launcher_jobs() -> int | None:
    """``n_jobs`` of the Hydra launcher running this job (joblib's), None for any other."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    value = HydraConfig.get().launcher.get("n_jobs")
    return int(value) if isinstance(value, int) else None


_applied: Threads | None = None


def configure(
    requested: int | None, device: torch.device, model: torch.nn.Module, announce: bool = True
) -> Threads:
    """Decide from this machine and process, set torch's intra-op threads and print the choice (rank 0:
    ``announce``), once per process unless it changes (the jobs of a multirun share one process)."""
    global _applied
    choice = decide(
        requested,
        os.environ,
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1,
        cgroup_cpus(),
        _launcher_jobs(),
        device.type,
        sum(p.numel() for p in model.parameters()),
    )
    if choice != _applied:
        torch.set_num_threads(choice.threads)
        if announce:
            print(choice.line(), flush=True)
        _applied = choice
    return choice


def applied() -> Threads | None:
    """The choice this process made last (None before any run), for summary.json."""
    return _applied
