"""Shared plumbing for steps that work block by block on Dask arrays."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dask.array as da
import xarray as xr

#: Elements per inner batch on CPU: about 256 KiB of float32, so the passes of a
#: feature kernel over one batch stay in the core's L2 cache.
CPU_BATCH_ELEMENTS = 65_536


def dask_data(array: xr.DataArray) -> da.Array:
    """The Dask array behind ``array``, wrapping in-memory data in one chunk per unit."""
    data = array.data
    if isinstance(data, da.Array):
        return data
    chunks = {i: (1 if dim == "unit" else -1) for i, dim in enumerate(array.dims)}
    return da.from_array(data, chunks=chunks)


def window_batches(block: Any, xp: Any) -> Iterator[tuple[int, slice, Any]]:
    """Batches of a ``windows(unit, window, offset, channel)`` block, each a contiguous
    ``(window, channel, offset)`` copy: ``(unit, window slice, batch)``."""
    units, n_windows, size, channels = block.shape
    step_rows = batch_rows(xp, size * channels, n_windows)
    for unit in range(units):
        for start in range(0, n_windows, step_rows):
            rows = slice(start, min(start + step_rows, n_windows))
            yield unit, rows, xp.ascontiguousarray(block[unit, rows].transpose(0, 2, 1))


def batch_rows(xp: Any, row_elements: int, total_rows: int) -> int:
    """Rows per inner batch: cache-sized on CPU, the whole block on GPU."""
    if xp.__name__ != "numpy":
        return max(total_rows, 1)
    return max(1, CPU_BATCH_ELEMENTS // max(row_elements, 1))


def whole_windows(data: da.Array) -> da.Array:
    """``windows(unit, window, offset, channel)`` with every window and channel in one block."""
    return data.rechunk({2: -1, 3: -1})
