"""The config model and the YAML groups describe the same fields; what the code derives from the model
(identity-neutral fields, switchable groups, the schedule registry) is what it was written out as."""

from __future__ import annotations

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
