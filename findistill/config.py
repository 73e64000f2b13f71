"""Typed stage configs filled from MLflow parameters.

MLflow hands every parameter over as a string (and appends undeclared ``-P k=v`` as ``--k v``),
so each stage declares one dataclass; :func:`parse_params` turns ``{"name": "string"}`` into it,
validating types and naming the parameter at fault. ``to_dict`` gives the flat dict to log.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import types
import typing
from collections.abc import Iterator
from typing import Any, TypeVar

C = TypeVar("C")
_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}


class ConfigError(ValueError):
    """A parameter value that cannot be used; the message names the parameter and what was expected."""


class ValueProblem(ValueError):
    """A value that library code cannot use. ``argument`` names the function argument, ``message`` says
    what was expected; :func:`as_parameters` turns it into a ConfigError naming the user's parameter."""

    def __init__(self, argument: str, message: str):
        self.argument, self.message = argument, message
        super().__init__(f"{argument}: {message}")

    def __reduce__(self):
        return (type(self), (self.argument, self.message))


@contextlib.contextmanager
def as_parameters(**parameters: str) -> Iterator[None]:
    """Re-raise a :class:`ValueProblem` as a ConfigError naming the parameter the user set.

    ``parameters`` maps library argument names to the stage's parameter names where they differ
    (``main`` calls the tokenizer's ``vocab_size`` ``tokenizer_vocab_size``).
    """
    try:
        yield
    except ValueProblem as err:
        name = parameters.get(err.argument, err.argument)
        raise ConfigError(f"parameter '{name}': {err.message}") from err


def _convert(name: str, raw: Any, target: Any) -> Any:
    """Convert one raw (usually string) value to ``target`` type, or raise ConfigError naming ``name``."""
    if not isinstance(raw, str):
        return raw
    origin = typing.get_origin(target)
    if origin in (typing.Union, types.UnionType):  # e.g. ``int | None``
        options = [t for t in typing.get_args(target) if t is not type(None)]
        if raw.strip().lower() in {"", "none", "null"}:
            return None
        return _convert(name, raw, options[0])
    text = raw.strip()
    if target is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ConfigError(f"parameter '{name}': expected true/false, got {raw!r}")
    if target is int:  # MLproject has no integer type: accept "3" and "3.0", refuse "3.5"
        try:
            number = float(text)
        except ValueError:
            number = float("nan")
        if not number.is_integer():
            raise ConfigError(f"parameter '{name}': expected an integer, got {raw!r}")
        return int(number)
    if target is float:
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"parameter '{name}': expected a number, got {raw!r}") from None
    return raw


def parse_params(cls: type[C], params: dict[str, Any]) -> C:
    """Build config ``cls`` from ``params`` (strings allowed); unknown names raise ConfigError listing the
    valid ones."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(params) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown parameter(s) {', '.join(unknown)} for {cls.__name__}; valid: {', '.join(sorted(fields))}"
        )
    values = {name: _convert(name, raw, hints[name]) for name, raw in params.items()}
    return cls(**values)


def to_dict(config: Any) -> dict[str, Any]:
    """Flat ``{field: value}`` of a dataclass config (values JSON-serialisable)."""
    return dataclasses.asdict(config)


def config_hash(config: Any, *extra: str) -> str:
    """Short stable hash of a config or a dict of its values (and extra strings, e.g. a code version): names
    checkpoint folders."""
    values = config if isinstance(config, dict) else to_dict(config)
    payload = json.dumps(values, sort_keys=True, default=str) + "|".join(extra)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def require(condition: bool, name: str, expected: str, value: Any) -> None:
    """Raise ConfigError ``parameter 'name': expected ..., got value`` unless ``condition``."""
    if not condition:
        raise ConfigError(f"parameter '{name}': expected {expected}, got {value!r}")
