"""Commands say what they do: each entry point the Makefile runs prints its first line before any heavy
import, and long jobs print their stages and a heartbeat (lookahead/progress.py). Bounded by imports and
steps, never by a clock: the clocks here are advanced by hand."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lookahead.progress import Stages, announce, elapsed
from tests.conftest import ROOT

# Imports that take seconds on a loaded machine: the first line must come before any of them.
HEAVY = ("torch", "torchvision", "pandas", "matplotlib", "scipy", "hydra", "omegaconf", "numpy")

# Run an entry point under an import hook: at its first heavy import, report what it had printed by then
# and stop (nothing heavy is ever loaded, so each check takes a fraction of a second).
PROBE = """
import json, os, runpy, sys
heavy, kind, target, args = set(json.loads(sys.argv[1])), sys.argv[2], sys.argv[3], sys.argv[4:]
printed = []

class Tee:
    def write(self, text):
        printed.append(text)
        return len(text)
    def flush(self):
        pass

def report(first_heavy):
    sys.__stderr__.write("PROBE " + json.dumps({"printed": "".join(printed), "heavy": first_heavy}) + "\\n")
    sys.__stderr__.flush()
    os._exit(0)

class Hook:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in heavy:
            report(name)
        return None

sys.meta_path.insert(0, Hook())
sys.stdout = Tee()
try:
    if kind == "module":
        sys.argv = [target, *args]
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    else:
        sys.argv = [target, *args]
        sys.path.insert(0, os.path.dirname(target))
        runpy.run_path(target, run_name="__main__")
except BaseException:
    pass
report(None)
"""


def probe(kind: str, target: str, *args: str, cwd: Path = ROOT) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(HEAVY), kind, target, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("PROBE ")] or [result.stderr]
    return json.loads(line.removeprefix("PROBE "))


def make_entry_points() -> list[tuple[str, str]]:
    """Every Python entry point the Makefile runs: ("path", script) or ("module", name)."""
    text = (ROOT / "Makefile").read_text()
    found = {("path", "experiments/train.py")} if "$(TRAIN)" in text else set()
    found |= {("path", m) for m in re.findall(r"\b((?:experiments|scripts)/\w+\.py)\b", text)}
    found |= {("module", m) for m in re.findall(r"-m (lookahead(?:\.\w+)+)", text)}
    return sorted(found)


ENTRY_POINTS = make_entry_points()


def test_the_makefile_runs_the_entry_points_this_test_checks():
    assert len(ENTRY_POINTS) >= 15, ENTRY_POINTS
    assert ("path", "experiments/train.py") in ENTRY_POINTS
    assert ("path", "scripts/scorecard.py") in ENTRY_POINTS
    assert ("module", "lookahead.data.imagenet_fixture") in ENTRY_POINTS


@pytest.mark.parametrize(("kind", "target"), ENTRY_POINTS, ids=[t for _, t in ENTRY_POINTS])
def test_each_entry_point_prints_its_first_line_before_any_heavy_import(kind, target):
    path = str(ROOT / target) if kind == "path" else target
    args = ["experiment=mnist1d_sgd", "seed=1"] if target == "experiments/train.py" else []
    seen = probe(kind, path, *args)
    first, _, _ = seen["printed"].partition("\n")
    assert seen["printed"].endswith("\n") and first, f"{target}: nothing printed before importing {seen}"
    name = Path(target).name if kind == "path" else target.rsplit(".", 1)[-1] + ".py"
    assert first.startswith(f"{name}: "), first
    if target == "experiments/train.py":
        assert "experiment=mnist1d_sgd seed=1" in first and "loading torch first" in first


def test_the_probe_catches_a_script_that_imports_torch_first(tmp_path):
    late = tmp_path / "late.py"
    late.write_text("import torch\nprint('too late')\n")
    assert probe("path", str(late)) == {"printed": "", "heavy": "torch"}
    early = tmp_path / "early.py"
    early.write_text("from lookahead.progress import announce\nannounce(__name__, 'work')\nimport torch\n")
    seen = probe("path", str(early), "x=1")
    assert seen["heavy"] == "torch"
    assert seen["printed"].startswith("early.py: work (x=1); loading torch first")


def test_importing_the_package_does_not_import_torch():
    code = (
        "import sys, lookahead, lookahead.progress, lookahead.data\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "from lookahead import Lookahead\nfrom lookahead.data import Dataset, TensorLoader, DataError\n"
        "assert 'torch' in sys.modules and Lookahead.__name__ == 'Lookahead'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_announce_is_quiet_when_imported_on_other_ranks_and_for_help(capsys, monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert not announce("tables", "x", argv=["tables.py"])  # imported, not run
    assert not announce("__main__", "x", argv=["train.py", "--cfg", "job"])
    assert not announce("__main__", "x", argv=["s.py", "--ddp-worker"], quiet_flags=("--ddp-worker",))
    assert announce("__main__", "tables", torch=False, argv=["/a/tables.py", "runs", "--out", "o"])
    assert capsys.readouterr().out == "tables.py: tables (runs --out o)\n"
    monkeypatch.setenv("RANK", "1")
    assert not announce("__main__", "training", argv=["train.py"])
    assert capsys.readouterr().out == ""


def test_elapsed_reads_as_people_say_it():
    assert [elapsed(s) for s in (0.4, 42, 365, 3 * 3600 + 125)] == ["0 s", "42 s", "6 min 5 s", "3 h 02 min"]


def test_stages_say_which_stage_i_of_n_and_the_time_so_far_and_tick_at_most_once_a_minute():
    now = [100.0]
    lines: list[str] = []
    stages = Stages("scorecard", 3, clock=lambda: now[0], out=lines.append)
    stages.begin("correctness battery")
    now[0] += 30
    assert not stages.tick("timing")  # 30 s of silence: nothing
    now[0] += 31
    assert stages.tick("timing sgd, repeat 2/15")
    assert not stages.tick("timing sgd, repeat 3/15")  # just printed
    now[0] += 300
    stages.begin("speed")
    stages.done()
    assert lines == [
        "scorecard [1/3] correctness battery (0 s so far)",
        "scorecard [1/3] timing sgd, repeat 2/15 (1 min 1 s so far)",
        "scorecard [2/3] speed (6 min 1 s so far)",
        "scorecard: done in 6 min 1 s",
    ]


# -- the training loop's heartbeat ------------------------------------------------------------------------


def test_console_heartbeat_prints_after_a_silent_minute_with_the_step_rate(monkeypatch, capsys):
    from lookahead.train.loggers import Console

    now = [0.0]
    monkeypatch.setattr(Console, "clock", staticmethod(lambda: now[0]))
    console = Console("lines")
    console.start_epoch(0, 2, 100, 0)
    for step in range(1, 21):  # 10 s a step
        now[0] += 10.0
        console.heartbeat(step)
    assert capsys.readouterr().out.splitlines() == [
        "epoch 1/2 | step 0 | training, 100 steps an epoch",
        "epoch 1/2 | step 7 | still training",  # a minute after the first step
        "epoch 1/2 | step 13 | 10.0 s/step | still training",
        "epoch 1/2 | step 19 | 10.0 s/step | still training",
    ]
    for step in range(21, 200):  # no time passes: no line, however many steps
        console.heartbeat(step)
    off = Console("off")
    off.start_epoch(0, 1, 10, 0)
    now[0] += 1000.0
    off.heartbeat(5)
    assert capsys.readouterr().out == ""


def test_a_slow_training_run_prints_at_least_once_a_minute(data_root, tmp_path, monkeypatch, capsys):
    """A clock that moves 7 s per optimizer step, and progress lines every 1000 steps only: the
    heartbeat still prints every 9 steps (63 s), counted from the first step."""
    from lookahead.train import trainer
    from lookahead.train.loggers import Console
    from lookahead.train.schema import validate
    from tests.conftest import compose_config, tiny_overrides

    now = [0.0]
    monkeypatch.setattr(Console, "clock", staticmethod(lambda: now[0]))
    step = trainer.Loop.optimizer_step

    def slow_step(self, micro):
        now[0] += 7.0
        step(self, micro)

    monkeypatch.setattr(trainer.Loop, "optimizer_step", slow_step)
    cfg = compose_config(
        [
            "experiment=mnist1d_sgd",
            "trainer.max_epochs=1",
            "trainer.batch_size=16",
            "trainer.log_every_steps=1000",
            *tiny_overrides(data_root, tmp_path),
        ]
    )
    trainer.train(validate(cfg), tmp_path / "run")
    out = capsys.readouterr().out
    beats = [
        int(line.split(" | step ")[1].split(" ")[0])
        for line in out.splitlines()
        if line.endswith("still training")
    ]
    assert len(beats) >= 2 and beats[0] == 10, (beats, out)
    assert {b - a for a, b in itertools.pairwise(beats)} == {9}, beats


# -- long Make targets say which stage, i of n ---------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "total"), [("figures", 5), ("cpu-studies", 4), ("paper-cpu", 3), ("scorecard", 2)]
)
@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_long_make_targets_number_their_stages(target, total):
    dry = subprocess.run(
        ["make", "--no-print-directory", "-n", target, "-o", ".venv/.installed", "VENV=.venv"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert dry.returncode == 0, dry.stderr
    own = re.findall(rf'echo "{re.escape(target)} \[(\d+)/(\d+)\] [^"]+ so far\)"', dry.stdout)
    assert own == [(str(i), str(total)) for i in range(1, total + 1)], dry.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_help_gives_each_target_a_time_on_a_named_machine_or_says_gpu():
    lines = subprocess.run(
        ["make", "--no-print-directory", "help"], cwd=ROOT, capture_output=True, text=True
    ).stdout.splitlines()
    timed = re.compile(r"\b\d[\d.,]*\s*(s|min|h)\b")
    vague = [
        line
        for line in lines
        if "GPU" not in line
        and not (timed.search(line) and "2-core CPU VM" in line)
        and "not measured:" not in line  # with the reason: the data or runs are not on this machine
    ]
    assert not vague, "\n".join(vague)
