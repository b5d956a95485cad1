"""Throughput of the suite's trainer and data path (`make bench-trainer`), measured side by side.

1. Trainer vs a minimal hand-written loop: the same model, optimizer (Lookahead(SGD)), LR schedule,
   data and batches; training samples/s (evaluation excluded on both sides), alternating, median of pairs.
2. One process vs two ranks (torchrun, gloo, CPU): the trainer's samples/s for the same preset and global
   batch, each run as a user would start it (one thread per process, so both use the same cores).
3. The tensor data path (uint8 dataset in one tensor, batched crop/flip/normalise) vs torchvision's
   DataLoader + transforms (PIL per image) on CIFAR-shaped data: samples/s of producing training batches.
"""

from __future__ import annotations

from lookahead.progress import announce

announce(__name__, "benchmarking the trainer and data path against a minimal loop")

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision
from hydra import compose, initialize_config_dir
from PIL import Image
from torchvision import transforms

from lookahead.analysis.stats import paired_ratios
from lookahead.cli import register_resolvers
from lookahead.data import TensorLoader
from lookahead.data.batches import normalize, random_crop_flip
from lookahead.train.build import build
from lookahead.train.schema import validate
from lookahead.train.signals import stop_cleanly
from lookahead.train.trainer import seed_everything, train

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def trainer_vs_loop(
    preset: str, epochs: int, repeats: int, data_root: Path
) -> tuple[list[float], list[float]]:
    """samples/s of the trainer and of the minimal loop, run alternately in ``repeats`` pairs."""
    register_resolvers()
    overrides = [
        f"experiment={preset}",
        f"trainer.max_epochs={epochs}",
        "trainer.progress=lines",
        "device=cpu",
        f"paths.data={data_root}",
    ]
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    ours, minimal = [], []
    for pair in range(repeats):
        # the trainer's own per-epoch lines would bury the benchmark's; one line per pair instead
        with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
            ours.append(train(validate(cfg), Path(tmp) / "run").samples_per_s)
        minimal.append(minimal_loop(cfg, epochs))
        print(
            f"  pair {pair + 1}/{repeats}: trainer {ours[-1]:,.0f} vs minimal loop {minimal[-1]:,.0f} "
            f"samples/s = {ours[-1] / minimal[-1]:.3f}x",
            flush=True,
        )
    return ours, minimal


def minimal_loop(cfg, epochs: int) -> float:
    """The shortest honest loop: same batches, model, optimizer and LR schedule; nothing else."""
    seed_everything(cfg.seed)
    setup = build(validate(cfg))
    model, opt, scheduler = setup.model, setup.optimizer, setup.scheduler
    loader = setup.workload.train_loader  # the classification workload's batches, without the trainer
    samples, elapsed = 0, 0.0
    for epoch in range(epochs):
        start = time.perf_counter()
        for x, y in loader.epoch(epoch):
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            scheduler.step()
            samples += len(y)
        elapsed += time.perf_counter() - start
    return samples / elapsed


def one_vs_two_ranks(preset: str, epochs: int, data_root: Path) -> tuple[float, float]:
    """samples/s of the trainer as one process and as two gloo ranks (``torchrun --nproc_per_node 2``)."""
    rates = []
    for nproc in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            launcher = [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--standalone",
                f"--nproc_per_node={nproc}",
            ]
            command = [
                *(launcher if nproc > 1 else [sys.executable]),
                str(ROOT / "experiments" / "train.py"),
                f"experiment={preset}",
                f"trainer.max_epochs={epochs}",
                "trainer.progress=lines",
                "device=cpu",
                f"paths.data={data_root.resolve()}",
                f"paths.runs={tmp}",
            ]
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            subprocess.run(command, check=True, capture_output=True, env=env, cwd=tmp)
            (summary,) = Path(tmp).rglob("summary.json")
            rates.append(json.loads(summary.read_text())["samples_per_s"])
            print(
                f"  {nproc} {'process' if nproc == 1 else 'gloo ranks'}: {rates[-1]:,.0f} samples/s",
                flush=True,
            )
    return rates[0], rates[1]


def data_paths(n: int, batch_size: int, workers: int) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, n)

    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    mean, std = torch.tensor(MEAN), torch.tensor(STD)
    loader = TensorLoader(
        x,
        torch.from_numpy(labels),
        batch_size,
        shuffle=True,
        seed=0,
        transform=lambda b, g: normalize(random_crop_flip(b, g), mean, std),
    )
    start = time.perf_counter()
    count = sum(len(yb) for _, yb in loader.epoch(0))
    tensor_rate = count / (time.perf_counter() - start)

    class PilDataset(torch.utils.data.Dataset):  # what torchvision's CIFAR10 does per item
        transform = transforms.Compose(
            [
                transforms.RandomCrop(32, padding=4),
                transforms.RandomHorizontalFlip(),
                transforms.ToTensor(),
                transforms.Normalize(MEAN, STD),
            ]
        )

        def __len__(self) -> int:
            return n

        def __getitem__(self, i: int):
            return self.transform(Image.fromarray(images[i])), int(labels[i])

    dl = torch.utils.data.DataLoader(PilDataset(), batch_size=batch_size, shuffle=True, num_workers=workers)
    start = time.perf_counter()
    count = sum(len(yb) for _, yb in dl)
    return tensor_rate, count / (time.perf_counter() - start)


@stop_cleanly("nothing saved (the benchmark only prints; the lines above are what it measured)")
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="mnist1d_lookahead", help="experiment preset for part 1")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--images", type=int, default=10_000, help="CIFAR-shaped images for part 2")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers for part 2")
    parser.add_argument(
        "--data", type=Path, default=Path("data"), help="data root (MNIST-1D is cached there)"
    )
    args = parser.parse_args()
    print(
        f"torch {torch.__version__}, torchvision {torchvision.__version__}, {torch.get_num_threads()} threads",
        flush=True,
    )

    print(
        f"1. trainer vs minimal loop ({args.preset}, {args.epochs} epochs), {args.repeats} alternating pairs",
        flush=True,
    )
    ours, minimal = trainer_vs_loop(args.preset, args.epochs, args.repeats, args.data)
    ratio, low, high = paired_ratios(ours, minimal)
    verdict = "ok" if ratio >= 0.95 else "MISS"
    print(
        f"trainer / minimal loop: median of the {args.repeats} per-pair ratios {ratio:.3f}x "
        f"(range {low:.3f}-{high:.3f}; target >= 0.95: {verdict}); each side's own median "
        f"{statistics.median(ours):,.0f} vs {statistics.median(minimal):,.0f} samples/s "
        "(from different pairs when the load changes, so their quotient is not the ratio)"
    )

    print("2. one process vs two gloo ranks (torchrun)", flush=True)
    one, two = one_vs_two_ranks(args.preset, args.epochs, args.data)
    print(
        f"one process vs two gloo ranks ({args.preset}, same global batch, 1 thread per process, "
        f"one run each): {one:,.0f} vs {two:,.0f} samples/s = {two / one:.2f}x"
    )

    print("3. tensor data path vs DataLoader + transforms", flush=True)
    tensor_rate, pil_rate = data_paths(args.images, 128, args.workers)
    verdict = "ok" if tensor_rate / pil_rate >= 3 else "MISS"
    print(
        f"data path, {args.images:,} CIFAR-shaped images, batch 128, one pass each: tensor {tensor_rate:,.0f} vs "
        f"DataLoader+transforms ({args.workers} workers) {pil_rate:,.0f} samples/s = "
        f"{tensor_rate / pil_rate:.1f}x (target >= 3: {verdict})"
    )


if __name__ == "__main__":
    main()
