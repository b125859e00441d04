"""Shared plumbing for steps that work block by block on Dask arrays."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import dask.array as da
import numpy as np
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


def as_series(block: np.ndarray, axis: int
              ) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """A NumPy ``block`` as (outer, sample, inner), C-contiguous, for the compiled
    kernels, and the function that turns an array of that shape back into one
    shaped and laid out like ``block``.

    Series (one per outer and inner index) come in the same order, C order of
    ``block``'s other axes, in both layouts taken without a copy: C order
    (a panel's channels interleaved; inner: the axes after ``axis``) and samples
    contiguous (one series per row; inner: 1). Anything else is copied to C order.
    """
    samples = block.shape[axis]
    moved = np.moveaxis(block, axis, -1)
    if not block.flags.c_contiguous and moved.flags.c_contiguous and block.size:
        return (moved.reshape(-1, samples, 1),
                lambda series: np.moveaxis(series.reshape(moved.shape), -1, axis))
    data = np.ascontiguousarray(block)
    outer = math.prod(block.shape[:axis])
    inner = math.prod(block.shape[axis + 1:])
    return data.reshape(outer, samples, inner), lambda series: series.reshape(block.shape)


def series_rows(block: np.ndarray, axis: int) -> np.ndarray:
    """(series, sample) rows of a small NumPy block, in :func:`as_series`' order."""
    return np.moveaxis(block, axis, -1).reshape(-1, block.shape[axis])


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
