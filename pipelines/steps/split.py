"""The train/test split of units."""

from __future__ import annotations

import numpy as np
import xarray as xr

from suanli.datasets import text_values

from ..errors import PipelineDefinitionError
from ..registry import step


@step("split")
def split(ds: xr.Dataset, *, test_fraction: float = 0.25, seed: int = 0) -> xr.Dataset:
    """Assign each unit to ``train`` or ``test``, stratified by ``label(unit)``.

    A dataset that already has a ``split(unit)`` variable keeps it. Whole units
    go to one side, so the test score measures machines the model never saw.
    """
    if "split" in ds.variables:
        return ds
    if not 0 < test_fraction < 1:
        raise PipelineDefinitionError(f"split: test_fraction must be between 0 and 1, got "
                                      f"{test_fraction}")
    n_units = ds.sizes["unit"]
    groups = (text_values(ds["label"].values) if "label" in ds.variables
              and ds["label"].dims == ("unit",) else np.zeros(n_units, dtype=str))
    rng = np.random.default_rng(seed)
    assignment = np.full(n_units, "train", dtype=object)
    for group in sorted(set(groups)):
        members = rng.permutation(np.flatnonzero(groups == group))
        n_test = round(test_fraction * len(members))
        if len(members) >= 2:
            n_test = min(max(n_test, 1), len(members) - 1)
        assignment[members[:n_test]] = "test"
    return ds.assign(split=("unit", assignment, {"long_name": "train/test assignment",
                                                 "seed": seed}))
