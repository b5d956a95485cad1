"""GPU speed of the CIFAR suite (`make bench-gpu`, about 5 minutes on one H100/H200), measured side by side.

1. Bare loops over the cifar10_lookahead preset's model and batches (ResNet-18, batch 128, Lookahead(SGD)):
   fp32 eager; bf16 + channels_last + cudnn.benchmark; the same under torch.compile; and under
   torch.compile(mode="reduce-overhead") (CUDA graphs for forward and backward).
2. The trainer on the same preset: fp32 eager (trainer.fast_path=false), the fast path (the default on a
   GPU), the fast path without CUDA graphs, and the fast path with trainer.compile=true: samples/s over the whole run (evaluation, checkpoints
   and warm-up included), s/epoch after the first epoch, and the projected time of `make paper-cifar`.
3. Lookahead's sync for ResNet-18: time per sync, and its floor (one read and one write of the fast and
   slow weights at the in-place update bandwidth measured here).
4. Final test accuracy of fp32 eager vs the fast path on a learnable CIFAR-format fixture, two seeds.

The data is CIFAR-10-shaped and written in torchvision's on-disk format (nothing is downloaded). Without
CUDA the script runs every path at toy size on the CPU: a check that it works, not a GPU figure.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import tempfile
import time
from pathlib import Path

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
from lookahead.train.build import build
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
    setup = build(cfg, device)  # cfg has trainer.fast_path=false: the variant's settings are applied here
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
    summary = train(cfg, run)
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


def sync_floor(device: torch.device) -> dict[str, float]:
    """Lookahead's sync for ResNet-18 (torchvision, 11.7M params): time per sync vs its memory floor
    (measured as `make bench-optimizer` does)."""
    model = build_model("resnet18", device)
    opt = Lookahead(torch.optim.SGD(with_grads(model), lr=0.1, momentum=0.9), k=5)
    opt.step()  # the slow copies
    bandwidth = memory_bandwidth(device)
    sync_s = time_sync(opt, device, reps=20 if device.type == "cuda" else 3)
    floor_s = sync_floor_bytes(opt) / bandwidth
    return {"sync_us": 1e6 * sync_s, "floor_us": 1e6 * floor_s, "bandwidth_gb_s": bandwidth / 1e9}


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

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_cifar(tmp / "noise" / "cifar", "cifar10", n_train, n_test)
        write_cifar(tmp / "signal" / "cifar", "cifar10", n_train, n_test, signal=0.25)
        noise = tmp / "noise"

        if "bare" not in skip:
            cfg = config(noise, tmp / "runs", [*base, "trainer.fast_path=false"])
            print(f"\n1. bare loop, samples/s ({steps} steps after {warmup} warm-up steps)")
            variants = ["fp32", "bf16+channels_last"] + (["compile", "reduce-overhead"] if gpu else [])
            for variant in variants:
                rate = bare_loop(cfg, device, steps, warmup, variant)
                print(f"   {variant:<22}{rate:>12,.0f}")

        if "trainer" not in skip:
            print(
                f"\n2. trainer, {epochs} epochs of {n_train:,} samples, evaluation of {n_test:,} each epoch"
            )
            print(
                f"   {'':<22}{'samples/s':>12}{'train-only':>12}{'epoch 1 s':>11}{'s/epoch':>9}{'paper-cifar h':>15}"
            )
            runs = {"fp32 eager": ["trainer.fast_path=false"], "fast path": ["trainer.fast_path=true"]}
            if gpu:  # what the CUDA graphs bring; compiling takes a minute on a CPU too: the toy run skips it
                runs["fast path, no graphs"] = ["trainer.fast_path=true", "trainer.cuda_graphs=false"]
                runs["fast path + compile"] = ["trainer.fast_path=true", "trainer.compile=true"]
            for label, extra in runs.items():
                cfg = config(noise, tmp / "runs", [*base, *extra])
                r = trainer_run(cfg, tmp / "runs" / "".join(c for c in label if c.isalnum()), n_train)
                hours = PAPER_RUNS * PAPER_EPOCHS * r["epoch_s"] * (50_000 / n_train) / 3600
                print(
                    f"   {label:<22}{r['samples_per_s']:>12,.0f}{r['train_samples_per_s']:>12,.0f}"
                    f"{r['first_epoch_s']:>11.2f}{r['epoch_s']:>9.2f}{hours:>15.2f}"
                )
                print(f"   {'':<22}settings: {r['fast_path']}")

        if "sync" not in skip:
            s = sync_floor(device)
            print(
                f"\n3. Lookahead sync, ResNet-18: {s['sync_us']:.1f} us per sync, floor {s['floor_us']:.1f} us "
                f"(one read and write of fast and slow at {s['bandwidth_gb_s']:.0f} GB/s): {s['sync_us'] / s['floor_us']:.2f}x"
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
                        train(cfg, tmp / "acc" / f"{label}_{seed}".replace(" ", "_")).final["test_accuracy"]
                    )
                print(
                    f"   {label:<22}"
                    + "  ".join(f"{a:.4f}" for a in accs)
                    + f"   mean {statistics.mean(accs):.4f}"
                )


if __name__ == "__main__":
    main()
