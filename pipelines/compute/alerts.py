"""Alerting on a score: thresholds, a refractory period, ranking metrics. NumPy.

Rows are decision points: a unit (patient), a time in hours and a score. An
alert fires where the score reaches the threshold, unless the same unit
alerted less than ``refractory`` hours before (one deterioration should not
alarm every hour). NaN scores never alert.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def fired(units: np.ndarray, hours: np.ndarray, scores: np.ndarray, threshold: float,
          refractory: float) -> np.ndarray:
    """Which rows alert, in each unit's time order."""
    above = np.flatnonzero(np.nan_to_num(scores, nan=-np.inf) >= threshold)
    out = np.zeros(len(scores), dtype=bool)
    order = above[np.lexsort((hours[above], units[above]))]
    last_unit, last_hour = None, -np.inf
    for row in order:  # rows above the threshold only: few, at any sensible budget
        if units[row] != last_unit or hours[row] - last_hour >= refractory:
            out[row] = True
            last_unit, last_hour = units[row], hours[row]
    return out


def threshold_for_rate(units: np.ndarray, hours: np.ndarray, scores: np.ndarray,
                       refractory: float, max_alerts: float) -> float:
    """The lowest threshold (among the scores) whose alerts number at most
    ``max_alerts`` (binary search: more alerts as the threshold falls)."""
    candidates = np.unique(scores[np.isfinite(scores)])
    if candidates.size == 0:
        return float("inf")
    low, high = 0, len(candidates) - 1
    if fired(units, hours, scores, candidates[high], refractory).sum() > max_alerts:
        return float(np.nextafter(candidates[high], np.inf))  # even the top alerts too often
    while low < high:
        middle = (low + high) // 2
        if fired(units, hours, scores, candidates[middle], refractory).sum() <= max_alerts:
            high = middle
        else:
            low = middle + 1
    return float(candidates[low])


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half)."""
    positive = labels.astype(bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(np.nan_to_num(scores, nan=-np.inf), method="average")
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the precision-recall curve as average precision (scikit-learn's
    definition: precision at each distinct threshold, weighted by the recall gained)."""
    positive = labels.astype(bool)
    if not positive.any():
        return float("nan")
    values = np.nan_to_num(scores, nan=-np.inf)
    order = np.argsort(-values, kind="stable")
    sorted_values, hits = values[order], positive[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(sorted_values)), len(values) - 1]
    true_positives = np.cumsum(hits)[last_of_tie]
    predicted = last_of_tie + 1
    recall = true_positives / positive.sum()
    precision = true_positives / predicted
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
