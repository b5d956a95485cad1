"""Switching a group on top of an experiment preset: ``experiment=cifar10_sgd optimizer=adamw``.

A preset sets values inside the groups it picks (SGD's lr and momentum under ``optimizer``). Hydra merges
those values into whatever option of the group ends up chosen, so the line above would hand SGD's
momentum (and its lr) to AdamW. Here a group chosen on the command line gets that option's own values,
plus the command line's own fields of it (``optimizer=adamw optimizer.lr=1e-3``), and nothing of the
preset's.
"""

from __future__ import annotations

from hydra import compose
from omegaconf import DictConfig, open_dict

from lookahead.train.schema import SWITCHABLE  # the groups marked switchable in the config's model


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def switched(overrides: list[str]) -> list[str]:
    """The switchable groups chosen on the command line (``optimizer=adamw``, not ``optimizer.lr=``)."""
    return [_key(o) for o in overrides if _key(o) in SWITCHABLE]


def own_group_values(cfg: DictConfig, overrides: list[str], config_name: str = "train") -> DictConfig:
    """``cfg`` with every group switched on the command line on top of an ``experiment=`` preset
    holding its own option's values and the command line's fields of it. Needs Hydra initialised
    (inside ``@hydra.main`` or ``initialize_config_dir``)."""
    groups = switched(overrides)
    if not groups or not any(_key(o) == "experiment" for o in overrides):
        return cfg
    own = [o for o in overrides if _key(o).split(".")[0] in groups]
    fresh = compose(config_name=config_name, overrides=own)
    with open_dict(cfg):
        for group in groups:
            cfg[group] = fresh[group]
    return cfg
