"""Step fusion: consecutive steps run in fewer passes over the data, with the same results.

Each step is a ``Dataset -> Dataset`` function that knows nothing of the next.
So ``zscore`` writes a whole standardised copy of the signal, ``window``
reshapes it, and the feature step reads it once more: on a 2-core machine
that copy took a quarter of the feature extraction. When a pipeline runs
``zscore``, ``window`` and a feature step (``window_features``,
``band_power`` or ``window_stats``) in a row, :func:`plan` gives the
z-score's per-series (mean, 1/std) to the feature kernel instead, which
standardises each batch of windows as it copies it into cache (the same
arithmetic, so the same features bit for bit). The fused stage returns
the dataset the steps would: the z-scored ``windows`` are still there,
lazily, for any later step that reads them.

:meth:`Pipeline.transform` runs the plan; a step called on its own (as in
the quickstart notebook) runs as written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, Protocol

import xarray as xr

from .steps.blocks import dask_data
from .steps.features import add_window_features
from .steps.preprocess import mean_and_inverse_std

Stage = Callable[[xr.Dataset], xr.Dataset]

#: Feature steps the z-score folds into, and what each fixes of ``window_features``.
FEATURE_STEPS: Mapping[str, Mapping[str, Any]] = {
    "window_features": {}, "band_power": {"stats": ()}, "window_stats": {"bands": ()}}


class Call(Protocol):
    """A step with its parameters (:class:`~suanli.pipelines.pipeline.StepCall`)."""

    @property
    def name(self) -> str: ...
    @property
    def params(self) -> Mapping[str, Any]: ...
    def apply(self, ds: xr.Dataset) -> xr.Dataset: ...


def plan(calls: Sequence[Call]) -> list[Stage]:
    """The stages that run ``calls``: each call alone, or a fused run of them."""
    stages: list[Stage] = []
    position = 0
    while position < len(calls):
        group = calls[position:position + 3]
        if zscore_folds_into_features(group):
            zscore, window, features = group
            stages.append(partial(_zscored_features, zscore, window, features))
            position += 3
        else:
            stages.append(calls[position].apply)
            position += 1
    return stages


def zscore_folds_into_features(calls: Sequence[Call]) -> bool:
    """Whether ``calls`` are zscore along time, window and a feature step, on one variable."""
    if [call.name for call in calls[:2]] != ["zscore", "window"] or len(calls) < 3 \
            or calls[2].name not in FEATURE_STEPS:
        return False
    zscore, window, features = (call.params for call in calls[:3])
    return (zscore.get("dim", "time") == "time"
            and window.get("variable", "signal") == zscore.get("variable", "signal")
            and features.get("variable", "windows") == "windows")


def _zscored_features(zscore: Call, window: Call, features: Call,
                      ds: xr.Dataset) -> xr.Dataset:
    # The steps as written, lazily: they check the data and the parameters, and
    # keep the z-scored windows for whatever reads them later.
    stepwise = features.apply(window.apply(zscore.apply(ds)))
    signal = ds[zscore.params.get("variable", "signal")].transpose("unit", "time", "channel")
    scaling = mean_and_inverse_std(dask_data(signal), axis=1)  # (unit, 2, channel)
    fused = add_window_features(window.apply(ds), scaling=scaling,
                                **{**FEATURE_STEPS[features.name], **features.params})
    return stepwise.assign({name: fused[name] for name in ("band_power", "window_stats")
                            if name in stepwise.data_vars})
