"""Step-time overhead and memory of Lookahead over its inner optimizer (`make bench-optimizer`).

Runs on CUDA when there is a GPU, else on the CPU. For each model x inner optimizer, one parameter set
with fixed random gradients is stepped by; blocks of k inner steps (times --cycles) of the plain inner
optimizer and of Lookahead(inner) run alternately (the order flips every block), and each figure is the
median over blocks of time(Lookahead) / time(inner), for Lookahead's foreach sync (fused=False), its
one-pass Triton kernel (fused=True, CUDA only), the fused k-th step (fused_step=True: the inner update
and the sync in one torch.compile'd pass per tensor; its compile time and self-check are printed) and a
naive per-parameter loop (most public code).
``LA/inner`` is the default (fused=None), i.e. the foreach sync until the kernel has run on a GPU
(docs/gpu.md); the targets apply to it. The sync alone is timed too, beside its memory-bandwidth floor:
reading both weight sets once and writing both once, at their dtypes, at the bandwidth of an in-place
update of a large buffer measured in the same run. Each cell's ratios stand beside the floors of the
two designs at that bandwidth: unfused, k measured inner steps plus a sync that moves its floor bytes;
fused, k - 1 measured inner steps plus a k-th step that reads and writes the parameter, its optimizer
state and its slow weight once and reads the gradient once. Extra memory is the bytes Lookahead's own
state holds.
"""

from __future__ import annotations

from lookahead.progress import announce

announce(__name__, "benchmarking Lookahead's step time and memory against its inner optimizer")

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torchvision
from torch import nn
from tqdm import tqdm

from lookahead import Lookahead
from lookahead.optim import fused_step, fused_sync
from lookahead.train.signals import stop_cleanly

# The targets the README and docs/optimizer.md state (LA/inner, the default path).
CPU_TARGETS = {("resnet18", "sgd"): 1.10, ("resnet18", "adam"): 1.05}
GPU_TARGETS = {(m, "sgd"): 1.05 for m in ("resnet18", "transformer")} | {
    (m, "adam"): 1.03 for m in ("resnet18", "transformer")
}


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


def build_model(name: str, device: torch.device) -> nn.Module:
    torch.manual_seed(0)
    if name == "resnet18":
        return torchvision.models.resnet18().to(device)
    layer = nn.TransformerEncoderLayer(d_model=256, nhead=8, dim_feedforward=1024, batch_first=True)
    return nn.TransformerEncoder(layer, num_layers=12, enable_nested_tensor=False).to(device)


def build_inner(name: str, params) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(params, lr=0.1, momentum=0.9, foreach=True)
    return torch.optim.Adam(params, lr=1e-3, foreach=True)


def with_grads(model: nn.Module, seed: int = 1) -> list[nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    params = list(model.parameters())
    for p in params:
        p.grad = (torch.randn(p.shape, generator=g) * 1e-3).to(p.device)
    return params


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_block(step: Callable[[], None], n: int, device: torch.device) -> float:
    """Seconds for n calls, the device's queue drained before and after (GPU work included)."""
    synchronize(device)
    start = time.perf_counter()
    for _ in range(n):
        step()
    synchronize(device)
    return time.perf_counter() - start


def memory_bandwidth(device: torch.device) -> float:
    """Bytes/s of an in-place update of a large buffer, ``dst += src`` (two reads, one write), the best of
    10: the access pattern of a sync. A copy into another buffer would understate it on a CPU, where
    each destination line is also read before it is written (write-allocate) but only counted once."""
    n = (256 if device.type == "cuda" else 32) * 2**20  # fp32 elements: 1 GiB on GPU, 128 MiB on CPU
    src, dst = torch.ones(n, device=device), torch.zeros(n, device=device)
    seconds = min(time_block(lambda: dst.add_(src), 1, device) for _ in range(10))
    return 3 * src.numel() * src.element_size() / seconds


def sync_floor_bytes(opt: Lookahead) -> int:
    """One read and one write of every fast and every slow tensor: the least a sync must move."""
    return sum(2 * (p.nbytes + s["slow"].nbytes) for p, s in opt.state.items())


def compiled_graphs() -> int:
    """Graphs torch.compile has built in this process (a recompile adds one)."""
    from torch._dynamo.utils import counters

    return counters["stats"]["unique_graphs"]


def fused_step_bytes(opt: Lookahead) -> int:
    """The least a fused k-th step moves: read + write the parameter, its slow weight and its optimizer
    state tensors (parameter-sized), read the gradient."""
    total = 0
    for p, ours in opt.state.items():
        inner = opt.optimizer.state.get(p, {})
        state = [t for t in inner.values() if isinstance(t, torch.Tensor) and t.shape == p.shape]
        total += 2 * (p.nbytes + ours["slow"].nbytes + sum(t.nbytes for t in state)) + p.grad.nbytes
    return total


def time_sync(opt: Lookahead, device: torch.device, reps: int) -> float:
    """Seconds per sync of all groups (the sync alone, no inner step), the median of 5 blocks."""

    def sync() -> None:
        for index in range(len(opt.param_groups)):
            opt._sync(index)

    sync()  # warm-up: tables, first launch
    return statistics.median(time_block(sync, reps, device) / reps for _ in range(5))


def measure(
    model_name: str, inner_name: str, k: int, blocks: int, cycles: int, device: torch.device, fused: bool
) -> dict:
    model = build_model(model_name, device)
    params = with_grads(model)
    n = k * cycles  # inner steps per timed block: whole Lookahead cycles
    # All step the SAME tensors, so that memory placement cannot favour one of them.
    plain = build_inner(inner_name, params)
    candidates = {
        "foreach": Lookahead(build_inner(inner_name, params), k=k, alpha=0.5, fused=False),
        "naive": NaiveLookahead(build_inner(inner_name, params), k=k, alpha=0.5),
    }
    if fused_sync.unavailable_reason(device) is None:
        candidates["fused"] = Lookahead(build_inner(inner_name, params), k=k, alpha=0.5, fused=True)
    if fused:
        candidates["fused_step"] = Lookahead(build_inner(inner_name, params), k=k, alpha=0.5, fused_step=True)
    default = Lookahead(build_inner(inner_name, params), k=k, alpha=0.5)  # fused=None: what users get
    compile_s = None
    for name, opt in (("plain", plain), ("default", default), *candidates.items()):  # warm-up: state, tables
        seconds = time_block(opt.step, n, device)  # the fused step compiles at its first k-th step
        compile_s = seconds if name == "fused_step" else compile_s
    graphs = compiled_graphs()
    default_kind = "fused" if default._plans.get(0, (None, None))[1] is not None else "foreach"
    ratios: dict[str, list[float]] = {name: [] for name in candidates}
    for block in tqdm(range(blocks), desc=f"{model_name} {inner_name}", unit="block", leave=False):
        for name, opt in candidates.items():
            if block % 2:  # alternate the order so drift and cache effects cancel
                t_inner, t_wrapped = time_block(plain.step, n, device), time_block(opt.step, n, device)
            else:
                t_wrapped, t_inner = time_block(opt.step, n, device), time_block(plain.step, n, device)
            ratios[name].append(t_wrapped / t_inner)
    wrapped = candidates["foreach"]
    extra = sum(t.numel() * t.element_size() for s in wrapped.state.values() for t in s.values())
    inner_s = statistics.median(time_block(plain.step, n, device) / n for _ in range(5))
    median = {name: statistics.median(r) for name, r in ratios.items()}
    check = candidates["fused_step"].fused_step.check if fused else None
    return {
        "fused_step_ratio": median.get("fused_step"),
        "fused_step_spread": (min(ratios["fused_step"]), max(ratios["fused_step"])) if fused else None,
        "foreach_spread": (min(ratios["foreach"]), max(ratios["foreach"])),
        "fused_step_check": check,
        "fused_step_notes": candidates["fused_step"].fused_step.notes if fused else {},
        "compile_s": compile_s,
        "recompiles": compiled_graphs() - graphs,
        "fused_step_bytes": fused_step_bytes(candidates["foreach"]),
        "params": sum(p.numel() for p in model.parameters()),
        "inner_ms": 1e3 * inner_s,
        "ratio": median[default_kind],
        "default": default_kind,
        "foreach_ratio": median["foreach"],
        "fused_ratio": median.get("fused"),
        "naive_ratio": median["naive"],
        "sync_s": time_sync(default, device, reps=20 if device.type == "cuda" else 5),
        "floor_bytes": sync_floor_bytes(default),
        "extra_bytes": extra,
        "fp32_copy_bytes": sum(p.numel() * 4 for p in model.parameters()),
    }


def describe_cell(model_name: str, inner_name: str, r: dict) -> str:
    """The spread over blocks, and what the fused step's compile and self-check did."""
    low, high = r["foreach_spread"]
    line = f"{model_name} {inner_name}: foreach {low:.3f}-{high:.3f} over blocks"
    if r["fused_step_ratio"] is None:
        return line
    low, high = r["fused_step_spread"]
    check = r["fused_step_check"]
    verdict = (
        "not run" if check is None else f"{'passed' if check.passed else 'FAILED'}, error {check.error:.3g}"
    )
    line += (
        f"; step {low:.3f}-{high:.3f}; first block (compile) {r['compile_s']:.1f} s, graphs compiled while"
        f" timing: {r['recompiles']}, self-check {verdict} (tolerance {fused_step.STEP_TOLERANCE:g})"
    )
    return line + "".join(f"; group {i} unfused: {why}" for i, why in r["fused_step_notes"].items())


def describe(targets: dict[tuple[str, str], float]) -> str:
    names = {"resnet18": "ResNet-18", "transformer": "Transformer", "sgd": "SGD", "adam": "Adam"}
    return ", ".join(f"{names[model]} {names[inner]} <= {t:.2f}" for (model, inner), t in targets.items())


@stop_cleanly("nothing saved (the benchmark only prints; the rows above are what it measured)")
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--blocks", type=int, default=20, help="timed blocks per candidate")
    parser.add_argument("--cycles", type=int, default=None, help="k-step cycles per block (GPU 20, CPU 1)")
    parser.add_argument("--models", default="resnet18,transformer")
    parser.add_argument("--inners", default="sgd,adam")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--no-fused-step",
        action="store_true",
        help="skip the fused k-th step (it compiles, about a minute a cell)",
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    cycles = args.cycles or (20 if cuda else 1)
    name = torch.cuda.get_device_name(device) if cuda else f"CPU, {torch.get_num_threads()} threads"
    print(
        f"device: {name}; torch {torch.__version__}; k={args.k}, {args.blocks} blocks of {cycles} x k steps"
    )
    why = fused_sync.unavailable_reason(device)
    print("one-pass sync kernel: " + ("available" if why is None else f"unavailable ({why})"))
    bandwidth = memory_bandwidth(device)
    print(
        f"memory bandwidth: {bandwidth / 1e9:.1f} GB/s (in-place update of a large buffer: 2 reads + 1 write)"
    )
    targets = GPU_TARGETS if cuda else CPU_TARGETS
    print(f"targets (README, docs/optimizer.md), LA/inner on this device: {describe(targets)}")
    if not cuda:
        print(f"targets on a GPU: {describe(GPU_TARGETS)}; they need a GPU run")
    header = (
        f"{'model':<12}{'inner':<6}{'params':>12}{'inner ms':>10}{'LA/inner':>10}{'(path)':>9}"
        f"{'foreach':>9}{'fused':>8}{'step':>8}{'naive':>8}{'floor':>8}{'floor':>8}"
        f"{'sync us':>10}{'floor us':>10}{'sync/floor':>12}{'extra bytes':>13}{'=fp32':>7}{'target':>12}"
    )
    print(
        "ratios are step time / inner step time (medians over blocks); fused: the sync kernel; step: the fused\n"
        "k-th step (fused_step=True); floor, floor: the least ratio of the unfused design and of the fused\n"
        "step at the measured bandwidth; sync us: one sync of all groups alone (LA's path)"
    )
    print(header)
    print("-" * len(header))
    failed, below_floor = False, False
    details: list[str] = []
    for model_name in args.models.split(","):
        for inner_name in args.inners.split(","):
            r = measure(model_name, inner_name, args.k, args.blocks, cycles, device, not args.no_fused_step)
            target = targets.get((model_name, inner_name))
            ok = target is None or r["ratio"] <= target
            verdict = "-" if target is None else f"<={target:.2f} " + ("ok" if ok else "MISS")
            failed |= not ok
            fused = "-" if r["fused_ratio"] is None else f"{r['fused_ratio']:.3f}"
            step = "-" if r["fused_step_ratio"] is None else f"{r['fused_step_ratio']:.3f}"
            floor = r["floor_bytes"] / bandwidth
            cycle = args.k * r["inner_ms"] / 1e3  # k measured inner steps
            unfused_floor = (cycle + floor) / cycle
            fused_floor = (cycle - r["inner_ms"] / 1e3 + r["fused_step_bytes"] / bandwidth) / cycle
            below_floor |= r["sync_s"] < floor
            print(
                f"{model_name:<12}{inner_name:<6}{r['params']:>12,}{r['inner_ms']:>10.3f}{r['ratio']:>10.3f}"
                f"{r['default']:>9}{r['foreach_ratio']:>9.3f}{fused:>8}{step:>8}{r['naive_ratio']:>8.3f}"
                f"{unfused_floor:>8.3f}{fused_floor:>8.3f}{1e6 * r['sync_s']:>10.1f}{1e6 * floor:>10.1f}{r['sync_s'] / floor:>12.2f}"
                f"{r['extra_bytes']:>13,}{r['extra_bytes'] == r['fp32_copy_bytes']!s:>7}{verdict:>12}"
            )
            details.append(describe_cell(model_name, inner_name, r))
    for line in details:
        print(line)
    if below_floor:
        print(
            "sync/floor < 1: the floor assumes every byte comes from memory at the measured bandwidth; "
            "part of the weights was still in cache (see docs/optimizer.md)"
        )
    print("targets met" if not failed else "some targets missed")


if __name__ == "__main__":
    main()
