"""The config model and the YAML groups describe the same fields; what the code derives from the model
(identity-neutral fields, switchable groups, the schedule registry) is what it was written out as."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import get_args

import pytest
from omegaconf import OmegaConf

from lookahead.train import schema
from tests.conftest import CONFIGS, ROOT

# Closed groups: each option's file names exactly the fields of its model (lookahead=off and
# averaging=off name `enabled` alone; the rest is set when the group is on).
GROUP_MODELS = {
    "trainer/default": schema.Trainer,
    "lookahead/on": schema.LookaheadOn,
    "averaging/polyak": schema.Averaging,
    **{
        f"schedule/{name}": model
        for name, model in zip(schema.SCHEDULES, get_args(get_args(schema.Schedule)[0]))
    },
}


def _keys(option: str) -> set[str]:
    return set(OmegaConf.load(CONFIGS / f"{option}.yaml"))


@pytest.mark.parametrize("option", sorted(GROUP_MODELS))
def test_a_group_file_and_its_model_name_the_same_fields(option):
    assert _keys(option) == set(GROUP_MODELS[option].model_fields)


def test_every_schedule_file_is_in_the_registry_and_off_holds_enabled_alone():
    assert sorted(schema.SCHEDULES) == sorted(p.stem for p in (CONFIGS / "schedule").glob("*.yaml"))
    assert _keys("lookahead/off") == _keys("averaging/off") == {"enabled"}


def test_the_logger_files_together_name_the_loggers_fields():
    assert _keys("logger/console") | _keys("logger/wandb") == set(schema.Logger.model_fields)


def test_identity_neutral_fields_and_switchable_groups_come_from_the_model():
    assert set(schema.NOT_IDENTITY) == {
        "logger",
        "overrides",
        "device",
        "paths",
        "trainer.progress",
        "trainer.threads",
        "run_name",
    }
    assert schema.SWITCHABLE == ("dataset", "model", "optimizer")


def test_signature_does_not_import_the_schema():
    # The schema checks targets through signature.py; signature.py needs nothing of the schema (no cycle).
    code = "import sys, lookahead.train.signature; print('lookahead.train.schema' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_entry_config_and_the_model_name_the_same_top_level_fields():
    # configs/train.yaml's own keys plus its groups (the defaults list) are the Config model's fields
    train = OmegaConf.load(CONFIGS / "train.yaml")
    groups = {
        next(iter(item)) for item in train.defaults if isinstance(item, dict) or OmegaConf.is_dict(item)
    }
    groups = {g for g in groups if not g.startswith(("override ", "experiment"))}
    own = set(train) - {"defaults", "hydra"}
    assert own | groups == set(schema.Config.model_fields)
    assert set(train.paths) == set(schema.Paths.model_fields)
    # every group the model holds has a folder of options under configs/
    assert all((CONFIGS / group).is_dir() for group in groups)


def _imports(path) -> set[str]:
    """The lookahead modules ``path`` imports, anywhere in it (``from a.b import c`` names a.b.c when c
    is a module, else a.b)."""
    import ast

    modules = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in (ROOT / "lookahead").rglob("*.py")
    }
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                for a in node.names
            }
    return found & modules


def test_the_package_has_no_import_cycle():
    graph = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): _imports(p)
        for p in (ROOT / "lookahead").rglob("*.py")
    }
    # a package imports its submodules; a submodule's import of its own package is not an edge back
    graph = {m: {d for d in deps if not m.startswith(f"{d}.")} for m, deps in graph.items()}

    def cycle_from(start: str, node: str, seen: tuple[str, ...]) -> tuple[str, ...] | None:
        for dep in sorted(graph[node]):
            if dep == start:
                return (*seen, dep)
            if dep not in seen and (found := cycle_from(start, dep, (*seen, dep))):
                return found
        return None

    cycles = [c for m in sorted(graph) if (c := cycle_from(m, m, (m,)))]
    assert cycles == []


def test_below_the_entry_points_no_function_takes_the_raw_config_and_none_validates():
    # experiments/ validate the composed config once (schema.validate) and pass the typed Config down;
    # the raw DictConfig is left only where Hydra hands it over: composition (presets.py, before the
    # check), the check itself (schema.py) and Hydra's callbacks (cli.py).
    sources = {str(p.relative_to(ROOT)): p.read_text() for p in (ROOT / "lookahead").rglob("*.py")}
    takes = {path for path, text in sources.items() if re.search(r"\w: DictConfig\b", text)}
    assert takes == {"lookahead/cli.py", "lookahead/presets.py", "lookahead/train/schema.py"}
    validates = {path for path, text in sources.items() if re.search(r"(?<!def )\bvalidate\(", text)}
    assert validates == set()
