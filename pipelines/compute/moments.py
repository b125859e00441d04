"""Per-series moments (count, mean, M2) and standardising, on any block.

Compiled (Numba, no GIL) on NumPy float blocks: one pass over memory, in the
block's own layout, in tiles that stay in cache; the array-module code below
is what CuPy blocks run, and the reference the kernels are tested against.
Moments of chunks merge exactly (Chan et al.), so a series split over chunks
gets the moments it would have whole.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from ..array_module import array_module
from .layout import (
    FASTMATH,
    as_series,
    is_compiled_dtype,
    lane_width,
    n_tiles,
    series_rows,
    tile_samples,
    time_last,
)


@numba.njit(fastmath=FASTMATH, nogil=True, cache=True)
def _tile_moments_into(block: Any, width: int, tile: int, out: Any) -> None:  # pragma: no cover
    """Count, mean and M2 (sum of squared deviations) of every series of ``block``
    (outer, sample, inner), C-contiguous, in each tile of ``tile`` samples, into
    ``out`` (outer, tile, inner, 3), float64; :func:`_merge_tiles_into` combines them.

    Memory is read once: each tile is summed, then its deviations from its own
    mean are, both from cache, in vectors of ``width`` values
    (:func:`~.layout.lane_width`). A tile with NaN or inf gets a non-finite mean.
    """
    outer, samples, inner = block.shape
    acc = np.empty(width, dtype=block.dtype)
    lane_mean = np.empty(width, dtype=block.dtype)
    sums = np.empty(inner)
    squares = np.empty(inner)
    for o in range(outer):
        flat = block[o].reshape(samples * inner)
        for first in range(0, samples, tile):
            count = min(tile, samples - first)
            body = count * inner // width * width  # whole lane vectors; the rest one by one
            values = flat[first * inner:(first + count) * inner]
            vectors = values[:body].reshape(body // width, width)
            acc[:] = 0
            for r in range(vectors.shape[0]):
                row = vectors[r]
                for j in range(width):
                    acc[j] += row[j]
            sums[:] = 0.0
            for j in range(width):
                sums[j % inner] += acc[j]
            for i in range(body, values.shape[0]):
                sums[i % inner] += values[i]
            for j in range(width):
                lane_mean[j] = sums[j % inner] / count
            acc[:] = 0
            for r in range(vectors.shape[0]):
                row = vectors[r]
                for j in range(width):
                    deviation = row[j] - lane_mean[j]
                    acc[j] += deviation * deviation
            squares[:] = 0.0
            for j in range(width):
                squares[j % inner] += acc[j]
            for i in range(body, values.shape[0]):
                deviation = values[i] - sums[i % inner] / count
                squares[i % inner] += deviation * deviation
            found = out[o, first // tile]
            for c in range(inner):
                found[c, 0] = count
                found[c, 1] = sums[c] / count
                found[c, 2] = squares[c]


@numba.njit(fastmath=FASTMATH, nogil=True, cache=True)
def _merge_tiles_into(tiles: Any, out: Any) -> None:  # pragma: no cover - compiled
    """Per-tile (count, mean, M2), (outer, tile, inner, 3), merged in order (Chan et
    al., float64) into ``out`` (outer, inner, 3)."""
    outer, count_of_tiles, inner, _ = tiles.shape
    for o in range(outer):
        for c in range(inner):
            seen = 0.0
            mean = 0.0
            m2 = 0.0
            for k in range(count_of_tiles):
                count, tile_mean, tile_m2 = tiles[o, k, c, 0], tiles[o, k, c, 1], tiles[o, k, c, 2]
                total = seen + count
                delta = tile_mean - mean
                mean += delta * count / total
                m2 += tile_m2 + delta * delta * seen * count / total
                seen = total
            out[o, c, 0] = seen
            out[o, c, 1] = mean
            out[o, c, 2] = m2


@numba.njit(fastmath=FASTMATH, nogil=True, cache=True)
def _scale_into(block: Any, offset: Any, scale: Any, width: int,
                out: Any) -> None:  # pragma: no cover - compiled
    """``out = (block - offset) * scale`` for ``block`` (outer, sample, inner),
    C-contiguous, with ``offset`` and ``scale`` (outer, inner): one pass, in
    vectors of ``width`` values."""
    outer, samples, inner = block.shape
    lane_offset = np.empty(width, dtype=block.dtype)
    lane_scale = np.empty(width, dtype=block.dtype)
    for o in range(outer):
        for j in range(width):
            lane_offset[j] = offset[o, j % inner]
            lane_scale[j] = scale[o, j % inner]
        source = block[o].reshape(samples * inner)
        target = out[o].reshape(samples * inner)
        body = source.shape[0] // width * width
        rows = source[:body].reshape(body // width, width)
        written = target[:body].reshape(body // width, width)
        for r in range(rows.shape[0]):
            x = rows[r]
            y = written[r]
            for j in range(width):
                y[j] = (x[j] - lane_offset[j]) * lane_scale[j]
        for i in range(body, source.shape[0]):
            target[i] = (source[i] - offset[o, i % inner]) * scale[o, i % inner]


def tile_moments(data: np.ndarray) -> np.ndarray:
    """Per-tile (count, mean, M2) of ``data`` (outer, sample, inner), C-contiguous:
    (outer, tile, inner, 3), float64."""
    outer, samples, inner = data.shape
    tile = tile_samples(inner)
    tiles = np.empty((outer, n_tiles(samples, tile), inner, 3))
    _tile_moments_into(data, lane_width(inner), tile, tiles)
    return tiles


def series_moments(data: np.ndarray, tiles: np.ndarray | None = None) -> np.ndarray:
    """(count, mean, M2) of every series of ``data`` (outer, sample, inner),
    C-contiguous, as (outer, inner, 3) float64, from its per-tile moments (``tiles``,
    when the caller already has them from :func:`tile_moments`)."""
    if tiles is None:
        tiles = tile_moments(data)
    found = np.empty((data.shape[0], data.shape[2], 3))
    _merge_tiles_into(tiles, found)
    return found


def chunk_moments(block: Any, *, axis: int) -> Any:
    """(count, mean, M2) of every series in ``block``, stacked where ``axis`` was;
    NaN left out of all three."""
    xp = array_module(block)
    if is_compiled_dtype(block):
        data, _ = as_series(block, axis)
        found = series_moments(data)
        if np.isfinite(found[..., 1]).all():
            others = block.shape[:axis] + block.shape[axis + 1:]
            return np.moveaxis(found.reshape(*others, 3), -1, axis)
        # NaN or inf somewhere: the reference below keeps NumPy's semantics.
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


def merge_moments(parts: Any, *, axis: int, out_dtype: Any) -> Any:
    """Per-chunk (count, mean, M2) along ``axis`` -> (mean, 1/std) in ``out_dtype``; 1
    where std is 0 (a constant series is centred and left unscaled)."""
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


def standardise(block: Any, stats: Any, *, axis: int) -> Any:
    """``(block - mean) * scale`` with ``stats``' (mean, scale) stacked along ``axis``."""
    mean, scale = (stats.take([k], axis=axis) for k in (0, 1))
    if is_compiled_dtype(block):
        # One compiled pass in the block's own layout, instead of a subtraction
        # and a scaling.
        data, restore = as_series(block, axis)
        outer, _, inner = data.shape
        out = np.empty_like(data)
        _scale_into(data, series_rows(mean, axis).reshape(outer, inner),
                    series_rows(scale, axis).reshape(outer, inner), lane_width(inner), out)
        return restore(out)
    out = block - mean
    out *= scale
    return out
