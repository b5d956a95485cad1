"""The config schema of experiments/train.py: the type and range of every field, checked on the
composed config before anything is built or written, with one message naming the field, the value and
what is allowed. The defaults are the group files' values (configs/<group>/*.yaml), given nowhere else.

The closed groups (``trainer``, ``lookahead``, ``averaging``, ``schedule``, ``logger``) are pydantic
models: an unknown key such as ``+trainer.foo=1`` is refused, booleans must be booleans, integers
integers, and numbers finite. The ``dataset``, ``model`` and ``optimizer`` groups hold the arguments of
their ``_target_`` (your own code's too): each argument is checked against that callable's signature and
type hints (``lookahead.train.signature``), so ranges written there as ``Annotated[int, Field(ge=1)]``
are checked here, before the run, and nowhere else.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Annotated, Any, Literal, get_args

import torch
from omegaconf import DictConfig, OmegaConf
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    Tag,
    ValidationError,
    model_validator,
)

from lookahead.errors import ConfigError, fail
from lookahead.optim.lookahead import check_alpha, check_k
from lookahead.ranges import Count, PositiveInt
from lookahead.train.signature import check_optimizer, check_target_args

__all__ = ["Config", "ConfigError", "Trainer", "fail", "validate"]


class Section(BaseModel):
    """A closed group of fields: strict types, finite numbers, no unknown keys."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


Text = Annotated[str, Field(pattern=r"^.+$")]


def _library(check: Callable[[Any], Any]) -> AfterValidator:
    """A library's own validator (one definition of the rule)."""

    def run(value: Any) -> Any:
        check(value)
        return value

    return AfterValidator(run)


K = Annotated[int, _library(check_k)]
Alpha = Annotated[float, _library(check_alpha)]
Pullback = Literal["none", "reset", "pullback"]


class LookaheadOn(Section):
    """``lookahead=on``: every field required."""

    enabled: Literal[True]
    k: K
    alpha: Alpha
    pullback_momentum: Pullback


class LookaheadOff(Section):
    """``lookahead=off`` holds ``enabled`` alone; a preset may keep the values ``lookahead=on`` takes."""

    enabled: Literal[False]
    k: K | None = None
    alpha: Alpha | None = None
    pullback_momentum: Pullback | None = None


def _enabled(value: Any) -> str | None:
    """The tag of a Lookahead section; a boolean only (a plain tag lookup would take 1 for true)."""
    enabled = value.get("enabled") if isinstance(value, dict) else getattr(value, "enabled", None)
    return ("on" if enabled else "off") if isinstance(enabled, bool) else None


# Lookahead on or off, tagged by ``enabled`` as the schedules are by ``name``.
Lookahead = Annotated[
    Annotated[LookaheadOn, Tag("on")] | Annotated[LookaheadOff, Tag("off")],
    Discriminator(
        _enabled,
        custom_error_type="tag_invalid",
        custom_error_message="true or false",
        custom_error_context={"tag": "enabled"},
    ),
]


class Averaging(Section):
    enabled: bool
    start_epoch: Annotated[float, Field(ge=0)] | None = None


# -- the schedules: one registry (the ``name`` picks the class), each builds its LR factor -------------
Factor = Callable[[int], float]


class Constant(Section):
    name: Literal["constant"]

    def lr_factor(self, steps_per_epoch: int, total_steps: int, plateau: Any = None) -> Factor:
        return lambda step: 1.0


class Multistep(Section):
    """The paper's CIFAR schedule: x gamma at the given epochs."""

    name: Literal["multistep"]
    milestones: list[PositiveInt]
    gamma: Annotated[float, Field(gt=0)]

    def lr_factor(self, steps_per_epoch: int, total_steps: int, plateau: Any = None) -> Factor:
        boundaries = [m * steps_per_epoch for m in self.milestones]
        return lambda step: self.gamma ** sum(step >= b for b in boundaries)


class Cosine(Section):
    name: Literal["cosine"]
    min_factor: Annotated[float, Field(ge=0, le=1)]

    def lr_factor(self, steps_per_epoch: int, total_steps: int, plateau: Any = None) -> Factor:
        floor = self.min_factor
        return lambda step: (
            floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))
        )


class Warmup(Section):
    """Linear warmup, then inverse square root decay (the Transformer schedule)."""

    name: Literal["warmup"]
    warmup_steps: Count | None
    warmup_epochs: Annotated[float, Field(ge=0)] | None

    def lr_factor(self, steps_per_epoch: int, total_steps: int, plateau: Any = None) -> Factor:
        steps = self.warmup_steps
        assert steps is not None or self.warmup_epochs is not None  # checked by validate
        warmup = max(1, int(steps if steps is not None else self.warmup_epochs * steps_per_epoch))
        return lambda step: min((step + 1) / warmup, math.sqrt(warmup / (step + 1)))


class Plateau(Section):
    """x factor whenever the target has not improved for ``patience`` evaluations."""

    name: Literal["plateau"]
    factor: Annotated[float, Field(gt=0, le=1)]
    patience: PositiveInt

    def lr_factor(self, steps_per_epoch: int, total_steps: int, plateau: Any = None) -> Factor:
        assert plateau is not None
        return lambda step: plateau.value


Schedule = Annotated[Constant | Multistep | Cosine | Warmup | Plateau, Field(discriminator="name")]
# The registry: each schedule's ``name`` (configs/schedule/<name>.yaml), from the union above.
SCHEDULES = tuple(get_args(m.model_fields["name"].annotation)[0] for m in get_args(get_args(Schedule)[0]))

# Field metadata: a field whose value may change between attempts of one run (not part of its identity,
# lookahead/train/run_dir.py), and a group whose option the command line may switch on top of a preset
# with that option's own values (lookahead/presets.py).
NOT_IDENTITY_FIELD = Field(json_schema_extra={"identity": False})
SWITCHABLE_GROUP = Field(json_schema_extra={"switchable": True})


class Trainer(Section):
    max_epochs: PositiveInt
    batch_size: PositiveInt
    eval_batch_size: PositiveInt
    eval_weights: Literal["slow", "fast", "both"]
    fast_path: Literal["auto"] | bool
    precision: Literal["fp32", "bf16"] | None
    channels_last: bool | None
    cudnn_benchmark: bool | None
    cuda_graphs: bool | None
    sync_kernel: bool | None
    compile: bool | Literal["default", "max-autotune-no-cudagraphs"]
    log_every_steps: PositiveInt
    checkpoint_every_steps: Count
    limit_train_batches: PositiveInt | None
    progress: Annotated[Literal["auto", "bar", "lines"], NOT_IDENTITY_FIELD]
    eval_every_steps: Count
    accumulate_steps: PositiveInt
    clip_grad_norm: Annotated[float, Field(gt=0)] | None
    bn_recalibration_batches: Count
    dist_timeout_s: Annotated[float, Field(gt=0)]
    threads: Annotated[PositiveInt | None, NOT_IDENTITY_FIELD]  # None: lookahead/train/threads.py decides


class Logger(Section):
    name: Literal["console", "wandb"]
    group: str
    project: Text | None = None  # the wandb group only
    entity: str | None = None
    mode: Literal["online", "offline", "disabled"] | None = None
    tags: list[str] = []


class Paths(Section):
    data: Text
    runs: Text


class Arguments(BaseModel):
    """A group of a target's arguments: the fields below are checked here, every one against the
    target's signature (lookahead/train/signature.py)."""

    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False, frozen=True)


class DatasetArguments(Arguments):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,49}$")] | None = None


class OptimizerArguments(Arguments):
    lr: Annotated[float, Field(ge=0, le=1e6)]
    weight_decay: Annotated[float, Field(ge=0)] | None = None


class Config(Section):
    """The whole config; ``dataset``, ``model`` and ``optimizer`` are checked by their target.

    Built once, by ``validate`` at the entry point (experiments/), and passed down: it also keeps the
    plain values it was validated from (``resolved``), which config.yaml, W&B and the run's identity
    record, and from which ``target`` hands hydra's ``instantiate`` a group's arguments."""

    paths: Annotated[Paths, NOT_IDENTITY_FIELD]
    dataset: Annotated[DatasetArguments, SWITCHABLE_GROUP]
    model: Annotated[Arguments, SWITCHABLE_GROUP]
    optimizer: Annotated[OptimizerArguments, SWITCHABLE_GROUP]
    lookahead: Lookahead
    averaging: Averaging
    schedule: Schedule
    trainer: Trainer
    logger: Annotated[Logger, NOT_IDENTITY_FIELD]
    # after the groups: a bad group value is named before the labels derived from it
    method: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    experiment_name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+=-]{0,99}$")]
    seed: Annotated[int, Field(ge=0, lt=2**32)]  # numpy's seed range
    device: Annotated[str, Field(pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$"), NOT_IDENTITY_FIELD]
    run_name: Annotated[str, NOT_IDENTITY_FIELD]
    overrides: Annotated[list[str], NOT_IDENTITY_FIELD]

    _resolved: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def keep_the_values(cls, data: Any, handler: ModelWrapValidatorHandler[Config]) -> Config:
        """The plain values validated, kept as given (the typed fields may coerce, e.g. 1 to 1.0)."""
        config = handler(data)
        if isinstance(data, dict):
            config._resolved = copy.deepcopy(data)
        return config

    @property
    def resolved(self) -> dict[str, Any]:
        """The whole config as plain values, interpolations resolved (a copy)."""
        return copy.deepcopy(self._resolved)

    def target(self, group: str) -> dict[str, Any]:
        """A ``_target_`` group's node (``dataset``, ``model``, ``optimizer``) as plain values, for
        hydra's ``instantiate`` (a copy)."""
        return copy.deepcopy(self._resolved[group])

    @model_validator(mode="after")
    def rules_between_fields(self) -> Config:
        """Rules between fields (a ConfigError, passed through by ``explain``)."""
        epochs, schedule, averaging = self.trainer.max_epochs, self.schedule, self.averaging
        if averaging.enabled and averaging.start_epoch is None:
            fail("averaging.start_epoch", None, "a value when averaging is on (see configs/averaging/)")
        if isinstance(schedule, Multistep) and any(m > epochs for m in schedule.milestones):
            fail(
                "schedule.milestones",
                schedule.milestones,
                f"epochs within the run (1..{epochs}); for a shorter run set schedule.milestones=[...] "
                f"too, or schedule=constant",
            )
        if isinstance(schedule, Warmup) and schedule.warmup_steps is None and schedule.warmup_epochs is None:
            fail("schedule.warmup_steps", None, "a number of steps, or set schedule.warmup_epochs")
        if averaging.enabled and averaging.start_epoch >= epochs:
            fail("averaging.start_epoch", averaging.start_epoch, f"< trainer.max_epochs ({epochs})")
        _check_device(self.device)
        return self

    def check_steps(self, total_steps: int) -> None:
        """The rule that needs the run's length in optimizer steps (known once the workload is built)."""
        if self.lookahead.enabled and self.lookahead.k > total_steps:
            fail(
                "lookahead.k",
                self.lookahead.k,
                f"at most the run's {total_steps} optimizer steps (else it never syncs)",
            )


def marked(model: type[BaseModel], key: str, prefix: str = "") -> tuple[str, ...]:
    """The dotted names of the fields of ``model`` (and of its sections) whose metadata sets ``key``."""
    names: list[str] = []
    for name, info in model.model_fields.items():
        if isinstance(info.json_schema_extra, dict) and key in info.json_schema_extra:
            names.append(f"{prefix}{name}")
        elif isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            names.extend(marked(info.annotation, key, f"{prefix}{name}."))
    return tuple(names)


NOT_IDENTITY = marked(
    Config, "identity"
)  # paths, trainer.progress/threads, logger, device, run_name, overrides
SWITCHABLE = marked(Config, "switchable")  # dataset, model, optimizer


_ALLOWED = {  # what a rule allows, in words, where pydantic's message says less
    "string_pattern_mismatch": {
        "experiment_name": "1-100 letters, digits and _ . + = -",
        "method": "a label of letters, digits, _ . -",
        "device": "auto, cpu, cuda, cuda:N or mps",
        "paths": "a path",
        "logger": "a W&B project name",
        "dataset": "1-50 letters, digits and _ . -",
    },
}


def _field(loc: tuple[Any, ...], data: dict[str, Any]) -> tuple[str, Any]:
    """A pydantic error location as ``group.field`` (union tags and list indices dropped) and the
    value the user gave there."""
    names, node = [], data
    for part in loc:
        if isinstance(node, dict) and part in node:
            names.append(str(part))
            node = node[part]
        elif isinstance(node, list):
            break  # a list item: the whole list is named
    return ".".join(names), node


def explain(err: ValidationError, data: dict[str, Any], prefix: str = "") -> ConfigError:
    """The first error of a pydantic validation as one line: field, value, what is allowed."""
    errors = err.errors()
    first = errors[0]
    if isinstance(first.get("ctx", {}).get("error"), ConfigError):  # a rule between fields
        return first["ctx"]["error"]
    field, value = _field(first["loc"], data)
    if first["type"] == "extra_forbidden":
        group = field.rpartition(".")[0]
        return ConfigError(f"unknown field {prefix}{field} (not a field of {group or 'the config'})")
    if first["type"] == "missing":  # named by where it is missing from (a union's tag dropped)
        loc = ".".join(filter(None, (_field(first["loc"][:-1], data)[0], str(first["loc"][-1]))))
        return ConfigError(f"{prefix}{loc} is missing: set it (its group file gives the default)")
    if first["type"] in ("union_tag_invalid", "tag_invalid"):  # a schedule's name, Lookahead's enabled
        ctx = first["ctx"]
        tag = ctx["tag"] if first["type"] == "tag_invalid" else ctx["discriminator"].strip("'")
        field, value = f"{field}.{tag}", value.get(tag) if isinstance(value, dict) else value
        allowed = first["msg"] if first["type"] == "tag_invalid" else f"one of {', '.join(SCHEDULES)}"
        return ConfigError(f"{prefix}{field}={value!r} is not allowed: {allowed}")
    # every branch of a union (``'auto'`` or a boolean) says what it allows
    messages = [
        _ALLOWED.get(e["type"], {}).get(field.split(".")[0], e["msg"]).removeprefix("Value error, ")
        for e in errors
        if _field(e["loc"], data)[0] == field
    ]
    return ConfigError(f"{prefix}{field}={value!r} is not allowed: {'; or '.join(dict.fromkeys(messages))}")


def training_part(cfg: DictConfig) -> DictConfig:
    """The training config inside a larger one (the inner-loop study adds warmup_epochs, window, ...):
    only the top-level keys the schema knows, so the rest does not count as unknown fields."""
    return OmegaConf.masked_copy(cfg, [key for key in cfg if key in Config.model_fields])


def validate(cfg: DictConfig) -> Config:
    """The config as typed sections; ConfigError (one line) for the first field outside the schema."""
    try:
        data = OmegaConf.to_container(cfg, resolve=True)
    except Exception as err:  # an interpolation that cannot be resolved
        raise ConfigError(str(err).splitlines()[0]) from None
    try:
        config = Config.model_validate(data)
    except ValidationError as err:
        raise explain(err, data) from None
    for group in ("dataset", "model", "optimizer"):
        check_target_args(group, data[group])
    check_optimizer(data["optimizer"])
    return config


def _check_device(device: str) -> None:
    """A device this machine has (``auto`` always is)."""
    if device.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(device.partition(":")[2] or 0)
        if index >= count:
            has = f"{count} CUDA device(s)" if count else "no CUDA device"
            fail("device", device, f"a device this machine has ({has}): auto or cpu")
    if device == "mps" and not torch.backends.mps.is_available():
        fail("device", device, "a device this machine has (no MPS): auto or cpu")
