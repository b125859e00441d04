"""The train/test split of units."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from suanli.datasets import text_values

from ..compute.sampling import stratified_sample
from ..errors import PipelineDefinitionError
from ..registry import step


def _check_split(params: Mapping[str, Any]) -> None:
    if not 0 < params["test_fraction"] < 1:
        raise PipelineDefinitionError(f"split: test_fraction must be between 0 and 1, got "
                                      f"{params['test_fraction']}")


@step("split", check=_check_split)
def split(ds: xr.Dataset, *, test_fraction: float = 0.25, seed: int = 0) -> xr.Dataset:
    """Assign each unit to ``train`` or ``test``, stratified by ``label(unit)``.

    A dataset that already has a ``split(unit)`` variable keeps it. Whole units
    go to one side, so the test score measures machines the model never saw.
    """
    if "split" in ds.variables:
        return ds
    _check_split({"test_fraction": test_fraction})
    n_units = ds.sizes["unit"]
    categorical = ("label" in ds.variables and ds["label"].dims == ("unit",)
                   and np.asarray(ds["label"].values).dtype.kind != "f")
    groups = (text_values(ds["label"].values) if categorical
              else np.zeros(n_units, dtype=str))
    assignment = np.full(n_units, "train", dtype=object)
    assignment[stratified_sample(groups, test_fraction, seed)] = "test"
    return ds.assign(split=("unit", assignment, {"long_name": "train/test assignment",
                                                 "seed": seed}))

