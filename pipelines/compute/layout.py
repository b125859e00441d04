"""How blocks are laid out in memory and cut into cache-sized pieces.

The compiled kernels take a block as (outer, sample, inner), C-contiguous: a
panel's own (time, channel) layout, series interleaved, or one series per row.
Interleaved series are summed in lane vectors (:func:`lane_width`) and read in
tiles that stay in L1 (:func:`tile_samples`), so a block is read from memory
once and never transposed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..array_module import array_module

#: Numba fastmath flags of every kernel: reassociation vectorises the sums; no
#: "nnan"/"ninf", so NaN and inf still propagate and callers can see them.
FASTMATH = {"reassoc", "contract", "arcp", "nsz"}

#: Elements per batch of windows (all channels), compiled or NumPy: the
#: de-interleaved copy (256 KiB of float32) and its spectrum stay in a core's L2
#: cache through the FFT. The same batches on both paths, so the reference
#: computes each window in the batch the kernel computes it in.
WINDOW_BATCH_ELEMENTS = 65536

#: Elements per tile of the streaming kernels: a tile (32 KiB of float32) stays
#: in L1 while it is read twice, so memory is read once.
TILE_ELEMENTS = 8192

#: Consecutive samples a lane holds: the (sample, inner) elements of ``LANES``
#: samples are one contiguous vector of ``LANES * inner`` values, so per-series
#: sums vectorise whatever the number of interleaved series.
LANES = 16


def is_compiled_dtype(array: Any) -> bool:
    """True for the NumPy float arrays the compiled kernels are meant for."""
    return isinstance(array, np.ndarray) and array.dtype in (np.float32, np.float64)


def batch_windows(size: int, channels: int) -> int:
    """Windows of ``size`` samples and ``channels`` channels per batch."""
    return max(1, WINDOW_BATCH_ELEMENTS // (size * channels))


def window_batch(xp: Any, size: int, channels: int, total: int) -> int:
    """Windows per batch of the array-module code: as the kernel on NumPy, all at once
    on a GPU (one launch per operation)."""
    return batch_windows(size, channels) if xp is np else max(total, 1)


def lane_width(inner: int) -> int:
    """Values per lane vector for ``inner`` interleaved series (one sample of each)."""
    return inner * (LANES if inner < 64 else 1)


def tile_samples(inner: int) -> int:
    """Samples per tile for ``inner`` interleaved series: a whole number of lanes."""
    lanes = lane_width(inner) // inner
    return max(lanes, TILE_ELEMENTS // lane_width(inner) * lanes)


def n_tiles(samples: int, tile: int) -> int:
    """Tiles of ``tile`` samples that cover ``samples`` (the last may be partial)."""
    return -(-samples // tile)


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
