"""Training tokens/s of the suite's trainer against a bare loop on Penn Treebank (`make bench-ptb`).

Both sides train the same model with the same optimizer (the preset's, Lookahead included), LR
schedule, gradient clipping, AWD-LSTM learning-rate scaling, carried hidden state and batches; the bare
loop does nothing else. Rates are tokens per CPU second of this process, so other processes on a
shared machine do not skew them, measured by difference on both sides: (a run of 2N steps) - (a run of
N steps), which cancels set-up, the trainer's end-of-run evaluation and checkpoint. Runs alternate; the
median of the per-pair ratios is reported (the target is >= 0.95).

    python scripts/bench_ptb.py --preset ptb_small_lookahead --steps 150 --repeats 3
"""

from __future__ import annotations

from lookahead.progress import announce

announce(__name__, "benchmarking PTB tokens/s (trainer vs a bare loop)")

import argparse
import contextlib
import io
import statistics
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from lookahead.analysis.stats import paired_ratios
from lookahead.cli import register_resolvers
from lookahead.train.build import build, build_workload
from lookahead.train.schema import validate
from lookahead.train.signals import stop_cleanly
from lookahead.train.trainer import seed_everything, train

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def config(preset: str, steps: int, data: Path, source: str) -> DictConfig:
    register_resolvers()
    overrides = [
        f"experiment={preset}",
        "trainer.max_epochs=1",
        f"trainer.limit_train_batches={steps}",
        "trainer.eval_every_steps=0",
        "trainer.progress=lines",
        "device=cpu",
        f"paths.data={data}",
        f"dataset.source={source}",
    ]
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def tokens(cfg: DictConfig, steps: int) -> int:
    """Target tokens in the first ``steps`` windows of epoch 0."""
    work = build_workload(validate(cfg), "cpu")
    return sum(work.sample_size(batch) for _, batch in zip(range(steps), work.train_batches(0)))


def trainer_seconds(cfg: DictConfig) -> float:
    """CPU seconds of one whole trainer run."""
    # the trainer's own lines would bury the benchmark's, which prints one line per pair
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        start = time.process_time()
        train(validate(cfg), Path(tmp) / "run")
        return time.process_time() - start


def bare_loop_seconds(cfg: DictConfig) -> float:
    """CPU seconds of the shortest honest loop over the same batches (set-up included, as in the
    trainer's): forward, backward, clip, scaled step, schedule."""
    start = time.process_time()
    seed_everything(cfg.seed)
    setup = build(validate(cfg), torch.device("cpu"))
    work, model, opt, sched = setup.workload, setup.model, setup.optimizer, setup.scheduler
    clip = cfg.trainer.get("clip_grad_norm")
    params = [p for p in model.parameters() if p.requires_grad]
    model.train()
    carry = work.init_carry(model)
    for step, batch in enumerate(work.train_batches(0)):
        if step == setup.steps_per_epoch:
            break
        out = work.train_step(model, batch, carry)
        carry = out.carry
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(params, clip)
        for group in opt.param_groups:
            group["lr"] *= out.lr_scale
        opt.step()
        sched.step()
    return time.process_time() - start


@stop_cleanly("nothing saved (the benchmark only prints; the lines above are what it measured)")
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="ptb_small_lookahead")
    parser.add_argument("--steps", type=int, default=100, help="N: runs of N and 2N steps")
    parser.add_argument("--repeats", type=int, default=3, help="alternating (trainer, bare loop) pairs")
    parser.add_argument("--data", type=Path, default=Path("data"), help="data root (holds ptb/)")
    parser.add_argument("--source", default="treebank", help="dataset.source: treebank | files")
    args = parser.parse_args()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.preset}, {args.steps} steps",
        flush=True,
    )
    cfg = config(args.preset, args.steps, args.data, args.source)
    long = config(args.preset, 2 * args.steps, args.data, args.source)
    extra = tokens(long, 2 * args.steps) - tokens(cfg, args.steps)  # the N steps the long runs add
    ours, bare = [], []
    print(
        f"{args.repeats} alternating pairs (trainer, bare loop), each of runs of {args.steps} and "
        f"{2 * args.steps} steps",
        flush=True,
    )
    for pair in range(args.repeats):
        ours.append(extra / (trainer_seconds(long) - trainer_seconds(cfg)))
        bare.append(extra / (bare_loop_seconds(long) - bare_loop_seconds(cfg)))
        print(
            f"  pair {pair + 1}/{args.repeats}: trainer {ours[-1]:,.0f} vs bare loop {bare[-1]:,.0f} tokens "
            f"per CPU second = {ours[-1] / bare[-1]:.3f}x",
            flush=True,
        )
    ratio, low, high = paired_ratios(ours, bare)
    verdict = "ok" if ratio >= 0.95 else "MISS"
    print(
        f"trainer / bare loop: median of the {args.repeats} per-pair ratios {ratio:.3f}x (range "
        f"{low:.3f}-{high:.3f}; target >= 0.95: {verdict}); each side's own median "
        f"{statistics.median(ours):,.0f} vs {statistics.median(bare):,.0f} tokens per CPU second"
    )


if __name__ == "__main__":
    main()
