"""The traffic and vitals generators: deterministic per chunk, realistic, lazy at any size."""

from __future__ import annotations

import resource

import numpy as np
import pytest

from suanli import datasets


@pytest.mark.parametrize("uri", ["synthetic://traffic?units=7&days=9&seed=4",
                                 "synthetic://vitals?units=5&hours=7&seed=4"])
def test_same_seed_same_bytes_whatever_the_chunking(uri: str) -> None:
    one = datasets.open(uri)
    other = datasets.open(uri + "&chunk_bytes=100000")
    assert one.signal.data.chunks != other.signal.data.chunks
    np.testing.assert_array_equal(one.signal.values, other.signal.values)
    np.testing.assert_array_equal(one.label.values, other.label.values)
    reseeded = datasets.open(uri.replace("seed=4", "seed=5"))
    assert not np.array_equal(np.nan_to_num(one.signal.values),
                              np.nan_to_num(reseeded.signal.values))


def test_traffic_has_daily_and_weekly_seasonality_and_incidents() -> None:
    ds = datasets.open("synthetic://traffic?units=30&days=56&seed=1")
    flow = ds.signal.sel(channel="flow").values
    assert datasets.sample_rate(ds) == pytest.approx(1 / 300)
    # The strongest period in every sensor's flow is one day (288 readings).
    series = np.nan_to_num(flow - np.nanmean(flow, axis=1, keepdims=True))
    power = np.abs(np.fft.rfft(series, axis=1)) ** 2
    periods = flow.shape[1] / (np.argmax(power[:, 1:], axis=1) + 1)
    assert np.allclose(periods, 288, rtol=0.01)
    # Weekends carry less traffic than weekdays.
    days = np.nanmean(flow.reshape(30, 56, 288), axis=(0, 2))
    weekday, weekend = days.reshape(8, 7)[:, :5].mean(), days.reshape(8, 7)[:, 5:].mean()
    assert weekend < 0.85 * weekday
    # Incidents: about 1.5 a week per sensor, slower and fuller road while they last.
    label = ds.label.values
    starts = ((label[:, 1:] == 1) & (label[:, :-1] == 0)).sum() + (label[:, 0] == 1).sum()
    rate = starts / (30 * 8)
    assert 1.0 < rate < 2.0, rate
    speed = ds.signal.sel(channel="speed").values
    assert np.nanmean(speed[label == 1]) < 0.6 * np.nanmean(speed[label == 0])
    outage = np.isnan(flow)
    assert 0 < outage.mean() < 0.05


def test_vitals_episode_rate_and_signature() -> None:
    ds = datasets.open("synthetic://vitals?units=40&days=3&seed=2&episodes_per_day=1.0")
    label = ds.label.values
    starts = ((label[:, 1:] == 1) & (label[:, :-1] == 0)).sum() + (label[:, 0] == 1).sum()
    rate = starts / (40 * 3)
    assert 0.7 < rate < 1.3, rate  # overlapping episodes merge, so a little under 1
    signal = ds.signal
    during = signal.where(ds.label == 1)
    calm = signal.where(ds.label == 0)
    change = (during.mean(["unit", "time"]) - calm.mean(["unit", "time"])).values
    channels = list(ds.channel.values)
    assert change[channels.index("heart_rate")] > 10
    assert change[channels.index("spo2")] < -2
    assert change[channels.index("systolic_bp")] < -8
    dropouts = np.isnan(signal.values).any(axis=2).mean()
    assert 0 < dropouts < 0.05


@pytest.mark.parametrize("uri", ["synthetic://traffic?units=200000&days=3650&seed=0",
                                 "synthetic://vitals?units=20000&days=365&seed=0"])
def test_a_tebibyte_is_defined_and_sliced_without_memory_growth(uri: str) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ds = datasets.open(uri)
    assert ds.signal.nbytes > 2**40
    piece = ds.signal.isel(unit=-1, time=slice(1000, 1500)).values
    assert piece.shape[0] == 500 and np.isfinite(piece).mean() > 0.5
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    # Only the one 48 MiB chunk holding the slice is made (float64 temporaries
    # included): a few hundred MiB at most, against the 1,048,576 MiB defined.
    assert grown_mib < 600, grown_mib
