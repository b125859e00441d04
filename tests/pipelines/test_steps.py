"""Each step against an independent NumPy/SciPy computation on small data."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import scipy.stats
import xarray as xr

from suanli import datasets
from suanli.pipelines import get_step, step_names

RATE = 256.0


def _apply(name: str, ds: xr.Dataset, **params: object) -> xr.Dataset:
    return get_step(name).function(ds, **params)


def _panel(values: np.ndarray, **extra: object) -> xr.Dataset:
    ds = datasets.from_arrays(values, sample_rate=RATE, **extra)  # type: ignore[arg-type]
    return ds.chunk({"unit": 1, "time": 700})  # chunks that do not align with windows


@pytest.fixture
def noisy() -> np.ndarray:
    rng = np.random.default_rng(1)
    t = np.arange(4096) / RATE
    tone = np.sin(2 * np.pi * 30 * t)[None, :, None]
    return (3 + 2 * tone + rng.standard_normal((3, 4096, 2))).astype(np.float32)


def test_builtin_steps_are_registered() -> None:
    assert {"fill_gaps", "zscore", "window", "band_power", "window_stats", "split"} <= set(
        step_names())


def test_fill_gaps_matches_numpy_interp_and_leaves_long_gaps(noisy: np.ndarray) -> None:
    values = noisy.copy()
    values[0, 695:705, 0] = np.nan     # across a chunk boundary (700)
    values[1, 100:400, 1] = np.nan     # longer than max_gap: stays
    values[2, :3, 0] = np.nan          # at the start: nearest value
    out = _apply("fill_gaps", _panel(values), max_gap=64).signal.values
    idx = np.arange(values.shape[1])
    row = values[0, :, 0]
    ok = ~np.isnan(row)
    np.testing.assert_allclose(out[0, :, 0], np.interp(idx, idx[ok], row[ok]), rtol=1e-5)
    assert np.isnan(out[1, 100:400, 1]).all()
    np.testing.assert_allclose(out[2, :3, 0], values[2, 3, 0])
    assert np.isfinite(np.delete(out, np.s_[100:400], axis=1)).all()


def test_fill_gaps_does_not_depend_on_chunking(noisy: np.ndarray) -> None:
    values = noisy.copy()
    values[0, 1020:1030, 0] = np.nan   # across a boundary of the 1024 and 20 chunkings
    values[1, 990:1010, 1] = np.nan    # across 999 (333) and 1000 (20)
    values[1, 1990:2030, 0] = np.nan   # longer than max_gap, across 1998 (333)
    values[2, -5:, 1] = np.nan         # at the end of the series
    whole = _apply("fill_gaps", _panel(values).chunk({"time": -1}), max_gap=32).signal.values
    assert np.isnan(whole[1, 1990:2030, 0]).all()
    assert np.isfinite(np.delete(whole, np.s_[1990:2030], axis=1)).all()
    # Chunks shorter than max_gap take their neighbours' edges from several chunks.
    for size in (1024, 333, 20):
        chunked = _panel(values).chunk({"time": size})
        out = _apply("fill_gaps", chunked, max_gap=32).signal.values
        np.testing.assert_array_equal(out, whole, err_msg=f"time chunks of {size}")


def test_zscore_matches_numpy(noisy: np.ndarray) -> None:
    out = _apply("zscore", _panel(noisy)).signal.values
    values = noisy.astype(np.float64)
    expected = (values - values.mean(axis=1, keepdims=True)) / values.std(axis=1, keepdims=True)
    np.testing.assert_allclose(out, expected, atol=2e-5)


def test_zscore_does_not_depend_on_chunking(noisy: np.ndarray) -> None:
    values = noisy.copy()
    values[1, 50:60, 0] = np.nan
    merged = _apply("zscore", _panel(values)).signal.values        # time in chunks of 700
    whole = _apply("zscore", _panel(values).chunk({"time": -1})).signal.values
    np.testing.assert_allclose(whole, merged, rtol=1e-5, atol=1e-6)
    assert np.isnan(whole[1, 50:60, 0]).all()


def test_zscore_ignores_nan_and_constant_series() -> None:
    values = np.ones((1, 100, 2), dtype=np.float32)
    values[0, :, 1] = np.arange(100)
    values[0, 10, 1] = np.nan
    out = _apply("zscore", _panel(values)).signal.values
    np.testing.assert_allclose(out[0, :, 0], 0.0)
    column = np.delete(values[0, :, 1], 10)
    np.testing.assert_allclose(np.delete(out[0, :, 1], 10),
                               (column - column.mean()) / column.std(), atol=1e-5)


def test_window_reshapes_and_keeps_labels(noisy: np.ndarray) -> None:
    ds = _panel(noisy, label=["a", "b", "a"])
    out = _apply("window", ds, size=256)
    assert out.windows.dims == ("unit", "window", "offset", "channel")
    assert out.sizes["window"] == 16
    np.testing.assert_array_equal(out.windows.values[1, 3, :, 0], noisy[1, 768:1024, 0])
    assert out.label.values.tolist() == ["a", "b", "a"]
    np.testing.assert_array_equal(out.window_start.values, np.arange(16) * 256)


@pytest.mark.parametrize("taper", ["hann", "none"])
def test_band_power_matches_scipy_periodogram(noisy: np.ndarray, taper: str) -> None:
    bands = [[1, 20], [20, 40], [40, 128]]
    windows = _apply("window", _panel(noisy), size=256)
    out = _apply("band_power", windows, bands=bands, taper=taper).band_power.values
    segment = noisy[2, 512:768, 1].astype(np.float64)
    freqs, psd = scipy.signal.periodogram(segment, fs=RATE, window="hann" if taper == "hann"
                                          else "boxcar", detrend="constant", scaling="density")
    df = freqs[1] - freqs[0]
    expected = [psd[(freqs >= lo) & (freqs < hi)].sum() * df for lo, hi in bands]
    np.testing.assert_allclose(out[2, 2, 1], expected, rtol=1e-4)
    # the 30 Hz tone of amplitude 2 carries variance 2: all in the 20-40 Hz band
    assert out[:, :, 0, 1].mean() == pytest.approx(2.0, rel=0.1)
    logged = _apply("band_power", windows, bands=bands, taper=taper, log=True).band_power.values
    np.testing.assert_allclose(logged, np.log10(out), rtol=1e-5, atol=1e-6)


def test_window_stats_match_scipy(noisy: np.ndarray) -> None:
    windows = _apply("window", _panel(noisy), size=512)
    out = _apply("window_stats", windows)
    segment = noisy[1, 1024:1536, 0].astype(np.float64)
    got = out.window_stats.sel(unit=1, window=2, channel="ch0")
    rms = np.sqrt(np.mean(segment ** 2))
    expected = {
        "mean": segment.mean(), "std": segment.std(), "rms": rms,
        "skewness": scipy.stats.skew(segment), "kurtosis": scipy.stats.kurtosis(segment),
        "peak_to_peak": np.ptp(segment), "crest_factor": np.abs(segment).max() / rms,
    }
    for stat, value in expected.items():
        assert float(got.sel(stat=stat)) == pytest.approx(value, rel=1e-3, abs=1e-4), stat


def test_split_is_stratified_reproducible_and_honours_existing() -> None:
    values = np.zeros((20, 8, 1), dtype=np.float32)
    labels = np.repeat(["x", "y"], 10)
    ds = datasets.from_arrays(values, sample_rate=1, label=labels)
    first = _apply("split", ds, test_fraction=0.3, seed=4).split.values
    assert (first == _apply("split", ds, test_fraction=0.3, seed=4).split.values).all()
    for group in ("x", "y"):
        assert list(first[labels == group]).count("test") == 3
    given = datasets.from_arrays(values, sample_rate=1, label=labels, split=["train"] * 19
                                 + ["test"])
    assert list(_apply("split", given).split.values).count("test") == 1


def test_window_takes_each_windows_last_label_for_per_sample_labels(noisy: np.ndarray) -> None:
    labels = np.zeros((3, 4096), dtype=np.int64)
    labels[:, 300:] = 1
    ds = _panel(noisy).assign(label=(("unit", "time"), labels))
    out = _apply("window", ds, size=256)
    assert out.label.dims == ("unit", "window")
    assert out.label.values[0].tolist() == [0] + [1] * 15


def test_window_features_equals_the_separate_steps_after_preprocessing(noisy: np.ndarray
                                                                        ) -> None:
    values = noisy.copy()
    values[0, 100:110, 1] = np.nan
    ds = _panel(values)
    for name, params in (("fill_gaps", {}), ("zscore", {}), ("window", {"size": 256})):
        ds = _apply(name, ds, **params)
    bands = [[1, 20], [20, 40], [40, 128]]
    fused = _apply("window_features", ds, bands=bands, log=True)
    separate = _apply("window_stats", _apply("band_power", ds, bands=bands, log=True))
    np.testing.assert_array_equal(fused.band_power.values, separate.band_power.values)
    np.testing.assert_array_equal(fused.window_stats.values, separate.window_stats.values)
    assert np.isfinite(fused.band_power.values).all()
