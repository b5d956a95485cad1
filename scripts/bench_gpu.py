"""GPU speed of the CIFAR suite (`make bench-gpu`, about 5 minutes on one H100/H200), measured side by side.

1. Bare loops over the cifar10_lookahead preset's model and batches (ResNet-18, batch 128, Lookahead(SGD)):
   fp32 eager; bf16 + channels_last + cudnn.benchmark; the same under torch.compile; and under
   torch.compile(mode="reduce-overhead") (CUDA graphs for forward and backward).
2. The trainer on the same preset: fp32 eager (trainer.fast_path=false), the fast path (the default on a
   GPU: bf16, channels_last, cudnn.benchmark), the fast path + the opt-in CUDA graphs, + the opt-in sync
   kernel too, and the fast path with trainer.compile=true: samples/s over the whole run (evaluation,
   checkpoints and warm-up included), s/epoch after the first epoch, the projected time of `make
   paper-cifar`, and the outcome of each opt-in path's self-check (summary.json's fast_path).
3. Lookahead's sync for ResNet-18: time per sync by foreach and by the kernel (with its self-check), and
   the floor (one read and one write of the fast and slow weights at the in-place update bandwidth
   measured here).
4. Final test accuracy of fp32 eager vs the fast path on a learnable CIFAR-format fixture, two seeds.
5. A block of rows for docs/gpu.md's table of paths (what ran, where, when, how fast, default on/off);
   ``--json PATH`` also writes every figure.

The data is CIFAR-10-shaped and written in torchvision's on-disk format (nothing is downloaded). Without
CUDA the script runs every path at toy size on the CPU: a check that it works, not a GPU figure.
"""

from __future__ import annotations

from lookahead.progress import announce

announce(__name__, "benchmarking the trainer's GPU paths")

import argparse
import datetime
import itertools
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from bench_optimizer import (
    build_model,
    memory_bandwidth,
    sync_floor_bytes,
    synchronize,
    time_sync,
    with_grads,
)
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from lookahead import Lookahead
from lookahead.cli import register_resolvers
from lookahead.data.cifar_fixture import write_cifar
from lookahead.optim import fused_sync
from lookahead.train.build import build
from lookahead.train.fast_path import VERIFIED_ON_GPU
from lookahead.train.schema import validate
from lookahead.train.signals import stop_cleanly
from lookahead.train.trainer import seed_everything, train

ROOT = Path(__file__).resolve().parents[1]
PAPER_RUNS = 10 * 3  # make paper-cifar: 10 presets x 3 seeds
PAPER_EPOCHS = 200


def config(data: Path, runs: Path, overrides: list[str]) -> DictConfig:
    register_resolvers()
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return compose(
            config_name="train",
            overrides=[
                "experiment=cifar10_lookahead",
                f"paths.data={data}",
                f"paths.runs={runs}",
                "trainer.progress=lines",
                "dataset.check_integrity=false",  # two fixtures: the md5 patch fits only the last one written
                *overrides,
            ],
        )


def bare_loop(cfg: DictConfig, device: torch.device, steps: int, warmup: int, variant: str) -> float:
    """samples/s of the shortest loop: the preset's model, Lookahead(SGD), schedule and batches."""
    fast = variant != "fp32"
    torch.backends.cudnn.benchmark = fast and device.type == "cuda"
    seed_everything(cfg.seed)
    setup = build(
        validate(cfg), device
    )  # cfg has trainer.fast_path=false: the variant's settings are applied here
    model, opt, scheduler = setup.model, setup.optimizer, setup.scheduler
    if fast:
        model = model.to(memory_format=torch.channels_last)
    net = model
    if variant == "compile":
        net = torch.compile(model)
    elif variant == "reduce-overhead":
        net = torch.compile(model, mode="reduce-overhead")
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=fast)
    batches = setup.workload.train_batches(0)
    samples, start = 0, 0.0
    for i in range(warmup + steps):
        if i == warmup:
            synchronize(device)
            start, samples = time.perf_counter(), 0
        try:
            x, y = next(batches)
        except StopIteration:
            batches = setup.workload.train_batches(i)
            x, y = next(batches)
        if fast:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast:
            loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        scheduler.step()
        samples += len(y)
    synchronize(device)
    torch.backends.cudnn.benchmark = False
    return samples / (time.perf_counter() - start)


def trainer_run(cfg: DictConfig, run: Path, n_train: int) -> dict[str, float]:
    summary = train(validate(cfg), run)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    walls = [r["wall_time_s"] for r in records]  # at each epoch's end
    later = [b - a for a, b in itertools.pairwise(walls)]
    return {
        "samples_per_s": n_train * len(records) / summary.wall_time_s,  # everything included
        "train_samples_per_s": summary.samples_per_s,
        "first_epoch_s": walls[0],
        "epoch_s": statistics.median(later) if later else walls[0],
        "test_accuracy": summary.final.get("test_accuracy"),
        "fast_path": summary.fast_path,
    }


def sync_floor(device: torch.device) -> dict[str, Any]:
    """Lookahead's sync for ResNet-18 (torchvision, 11.7M params): time per sync by foreach and, where it
    can run, by the kernel (after its self-check), vs the memory floor (measured as `make
    bench-optimizer` does)."""
    model = build_model("resnet18", device)
    params = with_grads(model)
    kinds = [False] + ([True] if fused_sync.unavailable_reason(device) is None else [])
    bandwidth = memory_bandwidth(device)
    result: dict[str, Any] = {"bandwidth_gb_s": bandwidth / 1e9, "kernel_us": None, "kernel_check": None}
    for fused in kinds:
        opt = Lookahead(torch.optim.SGD(params, lr=0.1, momentum=0.9), k=5, fused=fused)
        opt.step()  # the slow copies
        sync_s = time_sync(opt, device, reps=20 if device.type == "cuda" else 3)  # its 1st sync: the check
        result["kernel_us" if fused else "sync_us"] = 1e6 * sync_s
        if fused:
            result["kernel_check"] = opt.sync_check.to_dict()
        result["floor_us"] = 1e6 * sync_floor_bytes(opt) / bandwidth
    return result


def checks_line(fast_path: dict[str, Any]) -> str:
    """The self-checks of a trainer run, in a few words."""
    checks = fast_path.get("self_checks") or {}
    return "; ".join(f"{path}: {verdict(check)}" for path, check in checks.items()) or "none (no opt-in path)"


def verdict(check: dict[str, Any] | None) -> str:
    if check is None:
        return "self-check not run"
    if check["passed"]:
        return f"self-check passed ({float(check['error']):.3g} <= {check['tolerance']:g})"
    return f"self-check FAILED ({float(check['error']):.3g} > {check['tolerance']:g}: {check['detail']})"


def table_block(figures: dict[str, Any], device_name: str, gpu: bool) -> str:
    """Rows for docs/gpu.md's table: path | verified on | measured | default (from this run)."""
    trainer, sync, acc = figures.get("trainer", {}), figures.get("sync", {}), figures.get("accuracy", {})
    where = f"{device_name}, {datetime.date.today()}, `make gpu-check`"

    def rate(label: str) -> str:
        r = trainer.get(label)
        return "not run" if r is None else f"{r['samples_per_s']:,.0f} samples/s ({r['epoch_s']:.2f} s/epoch)"

    def default(*names: str) -> str:
        return "on (auto)" if all(n in VERIFIED_ON_GPU for n in names) else "off (opt-in)"

    graphs = trainer.get("fast path + CUDA graphs", {}).get("fast_path", {}).get("self_checks", {})
    kernel = sync.get("kernel_check")
    rows = [
        ("fp32 eager trainer", where, rate("fp32 eager"), "the plain path"),
        (
            "bf16 + channels_last + cudnn.benchmark",
            where,
            rate("fast path")
            + (f"; accuracy {acc['fast path']:.4f} vs fp32 {acc['fp32 eager']:.4f}" if acc else ""),
            default("precision", "channels_last", "cudnn_benchmark"),
        ),
        (
            "CUDA graphs (+ fused step with tensor lr, capturable Adam)",
            f"{where}: {verdict(graphs.get('cuda_graph'))}" if graphs else "not run (needs CUDA)",
            rate("fast path + CUDA graphs"),
            default("cuda_graphs", "fused_optimizer"),
        ),
        (
            "Lookahead sync kernel (Triton)",
            f"{where}: {verdict(kernel)}" if kernel else "not run (needs CUDA and Triton)",
            (
                f"{sync['kernel_us']:.1f} us/sync vs foreach {sync['sync_us']:.1f} us, floor {sync['floor_us']:.1f} us"
            )
            if sync.get("kernel_us") is not None
            else "not run",
            default("sync_kernel"),
        ),
        ("torch.compile of the model", where, rate("fast path + compile"), "off (asked for)"),
    ]
    head = (
        f"--- rows for docs/gpu.md's table ({device_name}; torch {torch.__version__}) ---"
        if gpu
        else "--- CPU toy run: NOT GPU evidence, do not paste into docs/gpu.md ---"
    )
    lines = [head, "| path | verified on | measured | default |", "|---|---|---|---|"]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    return "\n".join(lines)


@stop_cleanly("nothing saved (the benchmark only prints; the lines above are what it measured)")
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--epochs", type=int, default=3, help="epochs per trainer run (the first one warms up)"
    )
    parser.add_argument("--steps", type=int, default=300, help="timed steps per bare loop")
    parser.add_argument("--seeds", default="1,2", help="seeds of the accuracy check")
    parser.add_argument(
        "--skip", default="", help="comma list of sections to skip: bare,trainer,sync,accuracy"
    )
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    args = parser.parse_args()
    gpu = torch.cuda.is_available()
    device = torch.device("cuda" if gpu else "cpu")
    name = torch.cuda.get_device_name() if gpu else "CPU (no CUDA: toy sizes, NOT GPU figures)"
    print(f"device: {name}; torch {torch.__version__}")
    skip = set(filter(None, args.skip.split(",")))
    if gpu:
        n_train, n_test, size, steps, warmup, epochs = 50_000, 10_000, [], args.steps, 30, args.epochs
    else:  # every path once, quickly
        n_train, n_test, steps, warmup, epochs = 512, 128, 3, 1, 2
        size = ["model.width=8", "trainer.batch_size=64", "trainer.eval_batch_size=128"]
    base = [f"device={device.type}", f"trainer.max_epochs={epochs}", "schedule=constant", *size]
    figures: dict[str, Any] = {"device": name, "torch": torch.__version__, "cuda": gpu}

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_cifar(tmp / "noise" / "cifar", "cifar10", n_train, n_test)
        write_cifar(tmp / "signal" / "cifar", "cifar10", n_train, n_test, signal=0.25)
        noise = tmp / "noise"

        if "bare" not in skip:
            cfg = config(noise, tmp / "runs", [*base, "trainer.fast_path=false"])
            print(f"\n1. bare loop, samples/s ({steps} steps after {warmup} warm-up steps)")
            variants = ["fp32", "bf16+channels_last"] + (["compile", "reduce-overhead"] if gpu else [])
            figures["bare"] = {}
            for variant in variants:
                rate = bare_loop(cfg, device, steps, warmup, variant)
                figures["bare"][variant] = rate
                print(f"   {variant:<22}{rate:>12,.0f}")

        if "trainer" not in skip:
            print(
                f"\n2. trainer, {epochs} epochs of {n_train:,} samples, evaluation of {n_test:,} each epoch"
            )
            print(
                f"   {'':<22}{'samples/s':>12}{'train-only':>12}{'epoch 1 s':>11}{'s/epoch':>9}{'paper-cifar h':>15}"
            )
            fast = ["trainer.fast_path=true"]
            runs = {"fp32 eager": ["trainer.fast_path=false"], "fast path": fast}
            if (
                gpu
            ):  # the opt-in paths (self-checked); compiling takes a minute on a CPU too: the toy run skips it
                runs["fast path + CUDA graphs"] = [*fast, "trainer.cuda_graphs=true"]
                if fused_sync.unavailable_reason(device) is None:
                    runs["+ graphs + sync kernel"] = [
                        *fast,
                        "trainer.cuda_graphs=true",
                        "trainer.sync_kernel=true",
                    ]
                runs["fast path + compile"] = [*fast, "trainer.compile=true"]
            figures["trainer"] = {}
            for label, extra in runs.items():
                cfg = config(noise, tmp / "runs", [*base, *extra])
                r = trainer_run(cfg, tmp / "runs" / "".join(c for c in label if c.isalnum()), n_train)
                figures["trainer"][label] = r
                hours = PAPER_RUNS * PAPER_EPOCHS * r["epoch_s"] * (50_000 / n_train) / 3600
                print(
                    f"   {label:<22}{r['samples_per_s']:>12,.0f}{r['train_samples_per_s']:>12,.0f}"
                    f"{r['first_epoch_s']:>11.2f}{r['epoch_s']:>9.2f}{hours:>15.2f}"
                )
                settings = {k: v for k, v in r["fast_path"].items() if k != "self_checks"}
                print(f"   {'':<22}settings: {settings}")
                print(f"   {'':<22}self-checks: {checks_line(r['fast_path'])}")

        if "sync" not in skip:
            s = figures["sync"] = sync_floor(device)
            print(
                f"\n3. Lookahead sync, ResNet-18: {s['sync_us']:.1f} us per sync, floor {s['floor_us']:.1f} us "
                f"(one read and write of fast and slow at {s['bandwidth_gb_s']:.0f} GB/s): {s['sync_us'] / s['floor_us']:.2f}x"
            )
            if s["kernel_us"] is None:
                print(f"   sync kernel: not run ({fused_sync.unavailable_reason(device)})")
            else:
                print(
                    f"   sync kernel: {s['kernel_us']:.1f} us per sync ({s['kernel_us'] / s['floor_us']:.2f}x the floor); "
                    f"{verdict(s['kernel_check'])}"
                )

        if "accuracy" not in skip:
            print(f"\n4. final test accuracy on the learnable fixture (signal 0.25), {epochs} epochs")
            for label, extra in {
                "fp32 eager": ["trainer.fast_path=false"],
                "fast path": ["trainer.fast_path=true"],
            }.items():
                accs = []
                for seed in args.seeds.split(","):
                    cfg = config(tmp / "signal", tmp / "acc", [*base, *extra, f"seed={seed}"])
                    accs.append(
                        train(validate(cfg), tmp / "acc" / f"{label}_{seed}".replace(" ", "_")).final[
                            "test_accuracy"
                        ]
                    )
                figures.setdefault("accuracy", {})[label] = statistics.mean(accs)
                print(
                    f"   {label:<22}"
                    + "  ".join(f"{a:.4f}" for a in accs)
                    + f"   mean {statistics.mean(accs):.4f}"
                )

    print(f"\n5. for docs/gpu.md\n{table_block(figures, name, gpu)}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))


if __name__ == "__main__":
    main()
