"""Preprocessing steps: gap filling, z-scoring, windowing."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from suanli.datasets import sample_rate

from ..array_module import array_module, to_numpy
from ..errors import PipelineDefinitionError
from ..registry import step
from . import kernels
from .blocks import as_series, dask_data, series_rows, time_last

#: The fills of a chunk's gaps by series (numbered as :func:`nan_positions` does):
#: (start, end, values) runs, worked out by :func:`gap_fills`.
Fills = dict[int, list[tuple[int, int, Any]]]


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
    if data.numblocks[axis] == 1:
        filled = da.map_blocks(fill_block, data, None, None, dtype=data.dtype, max_gap=max_gap,
                               axis=axis, used=[(0, 0)], meta=data._meta)
    else:
        # Not map_overlap: that copies every chunk into a larger one with its
        # neighbours' edges, which only the rare rows with a gap need.
        # (map_blocks pairs blocks by position, whatever their sizes.)
        before, after, used = neighbour_edges(data, axis, max_gap)
        filled = da.map_blocks(fill_block, data, before, after, dtype=data.dtype,
                               max_gap=max_gap, axis=axis, used=used, meta=data._meta)
    return ds.assign({variable: array.copy(data=filled)})


def neighbour_edges(data: da.Array, axis: int, depth: int
                    ) -> tuple[da.Array, da.Array, list[tuple[int, int]]]:
    """For each chunk along ``axis``, the ``depth`` samples before it and after it,
    as arrays with one chunk per chunk of ``data``, and how many of them to use:
    fewer at the ends of the series, where a one-sample stand-in keeps the
    chunk (Dask drops empty ones)."""
    bounds = np.cumsum((0, *data.chunks[axis])).tolist()
    length = data.shape[axis]

    def edge(start: int, stop: int) -> da.Array:
        index = [slice(None)] * data.ndim
        index[axis] = slice(start, max(stop, start + 1))
        return data[tuple(index)].rechunk({axis: -1})

    before = [edge(max(0, start - depth), start) for start in bounds[:-1]]
    after = [edge(min(stop, length - 1), min(length, stop + depth)) for stop in bounds[1:]]
    used = [(min(depth, start), min(depth, length - stop))
            for start, stop in pairwise(bounds)]
    return da.concatenate(before, axis=axis), da.concatenate(after, axis=axis), used


def fill_block(block: Any, before: Any | None, after: Any | None, *, max_gap: int, axis: int,
               used: list[tuple[int, int]], block_id: tuple[int, ...] | None = None) -> Any:
    n_before, n_after = used[block_id[axis] if block_id else 0]
    if kernels.is_compiled_dtype(block):
        return _fill_compiled(block, before, after, max_gap=max_gap, axis=axis,
                              n_before=n_before, n_after=n_after)
    xp = array_module(block)
    # Other array modules (CuPy): a private copy with contiguous samples, the layout
    # their FFTs and reductions read fastest.
    series = time_last(block, axis, copy=True)
    rows = series.reshape(-1, series.shape[-1])
    # A row's sum is NaN when it has a NaN: one cheap pass finds the rows to mend.
    broken = np.flatnonzero(to_numpy(xp.isnan(rows.sum(axis=1))))
    if broken.size == 0:
        return xp.moveaxis(series, -1, axis)
    empty = rows[:, :0]
    lead = empty if before is None else time_last(before, axis).reshape(rows.shape[0], -1)
    lead = lead[:, lead.shape[1] - n_before:]
    tail = empty if after is None else time_last(after, axis).reshape(rows.shape[0], -1)
    tail = tail[:, :n_after]
    for row in broken:
        _fill_row(rows[row], max_gap, xp, lead[row], tail[row])
    return xp.moveaxis(series, -1, axis)


def _fill_compiled(block: np.ndarray, before: np.ndarray | None, after: np.ndarray | None, *,
                   max_gap: int, axis: int, n_before: int, n_after: int) -> np.ndarray:
    """The CPU path: one compiled pass flags the tiles that hold NaN; only those are
    searched, and the block is copied only when there is something to mend, in
    its own layout (a panel's channels stay interleaved)."""
    data, restore = as_series(block, axis)  # (outer, sample, inner)
    tile = kernels.tile_samples(data.shape[2])
    flags = np.empty((data.shape[0], kernels.n_tiles(data.shape[1], tile)), dtype=bool)
    kernels.nan_tiles(data, tile, flags)
    found = nan_positions(data, flags, tile)
    if not found:
        return block  # nothing to mend: no copy
    lead, tail = edge_rows(data, before, after, axis, n_before, n_after)
    fills = gap_fills(data, found, max_gap, lead, tail)
    filled = data.copy()
    for outer in range(data.shape[0]):
        apply_fills(filled[outer], fills, outer)
    return restore(filled)


def edge_rows(data: np.ndarray, before: np.ndarray | None, after: np.ndarray | None,
              axis: int, n_before: int, n_after: int) -> tuple[np.ndarray, np.ndarray]:
    """The neighbours' edges of ``data`` (outer, sample, inner) as (series, sample)
    rows: the last ``n_before`` samples of ``before``, the first ``n_after`` of
    ``after`` (none where a neighbour is None)."""
    empty = np.empty((data.shape[0] * data.shape[2], 0), dtype=data.dtype)
    lead = empty if before is None else series_rows(before, axis)
    tail = empty if after is None else series_rows(after, axis)
    return lead[:, lead.shape[1] - n_before:], tail[:, :n_after]


def nan_positions(data: np.ndarray, flags: np.ndarray, tile: int) -> dict[int, np.ndarray]:
    """For each series of ``data`` (outer, sample, inner) with NaN, their positions
    (ascending), searched only in the tiles ``flags`` (outer, tile) marks.
    Series are numbered outer * inner + inner index."""
    inner = data.shape[2]
    found: dict[int, list[np.ndarray]] = {}
    for o, k in zip(*np.nonzero(flags), strict=True):
        rows, columns = np.nonzero(np.isnan(data[o, k * tile:(k + 1) * tile]))
        for c in np.unique(columns):
            found.setdefault(int(o) * inner + int(c), []).append(rows[columns == c] + k * tile)
    return {series: np.concatenate(where) for series, where in found.items()}


def gap_fills(data: np.ndarray, found: dict[int, np.ndarray], max_gap: int, lead: np.ndarray,
              tail: np.ndarray) -> Fills:
    """The fills of the series' gaps (:func:`_fill_row`) at ``found`` (from
    :func:`nan_positions`), without writing them; ``lead`` and ``tail``: each
    series' neighbour edges, (series, sample)."""
    inner = data.shape[2]
    return {series: _gap_fills(data[series // inner, :, series % inner], max_gap, np,
                               lead[series], tail[series], where=where)
            for series, where in found.items()}


def apply_fills(part: np.ndarray, fills: Fills, outer: int,
                first: int = 0) -> None:
    """Write the fills of the series of ``outer`` (series outer * inner + i) into
    ``part`` (sample, inner), which holds their samples from ``first`` on."""
    inner = part.shape[1]
    for i in range(inner):
        for start, end, values in fills.get(outer * inner + i, ()):
            low, high = max(start, first), min(end, first + part.shape[0])
            if low >= high:
                continue
            chosen = values if np.ndim(values) == 0 else values[low - start:high - start]
            part[low - first:high - first, i] = chosen


def _fill_row(values: Any, max_gap: int, xp: Any, before: Any, after: Any) -> None:
    """Fill each NaN run of at most ``max_gap`` in ``values`` in place (:func:`_gap_fills`)."""
    for start, end, filled in _gap_fills(values, max_gap, xp, before, after):
        values[start:end] = filled


def _gap_fills(values: Any, max_gap: int, xp: Any, before: Any, after: Any,
               where: Any | None = None) -> list[tuple[int, int, Any]]:
    """(start, end, values) for each NaN run of at most ``max_gap`` in ``values``: the
    run filled on a line between its neighbours, as if ``values`` were read
    between its neighbours' edges (``before``, ``after``: up to ``max_gap``
    samples each, fewer at the series' ends). ``values`` is only read.

    Runs are found from the NaN positions alone (gaps are rare), so the row is
    scanned once, or not at all when the caller gives them (``where``, ascending);
    a run at an edge continues into the neighbour's edge.
    """
    if where is None:
        where = xp.flatnonzero(xp.isnan(values))
    size = values.shape[0]
    fills: list[tuple[int, int, Any]] = []
    if where.size == 0:
        return fills
    breaks = xp.flatnonzero(xp.diff(where) > 1)
    starts = xp.concatenate([where[:1], where[breaks + 1]]).tolist()
    ends = (xp.concatenate([where[breaks], where[-1:]]) + 1).tolist()
    # How far the edge runs continue into the neighbours, and whether they reach
    # the ends of the series (no value beyond them).
    lead = _nan_run_length(before[::-1], xp)
    trail = _nan_run_length(after, xp)
    for start, end in zip(starts, ends, strict=True):
        extra_before = lead if start == 0 else 0
        extra_after = trail if end == size else 0
        length = extra_before + (end - start) + extra_after
        if length > max_gap:
            continue
        left = values[start - 1] if start > 0 else _past_run(before[::-1], lead)
        right = values[end] if end < size else _past_run(after, trail)
        if left is None and right is None:
            continue  # the whole series is missing
        if left is None:
            fills.append((start, end, right))
        elif right is None:
            fills.append((start, end, left))
        else:
            steps = xp.arange(1, length + 1, dtype=values.dtype) / (length + 1)
            fills.append((start, end, left + (right - left)
                          * steps[extra_before:extra_before + end - start]))
    return fills


def _past_run(edge: Any, run: int) -> Any | None:
    """The first value of ``edge`` after its leading NaN run, None if there is none."""
    return edge[run] if run < edge.shape[0] else None


def _nan_run_length(values: Any, xp: Any) -> int:
    """How many NaN ``values`` starts with."""
    valid = xp.flatnonzero(~xp.isnan(values))
    return int(valid[0]) if valid.size else int(values.shape[0])


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
    stats = mean_and_inverse_std(data, axis)
    # Every chunk of a series takes that series' (mean, 1/std): "z" stands for the
    # stats' own axis, one chunk of two, where ``dim`` was.
    index = "".join(chr(ord("a") + i) for i in range(data.ndim))
    normalised = da.blockwise(_standardise, index, data, index, stats,
                              index[:axis] + "z" + index[axis + 1:], axis=axis,
                              dtype=data.dtype, meta=data._meta, concatenate=True)
    return ds.assign({variable: array.copy(data=normalised)})


def mean_and_inverse_std(data: da.Array, axis: int) -> da.Array:
    """Per-series (mean, 1/std) stacked along ``axis``, in ``data``'s dtype, from one
    pass that merges per-chunk moments (Chan et al.)."""
    parts = da.map_blocks(chunk_moments, data, axis=axis, dtype=np.float64,
                          chunks=tuple((3,) * len(c) if i == axis else c
                                       for i, c in enumerate(data.chunks)))
    return merged_moments(parts, axis, data.dtype)


def merged_moments(parts: da.Array, axis: int, dtype: Any) -> da.Array:
    """(mean, 1/std) in ``dtype`` from ``parts``: (count, mean, M2) of every chunk
    along ``axis``, as :func:`chunk_moments` gives them."""
    parts = parts.rechunk({axis: -1})
    return da.map_blocks(merge_moments, parts, axis=axis, out_dtype=dtype, dtype=dtype,
                         chunks=tuple((2,) if i == axis else c for i, c in
                                      enumerate(parts.chunks)))


def chunk_moments(block: Any, *, axis: int) -> Any:
    """(count, mean, M2) of every series in ``block``, stacked where ``axis`` was."""
    xp = array_module(block)
    if kernels.is_compiled_dtype(block):
        data, _ = as_series(block, axis)
        found = compiled_moments(data)
        if np.isfinite(found[..., 1]).all():
            others = block.shape[:axis] + block.shape[axis + 1:]
            return np.moveaxis(found.reshape(*others, 3), -1, axis)
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


def compiled_moments(data: np.ndarray, tiles: np.ndarray | None = None) -> np.ndarray:
    """(count, mean, M2) of every series of ``data`` (outer, sample, inner), C-contiguous,
    as (outer, inner, 3) float64, from its per-tile moments (``tiles``, when the
    caller already has them: :func:`kernels.tile_moments`)."""
    if tiles is None:
        tiles = tile_moments(data)
    found = np.empty((data.shape[0], data.shape[2], 3))
    kernels.merge_tiles(tiles, found)
    return found


def tile_moments(data: np.ndarray) -> np.ndarray:
    """Per-tile moments of ``data`` (outer, sample, inner): (outer, tile, inner, 3)."""
    outer, samples, inner = data.shape
    tile = kernels.tile_samples(inner)
    tiles = np.empty((outer, kernels.n_tiles(samples, tile), inner, 3))
    kernels.tile_moments(data, kernels.lane_width(inner), tile, tiles)
    return tiles


def merge_moments(parts: Any, *, axis: int, out_dtype: Any) -> Any:
    """Per-chunk (count, mean, M2) -> (mean, 1/std), 1 where std is 0 (a constant
    series is centred and left unscaled)."""
    xp = array_module(parts)
    moved = xp.moveaxis(parts, axis, -1)  # (..., 3 * n_chunks)
    count, mean, m2 = (moved[..., k::3] for k in range(3))
    total = count.sum(axis=-1)
    safe_total = xp.maximum(total, 1)
    grand_mean = (count * mean).sum(axis=-1) / safe_total
    m2_total = (m2 + count * (mean - grand_mean[..., None]) ** 2).sum(axis=-1)
    std = xp.sqrt(m2_total / safe_total)
    scale = 1.0 / xp.where(std > 0, std, 1.0)
    return xp.moveaxis(xp.stack([grand_mean, scale], axis=-1), -1, axis).astype(out_dtype)


def _standardise(block: Any, stats: Any, *, axis: int) -> Any:
    mean, scale = (stats.take([k], axis=axis) for k in (0, 1))
    if kernels.is_compiled_dtype(block):
        # One compiled pass in the block's own layout, instead of a subtraction
        # and a scaling.
        data, restore = as_series(block, axis)
        outer, _, inner = data.shape
        out = np.empty_like(data)
        kernels.scale_interleaved(data, series_rows(mean, axis).reshape(outer, inner),
                                  series_rows(scale, axis).reshape(outer, inner),
                                  kernels.lane_width(inner), out)
        return restore(out)
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
