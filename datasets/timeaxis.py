"""Calendar times of a panel's ``time`` axis.

A panel's time is either datetime64 values or numbers. Numbers are a sample
index (``units: samples``, no calendar meaning) or, as the CF conventions
write them and xarray decodes them on reading, an offset from an epoch
(``units: "seconds since 2024-01-01"``): the generated traffic and vitals use
that, so a year at 1 Hz needs no 250 MB array of datetimes until a step asks.
Naive datetimes are read as UTC: suanli does no daylight-saving arithmetic.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import xarray as xr

from .errors import DatasetError

_SINCE = re.compile(r"^\s*(\w+)\s+since\s+(.+?)\s*$")
#: CF time units, in nanoseconds.
_UNITS = {"nanoseconds": 1, "microseconds": 10**3, "milliseconds": 10**6, "seconds": 10**9,
          "minutes": 60 * 10**9, "hours": 3600 * 10**9, "days": 86400 * 10**9}


def epoch_units(start: str | pd.Timestamp, unit: str = "seconds") -> str:
    """CF ``units`` for numbers counting ``unit`` from ``start``: ``seconds since 2024-01-01``."""
    return f"{unit} since {pd.Timestamp(start).isoformat(sep=' ')}"


def has_calendar_times(ds: xr.Dataset | xr.DataArray) -> bool:
    """Whether ``time`` holds datetimes or CF ``... since ...`` offsets."""
    if "time" not in ds.coords:
        return False
    time = ds["time"]
    return bool(np.issubdtype(time.dtype, np.datetime64)
                or _SINCE.match(str(time.attrs.get("units", ""))))


def timestamps(ds: xr.Dataset | xr.DataArray, *, step: str = "this step",
               source: str | None = None) -> np.ndarray:
    """The ``time`` coordinate as ``datetime64[ns]`` (naive, read as UTC).

    Raises :class:`DatasetError` when time is a bare sample index, saying how to
    give it calendar meaning (``step`` names what needs it).
    """
    if "time" not in ds.coords:
        raise DatasetError(f"{step} needs a 'time' coordinate", path=source, variable="time")
    time = ds["time"]
    if np.issubdtype(time.dtype, np.datetime64):
        values = np.asarray(time.values)
        return values.astype("datetime64[ns]")
    found = _SINCE.match(str(time.attrs.get("units", "")))
    if not found or found.group(1) not in _UNITS:
        raise DatasetError(
            f"{step} needs calendar times, but 'time' is a sample index (units "
            f"{time.attrs.get('units', 'none')!r}); give datetime64 times or set "
            f"ds['time'].attrs['units'] = 'seconds since 2024-01-01' (CF conventions)",
            path=source, variable="time")
    try:
        origin = pd.Timestamp(found.group(2))
    except ValueError as error:
        raise DatasetError(f"time units {time.attrs['units']!r}: cannot read the date "
                           f"{found.group(2)!r} ({error})", path=source,
                           variable="time") from None
    if origin.tzinfo is not None:
        origin = origin.tz_convert("UTC").tz_localize(None)
    per_unit = _UNITS[found.group(1)]
    offsets = np.asarray(time.values)
    nanoseconds = (np.round(offsets.astype(np.float64) * per_unit).astype(np.int64)
                   if offsets.dtype.kind == "f" else offsets.astype(np.int64) * per_unit)
    return np.datetime64(origin.value, "ns") + nanoseconds.astype("timedelta64[ns]")
