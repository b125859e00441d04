"""Feature steps on windows: spectral band power and window statistics.

All three steps run one computation (:mod:`..compute.window_features`) over
``windows(unit, window, offset, channel)`` block by block; ``window_features``
shares its passes between both feature sets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dask.array as da
import xarray as xr

from suanli.datasets import dask_array

from ..compute.window_features import STATS, TAPERS, feature_count, feature_options, features_block
from ..errors import PipelineDefinitionError
from ..registry import Fusion, step
from .graphs import whole_windows

DEFAULT_BANDS = ((1, 10), (10, 20), (20, 35), (35, 70), (70, 120), (120, 200), (200, 400),
                 (400, 512))
#: Every parameter of the window features, as ``window_features`` takes them.
DEFAULTS: Mapping[str, Any] = {"bands": DEFAULT_BANDS, "taper": "hann", "log": False,
                               "stats": STATS, "variable": "windows"}


def check_feature_parameters(params: Mapping[str, Any]) -> None:
    """Refuse a taper, statistic or band that is not allowed, or no features at all."""
    params = {**DEFAULTS, **params}
    if params["taper"] not in TAPERS:
        raise PipelineDefinitionError(f"band_power: taper must be one of {TAPERS}, got "
                                      f"{params['taper']!r}")
    unknown = [s for s in params["stats"] if s not in STATS]
    if unknown:
        raise PipelineDefinitionError(f"window_stats: unknown stats {unknown}; choose from "
                                      f"{', '.join(STATS)}")
    for band in params["bands"]:
        if not (isinstance(band, Sequence) and len(band) == 2
                and all(isinstance(v, int | float) and not isinstance(v, bool) for v in band)
                and 0 <= band[0] < band[1]):
            raise PipelineDefinitionError(f"band_power: each band is [low, high) in Hz with "
                                          f"0 <= low < high, got {band!r}")
    if not params["bands"] and not params["stats"]:
        raise PipelineDefinitionError("window_features: give bands, stats or both")


def _check_window_stats(params: Mapping[str, Any]) -> None:
    if not params["stats"]:
        raise PipelineDefinitionError(f"window_stats: name at least one of {', '.join(STATS)}")
    check_feature_parameters({**params, "bands": ()})


@step("band_power", check=lambda p: check_feature_parameters({**p, "stats": ()}),
      fusion=Fusion("window_features", {"stats": ()}))
def band_power(ds: xr.Dataset, *, bands: Sequence[Sequence[float]] = DEFAULT_BANDS,
               taper: str = "hann", log: bool = False, variable: str = "windows") -> xr.Dataset:
    """Power of each window in frequency ``bands`` (Hz, ``[low, high)``), by FFT.

    Each window has its mean removed and is tapered (``hann`` or ``none``); the
    one-sided periodogram is summed over each band and scaled so that the bands
    add up to the window's mean square (its variance): the units are signal
    units squared, or their ``log10`` with ``log=True``. Adds
    ``band_power(unit, window, channel, band)``.
    """
    return add_window_features(ds, {"bands": bands, "taper": taper, "log": log, "stats": (),
                                    "variable": variable})


@step("window_stats", check=_check_window_stats,
      fusion=Fusion("window_features", {"bands": ()}))
def window_stats(ds: xr.Dataset, *, stats: Sequence[str] = STATS,
                 variable: str = "windows") -> xr.Dataset:
    """Statistics of each window: ``mean``, ``std``, ``rms``, ``skewness``, ``kurtosis``,
    ``peak_to_peak``, ``crest_factor``.

    ``std``, ``skewness`` and ``kurtosis`` are the population (biased) moments,
    kurtosis in excess (0 for a normal distribution), as ``scipy.stats`` gives
    by default; for a constant window skewness and kurtosis are 0.
    ``crest_factor`` is max(|x|) / rms. Adds ``window_stats(unit, window, channel, stat)``.
    """
    _check_window_stats({"stats": stats})
    return add_window_features(ds, {"bands": (), "stats": stats, "variable": variable})


@step("window_features", check=check_feature_parameters, fusion=Fusion("window_features"))
def window_features(ds: xr.Dataset, *, bands: Sequence[Sequence[float]] = DEFAULT_BANDS,
                    taper: str = "hann", log: bool = False, stats: Sequence[str] = STATS,
                    variable: str = "windows") -> xr.Dataset:
    """``band_power`` and ``window_stats`` in one pass over each window.

    Same parameters and results as the two steps; the data is read once. An
    empty ``bands`` or ``stats`` leaves that variable out.
    """
    return add_window_features(ds, {"bands": bands, "taper": taper, "log": log,
                                    "stats": stats, "variable": variable})


def add_window_features(ds: xr.Dataset, params: Mapping[str, Any],
                        scaling: da.Array | None = None) -> xr.Dataset:
    """``ds`` with the window features ``params`` name, of ``(windows - mean) * scale``
    when ``scaling`` gives each series' (mean, scale), shaped (unit, 2, channel):
    the z-score folded into the features' own pass (:mod:`.fusion`)."""
    params = {**DEFAULTS, **params}
    check_feature_parameters(params)
    windows = ds[params["variable"]]
    data = whole_windows(dask_array(windows))
    options = kernel_options(params, windows.sizes["offset"], float(ds.attrs["sample_rate"]),
                             data.dtype)
    n_out = feature_count(options)
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
    return with_window_features(ds, combined, params)


def kernel_options(params: Mapping[str, Any], size: int, rate: float, dtype: Any
                   ) -> dict[str, Any]:
    """:func:`~..compute.window_features.feature_options` for windows of ``size``
    samples at ``rate`` Hz; a band above the Nyquist frequency is refused."""
    nyquist = rate / 2
    for lo, hi in params["bands"]:
        if lo >= nyquist:
            raise PipelineDefinitionError(f"band_power: band [{lo}, {hi}) starts above the "
                                          f"Nyquist frequency {nyquist:g} Hz")
    return feature_options(size, rate, dtype, bands=params["bands"], taper=params["taper"],
                           log=params["log"], stats=params["stats"])


def with_window_features(ds: xr.Dataset, combined: da.Array, params: Mapping[str, Any]
                         ) -> xr.Dataset:
    """``ds`` with ``combined`` (unit, window, channel, band powers + stats) as the
    ``band_power`` and ``window_stats`` variables ``params`` ask for."""
    bands, stats = params["bands"], params["stats"]
    dims = ("unit", "window", "channel")
    if bands:
        attrs = {"long_name": "band power",
                 "units": "log10(signal^2)" if params["log"] else "signal^2",
                 "taper": params["taper"]}
        ds = ds.assign(band_power=((*dims, "band"), combined[..., : len(bands)], attrs)
                       ).assign_coords(band=[f"{lo:g}-{hi:g}Hz" for lo, hi in bands])
    if stats:
        ds = ds.assign(window_stats=((*dims, "stat"), combined[..., len(bands):],
                                     {"long_name": "window statistics"})
                       ).assign_coords(stat=list(stats))
    return ds


def feature_parameters(params: Mapping[str, Any], fixed: Mapping[str, Any]) -> dict[str, Any]:
    """Every parameter of the window features for a feature step's ``params`` and the
    ones it ``fixed`` (its :class:`~..registry.Fusion`)."""
    return {**DEFAULTS, **fixed, **params}

