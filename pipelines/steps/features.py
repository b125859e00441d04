"""Feature steps on windows: spectral band power and window statistics.

All three steps run one computation (:mod:`..compute.window_features`) over
``windows(unit, window, offset, channel)`` block by block; ``window_features``
shares its passes between both feature sets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction
from itertools import pairwise
from typing import Any

import dask.array as da
import numpy as np
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
    bands = params["bands"]
    if isinstance(bands, Mapping):
        if set(bands) != {"nyquist_fraction"}:
            raise PipelineDefinitionError(f"band_power: bands is a list of [low, high) in "
                                          f"Hz, auto, or {{nyquist_fraction: [[low, high], "
                                          f"...]}}, got {bands!r}")
        for band in bands["nyquist_fraction"]:
            low, high = (_fraction(v, band) for v in _pair(band))
            if not 0 <= low < high <= 1:
                raise PipelineDefinitionError(f"band_power: a band in fractions of the "
                                              f"Nyquist frequency has 0 <= low < high <= 1, "
                                              f"got {band!r}")
    elif bands != "auto":
        if isinstance(bands, str):
            raise PipelineDefinitionError(f"band_power: bands is a list of [low, high) in "
                                          f"Hz, auto, or {{nyquist_fraction: ...}}, got "
                                          f"{bands!r}")
        for band in bands:
            low, high = _pair(band)
            if not all(isinstance(v, int | float) and not isinstance(v, bool)
                       for v in (low, high)) or not 0 <= low < high:
                raise PipelineDefinitionError(f"band_power: each band is [low, high) in Hz "
                                              f"with 0 <= low < high, got {band!r}")
    if not params["bands"] and not params["stats"]:
        raise PipelineDefinitionError("window_features: give bands, stats or both")


def _pair(band: Any) -> tuple[Any, Any]:
    if not (isinstance(band, Sequence) and not isinstance(band, str) and len(band) == 2):
        raise PipelineDefinitionError(f"band_power: a band is [low, high), got {band!r}")
    return band[0], band[1]


def _fraction(value: Any, band: Any) -> float:
    """A number, or a fraction written ``1/512``."""
    try:
        return float(Fraction(value) if isinstance(value, str) else value)
    except (ValueError, TypeError, ZeroDivisionError):
        raise PipelineDefinitionError(f"band_power: {value!r} in band {band!r} is not a "
                                      "number or a fraction such as 1/512") from None


def hz_bands(bands: Any, size: int, rate: float) -> list[list[float]]:
    """``bands`` in Hz for windows of ``size`` samples at ``rate`` Hz: as given; ``auto``,
    up to 8 log-spaced bands from the lowest frequency a window resolves to the
    Nyquist frequency, each holding at least one frequency bin; or
    ``{nyquist_fraction: ...}``, fractions of the Nyquist frequency."""
    if isinstance(bands, str):  # auto: edges on frequency bins, each band holding one or more
        top = size / 2  # the Nyquist frequency, in bins
        edges = [1.0]
        for edge in np.geomspace(1, top, 9)[1:-1]:
            edge = max(float(np.round(edge)), edges[-1] + 1)  # at least one bin further
            if edge < top:
                edges.append(edge)
        edges.append(top)
        return [[low * rate / size, high * rate / size] for low, high in pairwise(edges)]
    if isinstance(bands, Mapping):
        nyquist = rate / 2
        return [[_fraction(low, band) * nyquist, _fraction(high, band) * nyquist]
                for band in bands["nyquist_fraction"] for low, high in [_pair(band)]]
    return [list(band) for band in bands]


def resolve_bands(params: Mapping[str, Any], ds: xr.Dataset) -> dict[str, Any]:
    """``params`` with ``bands`` in Hz for the windows of ``ds``."""
    if "bands" not in params or not isinstance(params["bands"], str | Mapping):
        return dict(params)
    windows = ds[params.get("variable", "windows")]
    return {**params, "bands": hz_bands(params["bands"], int(windows.sizes["offset"]),
                                        float(ds.attrs["sample_rate"]))}


def _check_window_stats(params: Mapping[str, Any]) -> None:
    if not params["stats"]:
        raise PipelineDefinitionError(f"window_stats: name at least one of {', '.join(STATS)}")
    check_feature_parameters({**params, "bands": ()})


@step("band_power", check=lambda p: check_feature_parameters({**p, "stats": ()}),
      fusion=Fusion("window_features", {"stats": ()}), resolve=resolve_bands,
      flexible=("bands",))
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


@step("window_features", check=check_feature_parameters, fusion=Fusion("window_features"),
      resolve=resolve_bands, flexible=("bands",))
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
    params = resolve_bands(params, ds)
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
    bands = hz_bands(params["bands"], size, rate)
    for lo, hi in bands:
        if lo >= nyquist:
            raise PipelineDefinitionError(f"band_power: band [{lo}, {hi}) starts above the "
                                          f"Nyquist frequency {nyquist:g} Hz")
    return feature_options(size, rate, dtype, bands=bands, taper=params["taper"],
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

