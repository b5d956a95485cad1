"""The one training loop every workload shares: train, evaluate, log, checkpoint, resume; one process
or many (torchrun, SLURM).

``train`` validates and builds everything, then opens the run directory (rank 0 only) and calls
``fit``: epochs of optimizer steps; every ``log_every_steps`` the summed logs are read (divergence and
stop checks, progress); at every evaluation (each epoch, or every ``eval_every_steps``) the weights the
method is judged by are evaluated on the workload's splits, a line goes to metrics.jsonl, and the
checkpoint and summary.json are rewritten.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import random
import time
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch.nn.parallel import DistributedDataParallel

from lookahead.optim.lookahead import Lookahead
from lookahead.train import checkpoint
from lookahead.train.build import Setup, build
from lookahead.train.distributed import Dist
from lookahead.train.evaluation import evaluate
from lookahead.train.fast_path import FastPath, self_checks
from lookahead.train.graphs import GraphedStep
from lookahead.train.loggers import Console, MetricsFile, WandbLogger, check_wandb
from lookahead.train.run_dir import NOT_IDENTITY, RunDir, RunDirError, environment
from lookahead.train.schema import validate, validate_steps
from lookahead.train.signals import StopSignals
from lookahead.train.state import RunState, Summary
from lookahead.train.step import TrainStep
from lookahead.train.targets import record_reached
from lookahead.workloads.base import Metrics


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def identity(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config minus the fields that may change when a run is resumed."""
    data = OmegaConf.to_container(cfg, resolve=True)
    for key in NOT_IDENTITY:
        *parents, leaf = key.split(".")
        node = data
        for parent in parents:
            node = node.get(parent, {})
        node.pop(leaf, None)
    return data


def config_hash(cfg: DictConfig) -> str:
    return hashlib.sha1(json.dumps(identity(cfg), sort_keys=True, default=str).encode()).hexdigest()


def train(
    cfg: DictConfig, run_path: str | Path, ranks: Dist | None = None, device: torch.device | None = None
) -> Summary:
    """Run (or resume) the run configured by ``cfg`` in ``run_path`` on every rank; return its summary.

    Everything that can fail on bad input (config values, data, model) happens before the run directory
    is created. Rank 0 alone owns the directory (lock, config, logs, checkpoints).
    """
    ranks = ranks or Dist()
    validate(cfg)
    if cfg.logger.name == "wandb":  # every rank: none may wait for a rank 0 that stopped here
        check_wandb(cfg)  # online without credentials: one line before anything is written
    device = device or resolve_device(cfg.device)
    seed_everything(cfg.seed)
    setup = build(cfg, device, world=ranks.world)
    validate_steps(cfg, setup.steps_per_epoch * int(cfg.trainer.max_epochs))
    run, done, error = None, None, None
    if ranks.is_main:
        try:
            run, done = _open(cfg, Path(run_path))
        except RunDirError as err:
            error = str(err)
    error, done = ranks.broadcast((error, done))
    if error:
        raise RunDirError(error)
    if done is not None:
        return Summary(**done)
    benchmark = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = setup.fast.cudnn_benchmark
    try:
        return fit(cfg, setup, run, Path(run_path), ranks, device)
    finally:
        torch.backends.cudnn.benchmark = benchmark
        if run is not None:
            run.close()


def _open(cfg: DictConfig, path: Path) -> tuple[RunDir, dict[str, Any] | None]:
    """Lock the run directory; the summary of a run that is already over (completed or diverged)."""
    run = RunDir(path)
    try:
        if run.config.exists():
            try:
                previous_cfg = OmegaConf.load(run.config)
            except Exception as err:  # garbled YAML
                raise RunDirError(
                    f"{run.config} is damaged ({type(err).__name__}); delete the run directory"
                ) from None
            if identity(previous_cfg) != identity(cfg):
                raise RunDirError(
                    f"{run.path} holds a run with a different config (see its config.yaml); "
                    f"choose another directory"
                )
        try:
            previous = Summary.read(run.summary)
        except ValueError as err:
            raise RunDirError(str(err)) from None
        if previous is not None and previous.status in ("completed", "diverged"):
            value = previous.final.get(previous.target or "", previous.final)
            print(
                f"already {previous.status}: {run.path} (final {previous.target or 'metrics'}: {value}); "
                f"delete the directory to train it again"
            )
            return run, previous.to_dict()
        if not run.config.exists():
            run.config.write_text(OmegaConf.to_yaml(cfg, resolve=True))
        return run, None
    except BaseException:
        run.close()
        raise


def _resume(path: Path, config_hash_: str, setup: Setup, ranks: Dist) -> tuple[RunState, Any]:
    """Load the checkpoint into ``setup`` and this rank's RNG; the run state and this rank's carry."""
    ckpt = checkpoint.load(path)
    if "setup" not in ckpt or "ranks" not in ckpt:
        raise checkpoint.CheckpointError(
            f"checkpoint {path} was written by an older version of the trainer; move it away to start the "
            f"run afresh"
        )
    if ckpt.get("config_hash") != config_hash_:
        raise checkpoint.CheckpointError(
            f"checkpoint {path} was written under another config; move it away to start afresh"
        )
    if len(ckpt["ranks"]) != ranks.world:
        raise checkpoint.CheckpointError(
            f"checkpoint {path} was written by {len(ckpt['ranks'])} process(es), this job has "
            f"{ranks.world}: resume with the same number of processes"
        )
    setup.load_state_dict(ckpt["setup"])
    checkpoint.set_rng_state(ckpt["ranks"][ranks.rank]["rng"])
    return RunState.from_dict(ckpt["state"]), ckpt["ranks"][ranks.rank]["carry"]


def _replicas_identical(model: torch.nn.Module, optimizer: torch.optim.Optimizer, ranks: Dist) -> bool:
    """Whether every rank holds the same weights, fast and (with Lookahead) slow: a checksum compared."""
    tensors = list(model.parameters())
    if isinstance(optimizer, Lookahead):
        tensors += [s["slow"] for s in optimizer.state.values() if "slow" in s]
    sums = ranks.all_gather(float(sum(t.detach().double().sum().item() for t in tensors)))
    return len(set(sums)) == 1


def fit(
    cfg: DictConfig, setup: Setup, run: RunDir | None, run_path: Path, ranks: Dist, device: torch.device
) -> Summary:
    tcfg = cfg.trainer
    workload, model, optimizer, averaging = setup.workload, setup.model, setup.optimizer, setup.averaging
    steps_per_epoch, max_epochs = setup.steps_per_epoch, int(tcfg.max_epochs)
    ckpt_path = run_path / "checkpoints" / "last.pt"
    hash_ = config_hash(cfg)

    # -- resume: every rank loads the same checkpoint (a shared file system), then its own RNG/carry ----
    resumed = ranks.broadcast(ckpt_path.exists() if ranks.is_main else None)
    state, carry = _resume(ckpt_path, hash_, setup, ranks) if resumed else (RunState(), None)
    fast = setup.fast
    net = model
    if ranks.enabled:  # broadcasts rank 0's weights: every replica (and Lookahead's slow copy) starts equal
        net = DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    if fast.compile:  # the training forward only: evaluation runs the plain module
        net = torch.compile(net, mode=None if fast.compile in (True, "default") else fast.compile)
    autocast = torch.autocast(device.type, dtype=fast.autocast_dtype) if fast.autocast_dtype else None
    step = TrainStep(
        workload,
        net,
        optimizer,
        setup.scheduler,
        ranks,
        device,
        fast.autocast_dtype,
        tcfg.get("clip_grad_norm"),
    )
    if fast.cuda_graphs:
        step = GraphedStep(step)

    # -- outputs (rank 0) -----------------------------------------------------------------------------
    main = ranks.is_main
    metrics = MetricsFile(run.metrics, resume_step=state.step if resumed else None) if main else None
    console = Console(tcfg.progress if main else "off")
    wandb = (
        WandbLogger(cfg, run_path, group=cfg.logger.group) if main and cfg.logger.name == "wandb" else None
    )
    unit = workload.unit
    summary = Summary(
        status="running",
        experiment=cfg.experiment_name,
        dataset=workload.name,
        model=cfg.model._target_.rsplit(".", 1)[-1],
        method=cfg.method,
        seed=cfg.seed,
        max_epochs=max_epochs,
        run_dir=str(run_path),
        target=workload.target,
        higher_is_better=workload.higher_is_better if workload.convergence_metric else None,
        targets=list(workload.targets),
        targets_metric=workload.convergence_metric,
        unit=unit,
        world_size=ranks.world,
        overrides=list(cfg.get("overrides") or []),
        **environment(device),
    )

    def write_summary(status: str, reason: str | None = None) -> None:
        summary.status, summary.reason = status, reason
        summary.fast_path = fast.to_dict()
        if isinstance(step, GraphedStep):
            summary.fast_path.update(graph_replays=step.replays, graph_failure=step.failure)
        summary.fast_path["self_checks"] = self_checks(step, optimizer)
        summary.epochs_completed, summary.steps = state.epoch, state.step
        summary.final, summary.best, summary.wall_time_s = state.final, state.best, state.wall_time_s
        summary.reached = state.reached
        summary.samples_per_s = state.samples / state.train_time_s if state.train_time_s else None
        if main:
            summary.write(run.summary)

    writer = checkpoint.Writer()

    def save_checkpoint() -> None:
        per_rank = ranks.gather({"rng": checkpoint.rng_state(), "carry": carry})
        if main:
            payload = {
                "setup": setup.state_dict(),
                "state": state.to_dict(),
                "ranks": per_rank,
                "config_hash": hash_,
            }
            writer.save(ckpt_path, payload)  # returns once the state is copied to host memory

    # -- the loop -------------------------------------------------------------------------------------
    accumulate = int(tcfg.get("accumulate_steps", 1) or 1)
    log_every, checkpoint_every = int(tcfg.log_every_steps), int(tcfg.checkpoint_every_steps or 0)
    eval_every = int(tcfg.get("eval_every_steps") or 0)
    bn_batches = int(tcfg.get("bn_recalibration_batches") or 0)
    acc = Metrics()  # this rank's summed logs since the last flush, on the device
    status, reason = "running", None
    graph_failure_told = False
    train_start = 0.0  # perf_counter at the start of the current stretch of training steps
    start = time.perf_counter() - state.wall_time_s

    def flush(stop_requested: bool) -> bool:
        """Fold the device sums into state.sums (summed over ranks); True if the job must stop now."""
        sums = acc.pop()
        keys = sorted(sums)
        values = torch.tensor(
            [sums[k] for k in keys] + [float(stop_requested)], dtype=torch.float64, device=device
        )
        values = ranks.all_reduce_tensor(values).tolist()
        for key, value in zip(keys, values):
            state.sums[key] = state.sums.get(key, 0) + value
        return values[-1] > 0

    def evaluation(epoch_value: float) -> dict[str, Any]:
        nonlocal train_start
        elapsed = time.perf_counter() - train_start
        state.train_time_s += elapsed
        units = state.sums.get("sample_size", 0)
        state.samples += int(units)
        record = {
            "epoch": epoch_value,
            "step": state.step,
            "lr": optimizer.param_groups[0]["lr"],
            **{f"train_{k}": v for k, v in workload.reduce(state.sums).items()},
            **evaluate(
                workload,
                model,
                optimizer,
                averaging,
                eval_weights=tcfg.eval_weights,
                bn_batches=bn_batches,
                epoch=state.epoch,
                ranks=ranks,
                device=device,
                autocast=autocast,
            ),
            "wall_time_s": time.perf_counter() - start,
            unit: state.samples,  # trained so far: curves and steps-to-target against samples or tokens
            f"{unit}_per_s": units / elapsed if elapsed > 0 else None,
        }
        state.sums = {}
        state.final = {
            k: v
            for k, v in record.items()
            if k.startswith(("train_", *(f"{s.name}_" for s in workload.splits())))
        }
        target = workload.target
        if target is not None and target in record:
            best = state.best.get(target)
            value = record[target]
            improved = best is None or (value >= best if workload.higher_is_better else value <= best)
            if improved:
                state.best = {target: value, "epoch": epoch_value, "step": state.step}
                state.best.update({k: v for k, v in record.items() if k.startswith("valid_")})
            if setup.plateau is not None:
                setup.plateau.observe(improved)
        if workload.convergence_metric:
            record_reached(
                state.reached,
                record,
                workload.convergence_metric,
                workload.targets,
                workload.higher_is_better,
                unit,
            )
        state.wall_time_s = record["wall_time_s"]
        train_start = time.perf_counter()
        return record

    def diverged(values: dict[str, Any]) -> bool:
        names = [
            f"train_{workload.divergence_metric}",
            *(f"{s.name}_{workload.divergence_metric}" for s in workload.splits()),
        ]
        return any(k in values and not math.isfinite(values[k]) for k in names)

    write_summary(status)
    if _describe(fast, device):
        console.message(_describe(fast, device))
    if resumed:
        console.message(f"resuming {run_path} at epoch {state.epoch + 1}, batch {state.batch}")
    model.train()
    with StopSignals() as signals:
        try:
            while state.epoch < max_epochs and status == "running":
                epoch = state.epoch
                console.start_epoch(epoch, max_epochs, steps_per_epoch, state.batch)
                if state.batch == 0:
                    carry = workload.init_carry(model)
                batches = workload.train_batches(epoch, state.batch * accumulate, ranks.rank, ranks.world)
                train_start = time.perf_counter()
                while state.batch < steps_per_epoch:
                    micro = list(islice(batches, accumulate))
                    if len(micro) < accumulate:
                        break
                    result = step(micro, carry)
                    if isinstance(step, GraphedStep) and step.failure and not graph_failure_told:
                        console.message(f"CUDA graphs off, the run goes on eagerly: {step.failure}")
                        graph_failure_told = True
                    carry = result.carry
                    if averaging is not None:
                        averaging.maybe_update(model, state.step + 1)
                    for logs in result.logs:
                        acc.add(logs)
                    acc.add({"sample_size": result.sample_size})
                    state.step += 1
                    state.batch += 1
                    # Single process: stop at once on a signal; ranks agree on stopping at flushes only.
                    at_flush = state.step % log_every == 0 or (signals.requested and not ranks.enabled)
                    if at_flush:
                        stop = flush(signals.requested is not None)
                        if diverged({f"train_{k}": v for k, v in workload.reduce(state.sums).items()}):
                            status = "diverged"
                            break
                        if stop:
                            status, reason = "interrupted", f"signal {signals.name or 'on another rank'}"
                            break
                        console.update(log_every, **workload.reduce(state.sums))
                    if checkpoint_every and state.step % checkpoint_every == 0:
                        flush(False)
                        state.wall_time_s = time.perf_counter() - start
                        save_checkpoint()
                    if eval_every and state.step % eval_every == 0 and state.batch < steps_per_epoch:
                        flush(False)
                        record = evaluation(epoch + state.batch / steps_per_epoch)
                        if diverged(record):
                            status = "diverged"
                            break
                        _emit(record, metrics, wandb, console, end_of_epoch=False)
                        save_checkpoint()
                        write_summary(status)
                if status == "running":
                    flush(False)
                    if diverged({f"train_{k}": v for k, v in workload.reduce(state.sums).items()}):
                        status = "diverged"
                if status == "diverged":
                    console.message(f"loss became non-finite at step {state.step}: stopping (diverged)")
                    break
                if status == "interrupted":
                    state.train_time_s += time.perf_counter() - train_start
                    state.wall_time_s = time.perf_counter() - start
                    save_checkpoint()
                    console.message(
                        f"stopped by {reason} at step {state.step}: checkpoint written, resume by running the same command"
                    )
                    break
                record = evaluation(epoch + 1)
                state.epoch, state.batch = epoch + 1, 0
                if diverged(record):
                    status = "diverged"
                _emit(record, metrics, wandb, console, end_of_epoch=True)
                save_checkpoint()
                write_summary(status)
            writer.wait()  # the last checkpoint is on disk (or its write error raised) before the end
            if status == "running":
                status = "completed"
                if main:
                    state.final.update(workload.final_evaluation(model, run_path))
                    summary.extra.update(workload.summary_extra)
                ranks.barrier()
                if ranks.enabled:
                    summary.extra["replicas_identical"] = _replicas_identical(model, optimizer, ranks)
        except KeyboardInterrupt:
            status, reason = "interrupted", "KeyboardInterrupt"
            raise
        except BaseException as err:
            status, reason = "failed", f"{type(err).__name__}: {err}"
            raise
        finally:
            state.wall_time_s = time.perf_counter() - start
            with contextlib.suppress(Exception):  # on the error path: finish the last write, keep the error
                writer.wait()
            try:
                write_summary(status, reason)
            finally:
                if wandb is not None:
                    wandb.finish(summary.to_dict())
    if status == "interrupted":
        signals.hand_on()
    return summary


def _describe(fast: FastPath, device: torch.device) -> str | None:
    """One line: the speed settings of this run and why any of them is off (None: plain fp32 eager)."""
    mode = f"({fast.compile})" if isinstance(fast.compile, str) else ""
    on = [
        name
        for name, used in (
            (fast.precision, True),
            ("channels_last", fast.channels_last),
            ("cudnn.benchmark", fast.cudnn_benchmark),
            ("fused inner step", fast.fused_optimizer),
            ("CUDA graphs", fast.cuda_graphs),
            ("sync kernel", fast.sync_kernel),
            (f"torch.compile{mode}", bool(fast.compile)),
        )
        if used
    ]
    if on == ["fp32"] and not fast.notes:
        return None
    notes = "".join(f"; {note}" for note in fast.notes)
    return f"speed settings on {device.type}: {', '.join(on)}{notes}"


def _emit(
    record: dict[str, Any],
    metrics: MetricsFile | None,
    wandb: WandbLogger | None,
    console: Console,
    end_of_epoch: bool,
) -> None:
    if metrics is not None:
        metrics.log(record)
    if wandb is not None:
        wandb.log(record)
    console.evaluation(record, end_of_epoch)
