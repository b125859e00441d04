"""Compiled CPU kernels (Numba) for the steps' hot loops on NumPy blocks.

NumPy needs one pass over memory per operation: a window's statistics take
about ten (sum, subtract, square, three products, max, min, taper) and
z-scoring a chunk three more, each a call that takes the GIL. These kernels
make each of those a single pass per row, from cache, and run a whole
block's windows (FFT included) in one call without the GIL, so a worker's
threads run them in parallel. They are the CPU path only: CuPy blocks take the
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
import rocket_fft  # noqa: F401  (np.fft inside compiled code)

# Reassociation vectorises the sums; no "nnan"/"ninf", so NaN still propagates.
_FAST = {"reassoc", "contract", "arcp", "nsz"}

#: Column order of :func:`window_features`' statistics.
MOMENT_STATS = ("mean", "std", "rms", "skewness", "kurtosis", "peak_to_peak", "crest_factor")


#: Windows per inner batch: their tapered copy (256 KiB of float32 at 1024
#: samples) and its spectrum stay in a core's L2 cache through the FFT.
BATCH_WINDOWS = 64


@numba.njit(nogil=True, inline="always")
def _ordered(bits: Any, sign_shift: Any, magnitude: Any) -> Any:  # pragma: no cover
    """A float's bits as an integer that sorts like the float (and back: an involution).

    Integer max/min vectorise; LLVM will not vectorise a float max that must
    keep NaN semantics, and that made max and min cost as much as all the moments.
    """
    return bits ^ ((bits >> sign_shift) & magnitude)


@numba.njit(fastmath=_FAST, nogil=True, cache=True)
def window_features(plane: Any, bits: Any, taper: Any, bin_weights: Any, stats: Any,
                    bands: Any, with_bands: bool, zero: Any, tiny: Any, sign_shift: Any,
                    magnitude: Any) -> None:  # pragma: no cover - compiled
    """Statistics and band powers of every window of one channel, without the GIL.

    ``plane``: (window, sample), C-contiguous; ``bits``: the same memory as
    integers of its width (``sign_shift``, ``magnitude``: that width's sign bit
    position and largest value). ``stats``: (window, 7) in
    :data:`MOMENT_STATS` order. With ``with_bands``, each window is centred,
    multiplied by ``taper``, transformed (``np.fft.rfft``, compiled by
    rocket-fft: pocketfft, as SciPy uses) and its |X|^2 times ``bin_weights``
    (frequency bin, band) goes to ``bands`` (window, band). ``zero`` and ``tiny``
    are of the data's dtype, so float32 is summed in float32, as NumPy does.
    """
    rows, size = plane.shape
    inverse = (zero + 1) / size
    extremes = np.empty((rows, 2), dtype=bits.dtype)
    tapered = np.empty((BATCH_WINDOWS, size), dtype=plane.dtype)
    power = np.empty((BATCH_WINDOWS, size // 2 + 1), dtype=plane.dtype)
    for start in range(0, rows, BATCH_WINDOWS):
        stop = min(start + BATCH_WINDOWS, rows)
        for row in range(start, stop):
            x = plane[row]
            ordered = bits[row]
            total = zero
            high = _ordered(ordered[0], sign_shift, magnitude)
            low = high
            for i in range(size):
                total += x[i]
                key = _ordered(ordered[i], sign_shift, magnitude)
                high = max(high, key)
                low = min(low, key)
            extremes[row, 0] = _ordered(high, sign_shift, magnitude)
            extremes[row, 1] = _ordered(low, sign_shift, magnitude)
            mean = total * inverse
            m2 = zero
            m3 = zero
            m4 = zero
            out = tapered[row - start]
            for i in range(size):
                centred = x[i] - mean
                squared = centred * centred
                m2 += squared
                m3 += squared * centred
                m4 += squared * squared
                if with_bands:
                    out[i] = centred * taper[i]
            m2 *= inverse
            m3 *= inverse
            m4 *= inverse
            found = stats[row]
            found[0] = mean
            found[1] = np.sqrt(m2)
            found[2] = np.sqrt(m2 + mean * mean)
            flat = m2 <= tiny
            found[3] = 0.0 if flat else m3 / (m2 * np.sqrt(m2))
            found[4] = 0.0 if flat else m4 / (m2 * m2) - 3.0
        if with_bands:
            count = stop - start
            spectrum = np.fft.rfft(tapered[:count])
            for row in range(count):
                for k in range(spectrum.shape[1]):
                    value = spectrum[row, k]
                    power[row, k] = value.real * value.real + value.imag * value.imag
            bands[start:stop] = np.dot(power[:count], bin_weights)
    values = extremes.view(plane.dtype)
    for row in range(rows):
        top = values[row, 0]
        bottom = values[row, 1]
        rms = stats[row, 2]
        stats[row, 5] = top - bottom
        peak = max(abs(top), abs(bottom))
        stats[row, 6] = peak / rms if rms > 0 else 0.0


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
