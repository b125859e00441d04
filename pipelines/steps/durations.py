"""Durations in step parameters: ``1h``, ``7D``, ``250ms``, or a number of samples."""

from __future__ import annotations

from typing import Any

from ..errors import PipelineDefinitionError


def seconds(text: str, *, where: str) -> float:
    """``text`` (``1h``, ``15min``, ``7D``, ``250ms``) in seconds; ``where`` names the
    parameter in the error."""
    import pandas as pd

    try:  # pandas' spelling of durations; a bare number would be read as nanoseconds
        value = (pd.Timedelta(text).total_seconds()
                 if any(c.isalpha() for c in text) else None)
    except (ValueError, TypeError):
        value = None
    if not value or value <= 0:
        raise PipelineDefinitionError(f"{where}: {text!r} is not a duration (1h, 15min, 7D, "
                                      f"250ms)")
    return float(value)


def check_duration_or_count(value: Any, *, where: str, minimum: int = 0) -> None:
    """Data-free check of a parameter that is a number of samples or a duration."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise PipelineDefinitionError(f"{where}: expected a number of samples or a duration "
                                      f"(1h, 7D), got {value!r}")
    if isinstance(value, int) and value < minimum:
        raise PipelineDefinitionError(f"{where}: must be >= {minimum}, got {value}")
    if isinstance(value, str):
        seconds(value, where=where)


def samples(value: int | str, rate: float, *, where: str) -> int:
    """``value`` as a whole number of samples at ``rate`` Hz: a duration must be one."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    count = seconds(str(value), where=where) * rate
    if abs(count - round(count)) > 1e-6 * max(1.0, count):
        raise PipelineDefinitionError(
            f"{where}: {value} is not a whole number of samples at this grid's spacing "
            f"({1 / rate:g} s)")
    return round(count)
