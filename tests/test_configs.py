"""Every experiment preset composes, instantiates, and trains for a few steps on tiny data."""

from __future__ import annotations

import json

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from lookahead import Lookahead
from lookahead.optim.polyak import PolyakAverage
from lookahead.train.build import build_averaging, build_optimizer
from lookahead.train.schema import validate
from lookahead.train.trainer import train
from tests.conftest import PRESETS, compose_config, tiny_overrides

PAPER_TABLE1 = {  # (optimizer target, lr, momentum, weight decay, lookahead k/alpha or None, polyak)
    "sgd": ("torch.optim.SGD", 0.05, 0.9, 1e-3, None, False),
    "polyak": ("torch.optim.SGD", 0.3, 0.9, 1e-3, None, True),
    "adam": ("torch.optim.AdamW", 3e-4, None, 1.0, None, False),
    "lookahead": ("torch.optim.SGD", 0.1, 0.9, 1e-3, (5, 0.8), False),
}


# Presets of the in-memory tensor datasets; streaming workloads (ImageNet) test their presets on their own
# fixture data (tests/test_imagenet.py), since their metrics and data differ.
TENSOR_PRESETS = [p for p in PRESETS if p.split("_")[0] in ("cifar10", "cifar100", "mnist1d")]


def test_every_dataset_method_pair_has_a_preset():
    for dataset in ("cifar10", "cifar100", "mnist1d"):
        for method in ("sgd", "adam", "polyak", "lookahead", "lookahead_adam"):
            assert f"{dataset}_{method}" in PRESETS


@pytest.mark.parametrize("preset", TENSOR_PRESETS)
def test_preset_composes_and_instantiates(preset):
    cfg = compose_config([f"experiment={preset}"])
    dataset, method = preset.split("_", 1)
    assert cfg.method == method and cfg.dataset.name == dataset and cfg.experiment_name == preset
    validate(cfg)
    model = instantiate(cfg.model, num_classes=10)
    opt = build_optimizer(validate(cfg), model)
    assert isinstance(opt, Lookahead) == method.startswith("lookahead")
    assert isinstance(build_averaging(validate(cfg), model, 10), PolyakAverage) == (method == "polyak")
    OmegaConf.to_yaml(cfg, resolve=True)  # every interpolation resolves


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100"])
@pytest.mark.parametrize("method", sorted(PAPER_TABLE1))
def test_cifar_presets_carry_the_papers_settings(dataset, method):
    target, lr, momentum, wd, la, polyak = PAPER_TABLE1[method]
    cfg = compose_config([f"experiment={dataset}_{method}"])
    assert cfg.optimizer._target_ == target and cfg.optimizer.lr == lr and cfg.optimizer.weight_decay == wd
    if momentum is not None:
        assert cfg.optimizer.momentum == momentum
    assert (cfg.lookahead.k, cfg.lookahead.alpha) == la if la else not cfg.lookahead.enabled
    assert cfg.averaging.enabled == polyak
    assert cfg.model._target_.endswith("resnet18_cifar") and cfg.trainer.batch_size == 128
    assert cfg.trainer.max_epochs == 200 and list(cfg.schedule.milestones) == [60, 120, 160]
    assert cfg.schedule.gamma == 0.2


@pytest.mark.parametrize(
    ("groups", "method"),
    [
        ([], "sgd"),
        (["optimizer=adamw"], "adam"),
        (["averaging=polyak"], "polyak"),
        (["lookahead=on"], "lookahead"),
        (["optimizer=adam", "lookahead=on"], "lookahead_adam"),
        (["optimizer=rmsprop"], "rmsprop"),
        (["optimizer=adagrad", "lookahead=on"], "lookahead_adagrad"),
        (["experiment=cifar10_sgd", "optimizer=adamw", "lookahead=on"], "lookahead_adam"),
        (["experiment=cifar10_lookahead", "lookahead=off"], "sgd"),
        (["experiment=cifar10_polyak", "optimizer=adam"], "polyak_adam"),
    ],
)
def test_method_label_follows_the_composed_groups(groups, method):
    cfg = compose_config(["dataset=cifar10", *groups])
    assert cfg.method == method and cfg.experiment_name == f"cifar10_{method}"


@pytest.mark.parametrize("method", ["sgd", "adam", "polyak", "lookahead", "lookahead_adam"])
def test_cifar100_presets_are_the_cifar10_ones_with_another_dataset(method):
    ten = OmegaConf.to_container(compose_config([f"experiment=cifar10_{method}"]), resolve=True)
    hundred = OmegaConf.to_container(compose_config([f"experiment=cifar100_{method}"]), resolve=True)
    assert hundred.pop("dataset")["name"] == "cifar100" and ten.pop("dataset")["name"] == "cifar10"
    for cfg in (ten, hundred):  # derived from the dataset name
        del cfg["experiment_name"], cfg["logger"]["group"]
    assert hundred == ten


def test_command_line_style_overrides_reach_the_config():
    cfg = compose_config(
        [
            "experiment=cifar10_lookahead",
            "lookahead.k=10",
            "optimizer.lr=0.2",
            "trainer.max_epochs=3",
            "schedule.milestones=[1]",  # within the 3 epochs: only a valid config is built
        ]
    )
    assert (cfg.lookahead.k, cfg.optimizer.lr, cfg.trainer.max_epochs) == (10, 0.2, 3)
    opt = build_optimizer(validate(cfg), torch.nn.Linear(2, 2))
    assert opt.param_groups[0]["lookahead_k"] == 10 and opt.param_groups[0]["lr"] == 0.2


@pytest.mark.parametrize("preset", TENSOR_PRESETS)
def test_smoke_run_every_preset(preset, data_root, tmp_path):
    dataset = preset.split("_")[0]
    overrides = tiny_overrides(data_root, tmp_path, dataset)
    if preset.endswith("polyak"):  # averaging must begin inside the 2-epoch run
        overrides.append("averaging.start_epoch=1")
    cfg = compose_config(
        [f"experiment={preset}", *overrides, "trainer.max_epochs=2", "trainer.limit_train_batches=3"]
    )
    summary = train(validate(cfg), tmp_path / "run")
    assert summary.status == "completed" and summary.epochs_completed == 2 and summary.steps == 6
    assert 0.0 <= summary.final["test_accuracy"] <= 1.0
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2] and [r["step"] for r in records] == [3, 6]
    on_disk = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert on_disk["method"] == preset.split("_", 1)[1] and on_disk["dataset"] == dataset
    assert on_disk["git_sha"] and on_disk["versions"]["torch"] == torch.__version__
    assert (tmp_path / "run" / "checkpoints" / "last.pt").exists()
    assert OmegaConf.load(tmp_path / "run" / "config.yaml").experiment_name == preset
