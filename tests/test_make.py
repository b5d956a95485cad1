"""The Makefile as a new user meets it: `make help` lists every target, what the README's commands write
by default is git-ignored, and `make demo` in a fresh clone leaves `git status` clean."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import MNIST1D_SAMPLES, ROOT

pytestmark = pytest.mark.skipif(
    shutil.which("make") is None or shutil.which("git") is None, reason="needs make, git"
)

# The commands the README shows a user; none may write a tracked path by default.
README_TARGETS = [
    *("demo", "report", "tables", "figures", "nqm", "quadratic", "inner-loop", "paper-cifar", "cpu-studies"),
]


def make(*args: str, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    )


def phony_targets() -> set[str]:
    """Every .PHONY target, read from make's own database (so pattern-built lists count too)."""
    database = make("-pRrq", "help").stdout
    targets: set[str] = set()
    for line in database.splitlines():
        if line.startswith(".PHONY:"):
            targets.update(line.split(":", 1)[1].split())
    return targets


def test_help_lists_every_target():
    lines = make("help").stdout.splitlines()  # into a pipe: no colour codes
    assert not any("\x1b" in line for line in lines)
    listed = {line.split()[0] for line in lines}
    targets = phony_targets()
    assert {"cifar10-sgd", "cifar100-lookahead_adam", "test-all", "paper-cpu", "demo"} <= targets
    assert targets - listed == set()
    # one column for the descriptions: every name fits in front of it
    assert {len(line) - len(line[2:].split(maxsplit=1)[1]) for line in lines} == {32}
    assert not [line for line in lines if "$(" in line]  # every variable expanded or written out


def written_paths(target: str) -> list[str]:
    """Output locations in the commands `make -n <target>` would run: --out X, out=X, paths.runs=X."""
    # -o: take the venv as built, so only the target's own commands are printed
    dry = make("-n", target, "-o", ".venv/.installed", "VENV=.venv")
    assert dry.returncode == 0, dry.stderr
    found = []
    for line in dry.stdout.splitlines():
        words = shlex.split(line.rstrip("\\ "))  # a continued line ends in a backslash
        for i, word in enumerate(words):
            if word == "--out" and i + 1 < len(words):
                found.append(words[i + 1])
            elif word.startswith(("out=", "paths.runs=")):
                found.append(word.split("=", 1)[1])
    return found


@pytest.mark.parametrize("target", README_TARGETS)
def test_readme_commands_write_only_ignored_paths(target):
    paths = written_paths(target)
    if target not in ("nqm", "quadratic"):  # these two write only through out=
        assert paths, f"make -n {target} shows no output path"
    for path in paths:
        probe = f"{path.rstrip('/')}/probe.png"
        ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", probe], cwd=ROOT)
        assert ignored.returncode == 0, f"make {target} writes {path}, which git does not ignore"


def test_explicit_evidence_targets_write_the_committed_folders():
    assert "results/demo/runs" in written_paths("evidence-demo")
    assert "results/figures/mnist1d_curves" in " ".join(written_paths("paper-cpu"))
    assert "results/cpu/methods" in written_paths("paper-cpu")


@pytest.mark.slow  # trains 12 one-epoch MNIST-1D runs in a fresh clone
def test_demo_in_a_fresh_clone_leaves_the_tree_clean(tmp_path):
    if subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout:
        pytest.skip("uncommitted changes: the clone would not contain them")
    clone = tmp_path / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    venv = tmp_path / "venv"  # stands in for .venv: this interpreter, already provisioned
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    (venv / "bin" / "python").chmod(0o755)
    (venv / ".installed").touch()
    tiny = f"trainer.max_epochs=1 dataset.num_samples={MNIST1D_SAMPLES} paths.data={tmp_path / 'data'}"
    result = make(
        "demo",
        f"VENV={venv}",
        "-o",
        f"{venv}/.installed",
        f"DEMO_ARGS={tiny}",
        cwd=clone,
        PYTHONPATH=str(clone),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (clone / "results" / "local" / "demo" / "table.md").exists()
    status = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True)
    assert status.stdout == ""
