"""Gap filling: NaN runs of at most ``max_gap`` samples, filled on a line.

A chunk of a series is filled as if it were read between its neighbours'
edges (``before``, ``after``: up to ``max_gap`` samples each, fewer at the
series' ends), so the result does not depend on the chunking. Gaps are rare:
on NumPy float blocks one compiled pass flags the tiles holding NaN and only
those are searched; a block is copied only when something is mended, in its
own layout. Other array modules (CuPy) take the row-by-row reference.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from ..array_module import array_module, to_numpy
from .layout import (
    FASTMATH,
    as_series,
    is_compiled_dtype,
    n_tiles,
    series_rows,
    tile_samples,
    time_last,
)

#: The fills of a chunk's gaps by series (numbered as :func:`nan_positions` does):
#: (start, end, values) runs, worked out by :func:`gap_fills`.
Fills = dict[int, list[tuple[int, int, Any]]]


@numba.njit(fastmath=FASTMATH, nogil=True, cache=True)
def _flag_nan_tiles(block: Any, tile: int, flags: Any) -> None:  # pragma: no cover - compiled
    """``flags[o, k]``: whether tile ``k`` (``tile`` samples, every inner series) of
    ``block[o]`` (outer, sample, inner), C-contiguous, holds a NaN (or inf).

    One vectorised pass: a tile's sum is NaN when it holds a NaN, and infinite
    or NaN when it holds an inf; callers look closer only at flagged tiles.
    """
    outer, samples, inner = block.shape
    for o in range(outer):
        flat = block[o].reshape(samples * inner)
        for k in range(flags.shape[1]):
            values = flat[k * tile * inner:min((k + 1) * tile, samples) * inner]
            total = values[0] - values[0]
            for i in range(values.shape[0]):
                total += values[i]
            flags[o, k] = not np.isfinite(total)


def fill_block(block: Any, before: Any | None, after: Any | None, *, max_gap: int, axis: int,
               n_before: int = 0, n_after: int = 0) -> Any:
    """``block`` with each NaN run of at most ``max_gap`` samples along ``axis`` filled;
    ``before`` and ``after``: the neighbouring chunks' edges, of which the last
    ``n_before`` and first ``n_after`` samples are used (None: no neighbour)."""
    if is_compiled_dtype(block):
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
        for start, end, filled in row_fills(rows[row], max_gap, xp, lead[row], tail[row]):
            rows[row, start:end] = filled
    return xp.moveaxis(series, -1, axis)


def _fill_compiled(block: np.ndarray, before: np.ndarray | None, after: np.ndarray | None, *,
                   max_gap: int, axis: int, n_before: int, n_after: int) -> np.ndarray:
    """The CPU path: only the flagged tiles are searched, and the block is copied
    only when there is something to mend (a panel's channels stay interleaved)."""
    data, restore = as_series(block, axis)  # (outer, sample, inner)
    found = nan_positions(data, nan_tile_flags(data), tile_samples(data.shape[2]))
    if not found:
        return block  # nothing to mend: no copy
    lead, tail = edge_rows(data, before, after, axis, n_before, n_after)
    fills = gap_fills(data, found, max_gap, lead, tail)
    filled = data.copy()
    for outer in range(data.shape[0]):
        apply_fills(filled[outer], fills, outer)
    return restore(filled)


def nan_tile_flags(data: np.ndarray) -> np.ndarray:
    """(outer, tile): whether each tile of ``data`` (outer, sample, inner) holds NaN or inf."""
    tile = tile_samples(data.shape[2])
    flags = np.empty((data.shape[0], n_tiles(data.shape[1], tile)), dtype=bool)
    _flag_nan_tiles(data, tile, flags)
    return flags


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
    """The fills of the series' gaps at ``found`` (from :func:`nan_positions`), without
    writing them; ``lead`` and ``tail``: each series' neighbour edges, (series, sample)."""
    inner = data.shape[2]
    return {series: row_fills(data[series // inner, :, series % inner], max_gap, np,
                              lead[series], tail[series], where=where)
            for series, where in found.items()}


def apply_fills(part: np.ndarray, fills: Fills, outer: int, first: int = 0) -> None:
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


def row_fills(values: Any, max_gap: int, xp: Any, before: Any, after: Any,
              where: Any | None = None) -> list[tuple[int, int, Any]]:
    """(start, end, values) for each NaN run of at most ``max_gap`` in one series'
    ``values``: the run filled on a line between its neighbours, as if ``values``
    were read between its neighbours' edges. ``values`` is only read.

    Runs are found from the NaN positions alone (gaps are rare), so the row is
    scanned once, or not at all when the caller gives them (``where``, ascending);
    a run at an edge continues into the neighbour's edge. Runs at the start or
    end of a series take the nearest valid value.
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
