"""Where a run's records go: metrics.jsonl and W&B on rank 0, the console (silent on other ranks)."""

from __future__ import annotations

from typing import Any

from lookahead.train.loggers import Console, MetricsFile, WandbLogger


class Reporter:
    """The one place the training loop sends what it has to say."""

    def __init__(
        self, console: Console, metrics: MetricsFile | None = None, wandb: WandbLogger | None = None
    ) -> None:
        self.console, self.metrics, self.wandb = console, metrics, wandb

    def message(self, text: str) -> None:
        self.console.message(text)

    def start_epoch(self, epoch: int, max_epochs: int, steps: int, done: int) -> None:
        self.console.start_epoch(epoch, max_epochs, steps, done)

    def progress(self, steps: int, train: dict[str, float]) -> None:
        self.console.update(steps, **train)

    def heartbeat(self, step: int) -> None:
        """After every step: a console line if nothing was said for a minute (slow step rates)."""
        self.console.heartbeat(step)

    def record(self, record: dict[str, Any], end_of_epoch: bool) -> None:
        """An evaluation: a line of metrics.jsonl, a W&B row, a console line."""
        if self.metrics is not None:
            self.metrics.log(record)
        if self.wandb is not None:
            self.wandb.log(record)
        self.console.evaluation(record, end_of_epoch)

    def finish(self, summary: dict[str, Any]) -> None:
        if self.wandb is not None:
            self.wandb.finish(summary)
