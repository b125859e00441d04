"""Dask graph pieces the steps and their fusion share: neighbours' edges,
per-series scaling from merged chunk moments, whole windows in a block."""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from suanli.datasets import dask_array

from ..compute import moments
from ..compute.lagging import with_history


def neighbour_edges(data: da.Array, axis: int, depth: int
                    ) -> tuple[da.Array, da.Array, list[tuple[int, int]]]:
    """For each chunk along ``axis``, the ``depth`` samples before it and after it,
    as arrays with one chunk per chunk of ``data``, and how many of them to use:
    fewer at the ends of the series, where a one-sample stand-in keeps the
    chunk (Dask drops empty ones).

    Not ``map_overlap``: that copies every chunk into a larger one with its
    neighbours' edges, which only the rare rows with a gap need.
    """
    before, used_before = preceding_edges(data, axis, depth)
    bounds = np.cumsum((0, *data.chunks[axis])).tolist()
    length = data.shape[axis]
    after = [_edge(data, axis, min(stop, length - 1), min(length, stop + depth))
             for stop in bounds[1:]]
    used = [(n_before, min(depth, length - stop))
            for n_before, stop in zip(used_before, bounds[1:], strict=True)]
    return before, da.concatenate(after, axis=axis), used


def preceding_edges(data: da.Array, axis: int, depth: int) -> tuple[da.Array, list[int]]:
    """For each chunk along ``axis``, the ``depth`` samples before it (one chunk per
    chunk of ``data``, a one-sample stand-in at the series' start) and how many
    of them are real: the past a step that never reads ahead needs."""
    bounds = np.cumsum((0, *data.chunks[axis])).tolist()
    before = [_edge(data, axis, max(0, start - depth), start) for start in bounds[:-1]]
    return da.concatenate(before, axis=axis), [min(depth, start) for start in bounds[:-1]]


def _edge(data: da.Array, axis: int, start: int, stop: int) -> da.Array:
    index = [slice(None)] * data.ndim
    index[axis] = slice(start, max(stop, start + 1))
    return data[tuple(index)].rechunk({axis: -1})


def as_of_each_step(ds: xr.Dataset, channels: list[str], depth: int, per_channel: int,
                    compute: Any) -> da.Array:
    """``compute(history)`` over chunks of ``signal[channels]``, each given with
    ``depth`` samples of its past before it (NaN before a series' start):
    (unit, time, channel, per_channel)."""
    data = dask_array(ds["signal"].transpose("unit", "time", "channel").sel(
        channel=channels)).rechunk({2: -1})
    before, used = preceding_edges(data, 1, max(depth, 1))

    def block_function(block: Any, past: Any, block_id: tuple[int, ...] | None = None) -> Any:
        lead = min(used[block_id[1] if block_id else 0], depth)
        return compute(with_history(block, past, lead, depth))

    return da.map_blocks(block_function, data, before, dtype=data.dtype, meta=data._meta,
                         new_axis=3, chunks=(*data.chunks, (per_channel,)))


def series_scaling(data: da.Array, axis: int) -> da.Array:
    """Per-series (mean, 1/std) stacked along ``axis``, in ``data``'s dtype, from one
    pass that merges per-chunk moments."""
    parts = da.map_blocks(moments.chunk_moments, data, axis=axis, dtype=np.float64,
                          chunks=tuple((3,) * len(c) if i == axis else c
                                       for i, c in enumerate(data.chunks)))
    return merged_scaling(parts, axis, data.dtype)


def merged_scaling(parts: da.Array, axis: int, dtype: Any) -> da.Array:
    """(mean, 1/std) in ``dtype`` from ``parts``: (count, mean, M2) of every chunk
    along ``axis``, as :func:`~..compute.moments.chunk_moments` gives them."""
    parts = parts.rechunk({axis: -1})
    return da.map_blocks(moments.merge_moments, parts, axis=axis, out_dtype=dtype, dtype=dtype,
                         chunks=tuple((2,) if i == axis else c for i, c in
                                      enumerate(parts.chunks)))


def whole_windows(data: da.Array) -> da.Array:
    """``windows(unit, window, offset, channel)`` with every window and channel in one block."""
    return data.rechunk({2: -1, 3: -1})
