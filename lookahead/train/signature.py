"""The ``dataset``, ``model`` and ``optimizer`` groups hold the arguments of their ``_target_``: each one
is checked here against that callable's signature and type hints, with pydantic, before anything runs.

Scalars are strict (a boolean is ``true``/``false``, not ``1`` or ``maybe``; an integer is not ``2.5``)
and numbers finite; a range written in the signature (``beam: Annotated[int, Field(ge=1)]``) is checked
here, so a workload declares its own settings' ranges where it takes them. A class whose ``__init__``
passes ``**kwargs`` on to its base class is checked against the base's arguments too.
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
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception:  # a hint that cannot be resolved (a TYPE_CHECKING import): names only
        return {}


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
                params[p.name] = hints.get(p.name, Any)
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
        raise ConfigError(f"{group}._target_={path!r} cannot be imported: {type(err).__name__}") from None
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
