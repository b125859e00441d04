"""Rolling-origin backtesting of a forecast (sktime's ExpandingWindowSplitter,
skforecast's backtesting): several cut-offs, each scored on the period after it.

Fold ``k`` cuts at ``test_from + k * every``: it trains on the decision points
whose target lies before the cut (an expanding window; refit at every fold, or
fitted once at the first cut with ``refit: false``) and is scored on the
origins from the cut to the next one, against the baselines on the same
points, as the run's own test period is (:mod:`.forecast_evaluation`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .errors import PipelineError
from .forecast_evaluation import forecast_metrics, forecast_rows
from .steps.durations import seconds
from .steps.forecasting import HORIZON_ATTR, forecast_lead
from .training.features import encode_labels, feature_table
from .training.model import Model
from .training.trainer import TrainConfig, fit, predict_table

#: The figures kept per fold (the full set is the run's own test period's).
FOLD_FIGURES = ("rmse", "mae", "mape", "mase")


def backtest(features: xr.Dataset, config: TrainConfig, settings: Mapping[str, Any], *,
             parallelism: int, pipeline: dict[str, Any]) -> dict[str, Any]:
    """Fit and score each fold; per-fold figures and their means."""
    if "origin_time" not in features.coords or "test_from" not in features["split"].attrs:
        raise PipelineError("evaluate.backtest needs decision points (an origins step) and a "
                            "split by time (split: {test_from: ...})")
    origins = np.asarray(features["origin_time"].values).astype("datetime64[ns]")
    horizon = int(features.attrs.get(HORIZON_ATTR, 0))
    ahead = forecast_lead(features)
    every = np.timedelta64(round(seconds(str(settings["every"]), where="backtest.every")
                                 * 1e9), "ns")
    first = pd.Timestamp(features["split"].attrs["test_from"]).to_datetime64().astype(
        "datetime64[ns]")
    codes, classes = encode_labels(features["label"])
    if classes:
        raise PipelineError("evaluate.backtest scores forecasts: the label must be a number")
    whole = feature_table(features, config.features, codes)
    n_units = features.sizes["unit"]
    known = np.isfinite(np.broadcast_to(codes, (n_units, len(origins)))).reshape(-1)
    folds: list[dict[str, Any]] = []
    model: Model | None = None
    train_rows = None
    for k in range(int(settings["folds"])):
        cut = first + k * every
        test_windows = (origins >= cut) & (origins < cut + every)
        if not test_windows.any():
            raise PipelineError(f"evaluate.backtest: fold {k + 1} (from {cut}) has no "
                                f"decision points: the data ends at {origins[-1]}; use fewer "
                                f"folds or a shorter every")
        if model is None or settings["refit"]:
            chosen = np.tile(origins + ahead < cut, n_units) & known
            train = whole.select(chosen)
            train.X = train.X.persist()
            model = fit(train, classes, config, parallelism=parallelism,
                        pipeline=pipeline).model
            train_rows = train.rows
        test = whole.select(np.tile(test_windows, n_units) & known)
        predicted, finite = predict_table(model, test)
        assert test.rows is not None and train_rows is not None
        scores = forecast_metrics(forecast_rows(features, test.rows[finite], predicted,
                                                train_rows), horizon)
        best = scores["best_baseline"]
        folds.append({"cutoff": str(pd.Timestamp(cut)), "refit": bool(settings["refit"]
                                                                        or k == 0),
                      "train_rows": len(train_rows), "scored_points":
                      scores["scored_points"], **{f: scores[f] for f in FOLD_FIGURES},
                      "best_baseline": best, "skill": scores["skill"][best],
                      "baselines_rmse": {n: b["rmse"] for n, b in scores["baselines"].items()}})
    return {"folds": folds, "every": str(settings["every"]), "refit": bool(settings["refit"]),
            "mean": {f: float(np.mean([fold[f] for fold in folds]))
                     for f in (*FOLD_FIGURES, "skill")}}
