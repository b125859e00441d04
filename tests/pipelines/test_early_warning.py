"""vitals-alerts end to end; NEWS2 points, the event label and the alert metrics by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from suanli import cluster, pipelines
from suanli.pipelines.alert_evaluation import AlertRows, alert_metrics, score_at
from suanli.pipelines.compute.alerts import auroc, average_precision, fired, threshold_for_rate
from suanli.pipelines.errors import PipelineDefinitionError
from suanli.pipelines.pipeline import load_pipeline
from suanli.pipelines.steps.early_warning import event_within, news2

# One row per band edge of the published NEWS2 chart (RCP 2017): (value, points).
CHART = {
    "resp_rate": [(8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3)],
    "spo2": [(91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0)],
    "systolic_bp": [(90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0),
                    (220, 3)],
    "heart_rate": [(40, 3), (41, 1), (50, 1), (51, 0), (90, 0), (91, 1), (110, 1), (111, 2),
                   (130, 2), (131, 3)],
    "temperature": [(35.0, 3), (35.1, 1), (36.0, 1), (36.1, 0), (38.0, 0), (38.1, 1),
                    (39.0, 1), (39.1, 2)],
}
PARAMETER = {"resp_rate": "respiration_rate", "spo2": "spo2", "systolic_bp": "systolic_bp",
             "heart_rate": "pulse", "temperature": "temperature"}


def test_news2_points_follow_the_published_chart() -> None:
    length = max(len(rows) for rows in CHART.values())
    values = np.full((1, length, 5), np.nan, dtype=np.float32)
    channels = list(CHART)
    for k, channel in enumerate(channels):
        # Fill with a value scoring 0 where the chart has fewer rows.
        normal = {"resp_rate": 16, "spo2": 98, "systolic_bp": 120, "heart_rate": 70,
                  "temperature": 37.0}[channel]
        values[0, :, k] = [v for v, _ in CHART[channel]] + [normal] * (length - len(
            CHART[channel]))
    ds = xr.Dataset({"signal": (("unit", "time", "channel"), values)},
                    coords={"channel": channels})
    out = news2(ds).news2.compute()
    for channel in channels:
        expected = [p for _, p in CHART[channel]]
        got = out.sel(news2_feature=PARAMETER[channel]).values[0, :len(expected)]
        assert got.tolist() == expected, channel
    np.testing.assert_array_equal(out.sel(news2_feature="total").values,
                                  out.isel(news2_feature=slice(0, 5)).sum("news2_feature"))
    # Charted values are rounded: 8.4 breaths/min is 8 (3 points), 8.6 is 9 (1 point).
    ds["signal"][0, :2, 0] = [8.4, 8.6]
    assert news2(ds).news2.sel(news2_feature="respiration_rate").values[0, :2].tolist() == \
        [3, 1]


def test_event_within_by_hand() -> None:
    flag = np.array([[0, 0, 0, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0]], dtype=np.int8)
    ds = xr.Dataset({"label": (("unit", "time"), flag)},
                    coords={"time": pd.date_range("2024-01-01", periods=13, freq="1h")},
                    attrs={"sample_rate": 1 / 3600})
    out = event_within(ds, horizon="2h").compute()
    nan = np.nan
    np.testing.assert_array_equal(out.label.values[0],
                                  [0, 1, 1, nan, nan, 0, 0, 1, 1, nan, 0, nan, nan])
    np.testing.assert_array_equal(out.hours_to_event.values[0][:3], [3, 2, 1])
    assert out.label.attrs["classes"] == ["no_event", "event"]


def _rows(units: list[str], hours: list[float], scores: list[float], labels: list[float],
          to_event: list[float]) -> AlertRows:
    return AlertRows(np.array(units), np.array(hours, dtype=float), np.array(labels, float),
                     np.array(to_event, float), {"model": np.array(scores, float)}, 1.0)


def test_alerts_refractory_threshold_and_metrics_by_hand() -> None:
    # Patient a: event at hour 5; patient b: none. Scores rise towards a's event.
    rows = _rows(["a"] * 5 + ["b"] * 5, [0, 1, 2, 3, 4] * 2,
                 [0.1, 0.5, 0.9, 0.8, 0.95, 0.2, 0.85, 0.1, 0.3, 0.1],
                 [0, 1, 1, 1, 1, 0, 0, 0, 0, 0], [5, 4, 3, 2, 1] + [np.nan] * 5)
    # Refractory 2 h: a alerts at 2 (0.9) and 4 (0.95), not at 3; b at 1.
    alerts = fired(rows.units, rows.hours, rows.scores["model"], 0.8, 2.0)
    assert np.flatnonzero(alerts).tolist() == [2, 4, 6]
    assert threshold_for_rate(rows.units, rows.hours, rows.scores["model"], 2.0, 2) == 0.9
    at = score_at(rows, "model", 0.8, 2.0)
    assert at["alerts"] == 3 and at["ppv"] == pytest.approx(2 / 3)
    assert at["work_up_to_detection"] == pytest.approx(1.5)
    assert at["sensitivity"] == pytest.approx(3 / 4)  # 0.9, 0.8, 0.95 of 0.5 .. 0.95
    assert at["specificity"] == pytest.approx(5 / 6)
    assert at["event_recall"] == 1.0 and at["lead_time_hours"]["median"] == 3.0
    assert at["alerts_per_100_patient_days"] == pytest.approx(100 * 3 / (10 / 24))
    # AUROC by pair counting; average precision by its definition.
    positive = rows.label == 1
    pairs = [(p > n) + 0.5 * (p == n) for p in rows.scores["model"][positive]
             for n in rows.scores["model"][~positive]]
    assert auroc(positive, rows.scores["model"]) == pytest.approx(np.mean(pairs))
    ranked = np.argsort(-rows.scores["model"])
    hits = positive[ranked]
    precision_at_hits = np.cumsum(hits)[hits] / (np.flatnonzero(hits) + 1)
    assert average_precision(positive, rows.scores["model"]) == pytest.approx(
        precision_at_hits.mean())
    # The threshold comes from validation, the figures from test.
    both = alert_metrics(rows, rows, budget=100 * 2 / (10 / 24), refractory_hours=2.0,
                         horizon_hours=6.0)
    assert both["model"]["threshold"] == 0.9 and both["model"]["alerts"] == 2


def test_alerts_need_validation_patients() -> None:
    spec = load_pipeline("vitals-alerts").to_mapping()
    spec["train"]["validation_fraction"] = 0.0
    with pytest.raises(PipelineDefinitionError, match="validation_fraction"):
        load_pipeline(spec)
    with pytest.raises(PipelineDefinitionError, match="budget"):
        load_pipeline("vitals-alerts").with_overrides({"evaluate.alerts.budget": -1})


def test_vitals_alerts_beats_news2_at_the_same_budget(local_cluster: cluster.Cluster,
                                                      tmp_path: Path) -> None:
    result = pipelines.run("vitals-alerts", "synthetic://vitals?units=60&days=3&seed=1",
                           cluster=local_cluster, output=tmp_path / "run")
    metrics = json.loads((result.output / "metrics.json").read_text())
    model, rule = metrics["model"], metrics["news2"]
    budget = metrics["alert_budget_per_100_patient_days"]
    # Set on other patients, the threshold keeps the test patients near the budget.
    assert model["alerts_per_100_patient_days"] < 1.5 * budget
    assert model["event_recall"] > rule["event_recall"]
    assert model["auroc"] > 0.6 and model["auroc"] > rule["auroc"]
    assert model["ppv"] > 0.3
    assert sum(model["lead_time_hours"]["histogram"]) == model["events_detected"]
    assert (result.output / "plots" / "timelines.png").stat().st_size > 10_000
    assert "alerts/100 patient-days" in result.summary()
