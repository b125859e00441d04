"""Built-in steps, thin ``@step`` adapters over :mod:`..compute`; importing this
package registers them."""

from __future__ import annotations

from . import (
    calendar,
    early_warning,
    features,
    forecasting,
    lags,
    preprocess,
    resample,
    rocket,
    split,
)

__all__ = ["calendar", "early_warning", "features", "forecasting", "lags", "preprocess",
           "resample", "rocket", "split"]
