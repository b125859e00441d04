"""fill_gaps, zscore and the window features without copying the signal
(:mod:`suanli.pipelines.fusion` decides when).

Step by step, a chunk is read five times and written twice: fill_gaps scans
it and copies it to mend its gaps, zscore reads the copy for its moments
and writes a standardised copy, and the feature kernel reads that. Here it
is read twice and never copied:

1. :func:`chunk_plan`: one pass gives each tile's moments, and with them the
   tiles that hold NaN (as fill_gaps' scan finds them); the gaps' fills are
   worked out without being written; the few tiles they touch get their
   moments again from mended copies of those tiles. The result is the
   chunk's moments, as zscore has them, and its fills.
2. :func:`features_of_plan`: the feature kernel runs on the raw windows,
   standardising as it reads, and the windows with a mended sample are
   computed again from mended copies.

A chunk that holds whole series does both in one task
(:func:`fill_zscore_features_block`); series split over chunks merge their
chunks' moments in between (:func:`plan_block`, :func:`plan_moments`,
:func:`plan_features_block`). Every value is computed as the steps compute it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import features, kernels, preprocess
from .blocks import as_series
from .preprocess import Fills

#: A chunk's moments, (unit, (count, mean, M2), channel), and its fills.
Plan = tuple[np.ndarray, Fills]


def fill_zscore_features_block(block: np.ndarray, *, max_gap: int, size: int,
                               **options: Any) -> np.ndarray:
    """``block`` (unit, time, channel), whole series, NumPy float ->
    (unit, window, channel, band powers + stats) of the filled, z-scored windows
    of ``size`` samples (``options``: :func:`features.kernel_options`)."""
    parts, fills = chunk_plan(block, None, None, max_gap=max_gap, n_before=0, n_after=0)
    scaling = preprocess.merge_moments(parts, axis=1, out_dtype=block.dtype)
    return features_of_plan(block, scaling, fills, size=size, **options)


def plan_block(block: np.ndarray, before: np.ndarray, after: np.ndarray, *, max_gap: int,
               used: list[tuple[int, int]], block_id: tuple[int, ...] | None = None
               ) -> np.ndarray:
    """:func:`chunk_plan` of one chunk of series split over chunks, with its
    neighbours' edges (as fill_gaps has them), in a (1, 1, 1) object array."""
    n_before, n_after = used[block_id[1] if block_id else 0]
    plan = np.empty((1, 1, 1), dtype=object)
    plan[0, 0, 0] = chunk_plan(block, before, after, max_gap=max_gap, n_before=n_before,
                               n_after=n_after)
    return plan


def plan_moments(plan: np.ndarray) -> np.ndarray:
    """The chunk's moments from :func:`plan_block`."""
    moments: np.ndarray = plan[0, 0, 0][0]
    return moments


def plan_features_block(block: np.ndarray, scaling: np.ndarray, plan: np.ndarray, *,
                        size: int, **options: Any) -> np.ndarray:
    """:func:`features_of_plan` of one chunk, with its plan from :func:`plan_block`."""
    return features_of_plan(block, scaling, plan[0, 0, 0][1], size=size, **options)


def chunk_plan(block: np.ndarray, before: np.ndarray | None, after: np.ndarray | None, *,
               max_gap: int, n_before: int, n_after: int) -> Plan:
    """The moments zscore takes of the filled chunk, and the chunk's fills, from
    ``block`` (unit, time, channel) and its neighbours' edges (``n_before``,
    ``n_after`` samples of them)."""
    data, restore = as_series(block, 1)  # (outer, sample, inner), as the steps see it
    outer, _, inner = data.shape
    tile = kernels.tile_samples(inner)
    tiles = preprocess.tile_moments(data)
    flags = ~np.isfinite(tiles[..., 1]).all(axis=2)  # a tile with NaN or inf
    found = preprocess.nan_positions(data, flags, tile)
    lead, tail = preprocess.edge_rows(data, before, after, 1, n_before, n_after)
    fills = preprocess.gap_fills(data, found, max_gap, lead, tail)
    touched = {(series // inner, start // tile + k)
               for series, runs in fills.items() for start, end, _ in runs
               for k in range((end - 1) // tile - start // tile + 1)}
    for o, k in touched:
        mended = data[o:o + 1, k * tile:(k + 1) * tile].copy()
        preprocess.apply_fills(mended[0], fills, o, k * tile)
        tiles[o, k] = preprocess.tile_moments(mended)[0, 0]
    merged = preprocess.compiled_moments(data, tiles)
    if np.isfinite(merged[..., 1]).all():
        units, channels = block.shape[0], block.shape[2]
        return np.moveaxis(merged.reshape(units, channels, 3), -1, 1), fills
    # A series still has NaN or inf (an outage longer than max_gap): zscore's
    # NaN-aware code, on the filled chunk.
    filled = data.copy()
    for o in range(outer):
        preprocess.apply_fills(filled[o], fills, o, 0)
    return preprocess.chunk_moments(restore(filled), axis=1), fills


def features_of_plan(block: np.ndarray, scaling: np.ndarray, fills: Fills, *, size: int,
                     **options: Any) -> np.ndarray:
    """The features of ``block``'s whole windows of ``size`` samples, filled by
    ``fills`` and scaled by ``scaling`` (unit, (mean, 1/std), channel)."""
    units, samples, channels = block.shape
    windows = block[:, :samples // size * size].reshape(units, samples // size, size, channels)
    out = features.features_block(windows, scaling, **options)
    for unit, (where, mended) in _mended_windows(windows, fills).items():
        out[unit, where] = features.features_block(mended[None], scaling[unit:unit + 1],
                                                   **options)[0]
    return out


def _mended_windows(windows: np.ndarray, fills: Fills) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """For each unit with fills, the windows they touch and mended copies of them
    (window, sample, channel): whole batches of the feature kernel, whose FFT and
    band sums give a window the same bits only in the same batch."""
    n_windows, size, channels = windows.shape[1:]
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
            preprocess.apply_fills(mended[position], fills, unit, int(number) * size)
        out[unit] = (where, mended)
    return out
