"""The project's own error classes for bad input: the entry points print their message as one
``error:`` line (lookahead/cli.py); any other exception is a bug and keeps its traceback."""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A config value that makes no sense; the message names the field (``group.field=value``)."""


def fail(field: str, value: Any, allowed: str) -> None:
    """Raise the one-line ConfigError of a value outside what ``field`` allows."""
    raise ConfigError(f"{field}={value!r} is not allowed: {allowed}")
