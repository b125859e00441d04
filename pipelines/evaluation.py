"""Classification and regression metrics (forecasts: :mod:`.forecast_evaluation`)."""

from __future__ import annotations

from typing import Any

import numpy as np

#: Early warning (:mod:`.alert_evaluation`): a binary classifier's score at an alert budget.
ALERT_METRICS = ("sensitivity", "ppv", "event_recall", "auroc", "auprc")
#: ``evaluate.alerts``' defaults: alerts per 100 patient-days, and no second alert for
#: the same patient within the refractory period.
DEFAULT_ALERTS: dict[str, Any] = {"budget": 50.0, "refractory": "4h"}
#: ``evaluate.backtest``'s defaults: test periods from the split's ``test_from`` on.
DEFAULT_BACKTEST: dict[str, Any] = {"folds": 3, "every": "7D", "refit": True}
CLASSIFICATION_METRICS = ("accuracy", "macro_f1", "confusion_matrix", *ALERT_METRICS)
REGRESSION_METRICS = ("rmse", "mae", "r2", "mape", "mase")
METRICS = CLASSIFICATION_METRICS + REGRESSION_METRICS


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """Root mean squared error, mean absolute error, R^2 (1 - SSE / SST) and the mean
    absolute percentage error over the non-zero true values (MASE needs a
    forecast's seasonal baseline: :mod:`.forecast_evaluation`)."""
    truth, predicted = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    errors = predicted - truth
    total = float(((truth - truth.mean()) ** 2).sum())
    nonzero = truth != 0
    return {"rmse": float(np.sqrt(np.mean(errors ** 2))), "mae": float(np.mean(np.abs(errors))),
            "r2": 1 - float((errors ** 2).sum()) / total if total > 0 else float("nan"),
            "mape": float(np.mean(np.abs(errors[nonzero] / truth[nonzero])) * 100)
            if nonzero.any() else float("nan"),
            "samples": int(truth.size)}


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts, rows = true class, columns = predicted class."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return matrix


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]
                           ) -> dict[str, Any]:
    """Accuracy, macro-F1 (classes absent from both truth and prediction are left out),
    per-class precision/recall/F1 and the confusion matrix, JSON-ready."""
    matrix = confusion_matrix(y_true, y_pred, len(classes))
    true_pos = np.diag(matrix).astype(float)
    predicted, actual = matrix.sum(axis=0), matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, true_pos / predicted, 0.0)
        recall = np.where(actual > 0, true_pos / actual, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    present = (predicted + actual) > 0
    total = int(matrix.sum())
    return {
        "accuracy": float(true_pos.sum() / total) if total else float("nan"),
        "macro_f1": float(f1[present].mean()) if present.any() else float("nan"),
        "per_class": {name: {"precision": float(precision[k]), "recall": float(recall[k]),
                             "f1": float(f1[k]), "support": int(actual[k])}
                      for k, name in enumerate(classes)},
        "confusion_matrix": {"classes": classes, "counts": matrix.tolist()},
        "samples": total,
    }


def selected_metrics(scores: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """``scores`` without the metrics of :data:`METRICS` that ``names`` (the pipeline's
    ``evaluate.metrics``) leaves out; details such as ``per_class`` stay."""
    return {key: value for key, value in scores.items() if key not in METRICS or key in names}
