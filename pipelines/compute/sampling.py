"""Reproducible stratified samples of units (the test split, the validation share)."""

from __future__ import annotations

import numpy as np


def stratified_sample(groups: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Indices of about ``fraction`` of the items of each group (at least one, never all,
    of a group with two or more), reproducibly from ``seed``."""
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for group in sorted(set(groups.tolist())):
        members = rng.permutation(np.flatnonzero(groups == group))
        count = round(fraction * len(members))
        if len(members) >= 2:
            count = min(max(count, 1), len(members) - 1)
        chosen.extend(members[:count].tolist())
    return np.array(sorted(chosen), dtype=int)
