"""Feature steps on windows: spectral band power and window statistics.

Both work on ``windows(unit, window, offset, channel)`` block by block. On CPU
each block is processed in cache-sized batches of windows, so the several
passes a feature needs run from cache instead of main memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from ..array_module import array_module, fft_module
from ..errors import PipelineDefinitionError
from ..registry import step
from .blocks import dask_data, whole_windows, window_batches

DEFAULT_BANDS = ((1, 10), (10, 20), (20, 35), (35, 70), (70, 120), (120, 200), (200, 400),
                 (400, 512))
TAPERS = ("hann", "none")


@step("band_power")
def band_power(ds: xr.Dataset, *, bands: Sequence[Sequence[float]] = DEFAULT_BANDS,
               taper: str = "hann", log: bool = False, variable: str = "windows") -> xr.Dataset:
    """Power of each window in frequency ``bands`` (Hz, ``[low, high)``), by FFT.

    Each window has its mean removed and is tapered (``hann`` or ``none``); the
    one-sided periodogram is summed over each band and scaled so that the bands
    add up to the window's mean square (its variance): the units are signal
    units squared, or their ``log10`` with ``log=True``. Adds
    ``band_power(unit, window, channel, band)``.
    """
    if taper not in TAPERS:
        raise PipelineDefinitionError(f"band_power: taper must be one of {TAPERS}, got {taper!r}")
    windows = ds[variable]
    size = windows.sizes["offset"]
    rate = float(ds.attrs["sample_rate"])
    weights = band_weights(size, rate, bands, taper)
    data = whole_windows(dask_data(windows))
    powers = da.map_blocks(
        _band_power_block, data, weights=weights.astype(data.dtype),
        taper=_taper(size, taper).astype(data.dtype), log=log,
        chunks=(data.chunks[0], data.chunks[1], data.chunks[3], (len(bands),)),
        dtype=data.dtype, meta=data._meta,
    )
    names = [f"{lo:g}-{hi:g}Hz" for lo, hi in bands]
    attrs = {"long_name": "band power", "units": "log10(signal^2)" if log else "signal^2",
             "taper": taper}
    return ds.assign(band_power=(("unit", "window", "channel", "band"), powers, attrs)
                     ).assign_coords(band=names)


def band_weights(size: int, rate: float, bands: Sequence[Sequence[float]], taper: str
                 ) -> np.ndarray:
    """Matrix from interleaved (re, im) FFT outputs to band powers, shape (2*(size//2+1), band).

    Squares of real and imaginary parts times these weights give the one-sided
    periodogram summed over each band, scaled by the taper's energy.
    """
    freqs = np.fft.rfftfreq(size, d=1.0 / rate)
    nyquist = rate / 2
    for lo, hi in bands:
        if not 0 <= lo < hi:
            raise PipelineDefinitionError(f"band_power: band [{lo}, {hi}) must have "
                                          f"0 <= low < high")
        if lo >= nyquist:
            raise PipelineDefinitionError(f"band_power: band [{lo}, {hi}) starts above the "
                                          f"Nyquist frequency {nyquist:g} Hz")
    one_sided = np.full(freqs.shape, 2.0)
    one_sided[0] = 1.0
    if size % 2 == 0:
        one_sided[-1] = 1.0
    energy = float(np.sum(_taper(size, taper) ** 2))
    scale = one_sided / (size * energy)
    per_bin = np.stack([((freqs >= lo) & (freqs < hi)) * scale for lo, hi in bands], axis=1)
    # Interleave: row 2k weighs re(X_k)^2, row 2k+1 weighs im(X_k)^2.
    return np.repeat(per_bin, 2, axis=0)


def _taper(size: int, taper: str) -> np.ndarray:
    return np.hanning(size + 1)[:-1] if taper == "hann" else np.ones(size)


def _band_power_block(block: Any, *, weights: Any, taper: Any, log: bool) -> Any:
    xp = array_module(block)
    fft = fft_module(xp)
    weights, taper = xp.asarray(weights), xp.asarray(taper)
    units, n_windows, _, channels = block.shape
    out = xp.empty((units, n_windows, channels, weights.shape[1]), dtype=block.dtype)
    for unit, rows, batch in window_batches(block, xp):
        batch -= batch.mean(axis=-1, keepdims=True)
        batch *= taper
        spectrum = fft.rfft(batch, axis=-1)
        parts = spectrum.view(block.dtype)  # interleaved re, im
        parts *= parts
        out[unit, rows] = parts @ weights
    if log:
        xp.log10(xp.maximum(out, xp.finfo(out.dtype).tiny), out=out)
    return out


STATS = ("mean", "std", "rms", "skewness", "kurtosis", "peak_to_peak", "crest_factor")


@step("window_stats")
def window_stats(ds: xr.Dataset, *, stats: Sequence[str] = STATS,
                 variable: str = "windows") -> xr.Dataset:
    """Statistics of each window: ``mean``, ``std``, ``rms``, ``skewness``, ``kurtosis``,
    ``peak_to_peak``, ``crest_factor``.

    ``std``, ``skewness`` and ``kurtosis`` are the population (biased) moments,
    kurtosis in excess (0 for a normal distribution), as ``scipy.stats`` gives
    by default; for a constant window skewness and kurtosis are 0.
    ``crest_factor`` is max(|x|) / rms. Adds ``window_stats(unit, window, channel, stat)``.
    """
    unknown = [s for s in stats if s not in STATS]
    if unknown or not stats:
        raise PipelineDefinitionError(f"window_stats: unknown stats {unknown}; choose from "
                                      f"{', '.join(STATS)}")
    data = whole_windows(dask_data(ds[variable]))
    values = da.map_blocks(
        _stats_block, data, stats=tuple(stats),
        chunks=(data.chunks[0], data.chunks[1], data.chunks[3], (len(stats),)),
        dtype=data.dtype, meta=data._meta,
    )
    return ds.assign(window_stats=(("unit", "window", "channel", "stat"), values,
                                   {"long_name": "window statistics"})
                     ).assign_coords(stat=list(stats))


def _stats_block(block: Any, *, stats: tuple[str, ...]) -> Any:
    xp = array_module(block)
    units, n_windows, _, channels = block.shape
    out = xp.empty((units, n_windows, channels, len(stats)), dtype=block.dtype)
    for unit, rows, batch in window_batches(block, xp):
        found = _moments(batch, xp)
        for k, name in enumerate(stats):
            out[unit, rows, :, k] = found[name]
    return out


def _moments(x: Any, xp: Any) -> dict[str, Any]:
    mean = x.mean(axis=-1)
    centred = x - mean[..., None]
    squared = centred * centred
    m2 = squared.mean(axis=-1)
    m3 = (squared * centred).mean(axis=-1)
    m4 = (squared * squared).mean(axis=-1)
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
