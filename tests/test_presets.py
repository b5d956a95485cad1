"""Presets by composition: every experiment preset resolves to what it resolved to before presets were
composed from workload presets (`configs/workload/`), and no preset's header contradicts its values."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from tests.conftest import CONFIGS

EXPERIMENTS = sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml"))
WORKLOADS = sorted(p.stem for p in (CONFIGS / "workload").glob("*.yaml"))
# Written by `record(<configs of the commit before the change>)` from the copied presets: each preset's
# group choices and the values it sets on top of composing those choices alone.
RECORDED = Path(__file__).parent / "data" / "presets_resolved.json"


def _leaves(node: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` as ``{"a.b": 1}``."""
    flat = {}
    for key, value in node.items():
        if isinstance(value, dict) and value:
            flat.update(_leaves(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _resolved(overrides: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
    cfg = compose(config_name="train", overrides=overrides, return_hydra_config=True)
    choices = {g: c for g, c in cfg.hydra.runtime.choices.items() if not g.startswith("hydra") and c}
    container = OmegaConf.to_container(cfg, resolve=True)
    del container["hydra"]
    return _leaves(container), choices


def preset_values(preset: str) -> dict[str, Any]:
    """What ``experiment=<preset>`` composes: its group choices, and every value that differs from those
    choices composed without the preset (so a group file's own defaults may change without this)."""
    values, choices = _resolved([f"experiment={preset}"])
    choices.pop("experiment")
    plain, _ = _resolved([f"{'+' if g == 'wmt14_recipe' else ''}{g}={c}" for g, c in choices.items()])
    changed = {k: v for k, v in values.items() if k not in plain or plain[k] != v}
    return {"choices": choices, "values": dict(sorted(changed.items()))}


def record(configs: Path) -> dict[str, Any]:
    """Every preset's ``preset_values`` under the config directory ``configs``."""
    with initialize_config_dir(config_dir=str(configs.resolve()), version_base="1.3"):
        return {p.stem: preset_values(p.stem) for p in sorted((configs / "experiment").glob("*.yaml"))}


def test_every_preset_is_recorded():
    assert sorted(json.loads(RECORDED.read_text())) == EXPERIMENTS  # none lost, none added unrecorded


@pytest.mark.slow  # two compositions a preset: about 3 s each on the loaded 2-core VM
@pytest.mark.parametrize("preset", EXPERIMENTS)
def test_a_preset_resolves_as_recorded_before_presets_were_composed(preset):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        assert preset_values(preset) == json.loads(RECORDED.read_text())[preset]


def _header(path: Path) -> tuple[dict[str, str], list[str]]:
    """The ``# is: key=value ...`` claims of a preset file and its other comment lines."""
    comments = [line for line in path.read_text().splitlines() if line.lstrip().startswith("#")]
    claims = [c for c in comments if c.startswith("# is: ")]
    assert len(claims) == 1, f"{path.name}: one '# is: key=value ...' header line"
    pairs = dict(token.split("=", 1) for token in claims[0].removeprefix("# is: ").split())
    return pairs, [c for c in comments if not c.startswith("# is: ")]


def _agrees(claimed: str, actual: Any) -> bool:
    value = yaml.safe_load(claimed)
    if isinstance(actual, float | int) and not isinstance(actual, bool):
        return float(value) == float(actual)
    return value == actual


def header_problems(configs: Path, group: str, option: str) -> list[str]:
    """Where the header of ``configs/<group>/<option>.yaml`` disagrees with what it resolves to."""
    claims, prose = _header(configs / group / f"{option}.yaml")
    needed = "method" if group == "experiment" else "dataset.name"
    problems = [] if needed in claims else [f"no {needed}= claim"]
    with initialize_config_dir(config_dir=str(configs.resolve()), version_base="1.3"):
        values, _ = _resolved([f"experiment={option}" if group == "experiment" else f"+workload={option}"])
    for key, claimed in claims.items():
        if key not in values or not _agrees(claimed, values[key]):
            problems.append(f"{key}={claimed}, resolves to {values.get(key)}")
    # Prose that names Lookahead's k or alpha (`k = 5`) names the values the preset has.
    for line in prose:
        for key, number in re.findall(r"\b(k|alpha)\s*=\s*([0-9.]+)", line):
            if not _agrees(number, values.get(f"lookahead.{key}")):
                problems.append(f"{key} = {number} in {line!r}, resolves to {values.get(f'lookahead.{key}')}")
    return problems


@pytest.mark.parametrize(
    "name", [f"experiment/{e}" for e in EXPERIMENTS] + [f"workload/{w}" for w in WORKLOADS]
)
def test_a_presets_header_says_what_it_resolves_to(name):
    assert header_problems(CONFIGS, *name.split("/")) == []


def test_a_header_that_contradicts_its_values_is_found(tmp_path):
    # The drift this catches: mnist1d_sgd.yaml once described k = 5, alpha = 0.8 with Lookahead off.
    configs = tmp_path / "configs"
    shutil.copytree(CONFIGS, configs)
    (configs / "experiment" / "drifted.yaml").write_text(
        "# @package _global_\n# SGD; k = 5, alpha = 0.8 as in the paper's CIFAR runs.\n"
        "# is: method=sgd optimizer.lr=0.2 trainer.max_epochs=40\n"
        "defaults: [mnist1d_sgd]\n"
    )
    assert header_problems(configs, "experiment", "drifted") == [
        "optimizer.lr=0.2, resolves to 0.1",
        'k = 5 in "# SGD; k = 5, alpha = 0.8 as in the paper\'s CIFAR runs.", resolves to None',
        'alpha = 0.8 in "# SGD; k = 5, alpha = 0.8 as in the paper\'s CIFAR runs.", resolves to None',
    ]
