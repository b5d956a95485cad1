"""Stop requests: SIGTERM (cluster scheduler, ``kill``), SIGINT (Ctrl-C) and SIGUSR2 (SLURM's warning
before a time limit or preemption, through submitit) ask the run to stop at the next step boundary,
checkpoint and record ``status: interrupted``. A second Ctrl-C interrupts at once.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2)


class StopSignals:
    """Context manager that turns the stop signals into a flag the training loop polls."""

    def __init__(self) -> None:
        self.requested: int | None = None
        self.previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = signum

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    @property
    def name(self) -> str:
        return signal.Signals(self.requested).name if self.requested else ""

    def hand_on(self) -> None:
        """After the run has stopped cleanly: let the handler that was there before ours act (submitit
        requeues the SLURM task on SIGUSR2), else exit with the conventional 128 + signal number."""
        if self.requested is None:
            return
        previous = self.previous.get(self.requested)
        if callable(previous) and previous is not signal.default_int_handler:
            previous(self.requested, None)
        sys.exit(128 + self.requested)
