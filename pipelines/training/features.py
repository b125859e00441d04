"""From feature variables on (unit, window, ...) to a samples x features matrix."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import dask.array as da
import numpy as np
import xarray as xr

from suanli.datasets import dask_array, text_values

from ..errors import PipelineDefinitionError

SAMPLE_DIMS = ("unit", "window")


@dataclass
class FeatureTable:
    """Features of a set of units, one row per (unit, window)."""

    X: da.Array
    y: np.ndarray | None
    feature_names: list[str]
    units: np.ndarray
    #: Each row's place in the (unit, window) grid, unit-major; None: every row, in order.
    rows: np.ndarray | None = None

    def select(self, chosen: np.ndarray) -> FeatureTable:
        """The rows where ``chosen`` (one flag per row of this table) is true."""
        rows = np.flatnonzero(chosen) if self.rows is None else self.rows[chosen]
        n_windows = len(self.X) // max(len(self.units), 1) if self.rows is None else None
        units = (self.units[rows // n_windows] if n_windows else self.units)
        return FeatureTable(self.X[chosen], None if self.y is None else self.y[chosen],
                            self.feature_names, np.unique(units), rows)


def feature_names(ds: xr.Dataset, variables: Sequence[str]) -> list[str]:
    """``variable[coord,coord]`` for every column, in matrix order."""
    names: list[str] = []
    for variable in variables:
        array = _checked(ds, variable)
        rest = [d for d in array.dims if d not in SAMPLE_DIMS]
        labels = [list(map(str, ds[d].values)) if d in ds.coords else
                  list(map(str, range(ds.sizes[d]))) for d in rest]
        for combo in np.ndindex(*[len(labels_of) for labels_of in labels]):
            parts = ",".join(labels[i][j] for i, j in enumerate(combo))
            names.append(f"{variable}[{parts}]")
    return names


def feature_table(ds: xr.Dataset, variables: Sequence[str], codes: np.ndarray | None
                  ) -> FeatureTable:
    """Stack ``variables`` into rows of (unit, window); a variable without one of
    the two (``calendar(window, ...)``: the same for every unit) is broadcast.

    ``codes`` are per-unit or per-window label codes.
    """
    blocks = []
    for variable in variables:
        array = _checked(ds, variable)
        rest = [d for d in array.dims if d not in SAMPLE_DIMS]
        missing = {d: ds.sizes[d] for d in SAMPLE_DIMS if d not in array.dims}
        if missing:
            array = array.expand_dims(missing)
        data = dask_array(array.transpose(*SAMPLE_DIMS, *rest))
        n_rows = data.shape[0] * data.shape[1]
        blocks.append(data.reshape((n_rows, int(np.prod(data.shape[2:], dtype=int))),
                                   merge_chunks=True))
    X = da.concatenate(blocks, axis=1) if len(blocks) > 1 else blocks[0]
    y = None
    if codes is not None:
        n_windows = ds.sizes["window"]
        y = np.repeat(codes, n_windows) if codes.ndim == 1 else codes.reshape(-1)
    return FeatureTable(X, y, feature_names(ds, variables), np.asarray(ds["unit"].values))


def _checked(ds: xr.Dataset, variable: str) -> xr.DataArray:
    if variable not in ds.data_vars:
        raise PipelineDefinitionError(
            f"train: feature variable {variable!r} is not produced by the steps; variables: "
            f"{', '.join(map(str, ds.data_vars))}")
    array = ds[variable]
    if not set(SAMPLE_DIMS) & set(array.dims) or set(array.dims) & {"time", "offset"}:
        raise PipelineDefinitionError(
            f"train: feature variable {variable!r} must have dims (unit, window, ...) (or "
            f"one of them), got {array.dims}")
    return array


def label_task(label: xr.DataArray) -> str:
    """``regression`` for a floating-point label without ``classes``, else
    ``classification`` (a float label with ``classes`` holds codes, NaN where unknown)."""
    floating = np.asarray(label.values).dtype.kind == "f"
    return "regression" if floating and "classes" not in label.attrs else "classification"


def encode_labels(label: xr.DataArray) -> tuple[np.ndarray, list[str]]:
    """Integer codes and class names for ``label`` (integers with ``classes``, or strings);
    a floating-point label (regression) comes back as float32 targets and no classes."""
    values = np.asarray(label.values)
    if label_task(label) == "regression":
        if label.dims == ("unit",) and not np.isfinite(values).all():
            raise PipelineDefinitionError("train: a regression label must be finite for "
                                          "every unit")
        # Per window, a NaN label is a target not known (a gap, the series' end):
        # its row is neither trained on nor scored.
        return values.astype(np.float32), []
    classes = label.attrs.get("classes")
    if values.dtype.kind == "f":  # codes with NaN for rows whose class is not known
        classes = list(label.attrs["classes"])  # label_task: a float label here has them
        known = values[np.isfinite(values)]
        if known.size and (known.min() < 0 or known.max() >= len(classes)
                           or (known != np.round(known)).any()):
            raise PipelineDefinitionError(
                f"train: label codes must be whole numbers in [0, {len(classes)}) to match "
                f"its 'classes' attribute {classes}")
        return values.astype(np.float64), [str(c) for c in classes]
    if values.dtype.kind in "iu":
        if classes is None:
            found = np.unique(values)
            classes = [str(v) for v in range(int(found.max()) + 1)] if found.min() >= 0 else None
            if classes is None:
                raise PipelineDefinitionError("train: integer labels must be >= 0")
        if values.min() < 0 or values.max() >= len(classes):
            raise PipelineDefinitionError(
                f"train: label codes must lie in [0, {len(classes)}) to match its 'classes' "
                f"attribute {classes}; found {sorted(set(values.ravel().tolist()))[:10]}")
        return values.astype(np.int64), [str(c) for c in classes]
    text = text_values(values)
    names = sorted(set(text.ravel().tolist()))
    return np.searchsorted(names, text).astype(np.int64), names
