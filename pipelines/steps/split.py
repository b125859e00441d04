"""The train/test split of units."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from suanli.datasets import text_values, timestamps

from ..compute.sampling import stratified_sample
from ..errors import PipelineDefinitionError
from ..registry import step
from .forecasting import forecast_lead


def _check_split(params: Mapping[str, Any]) -> None:
    if params.get("test_from") is not None:
        try:
            pd.Timestamp(params["test_from"])
        except (ValueError, TypeError):
            raise PipelineDefinitionError(f"split: test_from is a date or time (2024-06-01), "
                                          f"got {params['test_from']!r}") from None
    if not 0 < params["test_fraction"] < 1:
        raise PipelineDefinitionError(f"split: test_fraction must be between 0 and 1, got "
                                      f"{params['test_fraction']}")


@step("split", check=_check_split, flexible=("test_from",))
def split(ds: xr.Dataset, *, test_fraction: float = 0.25, seed: int = 0,
          test_from: str | None = None) -> xr.Dataset:
    """Assign each unit to ``train`` or ``test``, stratified by ``label(unit)``; or,
    with ``test_from`` (a date), each time step: test from that time on.

    By units, a dataset that already has a ``split(unit)`` variable keeps it, and
    whole units go to one side, so the test score measures machines the model
    never saw. By time, the decision points (or time steps) before ``test_from``
    train, except those whose forecast target lies at or after it: they are
    ``gap``, in neither side, so no training label comes from the test period.
    """
    if test_from is not None:
        return _split_by_time(ds, pd.Timestamp(test_from))
    if "split" in ds.variables:
        return ds
    _check_split({"test_fraction": test_fraction})
    n_units = ds.sizes["unit"]
    labels = np.asarray(ds["label"].values) if "label" in ds.variables \
        and ds["label"].dims == ("unit",) else None
    categorical = labels is not None and labels.dtype.kind != "f"
    groups = (text_values(labels) if categorical else np.zeros(n_units, dtype=str))
    assignment = np.full(n_units, "train", dtype=object)
    assignment[stratified_sample(groups, test_fraction, seed)] = "test"
    return ds.assign(split=("unit", assignment, {"long_name": "train/test assignment",
                                                 "seed": seed}))



def _split_by_time(ds: xr.Dataset, test_from: pd.Timestamp) -> xr.Dataset:
    if test_from.tzinfo is not None:
        test_from = test_from.tz_convert("UTC").tz_localize(None)
    if "origin_time" in ds.coords:
        dim, times = "window", np.asarray(ds["origin_time"].values).astype("datetime64[ns]")
    else:
        dim, times = "time", timestamps(ds, step="split by time")
    cut = test_from.to_datetime64().astype("datetime64[ns]")
    horizon = forecast_lead(ds)
    sides = np.where(times >= cut, "test", np.where(times + horizon >= cut, "gap", "train"))
    for side in ("train", "test"):
        if not (sides == side).any():
            raise PipelineDefinitionError(
                f"split: test_from {test_from} leaves no {side} time steps (the data runs "
                f"from {times[0]} to {times[-1]})")
    return ds.assign(split=(dim, sides.astype(object), {
        "long_name": "train/test assignment by time", "test_from": str(test_from)}))
