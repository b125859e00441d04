"""fill_gaps, zscore and the window features in one task per chunk, for chunks that hold
whole series (:mod:`suanli.pipelines.fusion` decides when).

Step by step, a chunk is read five times and written twice: fill_gaps scans
it and copies it to mend its gaps, zscore reads the copy for its moments,
and the feature kernel reads it once more. Here it is read twice and never
copied. One pass gives each tile's moments, and with them the tiles that
hold NaN (as fill_gaps' scan finds them); the gaps' fills are worked out
without being written; the few tiles they touch get their moments again
from mended copies of those tiles. The feature kernel then runs on the raw
windows, standardising as it reads, and the windows with a mended sample
are computed again from mended copies. Every value is computed as the
steps compute it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import features, kernels, preprocess

Fills = dict[int, list[tuple[int, int, Any]]]


def fill_zscore_features_block(block: np.ndarray, *, max_gap: int, size: int,
                               **options: Any) -> np.ndarray:
    """``block`` (unit, time, channel), whole series, NumPy float ->
    (unit, window, channel, band powers + stats) of the filled, z-scored windows
    of ``size`` samples (``options``: :func:`features.kernel_options`)."""
    if not block.flags.c_contiguous:
        # Another layout (samples contiguous, say): the steps' own code, in this task.
        filled = preprocess.fill_block(block, None, None, max_gap=max_gap, axis=1,
                                       used=[(0, 0)])
        scaling = preprocess.merge_moments(preprocess.chunk_moments(filled, axis=1), axis=1,
                                           out_dtype=block.dtype)
        return features.features_block(_windows(filled, size), scaling, **options)
    units, channels = block.shape[0], block.shape[2]
    tile = kernels.tile_samples(channels)
    tiles = preprocess.tile_moments(block)
    flags = ~np.isfinite(tiles[..., 1]).all(axis=2)  # a tile with NaN or inf
    found = preprocess.nan_positions(block, flags, tile)
    no_edges = np.empty((units * channels, 0), dtype=block.dtype)  # whole series
    fills = preprocess.gap_fills(block, found, max_gap, no_edges, no_edges)
    scaling = _scaling(block, tiles, fills, tile)
    windows = _windows(block, size)
    out = features.features_block(windows, scaling, **options)
    for unit, (where, mended) in _mended_windows(windows, fills, channels).items():
        out[unit, where] = features.features_block(mended[None], scaling[unit:unit + 1],
                                                   **options)[0]
    return out


def _windows(data: np.ndarray, size: int) -> np.ndarray:
    """(unit, time, channel) -> (unit, window, sample, channel), the partial window dropped."""
    units, samples, channels = data.shape
    return data[:, :samples // size * size].reshape(units, samples // size, size, channels)


def _scaling(data: np.ndarray, tiles: np.ndarray, fills: Fills, tile: int) -> np.ndarray:
    """Each series' (mean, 1/std) of the filled ``data``, as zscore gives it: (unit, 2, channel)."""
    channels = data.shape[2]
    touched = {(series // channels, start // tile + k)
               for series, runs in fills.items() for start, end, _ in runs
               for k in range((end - 1) // tile - start // tile + 1)}
    for unit, k in touched:
        mended = data[unit:unit + 1, k * tile:(k + 1) * tile].copy()
        _apply(mended[0], fills, unit, k * tile)
        tiles[unit, k] = preprocess.tile_moments(mended)[0, 0]
    merged = preprocess.compiled_moments(data, tiles)
    if np.isfinite(merged[..., 1]).all():
        parts = np.moveaxis(merged, -1, 1)  # (unit, 3, channel), as chunk_moments gives
    else:
        # A series still has NaN or inf (an outage longer than max_gap): zscore's
        # NaN-aware code, on the filled chunk.
        filled = data.copy()
        for unit in range(data.shape[0]):
            _apply(filled[unit], fills, unit, 0)
        parts = preprocess.chunk_moments(filled, axis=1)
    return preprocess.merge_moments(parts, axis=1, out_dtype=data.dtype)


def _mended_windows(windows: np.ndarray, fills: Fills, channels: int
                    ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """For each unit with fills, the windows they touch and mended copies of them
    (window, sample, channel): whole batches of the feature kernel, whose FFT and
    band sums give a window the same bits only in the same batch."""
    n_windows, size = windows.shape[1:3]
    batch = kernels.batch_windows(size, channels)
    touched: dict[int, set[int]] = {}
    for series, runs in fills.items():
        for start, end, _ in runs:
            first = start // size // batch * batch
            last = min(((end - 1) // size // batch + 1) * batch, n_windows)
            touched.setdefault(series // channels, set()).update(range(first, last))
    out = {}
    for unit, numbers in touched.items():
        where = np.array(sorted(numbers), dtype=np.intp)
        if where.size == 0:
            continue  # fills only in the samples after the last whole window
        mended = windows[unit, where]
        for position, number in enumerate(where):
            _apply(mended[position], fills, unit, int(number) * size)
        out[unit] = (where, mended)
    return out


def _apply(part: np.ndarray, fills: Fills, unit: int, first: int) -> None:
    """Write the fills of ``unit``'s series into ``part`` (sample, channel), a copy of
    its samples from ``first`` on."""
    channels = part.shape[1]
    for channel in range(channels):
        for start, end, values in fills.get(unit * channels + channel, ()):
            low, high = max(start, first), min(end, first + part.shape[0])
            if low >= high:
                continue
            chosen = values if np.ndim(values) == 0 else values[low - start:high - start]
            part[low - first:high - first, channel] = chosen
