"""Statistics and spectral band powers of windows, in one pass over each window.

``features_block`` takes windows (unit, window, offset, channel) and gives
(unit, window, channel, band powers + stats). On NumPy float blocks a compiled
kernel (Numba, no GIL, FFT included) does a whole unit per call, batch by batch
in cache (:data:`~.layout.WINDOW_BATCH_ELEMENTS`), in any memory layout; the
array-module code is what CuPy blocks run, the reference the kernel is tested
against, and what redoes windows holding NaN or inf (NumPy's semantics).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numba
import numpy as np
import rocket_fft  # noqa: F401  (np.fft inside compiled code)

from ..array_module import array_module, fft_module
from .layout import FASTMATH, batch_windows, is_compiled_dtype, window_batch

#: The statistics, in the kernel's column order.
STATS = ("mean", "std", "rms", "skewness", "kurtosis", "peak_to_peak", "crest_factor")
TAPERS = ("hann", "none")


def taper_window(size: int, taper: str) -> np.ndarray:
    """The taper's weights for a window of ``size`` samples."""
    return np.hanning(size + 1)[:-1] if taper == "hann" else np.ones(size)


def band_weights(size: int, rate: float, bands: Sequence[Sequence[float]], taper: str
                 ) -> np.ndarray:
    """Matrix from interleaved (re, im) FFT outputs to band powers, shape (2*(size//2+1), band).

    Squares of real and imaginary parts times these weights give the one-sided
    periodogram summed over each ``[low, high)`` band (Hz), scaled by the taper's
    energy, so that the bands add up to the window's variance.
    """
    freqs = np.fft.rfftfreq(size, d=1.0 / rate)
    one_sided = np.full(freqs.shape, 2.0)
    one_sided[0] = 1.0
    if size % 2 == 0:
        one_sided[-1] = 1.0
    energy = float(np.sum(taper_window(size, taper) ** 2))
    scale = one_sided / (size * energy)
    per_bin = np.stack([((freqs >= lo) & (freqs < hi)) * scale for lo, hi in bands], axis=1)
    # Interleave: row 2k weighs re(X_k)^2, row 2k+1 weighs im(X_k)^2.
    return np.repeat(per_bin, 2, axis=0)


def feature_options(size: int, rate: float, dtype: Any, *, bands: Sequence[Sequence[float]],
                    taper: str, log: bool, stats: Sequence[str]) -> dict[str, Any]:
    """The keyword arguments of :func:`features_block` for windows of ``size`` samples."""
    return {"weights": band_weights(size, rate, bands, taper).astype(dtype) if bands else None,
            "taper": taper_window(size, taper).astype(dtype), "log": log, "stats": tuple(stats)}


def feature_count(options: dict[str, Any]) -> int:
    """Columns of :func:`features_block`'s output: band powers, then statistics."""
    weights = options["weights"]
    return (0 if weights is None else weights.shape[1]) + len(options["stats"])


def features_block(block: Any, scaling: Any | None, *, weights: Any | None, taper: Any,
                   log: bool, stats: tuple[str, ...]) -> Any:
    """(unit, window, offset, channel) -> (unit, window, channel, band powers + stats),
    of ``(block - mean) * scale`` with ``scaling`` (unit, (mean, scale), channel)."""
    xp = array_module(block)
    if is_compiled_dtype(block):
        # Any layout (a panel's interleaved channels, or samples contiguous): the
        # kernel copies each batch of windows into cache channel by channel, so no
        # step pays for a transposing copy of the whole block.
        out = _features_compiled(block, scaling, weights=weights, taper=taper, stats=stats)
    else:
        if scaling is not None:
            # As the zscore step computes it (one copy: cheap on a GPU).
            block = block - scaling[:, None, None, 0, :]
            block *= scaling[:, None, None, 1, :]
        # Channel-major with contiguous samples: free when the block already is, one
        # copy otherwise (cheap on a GPU).
        data = xp.moveaxis(block, 3, 1)
        if data.strides[-1] != data.itemsize:
            data = xp.ascontiguousarray(data)
        out = features_reference(data, weights=weights, taper=taper, stats=stats)
    n_bands = 0 if weights is None else weights.shape[1]
    if log and weights is not None:
        powers = out[..., :n_bands]
        xp.log10(xp.maximum(powers, xp.finfo(out.dtype).tiny), out=powers)
    return out


@numba.njit(nogil=True, inline="always")
def _ordered(bits: Any, sign_shift: Any, magnitude: Any) -> Any:  # pragma: no cover
    """A float's bits as an integer that sorts like the float (and back: an involution).

    Integer max/min vectorise; LLVM will not vectorise a float max that must
    keep NaN semantics, and that made max and min cost as much as all the moments.
    """
    return bits ^ ((bits >> sign_shift) & magnitude)


@numba.njit(fastmath=FASTMATH, nogil=True, cache=True)
def _unit_features(windows: Any, offset: Any, scale: Any, scratch: Any, bits: Any, taper: Any,
                   bin_weights: Any, stats: Any, bands: Any, with_bands: bool, zero: Any,
                   tiny: Any, sign_shift: Any, magnitude: Any) -> None:  # pragma: no cover
    """Statistics and band powers of every window and channel of one unit, without the GIL.

    ``windows``: (window, sample, channel), any strides. Each batch of windows is
    copied once into ``scratch`` (channel, window, sample), as
    ``(x - offset[channel]) * scale[channel]`` (a z-score folded in; 0 and 1
    copy it unchanged), where every later pass reads it from cache. ``bits``
    is ``scratch`` viewed as integers of its width (``sign_shift``,
    ``magnitude``: that width's sign bit position and largest value).
    ``stats``: (channel, window, 7) in :data:`STATS` order. With ``with_bands``,
    each window is centred, multiplied by ``taper``, transformed
    (``np.fft.rfft``, compiled by rocket-fft: pocketfft, as SciPy uses) and its
    |X|^2 times ``bin_weights`` (frequency bin, band) goes to ``bands``
    (channel, window, band). ``zero`` and ``tiny`` are of the data's dtype, so
    float32 is summed in float32, as NumPy does.
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
            # writes; sample by sample was 1.8x slower.
            source = windows[start + w]
            for c in range(channels):
                target = scratch[c, w]
                shift = offset[c]
                factor = scale[c]
                for i in range(size):
                    # As moments.standardise computes it: equal results, bit for bit.
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


def _features_compiled(block: np.ndarray, scaling: np.ndarray | None, *,
                       weights: np.ndarray | None, taper: np.ndarray,
                       stats: tuple[str, ...]) -> np.ndarray:
    """The CPU path: one compiled call per unit, all channels; ``block`` is
    (unit, window, offset, channel), any strides. Windows with NaN or inf are
    redone by the reference code (NumPy's semantics)."""
    units, n_windows, size, channels = block.shape
    if scaling is None:
        scaling = np.stack([np.zeros((units, channels), block.dtype),
                            np.ones((units, channels), block.dtype)], axis=1)
    scaling = np.ascontiguousarray(scaling, dtype=block.dtype)
    n_bands = 0 if weights is None else weights.shape[1]
    out = np.empty((units, n_windows, channels, n_bands + len(stats)), dtype=block.dtype)
    picks = [STATS.index(name) for name in stats]
    # Interleaved (re, im) weights are equal in pairs: one row per frequency bin.
    bin_weights = (np.zeros((size // 2 + 1, 1), block.dtype) if weights is None
                   else np.ascontiguousarray(weights[::2]))
    integers = np.dtype(f"int{8 * block.itemsize}").type
    width = (integers(8 * block.itemsize - 1), integers(np.iinfo(integers).max))
    scratch = np.empty((channels, batch_windows(size, channels), size), block.dtype)
    found = np.empty((channels, n_windows, len(STATS)), dtype=block.dtype)
    powers = np.empty((channels, n_windows, bin_weights.shape[1]), dtype=block.dtype)
    for unit in range(units):
        _unit_features(block[unit], scaling[unit, 0], scaling[unit, 1], scratch,
                       scratch.view(integers), taper, bin_weights, found, powers,
                       weights is not None, block.dtype.type(0),
                       np.finfo(block.dtype).tiny, *width)
        out[unit, :, :, :n_bands] = powers[:, :, :n_bands].transpose(1, 0, 2)
        out[unit, :, :, n_bands:] = found[:, :, picks].transpose(1, 0, 2)
        # A window's mean is finite iff its values are.
        broken = np.flatnonzero(~np.isfinite(found[:, :, 0]).all(axis=0))
        if broken.size:
            windows = block[unit:unit + 1, broken] - scaling[unit, 0]
            windows *= scaling[unit, 1]
            out[unit, broken] = features_reference(
                np.ascontiguousarray(np.moveaxis(windows, 3, 1)),
                weights=weights, taper=taper, stats=stats)[0]
    return out


def features_reference(data: Any, *, weights: Any | None, taper: Any,
                       stats: tuple[str, ...]) -> Any:
    """The array-module path (CuPy on GPUs, and the kernel's reference); ``data`` is
    (unit, channel, window, offset) with contiguous samples."""
    xp = array_module(data)
    fft = fft_module(xp)
    units, channels, n_windows, size = data.shape
    n_bands = 0 if weights is None else weights.shape[1]
    out = xp.empty((units, n_windows, channels, n_bands + len(stats)), dtype=data.dtype)
    if weights is not None:
        weights, taper = xp.asarray(weights), xp.asarray(taper)
    step = window_batch(xp, size, channels, n_windows)
    for unit in range(units):
        for start in range(0, n_windows, step):
            rows = slice(start, min(start + step, n_windows))
            batch = data[unit, :, rows]  # (channel, window, offset)
            mean = batch.sum(axis=-1, keepdims=True) * (1.0 / size)
            centred = batch - mean.astype(batch.dtype)
            if stats:
                found = _moments(batch, centred, mean[..., 0], xp)
                for k, name in enumerate(stats):
                    out[unit, rows, :, n_bands + k] = found[name].T
            if weights is not None:
                centred *= taper
                parts = fft.rfft(centred, axis=-1).view(data.dtype)  # interleaved re, im
                parts *= parts
                out[unit, rows, :, :n_bands] = (parts @ weights).transpose(1, 0, 2)
    return out


def _moments(x: Any, centred: Any, mean: Any, xp: Any) -> dict[str, Any]:
    size = x.shape[-1]
    squared = centred * centred
    m2 = xp.einsum("...i,...i->...", centred, centred) / size
    m3 = xp.einsum("...i,...i->...", squared, centred) / size
    m4 = xp.einsum("...i,...i->...", squared, squared) / size
    high, low = x.max(axis=-1), x.min(axis=-1)
    rms = xp.sqrt(m2 + mean * mean)
    flat = m2 <= xp.finfo(x.dtype).tiny
    safe_m2 = xp.where(flat, 1, m2)
    peak = xp.maximum(xp.abs(high), xp.abs(low))
    return {
        "mean": mean,
        "std": xp.sqrt(m2),
        "rms": rms,
        "skewness": xp.where(flat, 0, m3 / safe_m2 ** 1.5),
        "kurtosis": xp.where(flat, 0, m4 / (safe_m2 * safe_m2) - 3),
        "peak_to_peak": high - low,
        "crest_factor": xp.where(rms > 0, peak / xp.where(rms > 0, rms, 1), 0),
    }
