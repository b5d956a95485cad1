"""What a command says while it works: its first line, before the heavy imports, and its stages.

Standard library only, and importable without torch (``lookahead/__init__.py`` loads ``Lookahead`` lazily),
so that a command's first line comes within a second, not after torch's import (about 10 s on an idle
2-core CPU VM, close to a minute on a loaded one). Every entry point the Makefile runs starts with::

    from lookahead.progress import announce

    announce(__name__, "tables of the runs under " + ...)

and only then imports the rest (``tests/test_progress.py`` checks each one under an import hook).
Long jobs with stages say which stage, i of n, and the time since they began (:class:`Stages`).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

TORCH = "loading torch first: about 10 s on an idle 2-core CPU VM, up to a minute on a loaded one"
# Flags after which a command prints something else (Hydra's config, argparse's help) and no more.
QUIET_FLAGS = ("-h", "--help", "--hydra-help", "--cfg", "-c", "--info", "--shell-completion", "-sc")
ARGS_SHOWN = 160  # characters of the command line shown in the first line


def elapsed(seconds: float) -> str:
    """``seconds`` as people say it: 42 s, 6 min 5 s, 1 h 02 min."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def announce(
    module: str,
    what: str,
    *,
    torch: bool = True,
    argv: Sequence[str] | None = None,
    quiet_flags: Sequence[str] = (),
) -> bool:
    """Print one line saying what this command is about to do, when ``module`` is ``"__main__"`` (an
    entry point imported by another, or by a test, stays silent), on rank 0 only, and not when the
    command only prints its help or its config. ``torch``: say that torch loads first, and how long
    that takes. Returns whether it printed."""
    argv = list(sys.argv if argv is None else argv)
    rank = os.environ.get("RANK") or os.environ.get("LOCAL_RANK") or "0"
    if module != "__main__" or rank != "0" or any(a in (*QUIET_FLAGS, *quiet_flags) for a in argv[1:]):
        return False
    args = " ".join(argv[1:])
    if len(args) > ARGS_SHOWN:
        args = args[: ARGS_SHOWN - 3] + "..."
    line = f"{Path(argv[0]).name if argv else 'python'}: {what}"
    if args:
        line += f" ({args})"
    if torch:
        line += f"; {TORCH}"
    print(line, flush=True)
    return True


class Stages:
    """A job's stages, announced as they begin: ``scorecard [2/3] speed (12 min 4 s so far)``.

    ``clock`` is injectable (tests advance it by hand); ``every_s`` bounds the silence inside a stage
    for :meth:`tick`, which prints only when nothing was printed for that long."""

    def __init__(
        self,
        name: str,
        total: int,
        clock: Callable[[], float] = time.monotonic,
        every_s: float = 60.0,
        out: Callable[[str], None] | None = None,
    ) -> None:
        self.name, self.total, self.clock, self.every_s = name, total, clock, every_s
        self.out = out or (lambda text: print(text, flush=True))
        self.start = self.last = clock()
        self.index = 0

    def so_far(self) -> str:
        return f"{elapsed(self.clock() - self.start)} so far"

    def say(self, text: str) -> None:
        self.out(text)
        self.last = self.clock()

    def begin(self, stage: str) -> None:
        """The next stage begins."""
        self.index += 1
        self.say(f"{self.name} [{self.index}/{self.total}] {stage} ({self.so_far()})")

    def tick(self, doing: str) -> bool:
        """Inside a stage: a line saying ``doing`` if nothing was printed for ``every_s``."""
        if self.clock() - self.last < self.every_s:
            return False
        self.say(f"{self.name} [{self.index}/{self.total}] {doing} ({self.so_far()})")
        return True

    def done(self, what: str = "done") -> None:
        self.say(f"{self.name}: {what} in {elapsed(self.clock() - self.start)}")
