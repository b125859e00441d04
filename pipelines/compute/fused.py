"""fill_gaps, zscore and the window features of a chunk without copying its signal.

Step by step, a chunk is read five times and written twice: gap filling scans
it and copies it to mend its gaps, the z-score reads the copy for its moments
and writes a standardised copy, and the feature kernel reads that. Here it is
read twice and never copied:

1. :func:`chunk_plan`: one pass gives each tile's moments, and with them the
   tiles that hold NaN (as gap filling's scan finds them); the gaps' fills are
   worked out without being written; the few tiles they touch get their
   moments again from mended copies of those tiles. The result is the
   chunk's moments, as the z-score has them, and its fills.
2. :func:`features_of_plan`: the feature kernel runs on the raw windows,
   standardising as it reads, and the windows with a mended sample are
   computed again from mended copies.

A chunk that holds whole series does both at once
(:func:`fill_zscore_features`); series split over chunks merge their chunks'
moments in between. Every value is computed as the separate steps compute it.
NumPy float blocks (unit, time, channel) only: other blocks take the steps.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import gaps, moments
from .layout import as_series, batch_windows, tile_samples
from .window_features import features_block

#: A chunk's moments, (unit, (count, mean, M2), channel), and its fills.
Plan = tuple[np.ndarray, gaps.Fills]


def fill_zscore_features(block: np.ndarray, *, max_gap: int, size: int,
                         **options: Any) -> np.ndarray:
    """``block`` (unit, time, channel), whole series ->
    (unit, window, channel, band powers + stats) of the filled, z-scored windows
    of ``size`` samples (``options``: :func:`.window_features.feature_options`)."""
    parts, fills = chunk_plan(block, None, None, max_gap=max_gap, n_before=0, n_after=0)
    scaling = moments.merge_moments(parts, axis=1, out_dtype=block.dtype)
    return features_of_plan(block, scaling, fills, size=size, **options)


def chunk_plan(block: np.ndarray, before: np.ndarray | None, after: np.ndarray | None, *,
               max_gap: int, n_before: int, n_after: int) -> Plan:
    """The moments the z-score takes of the filled chunk, and the chunk's fills, from
    ``block`` (unit, time, channel) and its neighbours' edges (``n_before``,
    ``n_after`` samples of them)."""
    data, restore = as_series(block, 1)  # (outer, sample, inner), as the steps see it
    outer, _, inner = data.shape
    tile = tile_samples(inner)
    tiles = moments.tile_moments(data)
    flags = ~np.isfinite(tiles[..., 1]).all(axis=2)  # a tile with NaN or inf
    found = gaps.nan_positions(data, flags, tile)
    lead, tail = gaps.edge_rows(data, before, after, 1, n_before, n_after)
    fills = gaps.gap_fills(data, found, max_gap, lead, tail)
    touched = {(series // inner, start // tile + k)
               for series, runs in fills.items() for start, end, _ in runs
               for k in range((end - 1) // tile - start // tile + 1)}
    for o, k in touched:
        mended = data[o:o + 1, k * tile:(k + 1) * tile].copy()
        gaps.apply_fills(mended[0], fills, o, k * tile)
        tiles[o, k] = moments.tile_moments(mended)[0, 0]
    merged = moments.series_moments(data, tiles)
    if np.isfinite(merged[..., 1]).all():
        units, channels = block.shape[0], block.shape[2]
        return np.moveaxis(merged.reshape(units, channels, 3), -1, 1), fills
    # A series still has NaN or inf (an outage longer than max_gap): the z-score's
    # NaN-aware code, on the filled chunk.
    filled = data.copy()
    for o in range(outer):
        gaps.apply_fills(filled[o], fills, o, 0)
    return moments.chunk_moments(restore(filled), axis=1), fills


def features_of_plan(block: np.ndarray, scaling: np.ndarray, fills: gaps.Fills, *, size: int,
                     **options: Any) -> np.ndarray:
    """The features of ``block``'s whole windows of ``size`` samples, filled by
    ``fills`` and scaled by ``scaling`` (unit, (mean, 1/std), channel)."""
    units, samples, channels = block.shape
    windows = block[:, :samples // size * size].reshape(units, samples // size, size, channels)
    out = features_block(windows, scaling, **options)
    for unit, (where, mended) in _mended_windows(windows, fills).items():
        out[unit, where] = features_block(mended[None], scaling[unit:unit + 1], **options)[0]
    return out


def _mended_windows(windows: np.ndarray, fills: gaps.Fills
                    ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """For each unit with fills, the windows they touch and mended copies of them
    (window, sample, channel): whole batches of the feature kernel, whose FFT and
    band sums give a window the same bits only in the same batch."""
    n_windows, size, channels = windows.shape[1:]
    batch = batch_windows(size, channels)
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
            gaps.apply_fills(mended[position], fills, unit, int(number) * size)
        out[unit] = (where, mended)
    return out
