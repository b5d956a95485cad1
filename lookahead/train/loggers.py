"""Where metrics go: metrics.jsonl (always), the terminal, and optionally Weights & Biases."""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from tqdm import tqdm

from lookahead.extras import require
from lookahead.train.run_dir import RunDirError, atomic_write_text
from lookahead.train.schema import Config, ConfigError, Logger
from lookahead.writes import writing


class MetricsFile:
    """Append-only ``metrics.jsonl``. On resume, records past the checkpoint's step are dropped (an
    interrupted run never leaves duplicates), and so is a last line cut short by a crash or a full disk."""

    def __init__(self, path: Path, resume_step: int | None) -> None:
        self.path = path
        if resume_step is None:
            path.unlink(missing_ok=True)
        elif path.exists():
            kept = []
            lines = path.read_text(errors="replace").splitlines()
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    if number == len(lines):  # a torn last line: the write it belongs to never finished
                        break
                    raise RunDirError(
                        f"{path}: line {number} is not JSON; repair or delete the file"
                    ) from None
                if record["step"] <= resume_step:
                    kept.append(line)
            atomic_write_text(path, "".join(line + "\n" for line in kept))

    def log(self, record: dict[str, Any]) -> None:
        with writing(self.path), self.path.open("a") as f:  # a full disk: one line naming the file
            f.write(json.dumps(record) + "\n")


# How the console shows a record's keys: short names, and which come first.
_SHORT = {"accuracy": "acc", "perplexity": "ppl"}


def fmt(record: dict[str, Any]) -> str:
    """One line per evaluation: epoch, step, lr, then every metric, then the throughput."""
    epoch = record["epoch"]
    parts = [f"epoch {epoch:g}" if isinstance(epoch, float) else f"epoch {epoch}", f"step {record['step']}"]
    parts.append(f"lr {record['lr']:.4g}")
    for key, value in record.items():
        if (
            key in ("epoch", "step", "lr", "wall_time_s")
            or key.endswith("_per_s")
            or not isinstance(value, float)
        ):
            continue
        split, _, name = key.partition("_")
        parts.append(f"{split}_{_SHORT.get(name, name)} {value:.4f}")
    for key, value in record.items():
        if key.endswith("_per_s") and value is not None:
            parts.append(f"{value:.0f} {key[: -len('_per_s')]}/s")
    return " | ".join(parts)


class Console:
    """A tqdm bar per epoch on a terminal; plain log lines (one per evaluation) otherwise; nothing on
    ranks other than 0 (``mode="off"``)."""

    LINE_EVERY_S = 60.0  # in lines mode: a progress line when nothing was printed for this long

    @staticmethod
    def clock() -> float:  # tests replace it (or time.monotonic): the heartbeat is then step-bound
        return time.monotonic()

    def __init__(self, mode: str = "auto") -> None:
        self.silent = mode == "off"
        self.bar_enabled = not self.silent and (sys.stderr.isatty() if mode == "auto" else mode == "bar")
        self.bar: tqdm | None = None
        self.epoch, self.step = "", 0  # lines mode: the epoch, and the global step of the last update
        self.last_line: float | None = None  # when lines mode last printed a progress line
        self.last_output: float | None = None  # when a timed line was last printed (the heartbeat's)
        self.beat: tuple[float, int] | None = None  # time and step of the heartbeat's last line: its rate

    def start_epoch(self, epoch: int, max_epochs: int, total: int, initial: int) -> None:
        first = not self.epoch
        self.epoch, self.step = f"epoch {epoch + 1}/{max_epochs}", epoch * total + initial
        if first and not self.silent and not self.bar_enabled:  # lines mode: training has begun
            self.message(f"{self.epoch} | step {self.step} | training, {total:,} steps an epoch")
        if self.bar_enabled:
            self.bar = tqdm(
                total=total,
                initial=initial,
                desc=f"epoch {epoch + 1}/{max_epochs}",
                leave=False,
                dynamic_ncols=True,
            )

    def update(self, n: int, **postfix: float) -> None:
        """``n`` more steps; the trainer calls this at every global step that is a multiple of ``n``."""
        self.step = (self.step // n + 1) * n
        if self.bar is not None:
            self.bar.update(n)
            if postfix:
                self.bar.set_postfix({k: f"{v:.4g}" for k, v in postfix.items()}, refresh=False)
        elif not self.silent and not self.bar_enabled:
            # lines mode: the first update (log_every_steps in) says the run is under way, long before
            # the first evaluation; later ones only when nothing was printed for LINE_EVERY_S
            now = self.clock()
            if self.last_line is None or now - self.last_line >= self.LINE_EVERY_S:
                train = "".join(f" | train_{_SHORT.get(k, k)} {v:.4f}" for k, v in postfix.items())
                self.message(f"{self.epoch} | step {self.step}{train}")
                self.last_line = self.last_output = now

    def evaluation(self, record: dict[str, Any], end_of_epoch: bool = True) -> None:
        if end_of_epoch and self.bar is not None:
            self.bar.close()
            self.bar = None
        self.message(fmt(record))
        self.last_line = self.last_output = self.clock()

    def heartbeat(self, step: int) -> None:
        """Called after every step: in lines mode, a line when nothing was printed for LINE_EVERY_S, so a
        slow step rate (a GPU preset on a CPU, where 50 steps can take many minutes) is never silent for
        much over a minute; with a bar, a redraw of its elapsed time. One clock read otherwise (the
        silence is counted from the first call, after the first step)."""
        if self.silent:
            return
        now = self.clock()
        if self.last_output is None:
            self.last_output = now
            return
        waited = now - self.last_output
        if waited < self.LINE_EVERY_S:
            return
        if self.bar is not None:
            self.bar.refresh()
        elif not self.bar_enabled:
            rate = ""
            if self.beat is not None and step > self.beat[1]:
                per_step = (now - self.beat[0]) / (step - self.beat[1])
                rate = f" | {per_step:.1f} s/step" if per_step >= 1 else f" | {1 / per_step:.1f} steps/s"
            self.message(f"{self.epoch} | step {step}{rate} | still training")
            self.beat = (now, step)
        self.last_output = now

    def message(self, text: str) -> None:
        if self.silent:
            return
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, flush=True)


SUMMARY_KEYS = ("epochs_completed", "wall_time_s", "samples_per_s")


OFFLINE_MODES = ("offline", "dryrun", "disabled")
WANDB_MODES = ("online", "offline", "disabled", "dryrun", "shared", "run")  # W&B's Settings.mode


def wandb_mode(logger: Logger) -> str:
    """``logger.mode`` if set, else ``WANDB_MODE`` if set, else ``offline``: nothing is uploaded unless
    the user asked for it by name (W&B's own default would be online)."""
    return str(logger.mode or os.environ.get("WANDB_MODE") or "offline")


def wandb_credentials() -> str | None:
    """Where W&B would find an API key, as W&B itself looks (environment, then the netrc entry of its
    host); None when there is none."""
    for variable in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE"):
        if os.environ.get(variable):
            return variable
    host = os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai"
    try:
        from wandb.sdk.lib.wbauth import read_netrc_auth
    except ImportError:  # another W&B version: the standard netrc lookup
        import netrc
        from urllib.parse import urlsplit

        try:
            found = netrc.netrc(os.environ.get("NETRC")).authenticators(urlsplit(host).netloc)
        except (OSError, netrc.NetrcParseError):
            found = None
        return "netrc" if found and found[2] else None
    try:
        return "netrc" if read_netrc_auth(host=host) else None
    except Exception as err:  # W&B's AuthenticationError: a key that is not one
        raise ConfigError(f"the W&B API key in your netrc file is invalid ({err})") from None


def check_wandb(logger: Logger) -> str:
    """The W&B mode of this run; a mode W&B does not know, or online without credentials, is a
    ConfigError raised before anything is written (W&B would otherwise fail, or prompt, after the run
    directory exists)."""
    require("logger=wandb", "wandb")
    mode = wandb_mode(logger)
    if mode not in WANDB_MODES:  # only WANDB_MODE can be: the schema checks logger.mode
        raise ConfigError(f"WANDB_MODE={mode!r} is not a W&B mode: use one of {', '.join(WANDB_MODES)}")
    if mode not in OFFLINE_MODES and wandb_credentials() is None:
        where = "logger.mode" if logger.mode else "WANDB_MODE"
        raise ConfigError(
            f"{where}={mode} uploads to W&B but no credentials were found (WANDB_API_KEY, or a netrc "
            f"entry written by `wandb login`); log in, or use logger.mode=offline (the default)"
        )
    return mode


class WandbLogger:
    """Logs the resolved config, every evaluation record and the final summary to W&B.

    Seeds of one configuration share ``logger.group``; the run id is stored in the run directory, so a
    resumed run continues the same W&B run. Offline unless ``logger.mode=online`` or
    ``WANDB_MODE=online`` (:func:`wandb_mode`); online needs credentials (:func:`check_wandb`).
    Constructed with the rest of the run, before the run directory exists; ``start`` opens the W&B run
    in it.
    """

    def __init__(self, config: Config) -> None:
        self.mode = check_wandb(config.logger)  # before anything is written
        import wandb

        self.wandb, self.config = wandb, config

    def start(self, run_path: Path) -> None:
        config, logger = self.config, self.config.logger
        id_file = run_path / "wandb_id"
        run_id = id_file.read_text().strip() if id_file.exists() else uuid.uuid4().hex[:12]
        atomic_write_text(id_file, run_id)
        self.run = self.wandb.init(
            project=logger.project,
            entity=logger.entity,
            group=logger.group,
            name=f"{logger.group}/seed{config.seed}",
            job_type=config.method,
            config=config.resolved,
            dir=os.environ.get("WANDB_DIR") or str(run_path),  # W&B's own variable wins
            id=run_id,
            resume="allow",
            mode=self.mode,  # explicit: W&B's default (online) never applies
            tags=list(logger.tags),
            reinit="finish_previous",
        )

        # The summary's own values of these keys win over the last history row at finish().
        for key in SUMMARY_KEYS:
            self.run.define_metric(key, summary="none")

    def log(self, record: dict[str, Any]) -> None:
        self.run.log(record, step=record["step"])

    def finish(self, summary: dict[str, Any]) -> None:
        for key in ("status", *SUMMARY_KEYS):
            self.run.summary[key] = summary.get(key)
        for key, value in (summary.get("final") or {}).items():
            self.run.summary[f"final/{key}"] = value
        for key, value in (summary.get("best") or {}).items():
            self.run.summary[f"best/{key}"] = value
        self.run.finish(exit_code=0 if summary.get("status") in ("completed", "diverged") else 1)
