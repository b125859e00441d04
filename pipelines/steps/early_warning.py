"""Early warning: the event-ahead label and the NEWS2 score (the maths:
:mod:`..compute.events`, :mod:`..compute.news2`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from suanli.datasets import dask_array, sample_rate

from ..compute import events
from ..compute.news2 import PARAMETERS, points
from ..errors import PipelineDefinitionError
from ..registry import step
from .durations import check_duration_or_count, samples

EVENT_HORIZON_ATTR = "event_horizon_hours"
#: Per-time variables the alert evaluation reads after ``origins``.
IN_EVENT = "in_event"
HOURS_TO_EVENT = "hours_to_event"
CLASSES = ["no_event", "event"]


def _check_event(params: Mapping[str, Any]) -> None:
    check_duration_or_count(params["horizon"], where="event_within: horizon", minimum=1)


@step("event_within", check=_check_event, flexible=("horizon",))
def event_within(ds: xr.Dataset, *, horizon: int | str = "6h", flag: str = "label"
                 ) -> xr.Dataset:
    """Label each time step by whether an event starts within ``horizon`` after it.

    ``flag(unit, time)`` is 1 while the state lasts (the generated vitals'
    deterioration episodes); an event is its onset. ``label`` becomes
    ``event`` or ``no_event``, NaN (not trained on, not scored) while an event
    is under way or where less than ``horizon`` of the future was recorded.
    ``in_event`` and ``hours_to_event`` (to the next onset) go along for the
    alert metrics (lead times, events detected).
    """
    if flag not in ds.variables or ds[flag].dims != ("unit", "time"):
        raise PipelineDefinitionError(f"event_within: needs a {flag}(unit, time) variable "
                                      f"flagging the state (1 while it lasts)")
    rate = sample_rate(ds)
    steps = samples(horizon, rate, where="event_within: horizon")
    flags = dask_array(ds[flag]).astype(np.float64).rechunk({1: -1})  # look ahead: whole series

    def per_series(block: Any, what: str) -> Any:
        if what == "label":
            return events.event_within(block, steps).astype(np.float32)
        if what == "ahead":
            return (events.steps_to_next_onset(block) / rate / 3600).astype(np.float32)
        return (np.nan_to_num(block) > 0).astype(np.float32)

    made = {what: da.map_blocks(per_series, flags, what, dtype=np.float32)
            for what in ("label", "ahead", "in")}
    hours = steps / rate / 3600
    return ds.drop_vars([flag], errors="ignore").assign({
        "label": (("unit", "time"), made["label"],
                  {"classes": CLASSES, "long_name": f"an event starts within {horizon}"}),
        HOURS_TO_EVENT: (("unit", "time"), made["ahead"], {"units": "h"}),
        IN_EVENT: (("unit", "time"), made["in"], {"long_name": "event under way"}),
    }).assign_attrs({EVENT_HORIZON_ATTR: hours})


DEFAULT_NEWS2_CHANNELS = {"respiration_rate": "resp_rate", "spo2": "spo2",
                          "systolic_bp": "systolic_bp", "pulse": "heart_rate",
                          "temperature": "temperature"}


def _check_news2(params: Mapping[str, Any]) -> None:
    given = params["channels"]
    if not isinstance(given, Mapping) or set(given) - set(PARAMETERS):
        raise PipelineDefinitionError(
            f"news2: channels maps NEWS2 parameters ({', '.join(PARAMETERS)}) to channel "
            f"names, got {given!r}")


@step("news2", check=_check_news2)
def news2(ds: xr.Dataset, *, channels: dict[str, str] = DEFAULT_NEWS2_CHANNELS
          ) -> xr.Dataset:
    """NEWS2 points of each vital sign at each time step and their total, into
    ``news2(unit, time, news2_feature)``: the rule-based early-warning score
    (respiration rate, SpO2 scale 1, systolic BP, pulse, temperature; the
    monitor records neither consciousness nor oxygen, which score 0).
    ``channels`` maps each parameter to the panel's channel."""
    mapping = {**DEFAULT_NEWS2_CHANNELS, **channels}
    known = [str(c) for c in ds["channel"].values]
    missing = {p: c for p, c in mapping.items() if c not in known}
    if missing:
        raise PipelineDefinitionError(f"news2: channels {missing} are not in the panel; its "
                                      f"channels: {', '.join(known)} (set news2.channels)")
    signal = ds["signal"].transpose("unit", "time", "channel")
    parts = [da.map_blocks(lambda block, name=p: points(name, block),
                           dask_array(signal.sel(channel=c)), dtype=np.float64)
             for p, c in mapping.items()]
    stacked = da.stack([*parts, sum(parts[1:], parts[0])], axis=2).astype(np.float32)
    return ds.assign(news2=(("unit", "time", "news2_feature"), stacked,
                            {"long_name": "NEWS2 points"})).assign_coords(
        news2_feature=[*mapping, "total"])
