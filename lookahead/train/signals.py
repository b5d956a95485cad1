"""Stop requests: SIGTERM (cluster scheduler, ``kill``), SIGINT (Ctrl-C) and SIGUSR2 (SLURM's warning
before a time limit or preemption, through submitit) ask the run to stop at the next step boundary,
checkpoint and record ``status: interrupted``. A second Ctrl-C interrupts at once.

Commands without checkpoints (figures, theory, benchmarks) use ``stop_cleanly`` instead: they stop at
once, say in one line what was saved, and exit with 130 (SIGINT) or 143 (SIGTERM).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from tqdm import tqdm

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


class Stop(KeyboardInterrupt):
    """SIGINT or SIGTERM under ``stop_cleanly`` (a KeyboardInterrupt, so code that cleans up after
    Ctrl-C does so for SIGTERM too)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise Stop(signum)


@contextlib.contextmanager
def stop_cleanly(saved: str | Callable[[], str] = "nothing was saved") -> Iterator[None]:
    """Context manager (or decorator) for a command without checkpoints: SIGINT (Ctrl-C) or SIGTERM
    stops it at once with one line, ``stopped by signal SIGINT: <saved>``, on stderr and exit code
    128 + the signal number, without a traceback. ``saved`` says what is on disk (a callable is asked
    at that moment). Inside, the trainer's own handlers take over while ``train()`` runs and hand the
    signal back here once its run has stopped."""
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    except KeyboardInterrupt as err:
        signum = err.signum if isinstance(err, Stop) else int(signal.SIGINT)
        for sig in previous:  # a second signal must not cut the message short
            signal.signal(sig, signal.SIG_IGN)
        # end any progress bar's line; a bar stopped inside its constructor cannot close itself
        bars = list(getattr(tqdm, "_instances", ()))
        newline = "\n" if any(not hasattr(bar, "last_print_t") for bar in bars) else ""
        for bar in bars:
            bar.close()
        what = saved() if callable(saved) else saved
        print(
            f"{newline}stopped by signal {signal.Signals(signum).name}: {what}", file=sys.stderr, flush=True
        )
        sys.exit(128 + signum)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
