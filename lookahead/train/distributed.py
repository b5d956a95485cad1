"""Ranks: one process per device, started by torchrun or by SLURM (through submitit).

``init_distributed`` reads the launcher's environment and returns a :class:`Dist`; a single process is
``Dist()`` (rank 0 of 1) and every collective below is then a no-op, so the trainer has one code path.
Collectives have a timeout: a rank that dies takes the job down instead of leaving the others hanging.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    """This process's place in the job."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    def all_reduce_sums(self, sums: dict[str, float], device: torch.device) -> dict[str, float]:
        """Element-wise sum of ``sums`` over ranks (every rank must pass the same keys)."""
        if not self.enabled or not sums:
            return sums
        keys = sorted(sums)
        values = torch.tensor([float(sums[k]) for k in keys], dtype=torch.float64, device=device)
        dist.all_reduce(values)
        return dict(zip(keys, values.tolist()))

    def all_reduce_tensor(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.enabled:
            dist.all_reduce(tensor)
        return tensor

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: Any) -> list[Any] | None:
        """Every rank's ``obj``, in rank order, on rank 0 (None elsewhere)."""
        if not self.enabled:
            return [obj]
        out = [None] * self.world if self.is_main else None
        dist.gather_object(obj, out, dst=0)
        return out

    def all_gather(self, obj: Any) -> list[Any]:
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def launcher_env() -> dict[str, int] | None:
    """(rank, world, local rank) from torchrun's variables, or from SLURM's when a SLURM task of a
    multi-task job (submitit) runs this process; None for a single process."""
    env = os.environ
    if "RANK" in env and "WORLD_SIZE" in env:  # torchrun (or submitit's exported environment)
        return {
            "rank": int(env["RANK"]),
            "world": int(env["WORLD_SIZE"]),
            "local_rank": int(env.get("LOCAL_RANK", 0)),
        }
    if "SUBMITIT_EXECUTOR" in env or "SUBMITIT_LOCAL_JOB_ID" in env:  # a submitit task (SLURM or local)
        import submitit

        job = submitit.JobEnvironment()
        if job.num_tasks > 1:  # one process per GPU: export the rendezvous variables torch expects
            exported = submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
            return {"rank": exported.rank, "world": exported.world_size, "local_rank": exported.local_rank}
    return None


def init_distributed(device: str, timeout_s: float) -> tuple[Dist, torch.device]:
    """Join the process group the launcher set up (if any) and pick this rank's device.

    ``device``: ``auto`` (CUDA if available), ``cpu``, ``cuda`` or ``cuda:N``; under several ranks on
    CUDA each rank takes ``cuda:<local rank>``. NCCL on CUDA, gloo on CPU.
    """
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    spec = launcher_env()
    if spec is None or spec["world"] == 1:
        return Dist(), torch.device(device)
    ranks = Dist(**spec)
    torch_device = torch.device(device)
    if torch_device.type == "cuda":
        torch_device = torch.device("cuda", ranks.local_rank)
        torch.cuda.set_device(torch_device)
    global _joined
    _joined = True
    if not dist.is_initialized():
        dist.init_process_group(
            backend="nccl" if torch_device.type == "cuda" else "gloo",
            rank=ranks.rank,
            world_size=ranks.world,
            timeout=timedelta(seconds=timeout_s),
            device_id=torch_device if torch_device.type == "cuda" else None,
        )
    return ranks, torch_device


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


_joined = False  # whether this process joined a process group (init_distributed)


def run_rank(main: Callable[[], object]) -> None:
    """Run an entry point's ``main``; in a process that joined a process group, end the process
    without the interpreter's and the C++ runtime's teardown once ``main`` is over.

    Why: once DDP is built, torch keeps the gloo process group alive past ``destroy_process_group``
    (its destructor never runs: its tcp event loop and two worker threads, all C++ ``std::thread``s,
    still run at exit). Tearing the runtime down under those threads aborted a rank now and then at
    exit, under load, after a completed run (``terminate called without an active exception``,
    SIGABRT). So, after ``main`` (which destroyed the group, joined the checkpoint writer and wrote
    every file): Python's exit handlers run (W&B's, logging's), the output is flushed, and the
    process ends with ``os._exit`` and the exit code ``main`` would have given: 0, the code of a
    ``sys.exit`` (a stop signal's 128 + n, a user error's 1), 130 for Ctrl-C, 1 with the traceback
    for an error."""
    try:
        main()
        code = 0
    except SystemExit as err:
        if not _joined:
            raise
        code = err.code if isinstance(err.code, int) else 0 if err.code is None else 1
        if isinstance(err.code, str):
            print(err.code, file=sys.stderr)
    except BaseException as err:
        if not _joined:
            raise
        traceback.print_exc()
        code = 130 if isinstance(err, KeyboardInterrupt) else 1
    if not _joined:
        return
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
