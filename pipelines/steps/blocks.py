"""Shared plumbing for steps that work block by block on Dask arrays."""

from __future__ import annotations

from typing import Any

import dask.array as da
import xarray as xr

from ..array_module import array_module

#: Elements per inner batch on CPU: 1 MiB of float32. The passes of a feature
#: kernel over one batch stay in a core's L2 cache, and each NumPy call is long
#: enough that threads sharing a worker do not queue on the GIL (measured on
#: 2 cores: 64 Ki elements scaled to 1.2x on 2 threads, 256 Ki to 1.7x).
CPU_BATCH_ELEMENTS = 262144


def dask_data(array: xr.DataArray) -> da.Array:
    """The Dask array behind ``array``, wrapping in-memory data in one chunk per unit."""
    data = array.data
    if isinstance(data, da.Array):
        return data
    chunks = {i: (1 if dim == "unit" else -1) for i, dim in enumerate(array.dims)}
    return da.from_array(data, chunks=chunks)


def batch_rows(xp: Any, row_elements: int, total_rows: int) -> int:
    """Rows per inner batch: cache-sized on CPU, the whole block on GPU."""
    if xp.__name__ != "numpy":
        return max(total_rows, 1)
    return max(1, CPU_BATCH_ELEMENTS // max(row_elements, 1))


def whole_windows(data: da.Array) -> da.Array:
    """``windows(unit, window, offset, channel)`` with every window and channel in one block."""
    return data.rechunk({2: -1, 3: -1})


def time_last(block: Any, axis: int, *, copy: bool = False) -> Any:
    """``block`` with ``axis`` moved last and its samples contiguous.

    A view when the block already has that layout (unless ``copy``), else one
    copy. Reductions and FFTs along contiguous samples run several times faster
    than along the channel-interleaved (time, channel) layout of a panel.
    """
    xp = array_module(block)
    moved = xp.moveaxis(block, axis, -1)
    if copy or moved.strides[-1] != moved.itemsize:
        moved = xp.array(moved, order="C")
    return moved
