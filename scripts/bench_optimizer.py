"""Step-time overhead and memory of Lookahead over its inner optimizer (`make bench-optimizer`).

For each model x inner optimizer, one parameter set with fixed random gradients is stepped by; blocks of
k inner steps of the plain inner optimizer and of Lookahead(inner) run alternately (the order flips
every block), and the reported figure is the median over blocks of time(Lookahead) / time(inner).
A naive per-parameter Lookahead (the loop most public implementations use) is measured the same way
for comparison. Extra memory is the bytes Lookahead's own state holds.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torchvision
from torch import nn

from lookahead import Lookahead

TARGETS = {("resnet18", "sgd"): 1.10, ("resnet18", "adam"): 1.05}


class NaiveLookahead:
    """Per-parameter Python loop, as in most public implementations (for comparison only)."""

    def __init__(self, optimizer: torch.optim.Optimizer, k: int = 5, alpha: float = 0.5) -> None:
        self.optimizer, self.k, self.alpha, self.steps = optimizer, k, alpha, 0
        self.slow = {p: p.detach().clone() for g in optimizer.param_groups for p in g["params"]}

    @torch.no_grad()
    def step(self) -> None:
        self.optimizer.step()
        self.steps += 1
        if self.steps % self.k == 0:
            for p, s in self.slow.items():
                s.add_(p - s, alpha=self.alpha)
                p.copy_(s)


def build_model(name: str) -> nn.Module:
    torch.manual_seed(0)
    if name == "resnet18":
        return torchvision.models.resnet18()
    layer = nn.TransformerEncoderLayer(d_model=256, nhead=8, dim_feedforward=1024, batch_first=True)
    return nn.TransformerEncoder(layer, num_layers=12, enable_nested_tensor=False)


def build_inner(name: str, params) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(params, lr=0.1, momentum=0.9, foreach=True)
    return torch.optim.Adam(params, lr=1e-3, foreach=True)


def with_grads(model: nn.Module, seed: int = 1) -> list[nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    params = list(model.parameters())
    for p in params:
        p.grad = torch.randn(p.shape, generator=g) * 1e-3
    return params


def time_block(step: Callable[[], None], k: int) -> float:
    start = time.perf_counter()
    for _ in range(k):
        step()
    return time.perf_counter() - start


def measure(model_name: str, inner_name: str, k: int, blocks: int) -> dict[str, float]:
    model = build_model(model_name)
    params = with_grads(model)
    # All three step the SAME tensors, so that memory placement cannot favour one of them.
    plain = build_inner(inner_name, params)
    wrapped = Lookahead(build_inner(inner_name, params), k=k, alpha=0.5)
    naive = NaiveLookahead(build_inner(inner_name, params), k=k, alpha=0.5)
    fused = Lookahead(build_inner(inner_name, params), k=k, alpha=0.5, fused=True)
    candidates = {"lookahead": wrapped.step, "fused": fused.step, "naive": naive.step}
    for step in (plain.step, *candidates.values()):  # warm-up: allocate state, slow copies
        time_block(step, k)
    ratios: dict[str, list[float]] = {name: [] for name in candidates}
    for block in range(blocks):
        for name, step in candidates.items():
            if block % 2:  # alternate the order so drift and cache effects cancel
                t_inner, t_wrapped = time_block(plain.step, k), time_block(step, k)
            else:
                t_wrapped, t_inner = time_block(step, k), time_block(plain.step, k)
            ratios[name].append(t_wrapped / t_inner)
    param_bytes_fp32 = sum(p.numel() * 4 for p in model.parameters())
    extra = sum(t.numel() * t.element_size() for s in wrapped.state.values() for t in s.values())
    inner_ms = 1e3 * statistics.median(time_block(plain.step, k) / k for _ in range(5))
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "inner_ms": inner_ms,
        "ratio": statistics.median(ratios["lookahead"]),
        "naive_ratio": statistics.median(ratios["naive"]),
        "fused_ratio": statistics.median(ratios["fused"]),
        "extra_bytes": extra,
        "fp32_copy_bytes": param_bytes_fp32,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--blocks", type=int, default=20, help="timed blocks of k steps per candidate")
    parser.add_argument("--models", default="resnet18,transformer")
    parser.add_argument("--inners", default="sgd,adam")
    args = parser.parse_args()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, k={args.k}, {args.blocks} blocks of k steps"
    )
    header = (
        f"{'model':<12}{'inner':<6}{'params':>12}{'inner ms/step':>15}{'LA/inner':>10}"
        f"{'fused/inner':>13}{'naive/inner':>13}{'extra bytes':>14}{'= fp32 copy':>13}{'target':>10}"
    )
    print(header)
    print("-" * len(header))
    failed = False
    for model_name in args.models.split(","):
        for inner_name in args.inners.split(","):
            r = measure(model_name, inner_name, args.k, args.blocks)
            target = TARGETS.get((model_name, inner_name))
            verdict = (
                "-" if target is None else (f"<={target:.2f} " + ("ok" if r["ratio"] <= target else "MISS"))
            )
            failed |= target is not None and r["ratio"] > target
            print(
                f"{model_name:<12}{inner_name:<6}{r['params']:>12,}{r['inner_ms']:>15.2f}{r['ratio']:>10.3f}"
                f"{r['fused_ratio']:>13.3f}{r['naive_ratio']:>13.3f}{r['extra_bytes']:>14,}{r['extra_bytes'] == r['fp32_copy_bytes']!s:>13}"
                f"{verdict:>10}"
            )
    print("targets met" if not failed else "some targets missed")


if __name__ == "__main__":
    main()
