"""Scaling arithmetic on measured times: speedup, efficiency, Karp–Flatt, Amdahl and
Gustafson fits, and where adding workers stops paying.

Pure functions of ``{workers: seconds}``, so every figure of ``suanli bench scaling``
can be checked by hand against recorded timings (tests/pipelines/test_scaling.py).

- Strong scaling (the same work on K workers): speedup ``S(K) = T(1) / T(K)``,
  efficiency ``E(K) = S(K) / K``.
- Weak scaling (K times the work on K workers): efficiency ``T(1) / T(K)``, scaled
  speedup ``K * T(1) / T(K)``.
- Karp–Flatt (1990): the serial fraction that the measured speedup implies,
  ``e(K) = (1/S - 1/K) / (1 - 1/K)``; rising with K it means overhead grows with the
  workers, flat it means a fixed serial part.
- Amdahl: ``T(K) = a + b / K``, fitted by least squares (a, b >= 0); the serial
  fraction is ``a / (a + b)``.
- Gustafson: ``S_scaled(K) = K - s (K - 1)``, fitted by least squares.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

#: Efficiency under which adding workers is said to no longer pay.
DEFAULT_THRESHOLD = 0.5


def _base(times: Mapping[int, float]) -> tuple[int, float]:
    """The smallest worker count measured and its time (the reference point)."""
    if not times:
        raise ValueError("no timings")
    smallest = min(times)
    return smallest, times[smallest]


def speedups(times: Mapping[int, float]) -> dict[int, float]:
    """``S(K) = T(K0) / T(K)`` relative to the smallest count ``K0`` measured, scaled
    by ``K0`` so that it reads as from one worker when ``K0`` is not 1 (which assumes
    ``K0`` itself scaled perfectly; say so where ``K0 > 1``)."""
    smallest, base = _base(times)
    return {k: smallest * base / t for k, t in sorted(times.items())}


def efficiencies(times: Mapping[int, float]) -> dict[int, float]:
    """Strong-scaling efficiency ``S(K) / K``."""
    return {k: s / k for k, s in speedups(times).items()}


def weak_efficiencies(times: Mapping[int, float]) -> dict[int, float]:
    """Weak-scaling efficiency ``T(K0) / T(K)``: 1.0 when K times the work takes as long."""
    _, base = _base(times)
    return {k: base / t for k, t in sorted(times.items())}


def scaled_speedups(times: Mapping[int, float]) -> dict[int, float]:
    """Gustafson's scaled speedup of a weak-scaling series, ``K * T(K0) / T(K)``."""
    return {k: k * e for k, e in weak_efficiencies(times).items()}


def karp_flatt(speedup: float, workers: int) -> float | None:
    """The experimentally determined serial fraction; None for one worker."""
    if workers <= 1:
        return None
    return (1 / speedup - 1 / workers) / (1 - 1 / workers)


@dataclass(frozen=True)
class AmdahlFit:
    """``T(K) = serial_seconds + parallel_seconds / K``."""

    serial_seconds: float
    parallel_seconds: float

    @property
    def serial_fraction(self) -> float:
        total = self.serial_seconds + self.parallel_seconds
        return self.serial_seconds / total if total > 0 else 0.0

    def time(self, workers: float) -> float:
        return self.serial_seconds + self.parallel_seconds / workers

    def efficiency(self, workers: float) -> float:
        return (self.time(1) / self.time(workers)) / workers


def fit_amdahl(times: Mapping[int, float]) -> AmdahlFit | None:
    """Least-squares fit of ``T(K) = a + b / K`` with ``a, b >= 0``; None with fewer
    than two worker counts."""
    if len(times) < 2:
        return None
    counts = np.array(sorted(times), dtype=float)
    seconds = np.array([times[int(k)] for k in counts])
    design = np.column_stack([np.ones_like(counts), 1 / counts])
    (a, b), *_ = np.linalg.lstsq(design, seconds, rcond=None)
    # The constrained optimum lies on a bound when the free one leaves the region.
    if a < 0:
        a, b = 0.0, float(np.dot(1 / counts, seconds) / np.dot(1 / counts, 1 / counts))
    elif b < 0:
        a, b = float(seconds.mean()), 0.0
    return AmdahlFit(float(a), float(b))


def fit_gustafson(times: Mapping[int, float]) -> float | None:
    """The serial fraction ``s`` of ``S_scaled(K) = K - s (K - 1)``, by least squares
    over a weak-scaling series, clipped to [0, 1]; None without two worker counts."""
    scaled = scaled_speedups(times)
    over = [(k - 1, k - s) for k, s in scaled.items() if k > 1]
    if len(times) < 2 or not over:
        return None
    numerator = sum(d * gap for d, gap in over)
    denominator = sum(d * d for d, _ in over)
    return min(max(numerator / denominator, 0.0), 1.0)


def last_worthwhile_workers(serial_fraction: float,
                            threshold: float = DEFAULT_THRESHOLD) -> float:
    """The largest K whose Amdahl efficiency ``1 / (s K + 1 - s)`` is at least
    ``threshold``; infinite for a serial fraction of 0."""
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], not {threshold}")
    if serial_fraction <= 0:
        return math.inf
    return math.floor((1 / threshold - 1 + serial_fraction) / serial_fraction + 1e-9)


def verdict(fit: AmdahlFit | None, threshold: float = DEFAULT_THRESHOLD,
            measured: Mapping[int, float] | None = None) -> str:
    """One sentence: the fitted serial fraction and where adding workers stops paying."""
    if fit is None:
        return "One worker count only: measure at two or more to fit a serial fraction."
    s = fit.serial_fraction
    limit = last_worthwhile_workers(s, threshold)
    largest = max(measured) if measured else None
    if math.isinf(limit):
        return (f"No serial part was found (Amdahl fit: serial fraction 0); efficiency stays "
                f"above {threshold:.0%} at any size this fit can speak for"
                + (f" (measured up to {largest} workers)." if largest else "."))
    return (f"Amdahl fit: {s:.1%} of the one-worker time is serial, so efficiency falls "
            f"under {threshold:.0%} beyond {limit:g} workers: adding workers past that no "
            f"longer pays" + (f" (measured up to {largest})." if largest else "."))
