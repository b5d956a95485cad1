"""ImageNet throughput, three ways, so a user sees what bounds a run (`make bench-imagenet`):

1. decoding alone: images/s of each decoder backend (cpu workers, nvjpeg, DALI) producing normalised
   224 x 224 training batches on the device (RandomResizedCrop + flip), no model;
2. the model alone: images/s of forward + backward + Lookahead(SGD) step on synthetic device tensors
   (on a GPU also channels_last and bf16 autocast);
3. the trainer: experiments/train.py's code path (the imagenet_lookahead preset) for a few steps, as
   the samples/s it reports.

    python scripts/bench_imagenet.py                          # generated JPEGs at ImageNet-like sizes
    python scripts/bench_imagenet.py --root /data/imagenet --workers 16 --batch-size 256 --steps 50

GPU paths are skipped (and say so) without CUDA, DALI without nvidia-dali. Results go to
``--out`` as JSON and Markdown named after the device; figures are never extrapolated across devices.
"""

from __future__ import annotations

from lookahead.progress import announce

announce(__name__, "benchmarking ImageNet images/s (decoding, model, trainer)")

import argparse
import contextlib
import io
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
import torchvision
from torch import nn

from lookahead import Lookahead
from lookahead.data import imagenet as inet
from lookahead.data import imagenet_fixture
from lookahead.train.signals import stop_cleanly
from lookahead.workloads.imagenet import ImageNet

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def bench_decode(stream: inet.Stream, batches: int, device: torch.device) -> float:
    """Images/s of the data path alone (after one warm-up batch, which starts the workers)."""
    it = stream.train_epoch(0)
    next(it)
    sync(device)
    start, images = time.perf_counter(), 0
    for _ in range(batches):
        _, y, _ = next(it)
        images += len(y)
    sync(device)
    return images / (time.perf_counter() - start)


def bench_model(model: nn.Module, batch: int, size: int, steps: int, device: torch.device, bf16: bool, channels_last: bool) -> float:  # fmt: skip
    """Images/s of forward + backward + Lookahead(SGD) step on synthetic tensors already on the device."""
    memory = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(device, memory_format=memory).train()
    opt = Lookahead(
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4), k=5, alpha=0.5
    )
    x = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=memory)
    y = torch.randint(0, 1000, (batch,), device=device)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()  # warm-up: cuDNN autotuning, allocator
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return batch * steps / (time.perf_counter() - start)


def bench_trainer(root: Path, model: str, batch: int, steps: int, workers: int, size: int, device: torch.device) -> float:  # fmt: skip
    """Samples/s the trainer itself reports for ``steps`` steps of the ``imagenet_lookahead`` preset
    (experiments/train.py's code path: data, bf16 on a GPU, Lookahead, logging), in a throw-away run
    directory. Includes the epoch's start (workers starting, first batches), as a real epoch does."""
    from hydra import compose, initialize_config_dir

    from lookahead.cli import register_resolvers
    from lookahead.train.schema import validate
    from lookahead.train.trainer import train

    register_resolvers()
    overrides = [
        "experiment=imagenet_lookahead",
        f"model={model}",
        f"dataset.root={root}",
        f"dataset.workers={workers}",
        f"dataset.image_size={size}",
        f"dataset.eval_resize={round(size * 8 / 7)}",
        f"dataset.limit_valid={batch}",  # evaluation is not timed; keep it short
        f"trainer.batch_size={batch}",
        f"trainer.eval_batch_size={batch}",
        f"trainer.limit_train_batches={steps}",
        f"lookahead.k={min(5, steps)}",  # a run must be long enough to sync at least once
        "trainer.max_epochs=1",
        "schedule.milestones=[1]",  # the preset's LR drops (30/48/58) must lie inside the 1-epoch run
        f"trainer.precision={'bf16' if device.type == 'cuda' else 'fp32'}",
        "trainer.progress=lines",
        f"device={device}",
    ]
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    # the trainer's own lines (and its stop message) are not this benchmark's
    with tempfile.TemporaryDirectory() as runs, contextlib.redirect_stdout(io.StringIO()):
        summary = train(validate(cfg), Path(runs) / "run")
    if summary.status != "completed" or not summary.samples_per_s:
        raise RuntimeError(f"the trainer run ended {summary.status}: {summary.reason}")
    return summary.samples_per_s


@stop_cleanly("nothing saved (the JSON and Markdown are written at the end)")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", type=Path, help="ImageNet (either layout); default: generated JPEGs")
    parser.add_argument("--model", default="resnet50", choices=["resnet18", "resnet50", "resnet152"])
    parser.add_argument(
        "--image-size", type=int, default=224, help="training crop (evaluation resize: x 8/7)"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=None, help="default 256 on GPU, 8 on CPU")
    parser.add_argument("--steps", type=int, default=None, help="timed batches (default 20 on GPU, 3 on CPU)")
    parser.add_argument(
        "--workers", type=int, default=None, help="DataLoader workers (default 8 GPU / 2 CPU)"
    )
    parser.add_argument(
        "--images", type=int, default=None, help="generated JPEGs (default enough for the run)"
    )
    parser.add_argument("--out", type=Path, default=Path("results/bench_imagenet"))
    args = parser.parse_args(argv)
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    gpu = device.type == "cuda"
    batch = args.batch_size or (256 if gpu else 8)
    steps = args.steps or (20 if gpu else 3)
    workers = args.workers if args.workers is not None else (8 if gpu else 2)
    if gpu:
        torch.backends.cudnn.benchmark = True
    tmp = None
    root = args.root
    if root is None:
        tmp = tempfile.TemporaryDirectory()
        root = Path(tmp.name) / "imagenet"
        per_class = -(-(args.images or batch * (steps + 2)) // 10)
        print(
            f"generating {10 * per_class} JPEGs (300-500 px, about ImageNet's sizes) under {root} ...",
            flush=True,
        )
        imagenet_fixture.write_folder(root, classes=10, train=per_class, val=1, size=(300, 500))
    results: dict[str, object] = {
        "device": device_name(device),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "model": args.model,
        "image_size": args.image_size,
        "batch_size": batch,
        "steps": steps,
        "workers": workers,
        "data": str(args.root) if args.root else "generated JPEGs, 300-500 px",
        "images_per_s": {},
        "skipped": {},
    }
    rates: dict[str, float] = results["images_per_s"]  # type: ignore[assignment]
    skipped: dict[str, str] = results["skipped"]  # type: ignore[assignment]
    size = args.image_size
    common = {"batch_size": batch, "eval_batch_size": batch, "seed": 0, "device": device, "workers": workers}
    common.update(image_size=size, eval_resize=round(size * 8 / 7))

    # 1. decoding alone, per backend
    for backend in ("cpu", "nvjpeg", "dali"):
        name, reason = inet.resolve_decoder(backend, device)
        if name != backend:
            skipped[f"decode_{backend}"] = reason or f"needs a CUDA device (this run: {device})"
            continue
        data = ImageNet(root, decoder=backend, **common)
        rates[f"decode_{backend}"] = bench_decode(data.train_stream, steps, device)
    # 2. the model alone
    build = getattr(torchvision.models, args.model)
    variants = [("fp32", False, False)] + ([("bf16_channels_last", True, True)] if gpu else [])
    if not gpu:
        skipped["model_bf16_channels_last"] = "GPU only (bf16 autocast and channels_last are GPU settings)"
    for label, bf16, channels_last in variants:
        rates[f"model_{label}"] = bench_model(build(), batch, size, steps, device, bf16, channels_last)
    # 3. the trainer, end to end, with the best available decoder
    decoder = inet.resolve_decoder("auto", device)[0]
    precision = "bf16" if gpu else "fp32"
    rates[f"trainer_{decoder}_{precision}"] = bench_trainer(
        root, args.model, batch, steps, workers, size, device
    )
    if tmp is not None:
        tmp.cleanup()

    decode_best = max(v for k, v in rates.items() if k.startswith("decode_"))
    model_best = max(v for k, v in rates.items() if k.startswith("model_"))
    bound = "the data path (decoding)" if decode_best < model_best else "the model (compute)"
    results["bound_by"] = bound
    lines = [
        f"# ImageNet throughput on {results['device']}",
        "",
        f"{args.model}, {size} px, batch {batch}, {steps} timed steps, {workers} workers, data: {results['data']}; "
        f"torch {torch.__version__}, torchvision {torchvision.__version__}.",
        "",
        "| measurement | images/s |",
        "|---|---|",
        *(f"| {k} | {v:,.1f} |" for k, v in rates.items()),
        *(f"| {k} | skipped: {v} |" for k, v in skipped.items()),
        "",
        f"Best decoding {decode_best:,.1f} images/s vs best model {model_best:,.1f} images/s: bound by {bound}.",
        "",
    ]
    print("\n".join(lines))
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "gpu_" + torch.cuda.get_device_name(device).replace(" ", "_") if gpu else "cpu"
    (args.out / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / f"{stem}.md").write_text("\n".join(lines))
    print(f"wrote {args.out}/{stem}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
