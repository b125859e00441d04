"""Lagged copies and trailing rolling statistics along time, never reading ahead.

A block is ``(unit, time, channel)`` preceded by ``lead`` samples of the
series' past (the halo, fewer at a series' start, where missing history is
NaN): the result for time ``t`` reads only samples ``<= t``. Rolling windows
count ``span`` samples ending at ``t`` and skip NaN; a window with fewer than
``min_periods`` values is NaN, as in pandas' ``rolling(span, min_periods)``.
``std`` is the sample standard deviation (ddof 1), as pandas'. Means and
variances come from float64 running sums of the values less the block's
first valid value (shift-invariant: long sums do not swamp the window's);
minima and maxima from log2(span) passes of pairwise minima. Any array module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..array_module import array_module

ROLLING_STATS = ("mean", "std", "min", "max")


def with_history(block: Any, before: Any, lead: int, depth: int) -> Any:
    """``block`` after exactly ``depth`` samples of history along axis 1: the last
    ``lead`` of ``before``, NaN for the rest (a series' start)."""
    xp = array_module(block)
    parts = [before[:, before.shape[1] - lead:]] if lead else []
    if depth > lead:
        parts.insert(0, xp.full((block.shape[0], depth - lead, *block.shape[2:]), xp.nan,
                                dtype=block.dtype))
    return xp.concatenate([*parts, block], axis=1) if parts else block


def shifted(values: Any, by: int) -> Any:
    """``values`` delayed by ``by`` >= 0 samples along axis 1, NaN shifted in."""
    xp = array_module(values)
    if by == 0:
        return values
    out = xp.full_like(values, xp.nan)
    if by < values.shape[1]:
        out[:, by:] = values[:, :values.shape[1] - by]
    return out


def lag_block(history: Any, lags: Sequence[int], depth: int) -> Any:
    """(unit, depth + time, channel) -> (unit, time, channel, lag): ``history[t - k]``."""
    xp = array_module(history)
    length = history.shape[1] - depth
    return xp.stack([history[:, depth - k: depth - k + length] for k in lags], axis=-1)


def rolling_block(history: Any, span: int, stats: Sequence[str], min_periods: int,
                  depth: int) -> Any:
    """(unit, depth + time, channel) -> (unit, time, channel, stat) over the trailing
    ``span`` samples (``depth`` >= ``span`` - 1)."""
    xp = array_module(history)
    length = history.shape[1] - depth
    valid = ~xp.isnan(history)
    count = _window_sum(valid.astype(xp.float64), span)[:, depth:]
    enough = count >= max(min_periods, 1)
    out = []
    moments = {}
    if {"mean", "std"} & set(stats):
        shift = _first_valid(history, valid)
        centred = xp.where(valid, history.astype(xp.float64) - shift, 0.0)
        total = _window_sum(centred, span)[:, depth:]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = total / count
            moments["mean"] = mean + shift
            if "std" in stats:
                squares = _window_sum(centred * centred, span)[:, depth:]
                variance = (squares - total * mean) / (count - 1)
                moments["std"] = xp.where(count > 1, xp.sqrt(xp.maximum(variance, 0.0)),
                                          xp.nan)
    for stat in stats:
        if stat in moments:
            value = moments[stat]
        elif stat in ("min", "max"):
            value = _window_extreme(history, span, stat)[:, depth:]
        else:
            raise ValueError(f"unknown rolling statistic {stat!r}; known: "
                             f"{', '.join(ROLLING_STATS)}")
        out.append(xp.where(enough, value, xp.nan).astype(history.dtype))
    assert out[0].shape[1] == length
    return xp.stack(out, axis=-1)


def _first_valid(values: Any, valid: Any) -> Any:
    """Per series (axis 1 reduced, kept), its first non-NaN value, or 0."""
    xp = array_module(values)
    first = xp.argmax(valid, axis=1)[:, None]
    picked = xp.take_along_axis(values.astype(xp.float64), first, axis=1)
    return xp.where(xp.isnan(picked), 0.0, picked)


def _window_sum(values: Any, span: int) -> Any:
    """Sums of ``span`` consecutive samples ending at each position (shorter at the start)."""
    xp = array_module(values)
    running = xp.cumsum(values, axis=1)
    out = running.copy()
    out[:, span:] -= running[:, :-span]
    return out


def _window_extreme(values: Any, span: int, stat: str) -> Any:
    """NaN-skipping minimum or maximum of the ``span`` samples ending at each position."""
    xp = array_module(values)
    pick = xp.fmin if stat == "min" else xp.fmax
    covered, extreme = 1, values
    while covered * 2 <= span:
        extreme = pick(extreme, shifted(extreme, covered))
        covered *= 2
    return pick(extreme, shifted(extreme, span - covered)) if span > covered else extreme
