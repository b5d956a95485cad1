"""The package as a library: pyproject's dependencies and extras agree with the pinned requirement files,
every package lookahead/extras.py names is in the extra it names, the optimizer imports with torch alone,
and a missing extra is one `error:` line naming it. (`make check-install` installs the built wheel into
fresh venvs: scripts/check_install.sh.)"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from lookahead.extras import DISTRIBUTION, EXTRAS
from tests.conftest import ROOT

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
OPTIONAL = PROJECT["optional-dependencies"]


def expanded(extra: str) -> dict[str, Requirement]:
    """The requirements an extra brings, its self-references (``lookahead-suite[train]``) followed."""
    found: dict[str, Requirement] = {}
    for line in OPTIONAL[extra]:
        req = Requirement(line)
        if canonicalize_name(req.name) == DISTRIBUTION:
            for inner in req.extras:
                found.update(expanded(inner))
        else:
            found[canonicalize_name(req.name)] = req
    return found


def pins(name: str) -> dict[str, str]:
    """A requirements file's own exact pins (``-r`` lines are not followed)."""
    found = {}
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", line
            found[canonicalize_name(req.name)] = spec.version
    return found


@pytest.mark.parametrize(
    ("file", "extras"),
    [
        ("requirements.txt", ["all"]),
        ("requirements-dev.txt", ["dev"]),
        ("requirements-scorecard.txt", ["scorecard"]),
    ],
)
def test_pins_and_extras_name_the_same_packages_and_the_pins_are_the_floors(file, extras):
    declared = {name: req for extra in extras for name, req in expanded(extra).items()}
    if file == "requirements.txt":
        declared["torch"] = Requirement(PROJECT["dependencies"][0])
    pinned = pins(file)
    assert sorted(pinned) == sorted(declared)
    for name, version in pinned.items():
        assert version in declared[name].specifier, (name, version, declared[name])
        floors = [s.version for s in declared[name].specifier if s.operator == ">="]
        assert name == "torch" or floors == [version], (
            name,
            floors,
            version,
        )  # torch: the optimizer's own floor


def test_the_library_needs_torch_alone():
    assert [Requirement(r).name for r in PROJECT["dependencies"]] == ["torch"]


def test_every_package_the_error_names_is_in_the_extra_it_names():
    distributions = importlib.metadata.packages_distributions()
    for module, extra in EXTRAS.items():
        assert extra in OPTIONAL, extra
        names = {canonicalize_name(d) for d in distributions.get(module.split(".")[0], [])}
        if module.startswith("hydra_plugins."):
            names = {"hydra-submitit-launcher"}  # a namespace package shared by every Hydra plugin
        if extra == "scorecard" and not names:
            continue  # its packages are installed on demand (make scorecard), not in .venv
        assert names and names <= set(expanded(extra)), (module, names, extra)


BLOCK = "import sys\nfor name in {names!r}:\n    sys.modules[name] = None  # `import name` fails as if not installed\n"


def test_the_optimizer_imports_and_steps_with_torch_alone():
    blocked = sorted({m.split(".")[0] for m in EXTRAS})
    code = BLOCK.format(names=blocked) + (
        "import torch\nfrom lookahead import Lookahead\n"
        "model = torch.nn.Linear(2, 1)\n"
        "opt = Lookahead(torch.optim.SGD(model.parameters(), lr=0.1), k=2)\n"
        "for _ in range(4):\n"
        "    opt.zero_grad(); model(torch.ones(3, 2)).pow(2).mean().backward(); opt.step()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'lookahead'))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "lookahead.optim.lookahead" in result.stdout


@pytest.mark.slow  # two interpreter starts with the trainer's imports (~20 s on a loaded 2-core VM)
@pytest.mark.parametrize(
    ("missing", "overrides", "expected"),
    [
        (
            "mnist1d",
            ["experiment=mnist1d_sgd"],
            "error: dataset mnist1d needs the 'mnist1d' extra: "
            "pip install 'lookahead-suite[mnist1d]' (no module 'mnist1d')",
        ),
        (
            "lion_pytorch",
            ["experiment=mnist1d_sgd", "optimizer=lion"],
            "error: optimizer lion_pytorch.Lion "
            "needs the 'optimizers' extra: pip install 'lookahead-suite[optimizers]' (no module 'lion_pytorch')",
        ),
    ],
)
def test_a_missing_extra_is_one_line_naming_it_and_nothing_is_written(missing, overrides, expected, tmp_path):
    runs = tmp_path / "runs"
    code = BLOCK.format(names=[missing]) + (
        "import runpy\n"
        f"sys.argv = ['train.py', *{overrides!r}, 'paths.runs={runs}', 'device=cpu']\n"
        "runpy.run_path('experiments/train.py', run_name='__main__')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [expected]
    assert not runs.exists() or not any(p.is_file() for p in runs.rglob("*"))


def test_environment_yml_installs_the_pinned_files_and_the_package():
    text = (ROOT / "environment.yml").read_text()
    assert re.search(r"-r requirements-dev\.txt", text) and re.search(r"- -e \.", text)
    assert "-r requirements.txt" in (ROOT / "requirements-dev.txt").read_text()
