"""NEWS2 points (Royal College of Physicians, 2017) from vital signs.

Each parameter's value, rounded as charted (integers; temperature to 0.1 degC),
scores 0-3 by the published bands. SpO2 uses scale 1; the level of
consciousness and supplemental oxygen are not measured by the monitor and
score 0. A missing value gives NaN points. Any array module.
"""

from __future__ import annotations

from typing import Any

from ..array_module import array_module

#: parameter: (rounding decimals, upper edges of each band, points of each band).
#: A value scores the points of the first band whose upper edge it does not pass.
BANDS: dict[str, tuple[int, tuple[float, ...], tuple[int, ...]]] = {
    "respiration_rate": (0, (8, 11, 20, 24), (3, 1, 0, 2, 3)),
    "spo2": (0, (91, 93, 95), (3, 2, 1, 0)),
    "systolic_bp": (0, (90, 100, 110, 219), (3, 2, 1, 0, 3)),
    "pulse": (0, (40, 50, 90, 110, 130), (3, 1, 0, 1, 2, 3)),
    "temperature": (1, (35.0, 36.0, 38.0, 39.0), (3, 1, 0, 1, 2)),
}
PARAMETERS = tuple(BANDS)


def points(parameter: str, values: Any) -> Any:
    """NEWS2 points of ``values`` of ``parameter`` (NaN where a value is missing)."""
    xp = array_module(values)
    decimals, edges, scores = BANDS[parameter]
    rounded = xp.round(values.astype(xp.float64), decimals)
    band = xp.searchsorted(xp.asarray(edges, dtype=xp.float64), rounded, side="left")
    result = xp.asarray(scores, dtype=xp.float64)[band]
    return xp.where(xp.isnan(rounded), xp.nan, result)
