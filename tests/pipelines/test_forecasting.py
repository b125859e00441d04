"""traffic-forecast end to end, and the forecast metrics against hand computations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from suanli import cluster, datasets, pipelines
from suanli.pipelines.forecast_evaluation import ForecastRows, forecast_metrics


def test_forecast_metrics_by_hand() -> None:
    actual = np.array([10.0, 0.0, 20.0, 40.0])
    rows = ForecastRows(
        units=np.array(["x", "x", "y", "y"]), origins=np.arange(4),
        actual=actual, predicted=np.array([12.0, 1.0, 18.0, 44.0]),
        baselines={"persistence": np.array([5.0, 5.0, 25.0, 30.0]),
                   "seasonal_naive_7D": np.array([10.0, 2.0, 30.0, 40.0])},
        mase_scale={"x": 2.0, "y": 4.0}, mase_baseline="seasonal_naive_7D", unscored=3)
    metrics = forecast_metrics(rows, horizon=1)
    errors = np.array([2.0, 1.0, -2.0, 4.0])
    assert metrics["rmse"] == pytest.approx(np.sqrt((4 + 1 + 4 + 16) / 4))
    assert metrics["mae"] == pytest.approx(9 / 4)
    # MAPE over the non-zero actual values only: 2/10, 2/20, 4/40.
    assert metrics["mape"] == pytest.approx(100 * (0.2 + 0.1 + 0.1) / 3)
    assert metrics["mape_rows_left_out"] == 1
    # MASE: each unit's MAE over its in-sample scale, then the mean over units.
    assert metrics["mase"] == pytest.approx(((2 + 1) / 2 / 2.0 + (2 + 4) / 2 / 4.0) / 2)
    persistence_rmse = np.sqrt((25 + 25 + 25 + 100) / 4)
    naive_rmse = np.sqrt((0 + 4 + 100 + 0) / 4)
    assert metrics["baselines"]["persistence"]["rmse"] == pytest.approx(persistence_rmse)
    assert metrics["best_baseline"] == "seasonal_naive_7D"
    assert metrics["skill"]["seasonal_naive_7D"] == pytest.approx(
        1 - np.sqrt(np.mean(errors ** 2)) / naive_rmse)
    assert metrics["per_unit"]["y"]["model"]["mae"] == pytest.approx(3.0)
    assert metrics["scored_points"] == 4 and metrics["unscored_points"] == 3


def test_traffic_forecast_beats_the_best_baseline(local_cluster: cluster.Cluster,
                                                  tmp_path: Path) -> None:
    result = pipelines.run("traffic-forecast", cluster=local_cluster, output=tmp_path / "run")
    metrics = json.loads((result.output / "metrics.json").read_text())
    best = metrics["best_baseline"]
    # The goal the issue sets: 20% lower RMSE than the best naive forecast.
    assert metrics["skill"][best] >= 0.2, metrics["skill"]
    assert metrics["rmse"] < min(b["rmse"] for b in metrics["baselines"].values())
    assert 0 < metrics["mase"] < 1
    assert set(metrics["per_unit"]) == {str(u) for u in range(40)}
    for plot in ("forecasts", "error_by_hour_of_week"):
        assert (result.output / "plots" / f"{plot}.png").stat().st_size > 10_000
    # The baselines are the hourly sums a horizon ahead, one day and one week back,
    # as pandas computes them from the raw readings.
    features = datasets.open(str(result.outputs["features"]))
    raw = datasets.open("synthetic://traffic?units=40&days=91&seed=0")
    flow = raw.signal.sel(channel="flow").isel(unit=5).values
    hourly = pd.Series(flow.astype(np.float64), index=pd.DatetimeIndex(
        datasets.timestamps(raw))).resample("1h").sum(min_count=12)
    expected = np.stack([hourly, hourly.shift(23), hourly.shift(167)], axis=1)
    np.testing.assert_allclose(features.baselines.isel(unit=5).values, expected, rtol=1e-6)
    # The label is the next hour relative to the past week's mean, known once half
    # a week has been seen.
    scale = features.forecast_scale.isel(unit=5).values
    known = np.isfinite(scale)
    assert known[:83].sum() == 0 and known[83:].mean() > 0.95
    np.testing.assert_allclose(scale[known], hourly.rolling(168, min_periods=84).mean()
                               .to_numpy()[known], rtol=1e-5)
    np.testing.assert_allclose((features.label.isel(unit=5).values * scale)[known],
                               hourly.shift(-1).to_numpy()[known], rtol=1e-5)
    # Rolling origin: weekly cut-offs from the test date, an expanding training set.
    folds = metrics["backtest"]["folds"]
    assert [f["cutoff"][:10] for f in folds] == ["2024-03-04", "2024-03-11", "2024-03-18"]
    assert folds[0]["train_rows"] < folds[1]["train_rows"] < folds[2]["train_rows"]
    assert all(f["skill"] > 0 and f["refit"] for f in folds)
    assert "backtest  3 folds" in result.summary()
    sides = features.split.values
    assert set(np.unique(sides)) == {"train", "gap", "test"}
    assert pd.Timestamp(features.origin_time.values[sides == "test"][0]) == \
        pd.Timestamp("2024-03-04")
    # The model file, applied on one machine to the same data, gives back the run's
    # forecasts in the target's units: the same RMSE on the same points.
    model = pipelines.load_model(result.output / "model.npz")
    predicted = pipelines.predict_dataset(model, raw)
    scored = ((sides == "test")[None, :] & np.isfinite(predicted.prediction.values)
              & np.isfinite(predicted.label.values)
              & np.isfinite(features.baselines.values).all(axis=2))
    error = (predicted.prediction.values - predicted.label.values)[scored]
    assert scored.sum() == metrics["scored_points"]
    assert np.sqrt(np.mean(error.astype(np.float64) ** 2)) == pytest.approx(metrics["rmse"],
                                                                            rel=1e-4)


def test_backtest_fitted_once_and_its_settings(local_cluster: cluster.Cluster,
                                              tmp_path: Path) -> None:
    result = pipelines.run("traffic-forecast", "synthetic://traffic?units=8&days=63&seed=3",
                           cluster=local_cluster, output=tmp_path / "once",
                           overrides={"split.test_from": "2024-02-12",
                                      "evaluate.backtest.refit": False,
                                      "evaluate.backtest.folds": 2})
    folds = result.metrics["backtest"]["folds"]
    assert [f["refit"] for f in folds] == [True, False]
    assert folds[0]["train_rows"] == folds[1]["train_rows"]  # the model of the first cut
    with pytest.raises(pipelines.PipelineError, match=r"fold 3 .* has no decision points"):
        pipelines.run("traffic-forecast", "synthetic://traffic?units=4&days=63&seed=3",
                      cluster=local_cluster, output=tmp_path / "late",
                      overrides={"split.test_from": "2024-02-20",
                                 "evaluate.backtest.every": "7D"})


def test_traffic_forecast_on_a_users_gappy_table(local_cluster: cluster.Cluster,
                                                 tmp_path: Path) -> None:
    """A long table with datetime times, rows missing at random and a morning missing
    for every sensor, no label and no holidays attribute: resample makes the grid
    regular, the calendar takes the country given, missing targets are not scored."""
    city = datasets.open("synthetic://traffic?units=4&days=49&seed=6").load()
    times = datasets.timestamps(city)
    frame = pd.concat([pd.DataFrame(city.signal.sel(unit=u).values,
                                    columns=city.channel.values).assign(unit=f"s{u}", time=times)
                       for u in city.unit.values])
    kept = np.random.default_rng(1).random(len(frame)) > 0.02
    frame = frame[kept & ~frame["time"].between("2024-02-05 06:00", "2024-02-05 11:55")]
    panel = datasets.from_frame(frame, unit="unit", time="time")
    assert "label" not in panel and panel.sizes["time"] < len(times)
    overrides = {"split.test_from": "2024-02-05", "evaluate.backtest.folds": 1,
                 "resample.how": {"flow": "mean", "rain": "sum"}, "resample.min_count": 1}
    with pytest.raises(pipelines.PipelineDefinitionError, match="need a country"):
        pipelines.run("traffic-forecast", panel, cluster=local_cluster,
                      output=tmp_path / "no-country", overrides=overrides)
    result = pipelines.run("traffic-forecast", panel, cluster=local_cluster,
                           output=tmp_path / "run",
                           overrides={**overrides, "calendar.country": "DE"})
    metrics = result.metrics
    features = datasets.open(str(result.outputs["features"]))
    hours = pd.DatetimeIndex(features.origin_time.values)
    assert hours[0] == pd.Timestamp("2024-01-01") and (np.diff(hours) == pd.Timedelta("1h")).all()
    # The morning with no rows at all has no target: it is not scored.
    morning = (hours >= "2024-02-05 06:00") & (hours < "2024-02-05 12:00")
    assert np.isnan(features.baselines.values[:, morning, 0]).all()
    assert metrics["scored_points"] > 0.8 * 4 * 14 * 24
    assert metrics["skill"][metrics["best_baseline"]] > 0.1
