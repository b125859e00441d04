"""The panel data model: ``signal(unit, time, channel)`` plus optional ``label`` and ``split``.

Checks here read only metadata and small variables, never the signal itself.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr

from .errors import DatasetError

PANEL_DIMS = ("unit", "time", "channel")
SPLIT_VALUES = ("train", "test")


def validate(ds: xr.Dataset, *, require_label: bool = False, source: str | None = None
             ) -> xr.Dataset:
    """Check that ``ds`` is a panel; return it with ``signal`` in (unit, time, channel) order.

    Raises :class:`DatasetError` naming the variable and what was expected.
    """
    if not isinstance(ds, xr.Dataset):
        raise DatasetError(f"expected an xarray.Dataset, got {type(ds).__name__}", path=source)
    if "signal" not in ds.data_vars:
        found = ", ".join(map(str, ds.data_vars)) or "none"
        raise DatasetError(
            f"a panel needs a data variable 'signal' with dims (unit, time, channel); "
            f"found variables: {found}", path=source, variable="signal")
    signal = ds["signal"]
    if set(signal.dims) != set(PANEL_DIMS):
        raise DatasetError(
            f"'signal' must have dims (unit, time, channel), got {signal.dims}; rename with "
            f"ds.rename(...) or add a channel dim with ds['signal'].expand_dims(channel=['x'])",
            path=source, variable="signal")
    if not np.issubdtype(signal.dtype, np.floating):
        raise DatasetError(f"'signal' must be float32 or float64, got {signal.dtype}; convert "
                           f"with ds['signal'].astype('float32')", path=source, variable="signal")
    if signal.dims != PANEL_DIMS:
        ds = ds.assign(signal=signal.transpose(*PANEL_DIMS))
    if "label" in ds.variables:
        ds = _check_label(ds, source)
    elif require_label:
        raise DatasetError("this pipeline is supervised: the panel needs a 'label(unit)' or "
                           "'label(unit, time)' variable", path=source, variable="label")
    if "split" in ds.variables:
        _check_split(ds, source)
    sample_rate(ds, source=source)
    return ds


def _check_label(ds: xr.Dataset, source: str | None) -> xr.Dataset:
    """``ds``, checked, with a per-unit label in memory: the steps read it (the split
    stratifies by it), and it is small."""
    label = ds["label"]
    if label.dims not in (("unit",), ("unit", "time")):
        raise DatasetError(
            f"'label' must have dims (unit,) or (unit, time) to match the panel's units, got "
            f"{label.dims} with sizes {dict(label.sizes)} (the panel has {ds.sizes['unit']} "
            f"units)", path=source, variable="label")
    if label.dims == ("unit",):
        values = small_values(label)
        missing = _missing(values)
        if missing.any():
            units = ds["unit"].values[missing][:5].tolist()
            raise DatasetError(f"'label' is missing for {int(missing.sum())} unit(s), e.g. "
                               f"{units}", path=source, variable="label")
        ds = ds.assign(label=label.copy(data=values))
    return ds


#: A lazy variable whose graph has at most this many tasks is a plain read (one chunk
#: of a store), done here rather than sent to the cluster and back.
SMALL_GRAPH = 8


def small_values(variable: xr.DataArray) -> np.ndarray:
    """A small variable's values. A plain read of a chunk or two is done in this
    process (a round trip through the scheduler costs more than the read); anything
    more is computed where Dask computes (the cluster)."""
    data = variable.data
    if isinstance(data, da.Array) and len(data.__dask_graph__()) <= SMALL_GRAPH:
        return np.asarray(data.compute(scheduler="sync"))
    return np.asarray(variable.values)


def _missing(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "f":
        return np.asarray(np.isnan(values))
    if values.dtype.kind in "OUS":
        return np.array([v is None or v == "" or (isinstance(v, float) and np.isnan(v))
                         for v in values.ravel()]).reshape(values.shape)
    return np.zeros(values.shape, dtype=bool)


def _check_split(ds: xr.Dataset, source: str | None) -> None:
    split = ds["split"]
    if split.dims != ("unit",):
        raise DatasetError(f"'split' must have dims (unit,), got {split.dims}",
                           path=source, variable="split")
    values = text_values(small_values(split))
    bad = sorted(set(values) - set(SPLIT_VALUES))
    if bad:
        raise DatasetError(f"'split' values must be 'train' or 'test', found {bad}",
                           path=source, variable="split")


def text_values(values: object) -> np.ndarray:
    """Values as a NumPy ``str`` array, whatever string dtype they were stored with
    (fixed-width, object, or NumPy 2's StringDType as Zarr v3 returns)."""
    array = np.asarray(values)
    return np.array([str(v) for v in array.ravel().tolist()], dtype=str).reshape(array.shape)


def sample_rate(ds: xr.Dataset, *, source: str | None = None) -> float:
    """Samples per second: the ``sample_rate`` attribute, or the spacing of a datetime ``time``."""
    for attrs in (ds["time"].attrs if "time" in ds.variables else {}, ds.attrs):
        if "sample_rate" in attrs:
            rate = float(attrs["sample_rate"])
            if not rate > 0:
                raise DatasetError(f"sample_rate must be positive, got {rate}",
                                   path=source, variable="time")
            return rate
    if "time" in ds.coords and np.issubdtype(ds["time"].dtype, np.datetime64) \
            and ds.sizes["time"] > 1:
        steps = np.diff(ds["time"].values[: min(ds.sizes["time"], 10_000)])
        step_seconds = float(np.median(steps) / np.timedelta64(1, "s"))
        if step_seconds > 0:
            return 1.0 / step_seconds
    raise DatasetError(
        "cannot tell the sample rate: give 'time' datetime64 values or set "
        "ds['time'].attrs['sample_rate'] (in Hz) on an integer sample index",
        path=source, variable="time")
