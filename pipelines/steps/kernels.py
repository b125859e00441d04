"""Compiled CPU kernels (Numba) for the steps' hot loops on NumPy blocks.

NumPy needs one pass over memory per operation: a window's statistics take
about ten (sum, subtract, square, three products, max, min, taper) and
z-scoring a chunk three more. These kernels make each of those a single
pass per row, from cache, with the GIL released so that a worker's threads
run them in parallel. They are the CPU path only: CuPy blocks take the
steps' array-module code, which is also the reference these kernels are
tested against (tests/pipelines/test_kernels.py).

Reductions are allowed to reassociate (so they vectorise) but not to assume
finite values: a row with NaN or inf gives a NaN or inf mean, and callers
recompute such rows with the reference code, keeping its exact semantics.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

# Reassociation vectorises the sums; no "nnan"/"ninf", so NaN still propagates.
_FAST = {"reassoc", "contract", "arcp", "nsz"}

#: Column order of :func:`window_moments`' output.
MOMENT_STATS = ("mean", "std", "rms", "skewness", "kurtosis", "peak_to_peak", "crest_factor")


@numba.njit(fastmath=_FAST, nogil=True, cache=True)
def window_moments(windows: Any, start: int, high: Any, low: Any, taper: Any, stats: Any,
                   tapered: Any, write_tapered: bool, zero: Any,
                   tiny: Any) -> None:  # pragma: no cover - compiled
    """Statistics of a batch of windows, and their centred, tapered copy for the FFT.

    ``windows``: (window, sample) of one channel, C-contiguous (a whole plane
    rather than a slice of it, so the compiled loops know the samples are
    contiguous and vectorise); the batch is the ``tapered.shape[0]`` windows
    from ``start``. ``high``, ``low``: each window's max and min (NumPy's SIMD
    max beats a compiled loop: LLVM does not vectorise a NaN-aware max).
    ``stats``: (window, 7) in :data:`MOMENT_STATS` order. ``tapered``:
    (window, sample), written when ``write_tapered``. ``zero`` and ``tiny`` are
    scalars of the data's dtype, so float32 windows are summed in float32, as
    NumPy does.
    """
    rows, size = tapered.shape
    inverse = (zero + 1) / size
    for row in range(rows):
        x = windows[start + row]
        total = zero
        for i in range(size):
            total += x[i]
        mean = total * inverse
        m2 = zero
        m3 = zero
        m4 = zero
        for i in range(size):
            centred = x[i] - mean
            squared = centred * centred
            m2 += squared
            m3 += squared * centred
            m4 += squared * squared
            if write_tapered:
                tapered[row, i] = centred * taper[i]
        m2 *= inverse
        m3 *= inverse
        m4 *= inverse
        rms = np.sqrt(m2 + mean * mean)
        top = high[row]
        bottom = low[row]
        out = stats[row]
        out[0] = mean
        out[1] = np.sqrt(m2)
        out[2] = rms
        flat = m2 <= tiny
        out[3] = 0.0 if flat else m3 / (m2 * np.sqrt(m2))
        out[4] = 0.0 if flat else m4 / (m2 * m2) - 3.0
        out[5] = top - bottom
        peak = max(abs(top), abs(bottom))
        out[6] = peak / rms if rms > 0 else 0.0


@numba.njit(fastmath=_FAST, nogil=True, cache=True)
def power_spectrum(spectrum: Any, power: Any) -> None:  # pragma: no cover - compiled
    """|X|^2 of complex ``spectrum`` (..., bins) into real ``power`` of the same shape."""
    flat_in = spectrum.reshape(-1)
    flat_out = power.reshape(-1)
    for i in range(flat_in.shape[0]):
        value = flat_in[i]
        flat_out[i] = value.real * value.real + value.imag * value.imag


@numba.njit(fastmath=_FAST, nogil=True, cache=True)
def series_moments(series: Any, out: Any) -> None:  # pragma: no cover - compiled
    """Count, mean and M2 (sum of squared deviations) of each row, in float64.

    ``series``: (row, sample); ``out``: (row, 3). A row with NaN or inf gets a
    non-finite mean: the caller handles those with NaN-aware code.
    """
    rows, size = series.shape
    for row in range(rows):
        x = series[row]
        total = 0.0
        for i in range(size):
            total += x[i]
        mean = total / size
        m2 = 0.0
        for i in range(size):
            deviation = x[i] - mean
            m2 += deviation * deviation
        out[row, 0] = size
        out[row, 1] = mean
        out[row, 2] = m2


@numba.njit(fastmath=_FAST, nogil=True, cache=True)
def scale_rows(series: Any, offset: Any, scale: Any, out: Any) -> None:  # pragma: no cover
    """``out[r] = (series[r] - offset[r]) * scale[r]`` in one pass; rows are (row, sample)."""
    rows, size = series.shape
    for row in range(rows):
        shift = offset[row]
        factor = scale[row]
        x = series[row]
        y = out[row]
        for i in range(size):
            y[i] = (x[i] - shift) * factor


def is_compiled_dtype(array: Any) -> bool:
    """True for the NumPy float arrays these kernels are meant for."""
    return isinstance(array, np.ndarray) and array.dtype in (np.float32, np.float64)
