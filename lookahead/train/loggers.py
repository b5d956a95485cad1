"""Where metrics go: metrics.jsonl (always), the terminal, and optionally Weights & Biases."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm


class MetricsFile:
    """Append-only ``metrics.jsonl``; on resume, records past the checkpoint's step are dropped so an
    interrupted run never leaves duplicates."""

    def __init__(self, path: Path, resume_step: int | None) -> None:
        self.path = path
        if resume_step is None:
            path.unlink(missing_ok=True)
        elif path.exists():
            kept = [
                line
                for line in path.read_text().splitlines()
                if line.strip() and json.loads(line)["step"] <= resume_step
            ]
            path.write_text("".join(line + "\n" for line in kept))

    def log(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")


def fmt(record: dict[str, Any]) -> str:
    parts = [
        f"epoch {record['epoch']}",
        f"step {record['step']}",
        f"lr {record['lr']:.4g}",
        f"train_loss {record['train_loss']:.4f}",
        f"train_acc {record['train_accuracy']:.4f}",
        f"test_loss {record['test_loss']:.4f}",
        f"test_acc {record['test_accuracy']:.4f}",
    ]
    if "test_accuracy_fast" in record:
        parts.append(f"test_acc_fast {record['test_accuracy_fast']:.4f}")
    parts.append(f"{record['samples_per_s']:.0f} samples/s")
    return " | ".join(parts)


class Console:
    """A tqdm bar per epoch on a terminal; plain log lines (one per evaluation) otherwise."""

    def __init__(self, mode: str = "auto") -> None:
        self.bar_enabled = sys.stderr.isatty() if mode == "auto" else mode == "bar"
        self.bar: tqdm | None = None

    def start_epoch(self, epoch: int, max_epochs: int, total: int, initial: int) -> None:
        if self.bar_enabled:
            self.bar = tqdm(
                total=total,
                initial=initial,
                desc=f"epoch {epoch + 1}/{max_epochs}",
                leave=False,
                dynamic_ncols=True,
            )

    def update(self, n: int, **postfix: float) -> None:
        if self.bar is not None:
            self.bar.update(n)
            if postfix:
                self.bar.set_postfix({k: f"{v:.4g}" for k, v in postfix.items()}, refresh=False)

    def end_epoch(self, record: dict[str, Any]) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        print(fmt(record), flush=True)

    def message(self, text: str) -> None:
        print(text, flush=True)


class WandbLogger:
    """Logs the resolved config, every evaluation record and the final summary to W&B.

    Seeds of one configuration share ``group``; the run id is stored in the run directory, so a
    resumed run continues the same W&B run. Works offline (``WANDB_MODE=offline``).
    """

    def __init__(self, cfg: DictConfig, run_path: Path, group: str) -> None:
        import wandb

        id_file = run_path / "wandb_id"
        run_id = id_file.read_text().strip() if id_file.exists() else uuid.uuid4().hex[:12]
        id_file.write_text(run_id)
        self.run = wandb.init(
            project=cfg.logger.project,
            entity=cfg.logger.get("entity"),
            group=group,
            name=f"{group}/seed{cfg.seed}",
            job_type=cfg.get("method"),
            config=OmegaConf.to_container(cfg, resolve=True),
            dir=str(run_path),
            id=run_id,
            resume="allow",
            mode=cfg.logger.get("mode") or None,
            tags=list(cfg.logger.get("tags") or []),
            reinit="finish_previous",
        )

    def log(self, record: dict[str, Any]) -> None:
        self.run.log(record, step=record["step"])

    def finish(self, summary: dict[str, Any]) -> None:
        for key in ("status", "epochs_completed", "wall_time_s", "samples_per_s"):
            self.run.summary[key] = summary.get(key)
        for key, value in (summary.get("final") or {}).items():
            self.run.summary[f"final/{key}"] = value
        for key, value in (summary.get("best") or {}).items():
            self.run.summary[f"best/{key}"] = value
        self.run.finish(exit_code=0 if summary.get("status") in ("completed", "diverged") else 1)
