"""The one training loop every workload shares: train, evaluate, log, checkpoint, resume.

Read top to bottom: set up (data, model, optimizer chain, logs), maybe resume, then epochs of inner
steps; after each epoch evaluate (slow / fast / averaged weights), append to metrics.jsonl, checkpoint
and rewrite summary.json.
"""

from __future__ import annotations

import math
import random
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from lookahead.optim.lookahead import Lookahead
from lookahead.train import checkpoint
from lookahead.train.build import build, validate
from lookahead.train.loggers import Console, MetricsFile, WandbLogger
from lookahead.train.run_dir import RunDir, RunDirError, environment, read_json, write_json
from lookahead.train.task import Classification


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# Fields that may differ between attempts of the same run (they are not part of its directory name).
NOT_IDENTITY = ("logger", "overrides", "device", "paths", "trainer.progress")


def _identity(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config minus the fields that may change when a run is resumed."""
    data = OmegaConf.to_container(cfg, resolve=True)
    for key in NOT_IDENTITY:
        *parents, leaf = key.split(".")
        node = data
        for parent in parents:
            node = node.get(parent, {})
        node.pop(leaf, None)
    return data


def train(cfg: DictConfig, run_path: str | Path) -> dict[str, Any]:
    """Run (or resume) the training run configured by ``cfg`` in ``run_path``; return its summary."""
    validate(cfg)
    with RunDir(run_path) as run:
        if run.config.exists() and _identity(OmegaConf.load(run.config)) != _identity(cfg):
            raise RunDirError(
                f"{run.path} holds a run with a different config (see its config.yaml); "
                f"choose another directory"
            )
        previous = read_json(run.summary)
        if previous and previous.get("status") == "completed":
            print(
                f"already completed: {run.path} (final test_accuracy "
                f"{previous['final'].get('test_accuracy')}); delete the directory to run it again"
            )
            return previous
        if not run.config.exists():
            run.config.write_text(OmegaConf.to_yaml(cfg, resolve=True))
        return _train(cfg, run)


def _train(cfg: DictConfig, run: RunDir) -> dict[str, Any]:
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    tcfg = cfg.trainer
    task = Classification()

    # -- data, model, optimizer chain ----------------------------------------------------------------
    setup = build(cfg, device)
    data, model, optimizer, scheduler = setup.data, setup.model, setup.optimizer, setup.scheduler
    train_loader, test_loader, averaging = setup.train_loader, setup.test_loader, setup.averaging
    steps_per_epoch = setup.steps_per_epoch
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16) if tcfg.precision == "bf16" else nullcontext()
    )

    # -- state that a checkpoint restores --------------------------------------------------------------
    state: dict[str, Any] = {
        "epoch": 0,
        "batch": 0,
        "step": 0,
        "wall_time_s": 0.0,
        "train_time_s": 0.0,
        "sums": [0.0, 0, 0],
        "samples": 0,
        "best": {},
        "final": {},
    }
    resumed = run.checkpoint.exists()
    if resumed:
        ckpt = checkpoint.load(run.checkpoint)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        if averaging is not None:
            averaging.load_state_dict(ckpt["averaging"])
        state = ckpt["state"]
        checkpoint.set_rng_state(ckpt["rng"])

    def save_checkpoint() -> None:
        checkpoint.save(
            run.checkpoint,
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "state": state,
                "rng": checkpoint.rng_state(),
                "averaging": averaging.state_dict() if averaging is not None else None,
            },
        )

    metrics = MetricsFile(run.metrics, resume_step=state["step"] if resumed else None)
    console = Console(tcfg.progress)
    wandb = WandbLogger(cfg, run.path, group=cfg.logger.group) if cfg.logger.name == "wandb" else None
    meta = {
        "experiment": cfg.experiment_name,
        "dataset": data.name,
        "model": cfg.model._target_.rsplit(".", 1)[-1],
        "method": cfg.method,
        "seed": cfg.seed,
        "max_epochs": tcfg.max_epochs,
        "run_dir": str(run.path),
        "overrides": list(cfg.get("overrides") or []),
        **environment(device),
    }

    def write_summary(status: str) -> dict[str, Any]:
        summary = {
            "status": status,
            **meta,
            "epochs_completed": state["epoch"],
            "steps": state["step"],
            "final": state["final"],
            "best": state["best"],
            "wall_time_s": state["wall_time_s"],
            "samples_per_s": state["samples"] / state["train_time_s"] if state["train_time_s"] else None,
        }
        write_json(run.summary, summary)
        return summary

    def evaluate() -> dict[str, float]:
        results: dict[str, float] = {}
        if (
            averaging is not None and averaging.n_averaged > 0
        ):  # Polyak: the averaged weights, once averaging began
            results.update(task.evaluate(averaging.module, test_loader.epoch(0)))
        elif isinstance(optimizer, Lookahead) and tcfg.eval_weights in ("slow", "both"):
            with optimizer.slow_weights():
                results.update(task.evaluate(model, test_loader.epoch(0)))
            if tcfg.eval_weights == "both":
                fast = task.evaluate(model, test_loader.epoch(0))
                results.update({f"{k}_fast": v for k, v in fast.items()})
        else:
            results.update(task.evaluate(model, test_loader.epoch(0)))
        return {f"test_{k}": v for k, v in results.items()}

    status = "running"
    write_summary(status)
    if resumed:
        console.message(f"resuming {run.path} at epoch {state['epoch'] + 1}, batch {state['batch']}")
    start = time.perf_counter() - state["wall_time_s"]
    # Per-step loss/accuracy stay on the device; they are added to state["sums"] at fixed steps only.
    loss_acc = torch.zeros((), device=device, dtype=torch.float64)
    correct_acc = torch.zeros((), device=device, dtype=torch.long)

    def flush() -> float:
        state["sums"][0] += loss_acc.item()
        state["sums"][1] += int(correct_acc.item())
        loss_acc.zero_()
        correct_acc.zero_()
        return state["sums"][0]

    # Plain ints for the hot loop: DictConfig attribute access costs microseconds per call.
    log_every, checkpoint_every = int(tcfg.log_every_steps), int(tcfg.checkpoint_every_steps or 0)
    model.train()
    try:
        while state["epoch"] < tcfg.max_epochs and status == "running":
            epoch = state["epoch"]
            console.start_epoch(epoch, tcfg.max_epochs, steps_per_epoch, state["batch"])
            epoch_start, epoch_samples = time.perf_counter(), 0
            for x, y in train_loader.epoch(epoch, start_batch=state["batch"]):
                if state["batch"] >= steps_per_epoch:
                    break
                with autocast:
                    loss, n_correct = task.train_step_loss(model, x, y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                if averaging is not None:
                    averaging.maybe_update(model, state["step"] + 1)
                loss_acc.add_(loss.detach(), alpha=len(y))  # one op: float32 into the float64 sum
                correct_acc.add_(n_correct)
                state["step"] += 1
                state["batch"] += 1
                state["sums"][2] += len(y)
                epoch_samples += len(y)
                if state["step"] % log_every == 0:
                    if not math.isfinite(flush()):
                        status = "diverged"
                        break
                    loss_sum, correct, count = state["sums"]
                    console.update(log_every, loss=loss_sum / count, acc=correct / count)
                if checkpoint_every and state["step"] % checkpoint_every == 0:
                    flush()
                    state["wall_time_s"] = time.perf_counter() - start
                    save_checkpoint()
            if status == "running" and not math.isfinite(flush()):
                status = "diverged"
            if status != "running":
                console.message(f"loss became non-finite at step {state['step']}: stopping (diverged)")
                break
            epoch_time = time.perf_counter() - epoch_start
            state["train_time_s"] += epoch_time
            state["samples"] += epoch_samples
            loss_sum, correct, count = state["sums"]
            record = {
                "epoch": epoch + 1,
                "step": state["step"],
                "lr": optimizer.param_groups[0]["lr"],
                "train_loss": loss_sum / count,
                "train_accuracy": correct / count,
                **evaluate(),
                "wall_time_s": time.perf_counter() - start,
                "samples_per_s": epoch_samples / epoch_time if epoch_time > 0 else None,
            }
            if not math.isfinite(record["test_loss"]):
                status = "diverged"
            state.update(epoch=epoch + 1, batch=0, sums=[0.0, 0, 0], wall_time_s=record["wall_time_s"])
            state["final"] = {k: v for k, v in record.items() if k.startswith(("test_", "train_"))}
            if record["test_accuracy"] >= state["best"].get("test_accuracy", -1.0):
                state["best"] = {
                    "test_accuracy": record["test_accuracy"],
                    "test_loss": record["test_loss"],
                    "epoch": epoch + 1,
                }
            metrics.log(record)
            if wandb is not None:
                wandb.log(record)
            save_checkpoint()
            console.end_epoch(record)
            write_summary(status)
        if status == "running":
            status = "completed"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    except BaseException:
        status = "failed"
        raise
    finally:
        state["wall_time_s"] = time.perf_counter() - start
        summary = write_summary(status)
        if wandb is not None:
            wandb.finish(summary)
    return summary
