"""A run's second stage: the model trained on the features, scored, saved and plotted."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import xarray as xr

from .alert_evaluation import AlertRows, alert_metrics, alert_rows
from .array_module import to_numpy
from .backtesting import backtest
from .device import array_to_device
from .evaluation import classification_metrics, regression_metrics, selected_metrics
from .forecast_evaluation import ForecastRows, forecast_metrics, forecast_rows
from .plots import (
    plot_alert_timelines,
    plot_confusion_matrix,
    plot_error_by_hour_of_week,
    plot_feature_distributions,
    plot_forecasts,
    plot_predicted_vs_true,
    plot_training_curve,
)
from .run_state import Run
from .steps.durations import seconds
from .steps.early_warning import EVENT_HORIZON_ATTR
from .steps.forecasting import HORIZON_ATTR, TARGET_ATTR, forecast_lead
from .training.features import FeatureTable
from .training.model import Model
from .training.trainer import fit, predict_table, score_table, split_tables


def train_and_evaluate(run: Run, features: xr.Dataset) -> None:
    """Fit ``run.pipe.train`` on the train units' features, score the test units into
    ``run.metrics`` (the metrics the pipeline's ``evaluate`` names), save the model."""
    pipe = run.pipe
    config = pipe.train
    assert config is not None
    train_table, test_table, classes, validation_table = split_tables(
        features, config.features, config.validation_fraction, config.seed)
    for table in (train_table, test_table, validation_table):
        if table is not None and run.device == "gpu":
            table.X = array_to_device(table.X, run.device).persist()
    # The planned threads, not those alive now: the blocks, and so the model, are the
    # same whether or not a worker is restarting at this moment.
    parallelism = run.cluster.planned_threads
    with run.timed("training"):
        how = ("alpha by leave-one-out error" if config.model == "ridge"
               else f"{config.epochs} epochs")
        run.say(f"training {config.model} on {train_table.X.shape[0]} rows x "
                f"{train_table.X.shape[1]} features, {how}")
        outcome = fit(train_table, classes, config, parallelism=parallelism,
                      progress=run.progress, pipeline=pipe.to_mapping(),
                      validation=validation_table, checkpoint=run.directory.checkpoint)
        if outcome.history.resumed_from is not None:
            run.say(f"resumed training after epoch {outcome.history.resumed_from + 1} from "
                    f"{run.directory.checkpoint}")
    # What steps fitted (marked by a ``fitted_parameter`` attribute) travels with the model.
    outcome.model.fitted = {str(var.attrs["fitted_parameter"]): var.values
                            for var in features.data_vars.values()
                            if "fitted_parameter" in var.attrs}
    run.output("model", outcome.model.save(run.path("model.npz")))
    forecasts: ForecastRows | None = None
    alerting: tuple[AlertRows, AlertRows] | None = None
    with run.timed("evaluation"):
        predicted, finite = predict_table(outcome.model, test_table)
        assert test_table.y is not None
        if TARGET_ATTR in features.attrs and not classes:
            assert test_table.rows is not None and train_table.rows is not None
            forecasts = forecast_rows(features, test_table.rows[finite], predicted,
                                      train_table.rows)
            scores = forecast_metrics(forecasts, int(features.attrs[HORIZON_ATTR]))
        else:
            scores = (classification_metrics(test_table.y[finite], predicted, classes)
                      if classes else regression_metrics(test_table.y[finite], predicted))
        if pipe.alerts is not None:
            assert validation_table is not None  # the pipeline's definition makes sure
            alerting = _alert_rows(features, outcome.model, validation_table, test_table)
            scores.update(alert_metrics(
                *alerting, budget=float(pipe.alerts["budget"]),
                refractory_hours=seconds(str(pipe.alerts["refractory"]),
                                         where="evaluate.alerts.refractory") / 3600,
                horizon_hours=float(features.attrs.get(EVENT_HORIZON_ATTR, float("nan")))))
    if pipe.backtest is not None:
        with run.timed("backtest"):
            run.say(f"backtesting: {pipe.backtest['folds']} folds of {pipe.backtest['every']}"
                    f"{', refit at each' if pipe.backtest['refit'] else ', fitted once'}")
            scores["backtest"] = backtest(features, config, pipe.backtest,
                                          parallelism=parallelism,
                                          pipeline=pipe.to_mapping())
    metrics: dict[str, Any] = selected_metrics(scores, pipe.evaluate)
    metrics.update(
        test_samples=int(finite.sum()), test_units=len(test_table.units),
        train_samples=outcome.train_rows, train_units=len(train_table.units),
        dropped_nonfinite_windows=outcome.dropped_rows + int((~finite).sum()),
        final_train_loss=outcome.history.loss[-1],
        **{"final_train_accuracy" if classes else "final_train_mse":
           outcome.history.accuracy[-1]},
        epochs_run=len(outcome.history.loss), best_epoch=outcome.history.best_epoch,
        resumed_after_epoch=outcome.history.resumed_from,
    )
    run.metrics.update(metrics)
    with run.timed("plots"):
        assert train_table.y is not None
        if alerting is not None:
            run.output("timelines_plot", plot_alert_timelines(
                alerting[1], {name: metrics[name]["threshold"] for name in alerting[1].scores},
                refractory_hours=metrics["refractory_hours"],
                path=run.path("plots/timelines.png")))
        if forecasts is not None:
            _plot_forecasts(run, forecasts, features, metrics["best_baseline"])
        elif classes:
            plot_feature_distributions(to_numpy(train_table.X.compute()), train_table.y,
                                       train_table.feature_names, classes,
                                       outcome.model.params["W0"],
                                       run.path("plots/feature_distributions.png"))
        else:
            plot_predicted_vs_true(test_table.y[finite], predicted, metrics,
                                   run.path("plots/predicted_vs_true.png"))
        plot_training_curve(outcome.history.loss, outcome.history.accuracy,
                            run.path("plots/training_curve.png"),
                            outcome.history.validation_loss)
        if "confusion_matrix" in metrics:
            run.output("confusion_matrix_plot", plot_confusion_matrix(
                metrics, run.path("plots/confusion_matrix.png")))
    run.path("training_history.json").write_text(json.dumps(
        dataclasses.asdict(outcome.history)))


def _plot_forecasts(run: Run, rows: ForecastRows, features: xr.Dataset, best: str) -> None:
    """Forecast against actual for a few units, and the error by hour of the week."""
    ahead = forecast_lead(features)
    targets = rows.origins + ahead if rows.origins.dtype.kind == "M" else rows.origins
    run.output("forecasts_plot", plot_forecasts(
        rows.units, targets, rows.actual, rows.predicted, rows.baselines[best], best,
        run.path("plots/forecasts.png")))
    if targets.dtype.kind == "M":
        run.output("error_by_hour_of_week_plot", plot_error_by_hour_of_week(
            targets, {"model": rows.predicted - rows.actual,
                      best: rows.baselines[best] - rows.actual},
            run.path("plots/error_by_hour_of_week.png")))


def _alert_rows(features: xr.Dataset, model: Model, validation: FeatureTable,
                test: FeatureTable) -> tuple[AlertRows, AlertRows]:
    """The validation and test decision points with the model's scores."""
    out = []
    for table in (validation, test):
        assert table.rows is not None
        scores, finite = score_table(model, table)
        out.append(alert_rows(features, table.rows[finite], scores))
    return out[0], out[1]
