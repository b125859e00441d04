"""resample, lags, rolling, calendar, origins and the time split, each against an
independent computation (pandas, the holidays package, a hand count)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from suanli import datasets
from suanli.pipelines.errors import PipelineDefinitionError
from suanli.pipelines.pipeline import Pipeline
from suanli.pipelines.steps.calendar import calendar
from suanli.pipelines.steps.forecasting import forecast_target, origins
from suanli.pipelines.steps.lags import lags, rolling
from suanli.pipelines.steps.resample import resample
from suanli.pipelines.steps.split import split

CHANNELS = ["a", "b", "c"]


def _panel(times: pd.DatetimeIndex | np.ndarray, *, units: int = 3, dtype: type = np.float32,
           nan_share: float = 0.2, seed: int = 0, time_chunk: int = 437) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    values = rng.normal(100, 30, (units, len(times), len(CHANNELS))).astype(dtype)
    values[rng.random(values.shape) < nan_share] = np.nan
    values[:, 100:140] = np.nan  # whole bins with no value
    return xr.Dataset({"signal": (("unit", "time", "channel"), values)},
                      coords={"time": times, "channel": CHANNELS,
                              "unit": np.arange(units)}).chunk({"time": time_chunk,
                                                                "unit": 2})


def _frame(ds: xr.Dataset, unit: int) -> pd.DataFrame:
    return pd.DataFrame(ds.signal.isel(unit=unit).values.astype(np.float64),
                        index=pd.DatetimeIndex(ds.time.values), columns=CHANNELS)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("how", ["mean", "sum", "min", "max", "last", "count"])
def test_resample_equals_pandas_bit_for_bit(dtype: type, how: str) -> None:
    # 5-minute readings from 07:13, hourly bins: the first bin is partial, chunks
    # of 437 samples cut bins in two, and samples 100-140 leave whole bins empty.
    ds = _panel(pd.date_range("2024-03-05 07:13", periods=3000, freq="5min"), dtype=dtype)
    for min_count in (0, 6):
        out = resample(ds, every="1h", how=how, min_count=min_count).compute()
        for unit in range(3):
            bins = _frame(ds, unit).resample("1h")
            expected = (getattr(bins, how)(min_count=min_count)
                        if how in ("sum", "min", "max", "last") else getattr(bins, how)())
            np.testing.assert_array_equal(out.time.values, expected.index.values)
            # float32: pandas' float64 result rounded once (its own float32 sums round
            # at every step); float64: pandas' values exactly.
            np.testing.assert_array_equal(out.signal.isel(unit=unit).values,
                                          expected.to_numpy().astype(dtype))
    assert out.signal.dtype == dtype
    assert datasets.sample_rate(out) == pytest.approx(1 / 3600)


def test_resample_irregular_times_and_per_channel_aggregations() -> None:
    # Timestamps missing at random (gaps in the grid) and seconds off the grid.
    rng = np.random.default_rng(3)
    grid = pd.date_range("2024-06-01", periods=6000, freq="1min")
    kept = np.sort(rng.choice(6000, 4200, replace=False))
    times = grid[kept] + pd.to_timedelta(rng.integers(0, 50, kept.size), unit="s")
    ds = _panel(times, time_chunk=500)
    how = {"a": "sum", "b": "max"}  # c: mean
    out = resample(ds, every="15min", how=how, min_count=3).compute()
    for unit in range(3):
        bins = _frame(ds, unit).resample("15min")
        expected = pd.DataFrame({"a": bins["a"].sum(min_count=3), "b": bins["b"].max(
            min_count=3), "c": bins["c"].mean()})
        np.testing.assert_array_equal(out.time.values, expected.index.values)
        np.testing.assert_array_equal(out.signal.isel(unit=unit).values,
                                      expected.to_numpy().astype(np.float32))


def test_resample_reads_utc_and_cf_times_and_label_becomes_any() -> None:
    ds = datasets.open("synthetic://traffic?units=2&days=3&seed=1")  # CF seconds since
    out = resample(ds, every="1h", how="mean").compute()
    assert out.time.values[0] == np.datetime64("2024-01-01T00:00")
    assert out.sizes["time"] == 72
    label = ds.label.values.reshape(2, 72, 12)
    np.testing.assert_array_equal(out.label.values, label.max(axis=2))
    utc = pd.date_range("2024-03-05 07:13", periods=400, freq="5min", tz="UTC")
    naive = _panel(utc.tz_localize(None))
    expected = _frame(naive, 0).set_axis(utc).resample("1h").mean()  # pandas, in UTC
    got = resample(naive, every="1h", how="mean").compute()
    np.testing.assert_array_equal(got.signal.isel(unit=0).values,
                                  expected.to_numpy().astype(np.float32))
    with pytest.raises(PipelineDefinitionError, match="finer than the data's spacing"):
        resample(_panel(pd.date_range("2024-01-01", periods=50, freq="1h").append(
            pd.DatetimeIndex(["2024-02-01"]))), every="1min")


def _hourly(units: int = 4, hours: int = 24 * 21, chunk: int = 100) -> xr.Dataset:
    ds = _panel(pd.date_range("2024-01-01", periods=hours, freq="1h"), units=units,
                nan_share=0.1, time_chunk=chunk, dtype=np.float64)
    ds.attrs["sample_rate"] = 1 / 3600
    return ds


def test_lags_and_rolling_equal_pandas_shift_and_rolling_across_chunks() -> None:
    ds = _hourly()
    lagged = lags(ds, channels=["a", "c"], lags=[0, 1, 5, "1D"], seasonal=[]).compute()
    rolled = rolling(ds, channels=["b"], spans=["6h", 30], stats=["mean", "std", "min", "max"],
                     min_share=0.5).compute()
    for unit in range(4):
        frame = _frame(ds, unit)
        expected = np.stack([frame[c].shift(k) for c in ("a", "c") for k in (0, 1, 5, 24)],
                            axis=1)
        np.testing.assert_array_equal(lagged.lags.isel(unit=unit).values, expected)
        columns = []
        for span in (6, 30):
            window = frame["b"].rolling(span, min_periods=int(np.ceil(span / 2)))
            columns += [window.mean(), window.std(), window.min(), window.max()]
        np.testing.assert_allclose(rolled["rolling"].isel(unit=unit).values,
                                   np.stack(columns, axis=1), rtol=1e-9, atol=1e-9)
    assert list(lagged.lags_feature.values[:4]) == ["a(t)", "a(t-1)", "a(t-5)", "a(t-24)"]
    assert list(rolled.rolling_feature.values[:2]) == ["b:mean(6h)", "b:std(6h)"]


def test_seasonal_lags_point_at_the_target_time_never_after_the_origin() -> None:
    ds = forecast_target(_hourly(), channel="a", horizon=3)
    out = lags(ds, lags=[], seasonal=["1D", "7D"], seasons=2).compute()
    # Target t+3: the same hour 1 and 2 days back is t-21 and t-45; weeks: t-165, t-333.
    assert list(out.lags_feature.values) == ["a(t-21)", "a(t-45)", "a(t-165)", "a(t-333)"]
    ahead = forecast_target(_hourly(), channel="a", horizon="30h")
    assert list(lags(ahead, lags=[], seasonal=["1D"]).lags_feature.values) == ["a(t-18)"]


def test_no_feature_reads_past_the_origin() -> None:
    """Values after the origin changed (even to NaN) leave every feature at the origin
    as it was; only the label (the target ahead) may see them."""
    ds = datasets.open("synthetic://traffic?units=3&days=35&seed=2")
    pipe = Pipeline.from_mapping({"name": "leak", "steps": [
        {"resample": {"every": "1h", "how": {"flow": "sum", "rain": "sum"}}},
        {"forecast_target": {"channel": "flow", "horizon": 2, "scale": "7D"}},
        {"lags": {"lags": [0, 1, 24], "seasonal": ["1D", "7D"]}},
        {"rolling": {"spans": ["3h", "7D"], "stats": ["mean", "std", "min", "max"]}},
        {"lags": {"channels": ["temperature", "rain"], "lags": [0], "into": "weather"}},
        {"calendar": {"features": ["hour_of_day_type", "holiday"]}},
        {"origins": {"every": "1h"}}]})
    before = pipe.transform(ds).drop_vars("signal").compute()
    origin = 24 * 28 + 7  # an origin in the fifth week, 07:00
    cut = (origin + 1) * 12  # the first 5-minute sample after the origin's hour
    changed = ds.copy()
    signal = ds.signal.values.copy()
    signal[:, cut:] = np.where(np.random.default_rng(0).random(signal[:, cut:].shape) < 0.5,
                               np.nan, signal[:, cut:] * 3)
    changed["signal"] = (ds.signal.dims, signal)
    after = pipe.transform(changed).drop_vars("signal").compute()
    for name in ("lags", "rolling", "weather", "calendar", "baselines", "forecast_scale"):
        np.testing.assert_array_equal(before[name].isel(window=slice(0, origin + 1)).values,
                                      after[name].isel(window=slice(0, origin + 1)).values,
                                      err_msg=name)
    # The label at the origin is the target 2 h ahead: it does change.
    assert not np.array_equal(before.label.isel(window=origin).values,
                              after.label.isel(window=origin).values)


def test_calendar_features_by_hand() -> None:
    times = pd.DatetimeIndex(["2024-03-29 08:00", "2024-03-30 08:00", "2024-03-31 23:00",
                              "2024-04-02 17:00"])  # Good Friday (DE), Sat, Sun, Tue
    ds = xr.Dataset(coords={"time": times})
    out = calendar(ds, features=["holiday", "day_type", "hour", "day_of_week"],
                   encoding="onehot", country="DE", at="time")
    table = pd.DataFrame(out.calendar.values, columns=out.calendar_feature.values)
    assert table["holiday"].tolist() == [1, 0, 0, 0]
    assert table["day_type=sunday_or_holiday"].tolist() == [1, 0, 1, 0]
    assert table["day_type=saturday"].tolist() == [0, 1, 0, 0]
    assert table["hour=17"].tolist() == [0, 0, 0, 1]
    assert table["day_of_week=1"].tolist() == [0, 0, 0, 1]
    cyclic = calendar(ds, features=["hour"], encoding="cyclic", at="time")
    np.testing.assert_allclose(cyclic.calendar.values[3], [np.sin(2 * np.pi * 17 / 24),
                                                           np.cos(2 * np.pi * 17 / 24)],
                               rtol=1e-6)
    # At the target time: two hours ahead of 2024-03-31 23:00 is Monday 01:00.
    ahead = xr.Dataset(coords={"time": times}, attrs={"forecast_horizon": 2,
                                                     "sample_rate": 1 / 3600})
    shifted = calendar(ahead, features=["hour"], country="DE")
    assert shifted.calendar.sel(calendar_feature="hour=1").values.tolist() == [0, 0, 1, 0]
    with pytest.raises(PipelineDefinitionError, match="need a country"):
        calendar(xr.Dataset(coords={"time": times}), features=["holiday"])


def test_origins_and_split_by_time_leave_a_gap_of_the_horizon() -> None:
    ds = forecast_target(_hourly(hours=24 * 10), channel="a", horizon=3)
    minutes = origins(ds, every="6h")
    assert minutes.sizes["window"] == 40
    assert pd.DatetimeIndex(minutes.origin_time.values).hour.isin([0, 6, 12, 18]).all()
    hourly = origins(ds, every=1)
    cut = pd.Timestamp("2024-01-08")
    sides = split(hourly, test_from="2024-01-08").split.values
    times = pd.DatetimeIndex(hourly.origin_time.values)
    assert (sides[times >= cut] == "test").all()
    # Origins 21:00-23:00 of the day before: their target is on or after the cut.
    assert list(times[sides == "gap"].hour) == [21, 22, 23]
    assert (sides[times < cut - pd.Timedelta("3h")] == "train").all()
    with pytest.raises(PipelineDefinitionError, match="leaves no test"):
        split(hourly, test_from="2030-01-01")


@pytest.mark.parametrize(("size", "step"), [(50, 10), (64, 1), (33, 7), ("5s", "1s")])
def test_overlapping_windows_and_their_features(size: int | str, step: int | str) -> None:
    rng = np.random.default_rng(1)
    values = rng.normal(size=(3, 1000, 2)).astype(np.float32)
    label = (np.arange(1000) % 7 == 0).astype(np.int8)[None].repeat(3, 0)
    ds = xr.Dataset({"signal": (("unit", "time", "channel"), values),
                     "label": (("unit", "time"), label)},
                    attrs={"sample_rate": 10.0}).chunk({"time": 130})
    pipe = Pipeline.from_mapping({"name": "w", "steps": [
        {"window": {"size": size, "step": step}},
        {"window_stats": {"stats": ["mean", "std"]}}]})
    out = pipe.transform(ds).compute()
    width = out.attrs["window_size"]
    stride = out.attrs["window_step"]
    starts = np.arange(0, 1000 - width + 1, stride)
    expected = np.stack([values[:, s:s + width] for s in starts], axis=1)
    np.testing.assert_array_equal(out.windows.values, expected)
    # Labels (and window_end) at each window's last sample.
    np.testing.assert_array_equal(out.label.values, label[:, starts + width - 1])
    np.testing.assert_array_equal(out.window_end.values, starts + width - 1)
    stats = out.window_stats.transpose("unit", "window", "channel", "stat").values
    np.testing.assert_allclose(stats[..., 0], expected.mean(axis=2), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats[..., 1], expected.std(axis=2), rtol=1e-4, atol=1e-5)
