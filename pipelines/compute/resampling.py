"""Resampling to a coarser grid: NaN-aware reductions of the samples in each bin.

A block is ``(unit, time, channel)`` whose time axis starts and ends on bin
boundaries. Its bins are laid out as ``(unit, bin, slot, channel)``: on a
regular grid by padding with NaN and a reshape (no copy beyond the pad), on
an irregular one by gathering each bin's samples into ``slots`` columns
(``index`` of -1 marks a slot with no sample). The reductions are pandas'
``Resampler`` aggregations, NaN skipped: ``sum`` of no value is 0 and
``mean``, ``min``, ``max``, ``last`` of none are NaN; ``min_count`` makes
``sum``, ``min``, ``max`` and ``last`` NaN below that many values, as pandas'
``min_count`` does. Sums and means are Kahan-compensated float64 sums in
time order, as pandas' are: float64 input gives pandas' values bit for bit,
float32 input the float64 result rounded once (pandas sums float32 in
float32, which differs in the last bit). Any array module: CuPy blocks on GPUs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..array_module import array_module

AGGREGATIONS = ("mean", "sum", "min", "max", "last", "count")
#: The aggregations ``min_count`` applies to (as in pandas).
WITH_MIN_COUNT = ("sum", "min", "max", "last")


def bin_view(block: Any, *, lead: int, per_bin: int, n_bins: int,
             index: Any | None = None) -> Any:
    """``block`` (unit, time, channel) as (unit, bin, slot, channel), NaN in empty slots.

    Regular grid (``index`` None): ``lead`` NaN samples before the block's first
    sample complete its first bin, ``per_bin`` samples per bin. Irregular grid:
    ``index`` (bin, slot) holds the time position of each slot's sample, -1 for none.
    """
    xp = array_module(block)
    units, length, channels = block.shape
    if index is None:
        tail = n_bins * per_bin - lead - length
        if lead or tail:
            pads = [xp.full((units, size, channels), xp.nan, dtype=block.dtype)
                    for size in (lead, tail)]
            block = xp.concatenate([pads[0], block, pads[1]], axis=1)
        return block.reshape(units, n_bins, per_bin, channels)
    positions = xp.asarray(index)
    padded = xp.concatenate([block, xp.full((units, 1, channels), xp.nan, dtype=block.dtype)],
                            axis=1)  # position -1 reads this NaN column
    gathered = padded[:, positions.reshape(-1)]
    return gathered.reshape(units, positions.shape[0], positions.shape[1], channels)


def aggregate(bins: Any, how: str, *, min_count: int = 0) -> Any:
    """Reduce the ``slot`` axis (2) of ``bins`` by ``how``, skipping NaN."""
    xp = array_module(bins)
    valid = ~xp.isnan(bins)
    count = valid.sum(axis=2)
    if how == "count":
        return count.astype(bins.dtype)
    if how in ("sum", "mean"):
        total = compensated_sum(bins, valid)
        if how == "mean":
            with np.errstate(invalid="ignore", divide="ignore"):
                result = xp.where(count > 0, total / xp.maximum(count, 1), xp.nan)
        else:
            result = total
    elif how in ("min", "max"):
        fill = xp.inf if how == "min" else -xp.inf
        filled = xp.where(valid, bins, fill)
        result = filled.min(axis=2) if how == "min" else filled.max(axis=2)
        result = xp.where(count > 0, result, xp.nan)
    elif how == "last":
        slots = bins.shape[2]
        last = slots - 1 - xp.argmax(valid[:, :, ::-1], axis=2)
        result = xp.take_along_axis(bins, last[:, :, None], axis=2)[:, :, 0]
        result = xp.where(count > 0, result, xp.nan)
    else:
        raise ValueError(f"unknown aggregation {how!r}; known: {', '.join(AGGREGATIONS)}")
    if how in WITH_MIN_COUNT and min_count > 0:
        result = xp.where(count >= min_count, result, xp.nan)
    return result.astype(bins.dtype)


def compensated_sum(bins: Any, valid: Any) -> Any:
    """Float64 sums over axis 2 of the valid values, Kahan-compensated in slot order
    as pandas' grouped sums and means are (so float64 input matches them bit for bit)."""
    xp = array_module(bins)
    total = xp.zeros(bins.shape[:2] + bins.shape[3:], dtype=xp.float64)
    compensation = xp.zeros_like(total)
    for slot in range(bins.shape[2]):
        value = xp.where(valid[:, :, slot], bins[:, :, slot].astype(xp.float64), 0.0)
        y = value - compensation
        t = total + y
        compensation = (t - total) - y
        compensation = xp.where(xp.isnan(compensation), 0.0, compensation)  # +-inf values
        total = t
    return total


def resample_block(block: Any, *, how: Sequence[str], min_count: int, lead: int,
                   per_bin: int, n_bins: int, index: Any | None = None) -> Any:
    """(unit, time, channel) -> (unit, bin, channel), channel ``c`` reduced by ``how[c]``."""
    xp = array_module(block)
    bins = bin_view(block, lead=lead, per_bin=per_bin, n_bins=n_bins, index=index)
    out = xp.empty((bins.shape[0], n_bins, bins.shape[3]), dtype=block.dtype)
    for name in dict.fromkeys(how):
        chosen = [c for c, wanted in enumerate(how) if wanted == name]
        picked = bins[..., chosen] if len(chosen) < len(how) else bins
        out[..., chosen] = aggregate(picked, name, min_count=min_count)
    return out


def bin_positions(bin_of_sample: np.ndarray, first_bin: int, n_bins: int) -> np.ndarray:
    """(n_bins, slots) time positions of the samples in each bin, -1 where none:
    the ``index`` of :func:`bin_view` for samples whose bins (``bin_of_sample``,
    nondecreasing) run from ``first_bin``."""
    local = bin_of_sample - first_bin
    counts = np.bincount(local, minlength=n_bins)
    slots = max(int(counts.max(initial=0)), 1)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    index = np.full((n_bins, slots), -1, dtype=np.int64)
    slot = np.arange(len(local)) - starts[local]
    index[local, slot] = np.arange(len(local))
    return index
