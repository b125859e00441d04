"""Preprocessing steps: gap filling, z-scoring, windowing."""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from suanli.datasets import sample_rate

from ..array_module import array_module, to_numpy
from ..errors import PipelineDefinitionError
from ..registry import step
from .blocks import dask_data, time_last


@step("fill_gaps")
def fill_gaps(ds: xr.Dataset, *, max_gap: int = 256, variable: str = "signal") -> xr.Dataset:
    """Fill NaN runs of at most ``max_gap`` samples along time by linear interpolation.

    Runs at the start or end of a series take the nearest valid value. Longer
    runs stay NaN (they are real outages, not gaps to paper over). The result
    does not depend on the chunking: each chunk sees ``max_gap`` samples of its
    neighbours.
    """
    if max_gap < 1:
        raise PipelineDefinitionError(f"fill_gaps: max_gap must be >= 1, got {max_gap}")
    array = ds[variable]
    axis = array.dims.index("time")
    data = dask_data(array)
    filled = da.map_overlap(_fill_block, data, depth={axis: max_gap}, boundary="none",
                            dtype=data.dtype, max_gap=max_gap, axis=axis, meta=data._meta)
    return ds.assign({variable: array.copy(data=filled)})


def _fill_block(block: Any, *, max_gap: int, axis: int) -> Any:
    xp = array_module(block)
    # A private copy with contiguous samples: the layout every later step reads fastest.
    series = time_last(block, axis, copy=True)
    rows = series.reshape(-1, series.shape[-1])
    # A row's sum is NaN when it has a NaN: one cheap pass finds the rows to mend.
    for row in np.flatnonzero(to_numpy(xp.isnan(rows.sum(axis=1)))):
        _fill_row(rows[row], max_gap, xp)
    return xp.moveaxis(series, -1, axis)


def _fill_row(values: Any, max_gap: int, xp: Any) -> None:
    """Fill each NaN run of at most ``max_gap`` on a line between its neighbours.

    Runs are found from the NaN positions alone (gaps are rare), so the row is
    scanned once.
    """
    where = xp.flatnonzero(xp.isnan(values))
    size = values.shape[0]
    if where.size in (0, size):
        return
    breaks = xp.flatnonzero(xp.diff(where) > 1)
    starts = xp.concatenate([where[:1], where[breaks + 1]]).tolist()
    ends = (xp.concatenate([where[breaks], where[-1:]]) + 1).tolist()
    for start, end in zip(starts, ends, strict=True):
        if end - start > max_gap:
            continue
        if start == 0:
            values[start:end] = values[end]
        elif end == size:
            values[start:end] = values[start - 1]
        else:
            left, right = values[start - 1], values[end]
            steps = xp.arange(1, end - start + 1, dtype=values.dtype) / (end - start + 1)
            values[start:end] = left + (right - left) * steps


@step("zscore")
def zscore(ds: xr.Dataset, *, variable: str = "signal", dim: str = "time") -> xr.Dataset:
    """Standardise ``variable`` to zero mean and unit standard deviation along ``dim``.

    Mean and standard deviation are taken per series (per unit and channel for
    a panel), ignoring NaN; a constant series is centred and left unscaled.
    """
    array = ds[variable]
    if dim not in array.dims:
        raise PipelineDefinitionError(f"zscore: {variable!r} has no dim {dim!r}; dims are "
                                      f"{array.dims}")
    axis = array.dims.index(dim)
    data = dask_data(array)
    mean, scale = _mean_and_inverse_std(data, axis)
    normalised = da.map_blocks(_standardise, data, da.expand_dims(mean, axis),
                               da.expand_dims(scale, axis), dtype=data.dtype)
    return ds.assign({variable: array.copy(data=normalised)})


def _mean_and_inverse_std(data: da.Array, axis: int) -> tuple[da.Array, da.Array]:
    """Per-series mean and 1/std in one pass, merging per-chunk moments (Chan et al.)."""
    parts = da.map_blocks(_chunk_moments, data, axis=axis, dtype=np.float64,
                          chunks=tuple((3,) * len(c) if i == axis else c
                                       for i, c in enumerate(data.chunks)))
    # parts holds (count, mean, M2) for every chunk along ``axis``: merge them.
    parts = parts.rechunk({axis: -1})
    merged = da.map_blocks(_merge_moments, parts, axis=axis, dtype=np.float64,
                           chunks=tuple((2,) if i == axis else c for i, c in
                                        enumerate(parts.chunks)))
    mean = da.take(merged, 0, axis=axis).astype(data.dtype)
    std = da.take(merged, 1, axis=axis)
    scale = da.where(std > 0, 1.0 / da.where(std > 0, std, 1.0), 1.0).astype(data.dtype)
    return mean, scale


def _chunk_moments(block: Any, *, axis: int) -> Any:
    """(count, mean, M2) of every series in ``block``, stacked where ``axis`` was."""
    xp = array_module(block)
    series = time_last(block, axis)
    # float32 sums along contiguous samples are pairwise (error ~ log n), then float64.
    total = series.sum(axis=-1, keepdims=True).astype(np.float64)
    if bool(xp.isfinite(total).all()):
        # No NaN (the usual case after fill_gaps): skip the NaN-aware passes.
        count = xp.full(total.shape, float(series.shape[-1]))
        mean = total / count
        centred = series - mean.astype(series.dtype)
        xp.multiply(centred, centred, out=centred)
        m2 = centred.sum(axis=-1, keepdims=True).astype(np.float64)
    else:
        count = (~xp.isnan(series)).sum(axis=-1, keepdims=True).astype(np.float64)
        mean = xp.nansum(series, axis=-1, keepdims=True, dtype=np.float64) / xp.maximum(count, 1)
        centred = series - mean.astype(series.dtype)
        m2 = xp.nansum(centred * centred, axis=-1, keepdims=True, dtype=np.float64)
    return xp.moveaxis(xp.concatenate([count, mean, m2], axis=-1), -1, axis)


def _merge_moments(parts: Any, *, axis: int) -> Any:
    xp = array_module(parts)
    moved = xp.moveaxis(parts, axis, -1)  # (..., 3 * n_chunks)
    count, mean, m2 = (moved[..., k::3] for k in range(3))
    total = count.sum(axis=-1)
    safe_total = xp.maximum(total, 1)
    grand_mean = (count * mean).sum(axis=-1) / safe_total
    m2_total = (m2 + count * (mean - grand_mean[..., None]) ** 2).sum(axis=-1)
    std = xp.sqrt(m2_total / safe_total)
    return xp.moveaxis(xp.stack([grand_mean, std], axis=-1), -1, axis)


def _standardise(block: Any, mean: Any, scale: Any) -> Any:
    out = block - mean
    out *= scale
    return out


@step("window")
def window(ds: xr.Dataset, *, size: int = 1024, variable: str = "signal") -> xr.Dataset:
    """Cut ``variable(unit, time, channel)`` into non-overlapping windows of ``size`` samples.

    Produces ``windows(unit, window, offset, channel)`` (a reshape: no copy when
    time chunks are whole windows) and drops the partial window at the end. A
    ``label(unit, time)`` becomes ``label(unit, window)``: the label at each
    window's last sample.
    """
    array = ds[variable]
    n_windows = array.sizes["time"] // size
    if size < 2 or n_windows < 1:
        raise PipelineDefinitionError(
            f"window: size must be >= 2 and at most the series length "
            f"({array.sizes['time']} samples), got {size}")
    data = dask_data(array.transpose("unit", "time", "channel"))[:, : n_windows * size]
    if any(chunk % size for chunk in data.chunks[1][:-1]) or data.chunks[1][-1] % size:
        target = max(size, round(max(data.chunks[1]) / size) * size)
        data = data.rechunk({1: target})
    windows = data.reshape((data.shape[0], n_windows, size, data.shape[2]), merge_chunks=False)
    starts = ds["time"].isel(time=slice(0, n_windows * size, size))
    out = xr.Dataset(
        {"windows": (("unit", "window", "offset", "channel"), windows,
                     {"window_size": size, **array.attrs})},
        coords={"unit": ds["unit"], "channel": ds["channel"],
                "window": np.arange(n_windows),
                "window_start": (("window",), np.asarray(starts.values), starts.attrs)},
        attrs=dict(ds.attrs),
    )
    out.attrs["sample_rate"] = sample_rate(ds)
    out.attrs["window_size"] = size
    for name in ("label", "split"):
        if name not in ds.variables:
            continue
        value = ds[name]
        if "time" in value.dims:
            value = value.isel(time=slice(size - 1, n_windows * size, size)).rename(time="window")
            value = value.drop_vars("window", errors="ignore").assign_coords(
                window=np.arange(n_windows))
        out[name] = value.variable
        out[name].attrs = dict(value.attrs)
    return out
