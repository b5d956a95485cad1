"""The ``dataset``, ``model`` and ``optimizer`` groups hold the arguments of their ``_target_``: each one
is checked here against that callable's signature and type hints, with pydantic, before anything runs.

Scalars are strict (a boolean is ``true``/``false``, not ``1`` or ``maybe``; an integer is not ``2.5``)
and numbers finite; a range written in the signature (``beam: Annotated[int, Field(ge=1)]``) is checked
here, so a workload declares its own settings' ranges where it takes them; the ranges of optimizers
whose signatures carry none are declared in lookahead/train/declared.py. An argument without a hint is
checked against its default's kind (a finite number, a boolean). A class whose ``__init__`` passes
``**kwargs`` on to its base class is checked against the base's arguments too.

The optimizer is then built once on a probe model (:func:`check_optimizer`): a range its constructor
still refuses (``AssertionError``, ``ValueError``, ``TypeError``) is one line naming the field.
"""

from __future__ import annotations

import enum
import inspect
import math
import types
import typing
from typing import Annotated, Any, Union

from hydra.utils import get_object
from pydantic import ConfigDict, Strict, TypeAdapter, ValidationError

from lookahead.errors import ConfigError, fail
from lookahead.extras import missing_extra
from lookahead.train.declared import DECLARED

# Keys Hydra reads itself, and the dataset group's reserved ``targets`` (convergence targets).
HYDRA_KEYS = ("_target_", "_partial_", "_recursive_", "_convert_", "_args_")
RESERVED = {"dataset": ("targets",)}
_CONFIG = ConfigDict(arbitrary_types_allowed=True, allow_inf_nan=False)


def _strict(tp: Any) -> Any:
    """``tp`` with strict scalars inside (lists may still stand for tuples: Hydra has no tuples)."""
    if tp in (bool, int, float, str):
        return Annotated[tp, Strict()]
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Annotated:
        return Annotated[(_strict(args[0]), *tp.__metadata__)]
    if origin in (Union, types.UnionType):
        return Union[tuple(_strict(a) for a in args)]  # noqa: UP007 (built from a tuple)
    if origin in (list, tuple) and args:
        return origin[tuple(a if a is Ellipsis else _strict(a) for a in args)]
    return tp


def _hints(fn: Any) -> dict[str, Any]:
    """``fn``'s type hints, with the ranges declared for its class (lookahead/train/declared.py) in place
    of those arguments' own hints."""
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:  # a hint that cannot be resolved (a TYPE_CHECKING import): names only
        hints = {}
    owner = f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', '')}".removesuffix(".__init__")
    if owner in DECLARED:
        hints.update(typing.get_type_hints(DECLARED[owner], include_extras=True))
    return hints


def _from_default(default: Any) -> Any:
    """The type of an unhinted argument, from its default: a number stays a finite number, a boolean a
    boolean (``optimizer.lr=inf`` or ``=abc`` for a class without hints); anything else is not checked."""
    if isinstance(default, bool):
        return bool
    if isinstance(default, (int, float)):
        return float  # an int default may take a float (weight_decay=0)
    return Any


def _inits(cls: type) -> list[Any]:
    return [k.__init__ for k in cls.__mro__ if "__init__" in vars(k) and k is not object]


def parameters(target: Any) -> tuple[dict[str, Any], bool]:
    """The target's named arguments and their type hints (``Any`` where none), and whether it takes
    any keyword (``**kwargs`` that go nowhere we can see). ``**kwargs`` are followed into the base
    classes' ``__init__`` (a class), or into the class a factory function returns."""
    functions = _inits(target) if isinstance(target, type) else [target]
    params: dict[str, Any] = {}
    while functions:
        fn = functions.pop(0)
        try:
            signature = inspect.signature(fn)
        except (TypeError, ValueError):
            return params, True
        hints = _hints(fn)
        for p in signature.parameters.values():
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in ("self", *params):
                params[p.name] = hints.get(p.name, _from_default(p.default))
        if not any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values()):
            return params, False
        returns = hints.get("return")
        if not functions and not isinstance(target, type) and isinstance(returns, type):
            functions, target = _inits(returns), returns
    return params, True


def _checkable(tp: Any) -> bool:
    """Enums are given by name in configs and converted by their library: not checked here."""
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return False
    return all(_checkable(a) for a in typing.get_args(tp) if not isinstance(a, (str, int, float)))


def check_target_args(group: str, node: dict[str, Any]) -> None:
    """ConfigError naming ``group.key`` for an argument the target does not take or a bad value."""
    path = node.get("_target_")
    if not isinstance(path, str) or not path.replace(".", "").replace("_", "").isalnum():
        fail(f"{group}._target_", path, "a dotted import path")
    try:
        target = get_object(path)
    except Exception as err:
        label = node.get("name") or path
        raise missing_extra(err, f"{group} {label}") or ConfigError(
            f"{group}._target_={path!r} cannot be imported: {type(err).__name__}"
        ) from None
    params, takes_any = parameters(target)
    for key, value in node.items():
        if key in HYDRA_KEYS or key in RESERVED.get(group, ()):
            continue
        if key not in params:
            if takes_any:
                continue
            raise ConfigError(
                f"unknown field {group}.{key}: {path} takes {', '.join(sorted(params)) or 'no arguments'}"
            )
        hint = params[key]
        if not _checkable(hint):
            continue
        try:
            TypeAdapter(_strict(hint), config=_CONFIG).validate_python(value)
        except ValidationError as err:
            fail(f"{group}.{key}", value, _allowed(err))
    if group == "dataset" and node.get("targets") is not None:
        targets = node["targets"]
        if not isinstance(targets, list) or not all(
            isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t) for t in targets
        ):
            fail("dataset.targets", targets, "a list of finite numbers, or null")


def _allowed(err: ValidationError) -> str:
    """What the type allows, from pydantic's messages (every branch of a union)."""
    messages = dict.fromkeys(e["msg"].removeprefix("Value error, ") for e in err.errors())
    return "; or ".join(messages)


# What an optimizer's constructor raises for an argument it refuses (Lion: a bare ``assert lr > 0``).
CONSTRUCTOR_ERRORS = (AssertionError, ValueError, TypeError)


def _probe_params(target: Any) -> Any:
    """Parameters of a tiny model, split as the optimizer splits a model (MuonAdamW.param_groups_of)."""
    import torch

    probe = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    groups_of = getattr(target, "param_groups_of", None)
    return groups_of(probe) if callable(groups_of) else probe.parameters()


def _arguments(node: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in node.items() if k not in HYDRA_KEYS}


def optimizer_error(node: dict[str, Any], err: BaseException) -> ConfigError:
    """``err``, raised by the constructor of ``node``'s optimizer, as one line naming the field: the one
    setting without which the constructor accepts the rest on a probe model; else the optimizer and what
    it said (a combination of settings, or something about the model's parameters)."""
    path = node["_target_"]
    said = f"{type(err).__name__}: {err}" if str(err) else f"a failed {type(err).__name__} in its constructor"
    target, kwargs = get_object(path), _arguments(node)
    if _refused(target, kwargs):
        for key, value in kwargs.items():
            if not _refused(target, {k: v for k, v in kwargs.items() if k != key}):
                return ConfigError(f"optimizer.{key}={value!r} is not allowed: {path} refuses it ({said})")
    return ConfigError(f"optimizer ({path}): {said}")


def _refused(target: Any, kwargs: dict[str, Any]) -> bool:
    try:
        target(_probe_params(target), **kwargs)
    except CONSTRUCTOR_ERRORS:
        return True
    return False


def check_optimizer(node: dict[str, Any]) -> None:
    """Build the optimizer once on a probe model: what its constructor refuses is one line now, not a
    traceback after the data is loaded."""
    try:
        get_object(node["_target_"])(_probe_params(get_object(node["_target_"])), **_arguments(node))
    except CONSTRUCTOR_ERRORS as err:
        raise optimizer_error(node, err) from None
