"""Feature steps on windows: spectral band power and window statistics.

All three steps (``band_power``, ``window_stats`` and the fused
``window_features``) run one kernel over ``windows(unit, window, offset,
channel)`` block by block, in cache-sized batches of windows (each channel's
samples made contiguous there) so the passes a feature needs (mean, moments,
taper, FFT, band sums) run from cache; the fused step shares them between both
feature sets. On NumPy blocks that kernel is compiled (:mod:`.kernels`, no GIL); the
array-module version below is what CuPy blocks run, and the reference.
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
from . import kernels
from .blocks import batch_rows, dask_data, whole_windows

DEFAULT_BANDS = ((1, 10), (10, 20), (20, 35), (35, 70), (70, 120), (120, 200), (200, 400),
                 (400, 512))
TAPERS = ("hann", "none")
STATS = ("mean", "std", "rms", "skewness", "kurtosis", "peak_to_peak", "crest_factor")


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
    return add_window_features(ds, bands=bands, taper=taper, log=log, stats=(),
                               variable=variable)


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
    if not stats:
        raise PipelineDefinitionError(f"window_stats: name at least one of {', '.join(STATS)}")
    return add_window_features(ds, bands=(), stats=stats, variable=variable)


@step("window_features")
def window_features(ds: xr.Dataset, *, bands: Sequence[Sequence[float]] = DEFAULT_BANDS,
                    taper: str = "hann", log: bool = False, stats: Sequence[str] = STATS,
                    variable: str = "windows") -> xr.Dataset:
    """``band_power`` and ``window_stats`` in one pass over each window.

    Same parameters and results as the two steps; the data is read once. An
    empty ``bands`` or ``stats`` leaves that variable out.
    """
    return add_window_features(ds, bands=bands, taper=taper, log=log, stats=stats,
                               variable=variable)


def add_window_features(ds: xr.Dataset, *, bands: Sequence[Sequence[float]] = DEFAULT_BANDS,
                        taper: str = "hann", log: bool = False, stats: Sequence[str] = STATS,
                        variable: str = "windows", scaling: da.Array | None = None
                        ) -> xr.Dataset:
    """:func:`window_features`, of ``(windows - mean) * scale`` when ``scaling`` gives
    each series' (mean, scale), shaped (unit, 2, channel): the z-score folded into
    the features' own pass (:mod:`suanli.pipelines.fusion`)."""
    if taper not in TAPERS:
        raise PipelineDefinitionError(f"band_power: taper must be one of {TAPERS}, got {taper!r}")
    unknown = [s for s in stats if s not in STATS]
    if unknown:
        raise PipelineDefinitionError(f"window_stats: unknown stats {unknown}; choose from "
                                      f"{', '.join(STATS)}")
    if not bands and not stats:
        raise PipelineDefinitionError("window_features: give bands, stats or both")
    windows = ds[variable]
    data = whole_windows(dask_data(windows))
    options = kernel_options(windows.sizes["offset"], float(ds.attrs["sample_rate"]),
                             data.dtype, bands=bands, taper=taper, log=log, stats=stats)
    n_out = len(bands) + len(stats)
    if scaling is None:
        combined = da.map_blocks(
            features_block, data, None, **options,
            chunks=(data.chunks[0], data.chunks[1], data.chunks[3], (n_out,)),
            dtype=data.dtype, meta=data._meta,
        )
    else:
        # u: unit, w: window, o: offset, c: channel, z: (mean, scale), f: feature.
        combined = da.blockwise(
            features_block, "uwcf", data, "uwoc",
            scaling.rechunk({0: data.chunks[0], 1: -1, 2: -1}), "uzc",
            new_axes={"f": n_out}, concatenate=True, **options,
            dtype=data.dtype, meta=data._meta,
        )
    dims = ("unit", "window", "channel")
    if bands:
        attrs = {"long_name": "band power", "units": "log10(signal^2)" if log else "signal^2",
                 "taper": taper}
        ds = ds.assign(band_power=((*dims, "band"), combined[..., : len(bands)], attrs)
                       ).assign_coords(band=[f"{lo:g}-{hi:g}Hz" for lo, hi in bands])
    if stats:
        ds = ds.assign(window_stats=((*dims, "stat"), combined[..., len(bands):],
                                     {"long_name": "window statistics"})
                       ).assign_coords(stat=list(stats))
    return ds


def kernel_options(size: int, rate: float, dtype: Any, *, bands: Sequence[Sequence[float]],
                   taper: str, log: bool, stats: Sequence[str]) -> dict[str, Any]:
    """The keyword arguments of :func:`features_block` for windows of ``size`` samples."""
    return {"weights": band_weights(size, rate, bands, taper).astype(dtype) if bands else None,
            "taper": _taper(size, taper).astype(dtype), "log": log, "stats": tuple(stats)}


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


def features_block(block: Any, scaling: Any | None, *, weights: Any | None, taper: Any,
                   log: bool, stats: tuple[str, ...]) -> Any:
    """(unit, window, offset, channel) -> (unit, window, channel, band powers + stats),
    of ``(block - mean) * scale`` with ``scaling`` (unit, (mean, scale), channel)."""
    xp = array_module(block)
    if kernels.is_compiled_dtype(block):
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
        out = _features_array_module(data, weights=weights, taper=taper, stats=stats)
    n_bands = 0 if weights is None else weights.shape[1]
    if log and weights is not None:
        powers = out[..., :n_bands]
        xp.log10(xp.maximum(powers, xp.finfo(out.dtype).tiny), out=powers)
    return out


def _features_compiled(block: np.ndarray, scaling: np.ndarray | None, *,
                       weights: np.ndarray | None, taper: np.ndarray,
                       stats: tuple[str, ...]) -> np.ndarray:
    """The CPU path: one compiled call per unit, all channels, the FFT included, without
    the GIL; ``block`` is (unit, window, offset, channel), any strides. Windows with
    NaN or inf are redone by the reference code (NumPy's semantics)."""
    units, n_windows, size, channels = block.shape
    if scaling is None:
        scaling = np.stack([np.zeros((units, channels), block.dtype),
                            np.ones((units, channels), block.dtype)], axis=1)
    scaling = np.ascontiguousarray(scaling, dtype=block.dtype)
    n_bands = 0 if weights is None else weights.shape[1]
    out = np.empty((units, n_windows, channels, n_bands + len(stats)), dtype=block.dtype)
    picks = [kernels.MOMENT_STATS.index(name) for name in stats]
    # Interleaved (re, im) weights are equal in pairs: one row per frequency bin.
    bin_weights = (np.zeros((size // 2 + 1, 1), block.dtype) if weights is None
                   else np.ascontiguousarray(weights[::2]))
    integers = np.dtype(f"int{8 * block.itemsize}").type
    width = (integers(8 * block.itemsize - 1), integers(np.iinfo(integers).max))
    scratch = np.empty((channels, kernels.batch_windows(size, channels), size), block.dtype)
    found = np.empty((channels, n_windows, len(kernels.MOMENT_STATS)), dtype=block.dtype)
    powers = np.empty((channels, n_windows, bin_weights.shape[1]), dtype=block.dtype)
    for unit in range(units):
        kernels.window_features(block[unit], scaling[unit, 0], scaling[unit, 1], scratch,
                                scratch.view(integers), taper, bin_weights, found, powers,
                                weights is not None, block.dtype.type(0),
                                np.finfo(block.dtype).tiny, *width)
        out[unit, :, :, :n_bands] = powers[:, :, :n_bands].transpose(1, 0, 2)
        out[unit, :, :, n_bands:] = found[:, :, picks].transpose(1, 0, 2)
        # A window's mean is finite iff its values are.
        broken = np.flatnonzero(~np.isfinite(found[:, :, 0]).all(axis=0))
        if broken.size:
            # NaN or inf in these windows: the reference code keeps NumPy's semantics.
            windows = block[unit:unit + 1, broken] - scaling[unit, 0]
            windows *= scaling[unit, 1]
            out[unit, broken] = _features_array_module(
                np.ascontiguousarray(np.moveaxis(windows, 3, 1)),
                weights=weights, taper=taper, stats=stats)[0]
    return out


def _features_array_module(data: Any, *, weights: Any | None, taper: Any,
                           stats: tuple[str, ...]) -> Any:
    """The reference path for any array module (CuPy on GPUs); data is
    (unit, channel, window, offset) with contiguous samples."""
    xp = array_module(data)
    fft = fft_module(xp)
    units, channels, n_windows, size = data.shape
    n_bands = 0 if weights is None else weights.shape[1]
    out = xp.empty((units, n_windows, channels, n_bands + len(stats)), dtype=data.dtype)
    if weights is not None:
        weights, taper = xp.asarray(weights), xp.asarray(taper)
    step_rows = batch_rows(xp, size * channels, n_windows)
    for unit in range(units):
        for start in range(0, n_windows, step_rows):
            rows = slice(start, min(start + step_rows, n_windows))
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
