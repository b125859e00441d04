"""Forecasting: the target a horizon ahead, baselines as of the origin, decision points.

:func:`forecast_target` makes each time step a forecast origin ``t``: the
label is the target channel at ``t + horizon``, and the baselines are what
naive forecasters say at ``t`` (persistence, seasonal naive). It records the
target and horizon in the dataset's attributes for the steps after it:
``lags`` and ``rolling`` default to the target channel and divide its
features by the forecast scale, ``calendar`` describes the target time.
:func:`origins` keeps the decision points (every hour, say) as the rows a
model is trained and scored on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from suanli.datasets import dask_array, has_calendar_times, sample_rate, timestamps

from ..compute.lagging import lag_block, rolling_block
from ..errors import PipelineDefinitionError
from ..registry import step
from .durations import check_duration_or_count, samples
from .graphs import as_of_each_step

TARGET_ATTR = "forecast_target"
HORIZON_ATTR = "forecast_horizon"
#: The target's level as of each origin (a trailing mean), when the target is scaled.
SCALE = "forecast_scale"
#: Share of the scale's span that must be present.
SCALE_MIN_SHARE = 0.5


def target_channel(ds: xr.Dataset) -> str | None:
    """The forecast's target channel, once :func:`forecast_target` has run."""
    value = ds.attrs.get(TARGET_ATTR)
    return str(value) if value is not None else None


def forecast_lead(ds: xr.Dataset) -> np.timedelta64:
    """How far ahead of its origin a forecast's target lies (0 before forecast_target)."""
    steps = int(ds.attrs.get(HORIZON_ATTR, 0))
    return np.timedelta64(round(steps / sample_rate(ds) * 1e9), "ns")


def seasonal_lag(season: int, horizon: int) -> int:
    """Samples before the origin of the same point of the season as the target
    (``horizon`` after the origin): one season back, or whole seasons more while
    that is after the origin."""
    return season * max(1, math.ceil(horizon / season)) - horizon


def relative_to_scale(ds: xr.Dataset, channels: Sequence[str], values: da.Array) -> da.Array:
    """``values`` (unit, time, channel, k) with the target channel's divided by the
    forecast scale at each time, when the target is scaled."""
    target = target_channel(ds)
    if SCALE not in ds.data_vars or target not in channels:
        return values
    scale = dask_array(ds[SCALE].transpose("unit", "time"))
    divisor = da.stack([scale if c == target else da.ones_like(scale) for c in channels],
                       axis=2)
    return values / divisor.rechunk(values.chunks[:3])[..., None]


def _check_target(params: Mapping[str, Any]) -> None:
    if params["channel"] is not None and not isinstance(params["channel"], str):
        raise PipelineDefinitionError(f"forecast_target: channel is a channel name, got "
                                      f"{params['channel']!r}")
    check_duration_or_count(params["horizon"], where="forecast_target: horizon", minimum=1)
    if params["scale"] is not None:
        check_duration_or_count(params["scale"], where="forecast_target: scale", minimum=1)
    for season in params["seasonal_baselines"]:
        check_duration_or_count(season, where="forecast_target: seasonal_baselines",
                                minimum=1)


@step("forecast_target", check=_check_target, flexible=("channel", "horizon", "scale"),
      makes_label=True)
def forecast_target(ds: xr.Dataset, *, channel: str | None = None, horizon: int | str = 1,
                    scale: int | str | None = None,
                    seasonal_baselines: list[int | str] = ["1D", "7D"],  # noqa: B006
                    ) -> xr.Dataset:
    """Make each time step a forecast origin: ``label(unit, time)`` is ``channel``
    ``horizon`` ahead (samples or a duration), NaN where that is unknown.

    ``baselines(unit, time, baseline)``: persistence (the value at the origin)
    and seasonal naive for each of ``seasonal_baselines`` (the value one season
    before the target time, or whole seasons more while that is after the
    origin). ``scale`` (a span such as ``7D``): the label and the target's lag
    and rolling features are divided by the target's trailing mean over that
    span as of the origin (``forecast_scale``), so that one global model fits
    series of any level; predictions are multiplied back before scoring. Any
    ``label`` the panel had is replaced.
    """
    channels = [str(c) for c in ds["channel"].values]
    channel = channel if channel is not None else channels[0]
    if channel not in channels:
        raise PipelineDefinitionError(f"forecast_target: channel {channel!r} is not in the "
                                      f"panel; its channels: {', '.join(channels)}")
    rate = sample_rate(ds)
    steps = samples(horizon, rate, where="forecast_target: horizon")
    seasons = [samples(s, rate, where="forecast_target: seasonal_baselines")
               for s in seasonal_baselines]
    target = dask_array(ds["signal"].sel(channel=channel).transpose("unit", "time"))
    if steps >= target.shape[1]:
        raise PipelineDefinitionError(f"forecast_target: horizon {horizon} is as long as the "
                                      f"series ({target.shape[1]} samples)")
    # The NaN tail from the target itself: NumPy or CuPy blocks, as the signal's.
    ahead = da.concatenate([target[:, steps:], target[:, -steps:] * np.nan], axis=1)
    ahead = ahead.rechunk(target.chunks)
    back = [0, *[seasonal_lag(m, steps) for m in seasons]]
    depth = max(back)
    baselines = as_of_each_step(
        ds, [channel], depth, len(back),
        lambda history: lag_block(history, back, depth))[:, :, 0, :]
    names = ["persistence", *[f"seasonal_naive_{s}" for s in seasonal_baselines]]
    out = ds.drop_vars(["label"], errors="ignore")
    out = out.assign(
        label=(("unit", "time"), ahead, {"long_name": f"{channel} {horizon} ahead",
                                         "target": channel}),
        baselines=(("unit", "time", "baseline"), baselines,
                   {"long_name": f"naive forecasts of {channel} {horizon} ahead"}),
    ).assign_coords(baseline=names)
    if scale is not None:
        span = samples(scale, rate, where="forecast_target: scale")
        level = as_of_each_step(
            ds, [channel], span - 1, 1,
            lambda history: rolling_block(history, span, ["mean"],
                                          math.ceil(SCALE_MIN_SHARE * span), span - 1)
        )[:, :, 0, 0]
        level = da.where(level > 0, level, np.nan)
        out = out.assign({SCALE: (("unit", "time"), level,
                                  {"long_name": f"trailing mean of {channel} over {scale}"})})
        out["label"] = out["label"] / out[SCALE]
        out["label"].attrs.update(scaled_by=SCALE, target=channel)
    out.attrs.update({TARGET_ATTR: channel, HORIZON_ATTR: steps})
    return out


def _check_origins(params: Mapping[str, Any]) -> None:
    check_duration_or_count(params["every"], where="origins: every", minimum=1)


@step("origins", check=_check_origins, flexible=("every",))
def origins(ds: xr.Dataset, *, every: int | str = 1) -> xr.Dataset:
    """Keep every ``every`` time step (samples or a duration; with calendar times,
    those at whole multiples of it since midnight) as the decision points.

    Each variable on time but the signal becomes one on ``window``, one row per
    decision point, with its time in ``origin_time(window)``: the rows a model is
    trained and scored on.
    """
    if "window" in ds.dims:
        raise PipelineDefinitionError("origins: the dataset already has windows (a window "
                                      "step ran before); use one or the other")
    rate = sample_rate(ds)
    stride = samples(every, rate, where="origins: every")
    length = ds.sizes["time"]
    if isinstance(every, str) and "time" in ds.coords and has_calendar_times(ds):
        times = timestamps(ds, step="origins")
        since_midnight = (times - times.astype("datetime64[D]")).astype(np.int64)
        period = round(stride / rate * 1e9)
        positions = np.flatnonzero(since_midnight % period == 0)
    else:
        positions = np.arange(0, length, stride)
    if positions.size == 0:
        raise PipelineDefinitionError(f"origins: no time step falls on every {every}")
    # Evenly spaced positions are a slice: a view of each chunk, not a gather.
    steps = np.diff(positions)
    index: slice | np.ndarray = (slice(int(positions[0]), int(positions[-1]) + 1,
                                       int(steps[0]) if steps.size else 1)
                                 if steps.size == 0 or (steps == steps[0]).all() else positions)
    moved = {}
    for name, variable in ds.data_vars.items():
        if "time" in variable.dims and name != "signal":
            picked = variable.isel(time=index)
            moved[name] = picked.drop_vars([c for c in picked.coords if "time" in
                                            picked[c].dims]).rename(time="window")
    out = ds.drop_vars(list(moved)).assign(moved)
    origin = ds["time"].isel(time=positions)
    values = timestamps(ds, step="origins")[positions] if has_calendar_times(ds) else origin.values
    return out.assign_coords(window=np.arange(positions.size),
                             origin_time=(("window",), values, {"long_name": "forecast "
                                                                "origin / decision time"}))
