"""The one training loop every workload shares: train, evaluate, log, checkpoint, resume; one process
or many (torchrun, SLURM).

``train`` takes the validated config (experiments/train.py validates it once), builds everything, opens
the run directory (rank 0 only), assembles a :class:`Loop` from its collaborators (the step, the
checkpoint, the reporter) and decides how the process ends: a stop signal is handed on only once the
loop has stopped cleanly. The loop reads top to bottom: ``run`` trains epoch after epoch;
``train_epoch`` takes the optimizer steps, and every ``log_every_steps`` reads the summed logs
(divergence and stop checks, progress); ``evaluate`` judges the weights the method is judged by after
each epoch (or every ``eval_every_steps``); ``report`` sends the record to metrics.jsonl, W&B and the
console and rewrites the checkpoint and summary.json; ``finish`` writes the last summary whatever
happened.
"""

from __future__ import annotations

import contextlib
import copy
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
from omegaconf import OmegaConf

from lookahead.optim.lookahead import Lookahead
from lookahead.train import threads
from lookahead.train.build import Setup, build
from lookahead.train.checkpoint import RunCheckpoint
from lookahead.train.cost import check_cpu_cost
from lookahead.train.distributed import Dist
from lookahead.train.evaluation import evaluate
from lookahead.train.fast_path import FastPath, self_checks
from lookahead.train.loggers import Console, MetricsFile, WandbLogger, check_wandb
from lookahead.train.reporter import Reporter
from lookahead.train.run_dir import NOT_IDENTITY, RunDir, RunDirError, atomic_write_text, environment
from lookahead.train.schema import Config, Trainer
from lookahead.train.signals import StopSignals
from lookahead.train.state import RunState, Status, Summary, measures_of
from lookahead.train.step import TrainStep
from lookahead.train.step_factory import Capture, make_step
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


def identity(resolved: dict[str, Any]) -> dict[str, Any]:
    """The resolved config (plain values) minus the fields that may change when a run is resumed."""
    data = copy.deepcopy(resolved)
    for key in NOT_IDENTITY:
        *parents, leaf = key.split(".")
        node = data
        for parent in parents:
            node = node.get(parent, {})
        node.pop(leaf, None)
    return data


def config_hash(config: Config) -> str:
    return hashlib.sha1(
        json.dumps(identity(config.resolved), sort_keys=True, default=str).encode()
    ).hexdigest()


def train(
    config: Config,
    run_path: str | Path,
    ranks: Dist | None = None,
    device: torch.device | None = None,
    graphed: Capture | None = None,
) -> Summary:
    """Run (or resume) the run ``config`` describes (validated: ``schema.validate``) in ``run_path`` on
    every rank; return its summary.

    Everything that can fail on bad input (config values, data, model) happens before the run directory
    is created. Rank 0 alone owns the directory (lock, config, logs, checkpoints). ``graphed``: the
    class that captures the step in CUDA graphs (tests hand in a CPU stand-in).
    """
    ranks = ranks or Dist()
    if config.logger.name == "wandb":  # every rank: none may wait for a rank 0 that stopped here
        check_wandb(config.logger)  # online without credentials: one line before anything is written
    device = device or resolve_device(config.device)
    seed_everything(config.seed)
    setup = build(config, device, world=ranks.world)
    config.check_steps(setup.steps_per_epoch * config.trainer.max_epochs)
    threads.configure(config.trainer.threads, device, setup.model, announce=ranks.is_main)
    check_cpu_cost(setup, device, config.device, config.trainer.max_epochs, config.trainer.accumulate_steps)
    wandb = WandbLogger(config) if ranks.is_main and config.logger.name == "wandb" else None
    # Everything is built: only now is anything written.
    run_path = Path(run_path)
    run, done = _open_on_main(config, run_path, ranks)
    if done is not None:
        return Summary(**done)
    benchmark = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = setup.fast.cudnn_benchmark
    try:
        with StopSignals() as signals:
            summary = assemble(config, setup, run, run_path, ranks, device, signals, graphed, wandb).run()
    finally:
        torch.backends.cudnn.benchmark = benchmark
        if run is not None:
            run.close()
    if summary.status == "interrupted":
        signals.hand_on()  # exits: 128 + the signal, or the launcher's own handler (submitit requeues)
    return summary


def _open_on_main(config: Config, path: Path, ranks: Dist) -> tuple[RunDir | None, dict[str, Any] | None]:
    """Rank 0 opens the run directory; every rank learns whether the run is already over."""
    run, done, error = None, None, None
    if ranks.is_main:
        try:
            run, done = _open(config, path)
        except RunDirError as err:
            error = str(err)
    error, done = ranks.broadcast((error, done))
    if error:
        raise RunDirError(error)
    if done is not None and run is not None:
        run.close()
    return run, done


def _open(config: Config, path: Path) -> tuple[RunDir, dict[str, Any] | None]:
    """Lock the run directory; the summary of a run that is already over (completed or diverged)."""
    run = RunDir(path)
    try:
        if run.config.exists():
            try:
                previous = OmegaConf.to_container(OmegaConf.load(run.config), resolve=True)
            except Exception as err:  # garbled YAML
                raise RunDirError(
                    f"{run.config} is damaged ({type(err).__name__}); delete the run directory"
                ) from None
            if identity(previous) != identity(config.resolved):
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
            atomic_write_text(run.config, OmegaConf.to_yaml(OmegaConf.create(config.resolved)))
        return run, None
    except BaseException:
        run.close()
        raise


def _replicas_identical(model: torch.nn.Module, optimizer: torch.optim.Optimizer, ranks: Dist) -> bool:
    """Whether every rank holds the same weights, fast and (with Lookahead) slow: a checksum compared."""
    tensors = list(model.parameters())
    if isinstance(optimizer, Lookahead):
        tensors += [s["slow"] for s in optimizer.state.values() if "slow" in s]
    sums = ranks.all_gather(float(sum(t.detach().double().sum().item() for t in tensors)))
    return len(set(sums)) == 1


def new_summary(config: Config, setup: Setup, run_path: Path, ranks: Dist, device: torch.device) -> Summary:
    workload = setup.workload
    return Summary(
        status="running",
        experiment=config.experiment_name,
        dataset=workload.name,
        model=config.target("model")["_target_"].rsplit(".", 1)[-1],
        method=config.method,
        seed=config.seed,
        max_epochs=config.trainer.max_epochs,
        run_dir=str(run_path),
        target=workload.target,
        higher_is_better=workload.higher_is_better if workload.convergence_metric else None,
        targets=list(workload.targets),
        targets_metric=workload.convergence_metric,
        unit=workload.unit,
        measures=measures_of(workload.measures),
        world_size=ranks.world,
        overrides=list(config.overrides),
        **environment(device),
    )


def assemble(
    config: Config,
    setup: Setup,
    run: RunDir | None,
    run_path: Path,
    ranks: Dist,
    device: torch.device,
    signals: StopSignals,
    graphed: Capture | None = None,
    wandb: WandbLogger | None = None,
) -> Loop:
    """The loop and its collaborators, resumed from the run's checkpoint if it has one."""
    ckpt = RunCheckpoint(run_path / "checkpoints" / "last.pt", config_hash(config), ranks)
    resumed = ckpt.exists()
    state, carry = ckpt.load(setup) if resumed else (RunState(), None)
    # After the load: DDP broadcasts rank 0's (resumed) weights.
    step = make_step(setup, ranks, device, config.trainer.clip_grad_norm, graphed)
    if run is not None:  # rank 0
        if wandb is not None:
            wandb.start(run_path)
        metrics = MetricsFile(run.metrics, resume_step=state.step if resumed else None)
        reporter = Reporter(Console(config.trainer.progress), metrics, wandb)
        summary_file = run.summary
    else:
        reporter, summary_file = Reporter(Console("off")), None
    summary = new_summary(config, setup, run_path, ranks, device)
    return Loop(
        config.trainer,
        setup,
        step,
        ckpt,
        reporter,
        summary,
        summary_file,
        ranks,
        device,
        signals,
        state,
        carry,
        resumed,
    )


class Loop:
    """Epochs of optimizer steps, evaluations, reports and checkpoints; ``status`` says where it is and
    changes only in ``end``."""

    def __init__(
        self,
        tcfg: Trainer,
        setup: Setup,
        step: TrainStep,
        checkpoint: RunCheckpoint,
        reporter: Reporter,
        summary: Summary,
        summary_file: Path | None,
        ranks: Dist,
        device: torch.device,
        signals: StopSignals,
        state: RunState,
        carry: Any = None,
        resumed: bool = False,
    ) -> None:
        """``state`` and ``carry``: where the run starts (``resumed``: from its checkpoint)."""
        self.setup, self.workload, self.model = setup, setup.workload, setup.model
        self.step, self.ckpt, self.reporter = step, checkpoint, reporter
        self.summary, self.summary_file = summary, summary_file
        self.ranks, self.device = ranks, device
        self.max_epochs, self.steps_per_epoch = tcfg.max_epochs, setup.steps_per_epoch
        self.accumulate, self.log_every = tcfg.accumulate_steps, tcfg.log_every_steps
        self.checkpoint_every, self.eval_every = tcfg.checkpoint_every_steps, tcfg.eval_every_steps
        self.eval_weights, self.bn_batches = tcfg.eval_weights, tcfg.bn_recalibration_batches
        dtype = setup.fast.autocast_dtype
        self.autocast = torch.autocast(device.type, dtype=dtype) if dtype else None
        self.state, self.carry, self.resumed, self.signals = state, carry, resumed, signals
        self.status: Status = Status.RUNNING
        self.reason: str | None = None
        self.acc = Metrics()  # this rank's summed logs since the last flush, on the device
        self.start = self.train_start = 0.0  # perf_counter at the run's (resumed) start, at training's
        self.step_failure_told = False
        self.units_before = 0.0  # units in state.sums at train_start (a resumed epoch's earlier part)

    # -- the run ------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.status is Status.RUNNING

    def end(self, status: Status, reason: str | None = None) -> None:
        """The one place the status changes."""
        self.status, self.reason = status, reason

    def run(self) -> Summary:
        """Train to max_epochs, divergence or a stop; the summary is written whatever happens."""
        state = self.state
        self.start = time.perf_counter() - state.wall_time_s
        self.write_summary()
        if _describe(self.setup.fast, self.device):
            self.reporter.message(_describe(self.setup.fast, self.device))
        if self.resumed:
            where = f"epoch {state.epoch + 1}, batch {state.batch}"
            self.reporter.message(f"resuming {self.summary.run_dir} at {where}")
        self.model.train()
        try:
            while state.epoch < self.max_epochs and self.running:
                train = self.train_epoch()
                if self.running:
                    self.end_epoch(train)
            self.stopped()
            self.ckpt.wait()  # the last checkpoint is on disk (or its write error raised) before the end
            if self.running:
                self.complete()
        except KeyboardInterrupt:
            self.end(Status.INTERRUPTED, "KeyboardInterrupt")
            raise
        except BaseException as err:
            self.end(Status.FAILED, f"{type(err).__name__}: {err}")
            raise
        finally:
            self.finish()
        return self.summary

    def train_epoch(self) -> dict[str, float]:
        """The optimizer steps of one epoch (its rest, after a resume), with the checks, checkpoints and
        evaluations due between them; the epoch's train metrics. ``status`` says whether to go on."""
        state = self.state
        self.reporter.start_epoch(state.epoch, self.max_epochs, self.steps_per_epoch, state.batch)
        if state.batch == 0:
            self.carry = self.workload.init_carry(self.model)
        ranks = self.ranks
        batches = self.workload.train_batches(
            state.epoch, state.batch * self.accumulate, ranks.rank, ranks.world
        )
        self.train_start = time.perf_counter()
        self.units_before = state.sums.get("sample_size", 0)
        train: dict[str, float] = {}
        while state.batch < self.steps_per_epoch and self.running:
            micro = list(islice(batches, self.accumulate))
            if len(micro) < self.accumulate:
                break
            self.optimizer_step(micro)
            self.between_steps()
        if self.running:
            train, _ = self.flush()
            if self.diverged(train, prefix="train_"):
                self.end(Status.DIVERGED)
        return train

    def optimizer_step(self, micro: list[Any]) -> None:
        result = self.step(micro, self.carry)
        if self.step.failure and not self.step_failure_told:
            self.reporter.message(f"CUDA graphs off, the run goes on eagerly: {self.step.failure}")
            self.step_failure_told = True
        self.carry = result.carry
        if self.setup.averaging is not None:
            self.setup.averaging.maybe_update(self.model, self.state.step + 1)
        for logs in result.logs:
            self.acc.add(logs)
        self.acc.add({"sample_size": result.sample_size})
        self.state.step += 1
        self.state.batch += 1

    def between_steps(self) -> None:
        """What is due after a step: the log check, a mid-epoch checkpoint, a mid-epoch evaluation."""
        state, requested = self.state, self.signals.requested
        # Single process: stop at once on a signal; ranks agree on stopping at flushes only.
        if state.step % self.log_every == 0 or (requested and not self.ranks.enabled):
            train, stop = self.flush(stop_requested=requested is not None)
            if self.diverged(train, prefix="train_"):
                self.end(Status.DIVERGED)
                return
            if stop:
                self.end(Status.INTERRUPTED, f"signal {self.signals.name or 'on another rank'}")
                return
            self.reporter.progress(self.log_every, train)
        self.reporter.heartbeat(state.step)  # a line at least once a minute, however slow the steps
        if self.checkpoint_every and state.step % self.checkpoint_every == 0:
            self.flush()
            state.wall_time_s = time.perf_counter() - self.start
            self.checkpoint()
        if self.eval_every and state.step % self.eval_every == 0 and state.batch < self.steps_per_epoch:
            train, _ = self.flush()
            record = self.evaluate(state.epoch + state.batch / self.steps_per_epoch, train)
            if self.diverged(record):
                self.end(Status.DIVERGED)
            else:
                self.report(record, end_of_epoch=False)

    def end_epoch(self, train: dict[str, float]) -> None:
        record = self.evaluate(self.state.epoch + 1, train)
        self.state.epoch, self.state.batch = self.state.epoch + 1, 0
        if self.diverged(record):
            self.end(Status.DIVERGED)
        self.report(record, end_of_epoch=True)

    def stopped(self) -> None:
        """A run that stopped early says why; an interrupted one is checkpointed to resume exactly."""
        state = self.state
        if self.status is Status.DIVERGED:
            self.reporter.message(f"loss became non-finite at step {state.step}: stopping (diverged)")
        if self.status is Status.INTERRUPTED:
            state.train_time_s += time.perf_counter() - self.train_start
            state.wall_time_s = time.perf_counter() - self.start
            self.checkpoint()
            self.reporter.message(
                f"stopped by {self.reason} at step {state.step}: checkpoint written, resume by running "
                f"the same command"
            )

    def complete(self) -> None:
        """The run reached max_epochs: the workload's final evaluation, and a check that ranks agree."""
        self.end(Status.COMPLETED)
        if self.ranks.is_main:
            self.state.final.update(self.workload.final_evaluation(self.model, Path(self.summary.run_dir)))
            self.summary.extra.update(self.workload.summary_extra)
        self.ranks.barrier()
        if self.ranks.enabled:
            identical = _replicas_identical(self.model, self.setup.optimizer, self.ranks)
            self.summary.extra["replicas_identical"] = identical

    def finish(self) -> None:
        """The last summary (any status) and the W&B run's end; the first error on the way wins."""
        self.state.wall_time_s = time.perf_counter() - self.start
        with contextlib.suppress(Exception):  # on the error path: finish the last write, keep the error
            self.ckpt.wait()
        try:
            self.write_summary()
        finally:
            self.reporter.finish(self.summary.to_dict())

    # -- its parts ----------------------------------------------------------------------------------
    def flush(self, stop_requested: bool = False) -> tuple[dict[str, float], bool]:
        """Fold this rank's device sums into state.sums (summed over ranks): the train metrics of the
        epoch so far, and whether any rank was asked to stop."""
        sums, state = self.acc.pop(), self.state
        keys = sorted(sums)
        values = torch.tensor(
            [sums[k] for k in keys] + [float(stop_requested)], dtype=torch.float64, device=self.device
        )
        values = self.ranks.all_reduce_tensor(values).tolist()
        for key, value in zip(keys, values):
            state.sums[key] = state.sums.get(key, 0) + value
        return self.workload.reduce(state.sums), values[-1] > 0

    def diverged(self, metrics: dict[str, Any], prefix: str = "") -> bool:
        """The divergence check: whether a divergence metric (train, or any split) is non-finite."""
        metric = self.workload.divergence_metric
        names = [f"train_{metric}", *(f"{s.name}_{metric}" for s in self.workload.splits())]
        keys = (n.removeprefix(prefix) for n in names)
        return any(not math.isfinite(metrics[k]) for k in keys if k in metrics)

    def evaluate(self, epoch_value: float, train: dict[str, float]) -> dict[str, Any]:
        """The evaluation record of the weights the method is judged by; state.final, best and the
        targets reached follow it."""
        elapsed, units = self.clock_training()
        record = self.record(epoch_value, train, elapsed, units)
        self.state.sums = {}
        self.update_final_and_best(record, epoch_value)
        self.update_reached(record)
        self.state.wall_time_s = record["wall_time_s"]
        self.train_start, self.units_before = time.perf_counter(), 0.0
        return record

    def clock_training(self) -> tuple[float, float]:
        """The training time and units since the last evaluation, added to the run's totals."""
        state = self.state
        elapsed = time.perf_counter() - self.train_start
        units = state.sums.get("sample_size", 0)
        state.train_time_s += elapsed
        state.samples += int(units)
        return elapsed, units

    def record(
        self, epoch_value: float, train: dict[str, float], elapsed: float, units: float
    ) -> dict[str, Any]:
        """One line of metrics.jsonl: where the run is, train metrics, the judged weights' metrics."""
        state, workload = self.state, self.workload
        judged = evaluate(
            workload,
            self.model,
            self.setup.optimizer,
            self.setup.averaging,
            eval_weights=self.eval_weights,
            bn_batches=self.bn_batches,
            epoch=state.epoch,
            ranks=self.ranks,
            device=self.device,
            autocast=self.autocast,
        )
        return {
            "epoch": epoch_value,
            "step": state.step,
            "lr": self.setup.optimizer.param_groups[0]["lr"],
            **{f"train_{k}": v for k, v in train.items()},
            **judged,
            "wall_time_s": time.perf_counter() - self.start,
            workload.unit: state.samples,  # trained so far: curves and steps-to-target in samples/tokens
            # the units trained since train_start over its time (not the resumed epoch's earlier part)
            f"{workload.unit}_per_s": (units - self.units_before) / elapsed if elapsed > 0 else None,
        }

    def update_final_and_best(self, record: dict[str, Any], epoch_value: float) -> None:
        splits = ("train_", *(f"{s.name}_" for s in self.workload.splits()))
        self.state.final = {k: v for k, v in record.items() if k.startswith(splits)}
        self.update_best(record, epoch_value)

    def update_reached(self, record: dict[str, Any]) -> None:
        """When validation first reached each convergence target (the record is final)."""
        workload = self.workload
        if workload.convergence_metric:
            record_reached(
                self.state.reached,
                record,
                workload.convergence_metric,
                workload.targets,
                workload.higher_is_better,
                workload.unit,
            )

    def update_best(self, record: dict[str, Any], epoch_value: float) -> None:
        """Keep the evaluation with the best target value; a plateau schedule hears whether it improved."""
        workload, state = self.workload, self.state
        target = workload.target
        if target is None or target not in record:
            return
        best, value = state.best.get(target), record[target]
        improved = best is None or (value >= best if workload.higher_is_better else value <= best)
        if improved:
            state.best = {target: value, "epoch": epoch_value, "step": state.step}
            state.best.update({k: v for k, v in record.items() if k.startswith("valid_")})
        if self.setup.plateau is not None:
            self.setup.plateau.observe(improved)

    def report(self, record: dict[str, Any], end_of_epoch: bool) -> None:
        self.reporter.record(record, end_of_epoch)
        self.checkpoint()
        self.write_summary()

    def checkpoint(self) -> None:
        self.ckpt.save(self.setup, self.state, self.carry)

    def write_summary(self) -> None:
        summary, state = self.summary, self.state
        summary.status, summary.reason = self.status.value, self.reason
        summary.fast_path = {**self.setup.fast.to_dict(), **self.step.fast_path_record()}
        summary.fast_path["self_checks"] = self_checks(self.step, self.setup.optimizer)
        summary.epochs_completed, summary.steps = state.epoch, state.step
        summary.final, summary.best, summary.wall_time_s = state.final, state.best, state.wall_time_s
        summary.reached = state.reached
        summary.samples_per_s = state.samples / state.train_time_s if state.train_time_s else None
        if self.summary_file is not None:
            summary.write(self.summary_file)


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
