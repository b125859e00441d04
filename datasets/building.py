"""Build panels from arrays held in memory."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from .errors import DatasetError
from .panel import validate


def from_arrays(signal: np.ndarray, *, sample_rate: float,
                channels: Sequence[str] | None = None, units: Sequence[object] | None = None,
                label: Sequence[object] | np.ndarray | None = None,
                split: Sequence[str] | None = None,
                classes: Sequence[str] | None = None) -> xr.Dataset:
    """A validated panel from a ``(unit, time, channel)`` array.

    ``label`` holds one value per unit (or per unit and time); integer labels may
    be named with ``classes``. ``split`` holds ``"train"``/``"test"`` per unit.
    """
    array = np.asarray(signal)
    if array.ndim != 3:
        raise DatasetError(f"signal must be 3-D (unit, time, channel), got shape {array.shape}")
    n_units, n_time, n_channels = array.shape
    ds = xr.Dataset(
        {"signal": (("unit", "time", "channel"), array)},
        coords={
            "unit": list(units) if units is not None else np.arange(n_units),
            "time": np.arange(n_time),
            "channel": list(channels) if channels is not None else
            [f"ch{i}" for i in range(n_channels)],
        },
    )
    ds["time"].attrs["sample_rate"] = float(sample_rate)
    if label is not None:
        values = np.asarray(label)
        ds["label"] = (("unit",) if values.ndim == 1 else ("unit", "time")), values
        if classes is not None:
            ds["label"].attrs["classes"] = list(classes)
    if split is not None:
        ds["split"] = ("unit",), np.asarray(split, dtype=object)
    return validate(ds)
