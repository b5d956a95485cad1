"""Lookahead under DistributedDataParallel (two gloo processes on CPU) and torch.compile."""

from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from lookahead import Lookahead


def _worker(rank: int, world_size: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    torch.manual_seed(100 + rank)  # every rank starts from DIFFERENT weights ...
    model = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 2))
    # ... and builds the optimizer BEFORE DDP broadcasts rank 0's weights.
    opt = Lookahead(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), k=3, alpha=0.5)
    ddp = nn.parallel.DistributedDataParallel(model)
    start = [p.detach().clone() for p in model.parameters()]
    g = torch.Generator().manual_seed(rank)  # each rank sees different data
    for _ in range(7):
        x, y = torch.randn(8, 5, generator=g), torch.randint(0, 2, (8,), generator=g)
        opt.zero_grad()
        nn.functional.cross_entropy(ddp(x), y).backward()
        opt.step()
    torch.save(
        {
            "start": start,
            "slow": [opt.state[p]["slow"] for p in model.parameters()],
            "fast": [p.detach() for p in model.parameters()],
        },
        os.path.join(out_dir, f"rank{rank}.pt"),
    )
    dist.destroy_process_group()


def test_slow_weights_identical_on_every_rank_when_built_before_ddp(tmp_path):
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for key in ("start", "slow", "fast"):
        for a, b in zip(r0[key], r1[key]):
            assert torch.equal(a, b), key
    # the slow weights moved away from the broadcast start (two syncs happened)
    assert not all(torch.equal(s, s0) for s, s0 in zip(r0["slow"], r0["start"]))


@pytest.mark.slow  # 24 s (torch.compile) on the shared 2-core CPU
def test_training_step_under_torch_compile():
    torch.manual_seed(0)
    eager = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    compiled_model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    compiled_model.load_state_dict(eager.state_dict())
    results = []
    for model, wrap in ((eager, lambda m: m), (compiled_model, torch.compile)):
        opt = Lookahead(torch.optim.AdamW(model.parameters(), lr=1e-2), k=3, alpha=0.5)
        forward = wrap(model)
        g = torch.Generator().manual_seed(1)
        for _ in range(7):
            x, y = torch.randn(32, 6, generator=g), torch.randint(0, 3, (32,), generator=g)
            opt.zero_grad()
            nn.functional.cross_entropy(forward(x), y).backward()
            opt.step()
        results.append([opt.state[p]["slow"].clone() for p in model.parameters()])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
