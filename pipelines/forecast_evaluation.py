"""Scoring forecasts against the naive baselines on the same test points.

Every figure compares like with like: the model and each baseline are scored
on the same rows, those where the actual value, the model's forecast and every
baseline are known. Errors are in the target's own units (a scaled target's
forecasts are multiplied back by the scale as of their origin).

- RMSE, MAE; MAPE in percent over the rows whose actual value is not zero
  (how many were left out is reported);
- MASE (Hyndman and Koehler, 2006): the test MAE over the in-sample MAE of the
  seasonal naive forecast with the longest season, on each unit's training
  rows; overall, the mean of the units' MASE;
- skill against each baseline: 1 - RMSE(model) / RMSE(baseline);
- per unit: RMSE, MAE and MASE of the model and of the best baseline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from .steps.forecasting import SCALE

FORECAST_METRICS = ("rmse", "mae", "mape", "mase")


@dataclass
class ForecastRows:
    """The scored rows: their unit and origin, the actual values, the model's and
    each baseline's forecasts, all in the target's units."""

    units: np.ndarray
    origins: np.ndarray
    actual: np.ndarray
    predicted: np.ndarray
    baselines: dict[str, np.ndarray]
    #: Per unit, the in-sample MAE of the MASE's seasonal naive forecast.
    mase_scale: dict[Any, float]
    mase_baseline: str
    #: Rows left out because a baseline or the actual value was unknown there.
    unscored: int


def forecast_rows(features: xr.Dataset, rows: np.ndarray, predicted: np.ndarray,
                  train_rows: np.ndarray) -> ForecastRows:
    """Gather what scoring needs at ``rows`` (flat (unit, window) indices of the
    test rows the model predicted) and the MASE scale from ``train_rows``."""
    n_windows = features.sizes["window"]
    unit_index, window_index = np.divmod(rows, n_windows)
    scaled = SCALE in features.data_vars
    picked = values_at(features, ["label", *([SCALE] if scaled else [])], unit_index, window_index)
    scale = picked[SCALE] if scaled else 1.0
    actual = picked["label"] * scale
    forecast = np.asarray(predicted, dtype=np.float64) * scale
    names = [str(b) for b in features["baseline"].values]
    naive = _baselines(features, unit_index, window_index)
    known = np.isfinite(actual) & np.isfinite(forecast) & np.isfinite(naive).all(axis=1)
    units = np.asarray(features["unit"].values)
    seasonal = [n for n in names if n.startswith("seasonal_naive_")]
    mase_baseline = seasonal[-1] if seasonal else names[0]
    train_units, train_windows = np.divmod(train_rows, n_windows)
    train = values_at(features, ["label", *([SCALE] if scaled else [])], train_units, train_windows)
    train_actual = train["label"] * (train[SCALE] if scaled else 1.0)
    train_naive = _baselines(features, train_units, train_windows)[:, names.index(
        mase_baseline)]
    errors = np.abs(train_actual - train_naive)
    ok = np.isfinite(errors)
    mase_scale = {units[u]: float(errors[ok & (train_units == u)].mean())
                  for u in np.unique(train_units[ok])}
    origins = np.asarray(features["origin_time"].values)[window_index] if \
        "origin_time" in features.coords else window_index
    return ForecastRows(units[unit_index][known], origins[known], actual[known],
                        forecast[known], {n: naive[known, k] for k, n in enumerate(names)},
                        mase_scale, mase_baseline, int((~known).sum()))


def values_at(features: xr.Dataset, names: list[str], units: np.ndarray, windows: np.ndarray
        ) -> dict[str, np.ndarray]:
    """``features[name][units, windows]`` for each name: the windows' span read in
    slices (point-wise reads of a chunked store would fetch a chunk per point)."""
    low, high = (int(windows.min()), int(windows.max()) + 1) if windows.size else (0, 0)
    span = features[names].isel(window=slice(low, high)).compute()
    return {name: np.asarray(span[name].transpose("unit", "window", ...).values,
                             dtype=np.float64)[units, windows - low] for name in names}


def _baselines(features: xr.Dataset, units: np.ndarray, windows: np.ndarray) -> np.ndarray:
    return values_at(features, ["baselines"], units, windows)["baselines"]


def forecast_metrics(rows: ForecastRows, horizon: int) -> dict[str, Any]:
    """metrics.json's figures for the model, the baselines, and per unit."""
    model = _scores(rows.actual, rows.predicted, rows.units, rows.mase_scale)
    baselines = {name: _scores(rows.actual, values, rows.units, rows.mase_scale)
                 for name, values in rows.baselines.items()}
    best = min(baselines, key=lambda name: baselines[name]["rmse"])
    per_unit = {}
    for unit in np.unique(rows.units):
        mine = rows.units == unit
        per_unit[str(unit)] = {
            "model": _scores(rows.actual[mine], rows.predicted[mine], rows.units[mine],
                             rows.mase_scale, overall=False),
            best: _scores(rows.actual[mine], rows.baselines[best][mine], rows.units[mine],
                          rows.mase_scale, overall=False)}
    return {
        **{key: model[key] for key in FORECAST_METRICS},
        "mape_rows_left_out": model["mape_rows_left_out"],
        "horizon_steps": horizon,
        "mase_baseline": rows.mase_baseline,
        "baselines": baselines,
        "best_baseline": best,
        "skill": {name: 1.0 - model["rmse"] / scores["rmse"] if scores["rmse"] > 0 else
                  float("nan") for name, scores in baselines.items()},
        "scored_points": int(rows.actual.size),
        "unscored_points": rows.unscored,
        "per_unit": per_unit,
    }


def _scores(actual: np.ndarray, forecast: np.ndarray, units: np.ndarray,
            mase_scale: dict[Any, float], *, overall: bool = True) -> dict[str, Any]:
    error = forecast - actual
    nonzero = actual != 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mape = (float(np.mean(np.abs(error[nonzero] / actual[nonzero])) * 100)
                if nonzero.any() else float("nan"))
        per_unit_mase = [float(np.mean(np.abs(error[units == u])) / mase_scale[u])
                         for u in np.unique(units)
                         if mase_scale.get(u, 0) > 0]
    scores: dict[str, Any] = {
        "rmse": float(np.sqrt(np.mean(error ** 2))) if error.size else float("nan"),
        "mae": float(np.mean(np.abs(error))) if error.size else float("nan"),
        "mape": mape,
        "mase": float(np.mean(per_unit_mase)) if per_unit_mase else float("nan"),
    }
    if overall:
        scores["mape_rows_left_out"] = int((~nonzero).sum())
    return scores
