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
    categorical = ("label" in ds.variables and ds["label"].dims == ("unit",)
                   and np.asarray(ds["label"].values).dtype.kind != "f")
    groups = (text_values(ds["label"].values) if categorical
              else np.zeros(n_units, dtype=str))
    assignment = np.full(n_units, "train", dtype=object)
    assignment[stratified_sample(groups, test_fraction, seed)] = "test"
    return ds.assign(split=("unit", assignment, {"long_name": "train/test assignment",
                                                 "seed": seed}))


def stratified_sample(groups: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Indices of about ``fraction`` of the items of each group (at least one, never all,
    of a group with two or more), reproducibly from ``seed``."""
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for group in sorted(set(groups.tolist())):
        members = rng.permutation(np.flatnonzero(groups == group))
        count = round(fraction * len(members))
        if len(members) >= 2:
            count = min(max(count, 1), len(members) - 1)
        chosen.extend(members[:count].tolist())
    return np.array(sorted(chosen), dtype=int)
