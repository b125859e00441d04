"""The run's plots as PNG files (matplotlib's object API: no global pyplot state)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def save_figure(figure: Figure, path: Path) -> Path:
    """Write ``figure`` as a PNG at ``path`` (trimmed to its content)."""
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=110, bbox_inches="tight")
    return path


def plot_confusion_matrix(metrics: dict[str, Any], path: Path) -> Path:
    """Heat map of the confusion matrix, counts written in each cell."""
    classes = metrics["confusion_matrix"]["classes"]
    counts = np.asarray(metrics["confusion_matrix"]["counts"])
    figure = Figure(figsize=(1.2 * len(classes) + 2, 1.0 * len(classes) + 1.5))
    axes = figure.add_subplot()
    image = axes.imshow(counts, cmap="Blues")
    axes.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
    axes.set_yticks(range(len(classes)), classes)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(f"accuracy {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f}")
    threshold = counts.max() / 2 if counts.size else 0
    for (i, j), value in np.ndenumerate(counts):
        axes.text(j, i, str(value), ha="center", va="center",
                  color="white" if value > threshold else "black", fontsize=8)
    figure.colorbar(image, ax=axes, fraction=0.046)
    return save_figure(figure, path)


def plot_feature_distributions(X: np.ndarray, y: np.ndarray, names: list[str],
                               classes: list[str], first_layer: np.ndarray, path: Path,
                               count: int = 8) -> Path:
    """Box plots per class of the ``count`` features the model leans on most
    (largest first-layer weights, on standardised features)."""
    influence = np.linalg.norm(first_layer, axis=1)
    chosen = np.argsort(influence)[::-1][:count]
    columns = 4
    rows = -(-len(chosen) // columns)
    figure = Figure(figsize=(4 * columns, 3 * rows))
    for k, feature in enumerate(chosen):
        axes = figure.add_subplot(rows, columns, k + 1)
        groups = [X[y == c, feature] for c in range(len(classes))]
        axes.boxplot([g[np.isfinite(g)] for g in groups], showfliers=False)
        axes.set_xticks(range(1, len(classes) + 1), classes, rotation=30, ha="right",
                        fontsize=7)
        axes.set_title(names[feature], fontsize=8)
    figure.suptitle("Most influential features by class (training units)")
    figure.tight_layout()
    return save_figure(figure, path)


def plot_training_curve(loss: list[float], accuracy: list[float], path: Path,
                        validation_loss: list[float] | None = None) -> Path:
    """Training (and validation) loss and training accuracy per epoch."""
    figure = Figure(figsize=(7, 3.2))
    left, right = figure.subplots(1, 2)
    left.plot(range(1, len(loss) + 1), loss, label="training")
    if validation_loss:
        left.plot(range(1, len(validation_loss) + 1), validation_loss, label="validation")
        left.legend()
    left.set_xlabel("epoch")
    left.set_ylabel("cross-entropy")
    left.set_yscale("log")
    right.plot(range(1, len(accuracy) + 1), accuracy)
    right.set_xlabel("epoch")
    right.set_ylabel("training accuracy")
    figure.tight_layout()
    return save_figure(figure, path)


def plot_predicted_vs_true(truth: np.ndarray, predicted: np.ndarray, metrics: dict[str, Any],
                           path: Path) -> Path:
    """Regression: predictions against the true values of the test windows."""
    figure = Figure(figsize=(4.5, 4.5))
    axes = figure.add_subplot()
    axes.scatter(truth, predicted, s=4, alpha=0.4)
    low, high = float(np.min(truth)), float(np.max(truth))
    axes.plot([low, high], [low, high], color="black", lw=1)
    axes.set_xlabel("true")
    axes.set_ylabel("predicted")
    axes.set_title(", ".join(f"{name} {metrics[name]:.3g}" for name in ("rmse", "r2")
                             if name in metrics))
    return save_figure(figure, path)


def plot_forecasts(units: np.ndarray, targets: np.ndarray, actual: np.ndarray,
                   predicted: np.ndarray, baseline: np.ndarray, baseline_name: str, path: Path,
                   *, shown: int = 4, points: int = 336) -> Path:
    """Forecast against actual for a few units (spread over the list), the last
    ``points`` scored target times of each, with the best baseline."""
    names = np.unique(units)
    picked = names[np.linspace(0, len(names) - 1, min(shown, len(names))).round().astype(int)]
    figure = Figure(figsize=(10, 2.2 * len(picked)))
    for axes, unit in zip(figure.subplots(len(picked), 1, squeeze=False)[:, 0], picked,
                          strict=True):
        mine = np.flatnonzero(units == unit)
        mine = mine[np.argsort(targets[mine])][-points:]
        axes.plot(targets[mine], actual[mine], color="black", lw=1, label="actual")
        axes.plot(targets[mine], predicted[mine], lw=1, label="model")
        axes.plot(targets[mine], baseline[mine], lw=1, alpha=0.7, label=baseline_name)
        axes.set_ylabel(f"unit {unit}")
    figure.axes[0].legend(loc="upper right", fontsize=8, ncols=3)
    figure.suptitle("Forecasts on the test period")
    figure.autofmt_xdate()
    figure.tight_layout()
    return save_figure(figure, path)


def plot_error_by_hour_of_week(targets: np.ndarray, errors: dict[str, np.ndarray],
                               path: Path) -> Path:
    """Mean absolute error by the target's hour of the week (Monday 00:00 first)."""
    stamps = targets.astype("datetime64[h]").astype(np.int64)
    # 1970-01-01 was a Thursday: hour 0 of the epoch is hour 72 of its week.
    hour_of_week = (stamps + 72) % 168
    figure = Figure(figsize=(10, 3.2))
    axes = figure.add_subplot()
    for name, error in errors.items():
        total = np.bincount(hour_of_week, weights=np.abs(error), minlength=168)
        count = np.bincount(hour_of_week, minlength=168)
        with np.errstate(invalid="ignore", divide="ignore"):
            axes.plot(np.arange(168), total / count, lw=1.2, label=name)
    axes.set_xticks(range(0, 169, 24), ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun", ""])
    axes.set_xlabel("hour of the week (target time)")
    axes.set_ylabel("mean absolute error")
    axes.legend(fontsize=8)
    figure.tight_layout()
    return save_figure(figure, path)


def plot_alert_timelines(rows: Any, thresholds: dict[str, float], *, refractory_hours: float,
                         path: Path, shown: int = 4) -> Path:
    """Per patient (a few with events): each score over time against its threshold,
    the alerts it fired, and the onsets of events (dashed)."""
    from .compute.alerts import fired

    with_events = np.unique(rows.units[rows.label == 1])
    patients = (with_events if with_events.size else np.unique(rows.units))[:shown]
    figure = Figure(figsize=(10, 2.3 * max(len(patients), 1)))
    panels = figure.subplots(max(len(patients), 1), 1, squeeze=False)[:, 0]
    alerts = {name: fired(rows.units, rows.hours, scores, thresholds[name], refractory_hours)
              for name, scores in rows.scores.items()}
    for axes, patient in zip(panels, patients, strict=False):
        mine = np.flatnonzero(rows.units == patient)
        mine = mine[np.argsort(rows.hours[mine])]
        start = rows.hours[mine[0]]
        for k, (name, scores) in enumerate(rows.scores.items()):
            target = axes if k == 0 else axes.twinx()
            colour = f"C{k}"
            target.plot(rows.hours[mine] - start, scores[mine], color=colour, lw=1, label=name)
            target.axhline(thresholds[name], color=colour, lw=0.8, ls=":")
            hits = mine[alerts[name][mine]]
            target.plot(rows.hours[hits] - start, scores[hits], "v", color=colour, ms=6)
            target.set_ylabel(name, color=colour)
        onsets = np.unique(np.round((rows.hours + rows.hours_to_event)[mine][
            rows.label[mine] == 1], 4))
        for onset in onsets:
            axes.axvline(onset - start, color="black", ls="--", lw=1)
        axes.set_title(f"patient {patient}", fontsize=9)
    panels[-1].set_xlabel("hours from the patient's first decision point")
    figure.suptitle("Scores, thresholds (dotted), alerts (triangles) and event onsets (dashed)")
    figure.tight_layout()
    return save_figure(figure, path)
