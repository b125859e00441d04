"""Preprocessing steps: gap filling, z-scoring, windowing (the maths: :mod:`..compute`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from suanli.datasets import dask_array, sample_rate

from ..compute import gaps, moments
from ..errors import PipelineDefinitionError
from ..registry import Fusion, step
from .durations import seconds
from .graphs import neighbour_edges, series_scaling


def _check_fill_gaps(params: Mapping[str, Any]) -> None:
    if params["max_gap"] < 1:
        raise PipelineDefinitionError(f"fill_gaps: max_gap must be >= 1, got {params['max_gap']}")


@step("fill_gaps", check=_check_fill_gaps, fusion=Fusion("fill"))
def fill_gaps(ds: xr.Dataset, *, max_gap: int = 256, variable: str = "signal") -> xr.Dataset:
    """Fill NaN runs of at most ``max_gap`` samples along time by linear interpolation.

    Runs at the start or end of a series take the nearest valid value. Longer
    runs stay NaN (they are real outages, not gaps to paper over). The result
    does not depend on the chunking: each chunk sees ``max_gap`` samples of its
    neighbours.
    """
    _check_fill_gaps({"max_gap": max_gap})
    array = ds[variable]
    axis = array.dims.index("time")
    data = dask_array(array)
    if data.numblocks[axis] == 1:
        filled = da.map_blocks(gaps.fill_block, data, None, None, dtype=data.dtype,
                               max_gap=max_gap, axis=axis, meta=data._meta)
    else:
        # map_blocks pairs blocks by position, whatever their sizes.
        before, after, used = neighbour_edges(data, axis, max_gap)
        filled = da.map_blocks(_fill_chunk, data, before, after, dtype=data.dtype,
                               max_gap=max_gap, axis=axis, used=used, meta=data._meta)
    return ds.assign({variable: array.copy(data=filled)})


def _fill_chunk(block: Any, before: Any, after: Any, *, max_gap: int, axis: int,
                used: list[tuple[int, int]], block_id: tuple[int, ...] | None = None) -> Any:
    n_before, n_after = used[block_id[axis] if block_id else 0]
    return gaps.fill_block(block, before, after, max_gap=max_gap, axis=axis,
                           n_before=n_before, n_after=n_after)


@step("zscore", fusion=Fusion("standardise"))
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
    data = dask_array(array)
    stats = series_scaling(data, axis)
    # Every chunk of a series takes that series' (mean, 1/std): "z" stands for the
    # stats' own axis, one chunk of two, where ``dim`` was.
    index = "".join(chr(ord("a") + i) for i in range(data.ndim))
    normalised = da.blockwise(moments.standardise, index, data, index, stats,
                              index[:axis] + "z" + index[axis + 1:], axis=axis,
                              dtype=data.dtype, meta=data._meta, concatenate=True)
    return ds.assign({variable: array.copy(data=normalised)})


SIZES = "a number of samples, 'series', a duration such as '1s', or a list of them"


def _size_choices(size: Any) -> list[Any]:
    return list(size) if isinstance(size, list | tuple) else [size]


def _check_window(params: Mapping[str, Any]) -> None:
    for choice in _size_choices(params["size"]):
        if isinstance(choice, bool) or not isinstance(choice, int | str):
            raise PipelineDefinitionError(f"window: size is {SIZES} (the first that fits), "
                                          f"got {params['size']!r}")
        if isinstance(choice, int) and choice < 2:
            raise PipelineDefinitionError(f"window: size must be >= 2, got {choice}")
        if isinstance(choice, str) and choice != "series":
            _seconds(choice)


def _seconds(text: str) -> float:
    try:
        return seconds(text, where="window: size")
    except PipelineDefinitionError:
        raise PipelineDefinitionError(f"window: size {text!r} is not {SIZES}") from None


def resolve_window(params: Mapping[str, Any], ds: xr.Dataset) -> dict[str, Any]:
    """``params`` with ``size`` in samples: the first choice that fits ``ds``'s series
    (``series``: their length; a duration: that long at the sample rate)."""
    size = params.get("size", 1024)
    if isinstance(size, int) and not isinstance(size, bool):
        return dict(params)
    array = ds[params.get("variable", "signal")]
    length, rate = int(array.sizes["time"]), sample_rate(ds)
    for choice in _size_choices(size):
        samples = (length if choice == "series" else choice if isinstance(choice, int)
                   else round(_seconds(choice) * rate))
        if 2 <= samples <= length:
            return {**params, "size": samples}
    raise PipelineDefinitionError(
        f"window: size {size!r} does not fit these series ({length} samples at {rate:g} "
        f"Hz): a window holds 2 to {length} samples ({2 / rate:g} to {length / rate:g} s); "
        f"size: series takes each series whole")


@step("window", check=_check_window, fusion=Fusion("window"), resolve=resolve_window,
      flexible=("size",))
def window(ds: xr.Dataset, *, size: int | str | list[int | str] = 1024,
           variable: str = "signal") -> xr.Dataset:
    """Cut ``variable(unit, time, channel)`` into non-overlapping windows of ``size`` samples.

    ``size`` is a number of samples, ``series`` (each series whole), a duration
    (``1s``, ``250ms``) at the panel's sample rate, or a list of these: the first
    that fits the series. Produces ``windows(unit, window, offset, channel)`` (a
    reshape: no copy when time chunks are whole windows) and drops the partial
    window at the end. A ``label(unit, time)`` becomes ``label(unit, window)``: the
    label at each window's last sample.
    """
    size = int(resolve_window({"size": size, "variable": variable}, ds)["size"])
    array = ds[variable]
    n_windows = array.sizes["time"] // size
    if size < 2 or n_windows < 1:
        raise PipelineDefinitionError(
            f"window: size must be >= 2 and at most the series length "
            f"({array.sizes['time']} samples), got {size}")
    data = dask_array(array.transpose("unit", "time", "channel"))[:, : n_windows * size]
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
