"""Lagged copies and trailing rolling statistics of channels, as of each time step
(the maths: :mod:`..compute.lagging`).

Both read a halo of the past from the chunks before (:func:`.graphs.preceding_edges`)
and never the future: the value at time ``t`` (the forecast origin, once
:func:`~.forecasting.forecast_target` has run) depends only on samples at or
before ``t``. Features of a forecast's target channel are divided by the
forecast scale when the target is scaled, as the label is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import dask.array as da
import xarray as xr

from suanli.datasets import sample_rate

from ..array_module import array_module
from ..compute.lagging import ROLLING_STATS, lag_block, rolling_block
from ..errors import PipelineDefinitionError
from ..registry import step
from .durations import check_duration_or_count, samples
from .forecasting import HORIZON_ATTR, relative_to_scale, seasonal_lag, target_channel
from .graphs import as_of_each_step


def _check_channels(name: str, channels: Any) -> None:
    if channels is not None and (isinstance(channels, str) or not all(
            isinstance(c, str) for c in channels)):
        raise PipelineDefinitionError(f"{name}: channels is a list of channel names or null "
                                      f"(the forecast target, or every channel), got "
                                      f"{channels!r}")


def _check_lags(params: Mapping[str, Any]) -> None:
    _check_channels("lags", params["channels"])
    for value in params["lags"]:
        check_duration_or_count(value, where="lags: lags")
    for value in params["seasonal"]:
        check_duration_or_count(value, where="lags: seasonal", minimum=1)
    if params["seasons"] < 1:
        raise PipelineDefinitionError(f"lags: seasons must be >= 1, got {params['seasons']}")
    if not params["lags"] and not params["seasonal"]:
        raise PipelineDefinitionError("lags: give lags, seasonal or both")


@step("lags", check=_check_lags, flexible=("channels",))
def lags(ds: xr.Dataset, *, channels: list[str] | None = None,
         lags: list[int | str] = [0, 1, 2],  # noqa: B006 - read only; the registry's default
         seasonal: list[int | str] = [],  # noqa: B006
         seasons: int = 1, into: str = "lags") -> xr.Dataset:
    """Lagged values of ``channels`` as of each time step, into ``into(unit, time, ...)``.

    ``lags``: samples or durations before the time step (0: its own value).
    ``seasonal``: season lengths (``1D``, ``7D``): the value at the same point of
    the season as the forecast's target time, in each of the last ``seasons``
    seasons that end by the origin (``t + horizon - k * season``). ``channels``:
    default the forecast target, else every channel.
    """
    chosen = _channels(ds, channels, "lags")
    rate = sample_rate(ds)
    horizon = int(ds.attrs.get(HORIZON_ATTR, 0))
    steps = [samples(v, rate, where="lags: lags") for v in lags]
    for season in seasonal:
        length = samples(season, rate, where="lags: seasonal")
        first = seasonal_lag(length, horizon)
        steps += [first + length * k for k in range(seasons)]
    steps = list(dict.fromkeys(steps))
    depth = max(steps)

    values = as_of_each_step(ds, chosen, depth, len(steps),
                             lambda history: lag_block(history, steps, depth))
    names = [f"{c}(t-{k})" if k else f"{c}(t)" for c in chosen for k in steps]
    return _assign(ds, into, values, names, chosen, len(steps),
                   {"long_name": "lagged values", "lags": steps})


def _check_rolling(params: Mapping[str, Any]) -> None:
    _check_channels("rolling", params["channels"])
    if not params["spans"]:
        raise PipelineDefinitionError("rolling: give at least one span")
    for value in params["spans"]:
        check_duration_or_count(value, where="rolling: spans", minimum=1)
    unknown = [s for s in params["stats"] if s not in ROLLING_STATS]
    if unknown or not params["stats"]:
        raise PipelineDefinitionError(f"rolling: unknown stats {unknown}; known: "
                                      f"{', '.join(ROLLING_STATS)}")
    share = params["min_share"]
    if not 0 < share <= 1:
        raise PipelineDefinitionError(f"rolling: min_share must be in (0, 1], got {share}")


@step("rolling", check=_check_rolling, flexible=("channels",))
def rolling(ds: xr.Dataset, *, channels: list[str] | None = None,
            spans: list[int | str] = ["24h"],  # noqa: B006 - read only; the registry's default
            stats: list[str] = ["mean", "std"],  # noqa: B006
            min_share: float = 0.5, into: str = "rolling") -> xr.Dataset:
    """Trailing ``stats`` (mean, std, min, max) over each of ``spans`` ending at each
    time step, NaN skipped, into ``into(unit, time, ...)``.

    A window with fewer than ``min_share`` of its span present is NaN (pandas'
    ``min_periods`` as a share: with its default, the whole span, one missing
    hour would blank a week of weekly means).
    """
    chosen = _channels(ds, channels, "rolling")
    rate = sample_rate(ds)
    widths = [samples(v, rate, where="rolling: spans") for v in spans]
    depth = max(widths) - 1

    def compute(history: Any) -> Any:
        parts = [rolling_block(history, width, stats, math.ceil(min_share * width), depth)
                 for width in widths]
        return array_module(history).concatenate(parts, axis=-1) if len(parts) > 1 else parts[0]

    values = as_of_each_step(ds, chosen, depth, len(widths) * len(stats), compute)
    names = [f"{c}:{stat}({span})" for c in chosen for span in spans for stat in stats]
    return _assign(ds, into, values, names, chosen, len(widths) * len(stats),
                   {"long_name": "trailing rolling statistics", "spans": widths,
                    "stats": list(stats)})


def _channels(ds: xr.Dataset, channels: Sequence[str] | None, name: str) -> list[str]:
    known = [str(c) for c in ds["channel"].values]
    if channels is None:
        target = target_channel(ds)
        return [target] if target is not None else known
    missing = [c for c in channels if c not in known]
    if missing:
        raise PipelineDefinitionError(f"{name}: channels {missing} are not in the panel; its "
                                      f"channels: {', '.join(known)}")
    return list(channels)


def _assign(ds: xr.Dataset, into: str, values: da.Array, names: list[str], channels: list[str],
            per_channel: int, attrs: dict[str, Any]) -> xr.Dataset:
    scaled = relative_to_scale(ds, channels, values)
    # merge_chunks=True: the last two axes are one chunk each, so nothing moves (False
    # would split the units into chunks of one: a Zarr chunk, and a task, per unit).
    flat = scaled.reshape((*scaled.shape[:2], len(channels) * per_channel), merge_chunks=True)
    dim = f"{into}_feature"
    return ds.assign({into: (("unit", "time", dim), flat, attrs)}).assign_coords(
        {dim: names})
