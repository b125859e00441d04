"""Early-warning scores evaluated as clinicians evaluate them: at an alert budget.

The threshold is set on the validation patients so that alerts (with a
refractory period per patient) stay within the budget, in alerts per 100
patient-days of monitoring; the test patients are then scored at it:

- ``alerts_per_100_patient_days`` against the budget;
- ``sensitivity``: the share of decision points with an event ahead whose
  score reaches the threshold (``specificity``: of those without);
- ``ppv``: the share of alerts followed by an event within the horizon, and
  ``work_up_to_detection`` (alerts per true alert, 1/PPV);
- ``event_recall``: the share of events (onsets) with at least one alert in
  the horizon before them; ``lead_time_hours``: onset minus the first such
  alert, its quartiles and histogram;
- ``auroc`` and ``auprc`` (average precision) over the decision points.

The NEWS2 rule (``news2`` step's total) is scored the same way in the same
run, at a threshold set on the same validation patients for the same budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from .compute.alerts import auroc, average_precision, fired, threshold_for_rate
from .forecast_evaluation import values_at
from .steps.early_warning import HOURS_TO_EVENT


@dataclass
class AlertRows:
    """Decision points of some patients: who, when (hours), the event label (1:
    an event starts within the horizon), hours to that event, and the scores."""

    units: np.ndarray
    hours: np.ndarray
    label: np.ndarray
    hours_to_event: np.ndarray
    scores: dict[str, np.ndarray]
    interval_hours: float

    @property
    def patient_days(self) -> float:
        return len(self.units) * self.interval_hours / 24.0


def alert_rows(features: xr.Dataset, rows: np.ndarray, model_scores: np.ndarray
               ) -> AlertRows:
    """What alerting needs at ``rows`` (flat (unit, window) indices)."""
    n_windows = features.sizes["window"]
    unit_index, window_index = np.divmod(rows, n_windows)
    origin = np.asarray(features["origin_time"].values).astype("datetime64[s]").astype(
        np.int64) / 3600.0
    interval = float(np.median(np.diff(origin))) if origin.size > 1 else 1.0

    rule = "news2" in features.data_vars
    found = values_at(features, ["label", HOURS_TO_EVENT, *(["news2"] if rule else [])],
                      unit_index, window_index)  # one read of the rows' span
    scores = {"model": np.asarray(model_scores, dtype=np.float64)}
    if rule:
        names = [str(n) for n in features["news2_feature"].values]
        scores["news2"] = found["news2"][:, names.index("total")]
    return AlertRows(np.asarray(features["unit"].values)[unit_index], origin[window_index],
                     found["label"], found[HOURS_TO_EVENT], scores, interval)


def alert_metrics(validation: AlertRows, test: AlertRows, *, budget: float,
                  refractory_hours: float, horizon_hours: float) -> dict[str, Any]:
    """Thresholds from ``validation`` at the budget; every figure on ``test``."""
    out: dict[str, Any] = {"alert_budget_per_100_patient_days": budget,
                           "refractory_hours": refractory_hours,
                           "horizon_hours": horizon_hours,
                           "test_patient_days": test.patient_days,
                           "test_events": len(_events(test))}
    for name in test.scores:
        allowed = budget * validation.patient_days / 100.0
        threshold = threshold_for_rate(validation.units, validation.hours,
                                       validation.scores[name], refractory_hours, allowed)
        out[name] = score_at(test, name, threshold, refractory_hours)
    model, rule = out["model"], out.get("news2")
    for key in ("sensitivity", "ppv", "event_recall", "auroc", "auprc"):
        out[key] = model[key]
    if rule is not None:
        out["event_recall_vs_news2"] = model["event_recall"] - rule["event_recall"]
    return out


def score_at(rows: AlertRows, name: str, threshold: float, refractory_hours: float
             ) -> dict[str, Any]:
    """The figures of score ``name`` at ``threshold``."""
    scores = rows.scores[name]
    positive = rows.label == 1
    alerts = fired(rows.units, rows.hours, scores, threshold, refractory_hours)
    reached = np.nan_to_num(scores, nan=-np.inf) >= threshold
    true_alerts = int((alerts & positive).sum())
    events = _events(rows)
    first_alert: dict[tuple[Any, float], float] = {}
    for row in np.flatnonzero(alerts & positive):
        key = _event_key(rows, row)
        first_alert[key] = min(first_alert.get(key, np.inf), float(rows.hours[row]))
    lead = np.asarray([onset - first_alert[(unit, onset)] for unit, onset in events
                       if (unit, onset) in first_alert])
    detected = int(lead.size)
    return {
        "threshold": threshold,
        "alerts": int(alerts.sum()),
        "alerts_per_100_patient_days": 100.0 * alerts.sum() / rows.patient_days
        if rows.patient_days else float("nan"),
        "sensitivity": float(reached[positive].mean()) if positive.any() else float("nan"),
        "specificity": float((~reached[~positive]).mean()) if (~positive).any()
        else float("nan"),
        "ppv": true_alerts / int(alerts.sum()) if alerts.any() else float("nan"),
        "work_up_to_detection": int(alerts.sum()) / true_alerts if true_alerts
        else float("inf"),
        "event_recall": detected / len(events) if len(events) else float("nan"),
        "events_detected": detected,
        "lead_time_hours": {
            "median": float(np.median(lead)) if lead.size else float("nan"),
            "quartiles": np.percentile(lead, [25, 75]).tolist() if lead.size else [],
            "histogram": np.histogram(lead, bins=np.arange(0, 13))[0].tolist(),
        },
        "auroc": auroc(positive, scores),
        "auprc": average_precision(positive, scores),
    }


def _event_key(rows: AlertRows, row: Any) -> tuple[Any, float]:
    """(unit, onset hour) of the event ahead of decision point ``row``."""
    return rows.units[row].item() if hasattr(rows.units[row], "item") else rows.units[row], \
        round(float(rows.hours[row] + rows.hours_to_event[row]), 4)


def _events(rows: AlertRows) -> list[tuple[Any, float]]:
    """Every event that some decision point had ahead of it."""
    return sorted({_event_key(rows, row) for row in np.flatnonzero(rows.label == 1)})
