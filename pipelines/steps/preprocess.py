"""Preprocessing steps: gap filling, z-scoring, windowing (the maths: :mod:`..compute`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from suanli.datasets import dask_array, sample_rate

from ..array_module import array_module
from ..compute import gaps, moments
from ..errors import PipelineDefinitionError
from ..registry import Fusion, step
from .durations import check_duration_or_count, samples, seconds
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
    if params.get("step") is not None:
        check_duration_or_count(params["step"], where="window: step", minimum=1)
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
      flexible=("size", "step"))
def window(ds: xr.Dataset, *, size: int | str | list[int | str] = 1024,
           step: int | str | None = None, variable: str = "signal") -> xr.Dataset:
    """Cut ``variable(unit, time, channel)`` into windows of ``size`` samples, one every
    ``step`` samples (default: ``size``, windows that do not overlap).

    ``size`` is a number of samples, ``series`` (each series whole), a duration
    (``1s``, ``250ms``) at the panel's sample rate, or a list of these: the first
    that fits the series. ``step`` is a number of samples or a duration; ``step:
    1`` gives a window ending at every time step from the ``size``-th on.
    Produces ``windows(unit, window, offset, channel)`` (without overlap a
    reshape: no copy when time chunks are whole windows) and drops a partial
    window at the end. A ``label(unit, time)`` becomes ``label(unit, window)``:
    the label at each window's last sample; ``window_end`` holds its time.
    """
    size = int(resolve_window({"size": size, "variable": variable}, ds)["size"])
    array = ds[variable]
    length = array.sizes["time"]
    stride = size if step is None else samples(step, sample_rate(ds), where="window: step")
    if size < 2 or size > length:
        raise PipelineDefinitionError(
            f"window: size must be >= 2 and at most the series length ({length} samples), "
            f"got {size}")
    if stride < 1:
        raise PipelineDefinitionError(f"window: step must be >= 1 sample, got {step!r}")
    n_windows = (length - size) // stride + 1
    data = dask_array(array.transpose("unit", "time", "channel"))
    windows = (_tiled_windows(data, size, n_windows) if stride == size
               else _overlapping_windows(data, size, stride, n_windows))
    starts = ds["time"].isel(time=slice(0, (n_windows - 1) * stride + 1, stride))
    ends = ds["time"].isel(time=slice(size - 1, (n_windows - 1) * stride + size, stride))
    out = xr.Dataset(
        {"windows": (("unit", "window", "offset", "channel"), windows,
                     {"window_size": size, "window_step": stride, **array.attrs})},
        coords={"unit": ds["unit"], "channel": ds["channel"],
                "window": np.arange(n_windows),
                "window_start": (("window",), np.asarray(starts.values), starts.attrs),
                "window_end": (("window",), np.asarray(ends.values), ends.attrs)},
        attrs=dict(ds.attrs),
    )
    out.attrs["sample_rate"] = sample_rate(ds)
    out.attrs["window_size"] = size
    out.attrs["window_step"] = stride
    for name in ("label", "split"):
        if name not in ds.variables:
            continue
        value = ds[name]
        if "time" in value.dims:
            value = value.isel(time=slice(size - 1, (n_windows - 1) * stride + size, stride)
                               ).rename(time="window")
            value = value.drop_vars("window", errors="ignore").assign_coords(
                window=np.arange(n_windows))
        out[name] = value.variable
        out[name].attrs = dict(value.attrs)
    return out


def _tiled_windows(data: da.Array, size: int, n_windows: int) -> da.Array:
    """Windows that do not overlap: a reshape of time chunks holding whole windows."""
    data = data[:, : n_windows * size]
    if any(chunk % size for chunk in data.chunks[1][:-1]) or data.chunks[1][-1] % size:
        target = max(size, round(max(data.chunks[1]) / size) * size)
        data = data.rechunk({1: target})
    return data.reshape((data.shape[0], n_windows, size, data.shape[2]), merge_chunks=False)


#: Values per block of overlapping windows (each sample is copied size/step times).
OVERLAP_BLOCK_VALUES = 2**24


def _overlapping_windows(data: da.Array, size: int, stride: int, n_windows: int) -> da.Array:
    """Windows every ``stride`` samples: each block of windows reads the samples it
    spans (its chunk and the next ``size - stride``) and takes strided views, copied
    once into (unit, window, offset, channel)."""
    units = max(data.chunks[0])
    per_block = max(1, min(max(data.chunks[1]) // stride,
                           OVERLAP_BLOCK_VALUES // (units * size * data.shape[2])))
    blocks = []
    for first in range(0, n_windows, per_block):
        count = min(per_block, n_windows - first)
        start = first * stride
        piece = data[:, start: start + (count - 1) * stride + size].rechunk({1: -1})
        blocks.append(da.map_blocks(_strided_windows, piece, size, stride, dtype=data.dtype,
                                    meta=data._meta, new_axis=3,
                                    chunks=(piece.chunks[0], (count,), (size,),
                                            piece.chunks[2])))
    return da.concatenate(blocks, axis=1) if len(blocks) > 1 else blocks[0]


def _strided_windows(block: Any, size: int, stride: int) -> Any:
    xp = array_module(block)
    views = xp.lib.stride_tricks.sliding_window_view(block, size, axis=1)[:, ::stride]
    return xp.ascontiguousarray(views.transpose(0, 1, 3, 2))
