"""Calendar features: known in advance, so read at the forecast's target time."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import holidays
import numpy as np
import pandas as pd
import xarray as xr

from suanli.datasets import timestamps

from ..errors import PipelineDefinitionError
from ..registry import step
from .forecasting import forecast_lead

#: name: number of classes (one-hot) or None (a value).
CALENDAR_FEATURES: dict[str, int | None] = {
    "hour": 24, "day_of_week": 7, "hour_of_week": 168, "month": 12, "day_of_year": None,
    "holiday": None, "day_type": 3, "hour_of_day_type": 72}
#: Features that a cyclic (sine, cosine) encoding may describe.
CYCLIC = ("hour", "day_of_week", "hour_of_week", "month", "day_of_year")
DAY_TYPES = ("workday", "saturday", "sunday_or_holiday")


def _check_calendar(params: Mapping[str, Any]) -> None:
    unknown = [f for f in params["features"] if f not in CALENDAR_FEATURES]
    if unknown or not params["features"]:
        raise PipelineDefinitionError(f"calendar: unknown features {unknown}; known: "
                                      f"{', '.join(CALENDAR_FEATURES)}")
    if params["encoding"] not in ("onehot", "cyclic"):
        raise PipelineDefinitionError(f"calendar: encoding is onehot or cyclic, got "
                                      f"{params['encoding']!r}")
    if params["at"] not in ("target", "time"):
        raise PipelineDefinitionError(f"calendar: at is target (the forecast's target time) "
                                      f"or time (the time step itself), got {params['at']!r}")
    country = params["country"]
    if country is not None and (not isinstance(country, str)
                                or country not in holidays.list_supported_countries()):
        raise PipelineDefinitionError(f"calendar: country {country!r} is not one the holidays "
                                      f"package knows (ISO 3166 codes such as DE, FR, US)")


@step("calendar", check=_check_calendar, flexible=("country",))
def calendar(ds: xr.Dataset, *, features: list[str] = ["hour_of_day_type", "holiday"],  # noqa: B006
             encoding: str = "onehot", country: str | None = None, at: str = "target"
             ) -> xr.Dataset:
    """Calendar features of each time step, into ``calendar(time, calendar_feature)``.

    ``features``: hour, day_of_week, hour_of_week, month, day_of_year (always
    sine and cosine), holiday (a flag), day_type (workday, saturday, sunday or
    holiday) and hour_of_day_type (hour by day type). ``encoding``: onehot or
    cyclic (sine and cosine) for the first four. Holidays are the public
    holidays of ``country`` (the ``holidays`` package; default: the dataset's
    ``holidays_country`` attribute). ``at: target`` describes the forecast's
    target time, known in advance (the time step itself before any
    forecast_target); ``at: time``, the time step itself.
    """
    times = timestamps(ds, step="calendar")
    if at == "target":
        times = times + forecast_lead(ds)
    country = country if country is not None else ds.attrs.get("holidays_country")
    needs_holidays = {"holiday", "day_type", "hour_of_day_type"} & set(features)
    if needs_holidays and country is None:
        raise PipelineDefinitionError(
            f"calendar: {', '.join(sorted(needs_holidays))} need a country for its public "
            f"holidays: set calendar.country (DE, US, ...)")
    columns, names = calendar_columns(pd.DatetimeIndex(times), features, encoding, country)
    dim = "calendar_feature"
    return ds.assign(calendar=(("time", dim), columns,
                               {"long_name": f"calendar at the {at} time", "country":
                                country or ""})).assign_coords({dim: names})


def calendar_columns(times: pd.DatetimeIndex, features: list[str], encoding: str,
                     country: str | None) -> tuple[np.ndarray, list[str]]:
    """(time, feature) float32 columns and their names."""
    holiday = _holiday_flags(times, country) if country else np.zeros(len(times), bool)
    weekday = np.asarray(times.day_of_week)
    day_type = np.where(holiday | (weekday == 6), 2, np.where(weekday == 5, 1, 0))
    values: dict[str, tuple[np.ndarray, int]] = {
        "hour": (np.asarray(times.hour), 24), "day_of_week": (weekday, 7),
        "hour_of_week": (weekday * 24 + np.asarray(times.hour), 168),
        "month": (np.asarray(times.month) - 1, 12),
        "day_of_year": (np.asarray(times.day_of_year) - 1, 366),
        "day_type": (day_type, 3),
        "hour_of_day_type": (day_type * 24 + np.asarray(times.hour), 72)}
    columns: list[np.ndarray] = []
    names: list[str] = []
    for feature in features:
        if feature == "holiday":
            columns.append(holiday.astype(np.float32))
            names.append("holiday")
            continue
        index, period = values[feature]
        if feature == "day_of_year" or (encoding == "cyclic" and feature in CYCLIC):
            angle = 2 * np.pi * index / period
            columns += [np.sin(angle), np.cos(angle)]
            names += [f"{feature}_sin", f"{feature}_cos"]
        else:
            columns += list(np.eye(period, dtype=np.float32)[index].T)
            names += [_class_name(feature, k) for k in range(period)]
    return np.stack(columns, axis=1).astype(np.float32), names


def _class_name(feature: str, k: int) -> str:
    if feature == "day_type":
        return f"day_type={DAY_TYPES[k]}"
    if feature == "hour_of_day_type":
        return f"hour_of_day_type={DAY_TYPES[k // 24]}@{k % 24:02d}"
    return f"{feature}={k}"


def _holiday_flags(times: pd.DatetimeIndex, country: str) -> np.ndarray:
    days = times.normalize()
    found = _holidays(country, int(days.min().year), int(days.max().year))
    return np.asarray(days.isin(pd.DatetimeIndex(sorted(found))))


@functools.lru_cache(maxsize=32)
def _holidays(country: str, first: int, last: int) -> tuple[pd.Timestamp, ...]:
    return tuple(pd.Timestamp(d) for d in holidays.country_holidays(
        country, years=range(first, last + 1)))
