"""Compiled CPU kernels (Numba) for the steps' hot loops on NumPy blocks.

NumPy needs one pass over memory per operation: a window's statistics take
about ten (sum, subtract, square, three products, max, min, taper) and
z-scoring a chunk three more, each a call that takes the GIL. These kernels
make each of those a single pass per row, from cache, and run a whole
block's windows (FFT included) in one call without the GIL, so a worker's
threads run them in parallel. They take blocks in the panel's own (time,
channel) layout, as Zarr and the generators give them, so no step pays for
a transposing copy of a chunk: series interleaved in memory are summed in
lane vectors (:func:`lane_width`), windows are de-interleaved batch by batch
in cache. They are the CPU path only: CuPy blocks take the
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


#: Samples per inner batch of windows (all channels): their de-interleaved copy
#: (256 KiB of float32) and its spectrum stay in a core's L2 cache through the FFT.
BATCH_ELEMENTS = 65536


def batch_windows(size: int, channels: int) -> int:
    """Windows per inner batch of :func:`window_features`."""
    return max(1, BATCH_ELEMENTS // (size * channels))


@numba.njit(nogil=True, inline="always")
def _ordered(bits: Any, sign_shift: Any, magnitude: Any) -> Any:  # pragma: no cover
    """A float's bits as an integer that sorts like the float (and back: an involution).

    Integer max/min vectorise; LLVM will not vectorise a float max that must
    keep NaN semantics, and that made max and min cost as much as all the moments.
    """
    return bits ^ ((bits >> sign_shift) & magnitude)


@numba.njit(fastmath=_FAST, nogil=True, cache=True)
def window_features(windows: Any, offset: Any, scale: Any, scratch: Any, bits: Any, taper: Any,
                    bin_weights: Any, stats: Any, bands: Any, with_bands: bool, zero: Any,
                    tiny: Any, sign_shift: Any,
                    magnitude: Any) -> None:  # pragma: no cover - compiled
    """Statistics and band powers of every window and channel of one unit, without the GIL.

    ``windows``: (window, sample, channel), any strides: the panel's own layout
    (channels interleaved) or samples contiguous. Each batch of windows is
    copied once into ``scratch`` (channel, window, sample), as
    ``(x - offset[channel]) * scale[channel]`` (a z-score folded in; 0 and 1
    copy it unchanged), where every later pass reads it from cache. ``bits``
    is ``scratch`` viewed as integers of its width (``sign_shift``,
    ``magnitude``: that width's sign bit position and largest value).
    ``stats``: (channel, window, 7) in :data:`MOMENT_STATS` order. With
    ``with_bands``, each window is centred, multiplied by ``taper``,
    transformed (``np.fft.rfft``, compiled by rocket-fft: pocketfft, as SciPy
    uses) and its |X|^2 times ``bin_weights`` (frequency bin, band) goes to
    ``bands`` (channel, window, band). ``zero`` and ``tiny`` are of the
    data's dtype, so float32 is summed in float32, as NumPy does.
    """
    n_windows, size, channels = windows.shape
    batch = scratch.shape[1]
    inverse = (zero + 1) / size
    extremes = np.empty((channels, n_windows, 2), dtype=bits.dtype)
    power = np.empty((batch, size // 2 + 1), dtype=windows.dtype)
    for start in range(0, n_windows, batch):
        stop = min(start + batch, n_windows)
        count = stop - start
        for w in range(count):
            # Channel by channel: strided reads from one window (in L1), contiguous
            # writes; sample by sample was 1.8x slower. Computing the statistics on
            # the interleaved samples instead (one lane per channel) was no faster.
            source = windows[start + w]
            for c in range(channels):
                target = scratch[c, w]
                shift = offset[c]
                factor = scale[c]
                for i in range(size):
                    # The same expression as scale_interleaved: equal results, bit for bit.
                    target[i] = (source[i, c] - shift) * factor
        for c in range(channels):
            for w in range(count):
                x = scratch[c, w]
                ordered = bits[c, w]
                total = zero
                high = _ordered(ordered[0], sign_shift, magnitude)
                low = high
                for i in range(size):
                    total += x[i]
                    key = _ordered(ordered[i], sign_shift, magnitude)
                    high = max(high, key)
                    low = min(low, key)
                extremes[c, start + w, 0] = _ordered(high, sign_shift, magnitude)
                extremes[c, start + w, 1] = _ordered(low, sign_shift, magnitude)
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
                    if with_bands:
                        x[i] = centred * taper[i]  # in place: the FFT's input
                m2 *= inverse
                m3 *= inverse
                m4 *= inverse
                found = stats[c, start + w]
                found[0] = mean
                found[1] = np.sqrt(m2)
                found[2] = np.sqrt(m2 + mean * mean)
                flat = m2 <= tiny
                found[3] = 0.0 if flat else m3 / (m2 * np.sqrt(m2))
                found[4] = 0.0 if flat else m4 / (m2 * m2) - 3.0
            if with_bands:
                spectrum = np.fft.rfft(scratch[c, :count])
                for w in range(count):
                    for k in range(spectrum.shape[1]):
                        value = spectrum[w, k]
                        power[w, k] = value.real * value.real + value.imag * value.imag
                bands[c, start:stop] = np.dot(power[:count], bin_weights)
    values = extremes.view(windows.dtype)
    for c in range(channels):
        for w in range(n_windows):
            top = values[c, w, 0]
            bottom = values[c, w, 1]
            found = stats[c, w]
            found[5] = top - bottom
            peak = max(abs(top), abs(bottom))
            found[6] = peak / found[2] if found[2] > 0 else 0.0


#: Elements per tile of the streaming kernels below: a tile (32 KiB of float32)
#: stays in L1 while it is read twice, so memory is read once.
TILE_ELEMENTS = 8192

#: Consecutive samples a lane holds: the (sample, inner) elements of
#: ``LANES`` samples are one contiguous vector of ``LANES * inner`` values, so
#: the per-series sums vectorise whatever the number of interleaved series.
LANES = 16


def lane_width(inner: int) -> int:
    """Values per lane vector for ``inner`` interleaved series (one sample of each)."""
    return inner * (LANES if inner < 64 else 1)


def tile_samples(inner: int) -> int:
    """Samples per tile for ``inner`` interleaved series: a whole number of lanes."""
    lanes = lane_width(inner) // inner
    return max(lanes, TILE_ELEMENTS // lane_width(inner) * lanes)


@numba.njit(fastmath=_FAST, nogil=True, cache=True)
def nan_tiles(block: Any, tile: int, flags: Any) -> None:  # pragma: no cover - compiled
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


@numba.njit(fastmath=_FAST, nogil=True, cache=True)
def tile_moments(block: Any, width: int, tile: int, out: Any) -> None:  # pragma: no cover
    """Count, mean and M2 (sum of squared deviations) of every series of ``block``
    (outer, sample, inner), C-contiguous, in each tile of ``tile`` samples, into
    ``out`` (outer, tile, inner, 3), float64; :func:`merge_tiles` combines them.

    Memory is read once: each tile is summed, then its deviations from its own
    mean are, both from cache, in vectors of ``width`` values
    (:func:`lane_width`). A tile with NaN or inf gets a non-finite mean.
    """
    outer, samples, inner = block.shape
    acc = np.empty(width, dtype=block.dtype)
    lane_mean = np.empty(width, dtype=block.dtype)
    sums = np.empty(inner)
    squares = np.empty(inner)
    for o in range(outer):
        flat = block[o].reshape(samples * inner)
        for first in range(0, samples, tile):
            count = min(tile, samples - first)
            body = count * inner // width * width  # whole lane vectors; the rest one by one
            values = flat[first * inner:(first + count) * inner]
            vectors = values[:body].reshape(body // width, width)
            acc[:] = 0
            for r in range(vectors.shape[0]):
                row = vectors[r]
                for j in range(width):
                    acc[j] += row[j]
            sums[:] = 0.0
            for j in range(width):
                sums[j % inner] += acc[j]
            for i in range(body, values.shape[0]):
                sums[i % inner] += values[i]
            for j in range(width):
                lane_mean[j] = sums[j % inner] / count
            acc[:] = 0
            for r in range(vectors.shape[0]):
                row = vectors[r]
                for j in range(width):
                    deviation = row[j] - lane_mean[j]
                    acc[j] += deviation * deviation
            squares[:] = 0.0
            for j in range(width):
                squares[j % inner] += acc[j]
            for i in range(body, values.shape[0]):
                deviation = values[i] - sums[i % inner] / count
                squares[i % inner] += deviation * deviation
            found = out[o, first // tile]
            for c in range(inner):
                found[c, 0] = count
                found[c, 1] = sums[c] / count
                found[c, 2] = squares[c]


@numba.njit(fastmath=_FAST, nogil=True, cache=True)
def merge_tiles(tiles: Any, out: Any) -> None:  # pragma: no cover - compiled
    """Per-tile (count, mean, M2) from :func:`tile_moments`, (outer, tile, inner, 3),
    merged in order (Chan et al., float64) into ``out`` (outer, inner, 3)."""
    outer, n_tiles, inner, _ = tiles.shape
    for o in range(outer):
        for c in range(inner):
            seen = 0.0
            mean = 0.0
            m2 = 0.0
            for k in range(n_tiles):
                count, tile_mean, tile_m2 = tiles[o, k, c, 0], tiles[o, k, c, 1], tiles[o, k, c, 2]
                total = seen + count
                delta = tile_mean - mean
                mean += delta * count / total
                m2 += tile_m2 + delta * delta * seen * count / total
                seen = total
            out[o, c, 0] = seen
            out[o, c, 1] = mean
            out[o, c, 2] = m2


def n_tiles(samples: int, tile: int) -> int:
    """Tiles of ``tile`` samples that cover ``samples`` (the last may be partial)."""
    return -(-samples // tile)


@numba.njit(fastmath=_FAST, nogil=True, cache=True)
def scale_interleaved(block: Any, offset: Any, scale: Any, width: int,
                      out: Any) -> None:  # pragma: no cover - compiled
    """``out = (block - offset) * scale`` for ``block`` (outer, sample, inner),
    C-contiguous, with ``offset`` and ``scale`` (outer, inner): one pass, in
    vectors of ``width`` values (:func:`lane_width`)."""
    outer, samples, inner = block.shape
    lane_offset = np.empty(width, dtype=block.dtype)
    lane_scale = np.empty(width, dtype=block.dtype)
    for o in range(outer):
        for j in range(width):
            lane_offset[j] = offset[o, j % inner]
            lane_scale[j] = scale[o, j % inner]
        source = block[o].reshape(samples * inner)
        target = out[o].reshape(samples * inner)
        body = source.shape[0] // width * width
        rows = source[:body].reshape(body // width, width)
        written = target[:body].reshape(body // width, width)
        for r in range(rows.shape[0]):
            x = rows[r]
            y = written[r]
            for j in range(width):
                y[j] = (x[j] - lane_offset[j]) * lane_scale[j]
        for i in range(body, source.shape[0]):
            target[i] = (source[i] - offset[o, i % inner]) * scale[o, i % inner]


def is_compiled_dtype(array: Any) -> bool:
    """True for the NumPy float arrays these kernels are meant for."""
    return isinstance(array, np.ndarray) and array.dtype in (np.float32, np.float64)
