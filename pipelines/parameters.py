"""Type checks of parameter values against their defaults, for steps and ``train``."""

from __future__ import annotations

from typing import Any

from .errors import PipelineDefinitionError


def check_type(owner: str, key: str, value: Any, default: Any) -> None:
    """Refuse ``value`` for ``owner``'s parameter ``key`` unless it has the type of its
    ``default`` (a number for a float, a list for a sequence; any value when the
    default is None)."""
    expected = _expected_type(default)
    if expected is not None and not _is_a(value, expected[0]):
        raise PipelineDefinitionError(f"{owner}: {key} must be {expected[1]}, got {value!r}")


def has_type_of(value: Any, default: Any) -> bool:
    """Whether ``value`` has the type ``default`` asks for (any, when it asks none)."""
    expected = _expected_type(default)
    return expected is None or _is_a(value, expected[0])


def _expected_type(default: Any) -> tuple[type | tuple[type, ...], str] | None:
    if isinstance(default, bool):
        return bool, "true or false"
    if isinstance(default, int):
        return int, "a whole number"
    if isinstance(default, float):
        return (int, float), "a number"
    if isinstance(default, str):
        return str, "a string"
    if isinstance(default, tuple | list):
        return (tuple, list), "a list"
    return None


def _is_a(value: Any, kind: type | tuple[type, ...]) -> bool:
    if isinstance(value, bool) and kind is not bool:
        return False  # YAML's true is no number
    return isinstance(value, kind)
