"""Step fusion: consecutive steps run in fewer passes over the data, with the same results.

Each step is a ``Dataset -> Dataset`` function that knows nothing of the next.
So ``fill_gaps`` copies the signal to mend its gaps, ``zscore`` reads that copy
for its moments and writes a standardised copy, ``window`` reshapes it, and
the feature step reads it once more: on a 2-core machine those copies and
passes took half of the feature extraction. :func:`plan` fuses runs of them:

- ``zscore``, ``window`` and a feature step (``window_features``,
  ``band_power`` or ``window_stats``): the feature kernel gets the z-score's
  per-series (mean, 1/std) and standardises each batch of windows as it
  copies it into cache; the standardised copy is never written.
- ``fill_gaps`` before them, on NumPy blocks whose chunks end on window
  bounds (whole series, the usual chunking, or long series split into
  multiples of the window): the chunk is read twice and none of it is copied
  (:mod:`.steps.fused`); one task per chunk does all four when it holds
  whole series.

A fused stage computes every value as the steps do, and returns the dataset
the steps would: the filled, z-scored ``windows`` are still there, lazily,
for any later step that reads them. :meth:`Pipeline.transform` runs the
plan; a step called on its own (as in the quickstart notebook) runs as
written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import dask.array as da
import numpy as np
import xarray as xr

from .registry import get_step
from .steps import fused, kernels
from .steps.blocks import dask_data
from .steps.features import add_window_features, kernel_options
from .steps.preprocess import mean_and_inverse_std, merged_moments, neighbour_edges

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


@dataclass(frozen=True)
class Stage:
    """One or more consecutive steps, run together."""

    calls: tuple[Call, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(call.name for call in self.calls)

    def __call__(self, ds: xr.Dataset) -> xr.Dataset:
        if len(self.calls) == 4:
            fill, zscore, window, features = self.calls
            return _filled_zscored_features(fill, zscore, window, features, ds)
        if len(self.calls) == 3:
            zscore, window, features = self.calls
            return _zscored_features(zscore, window, features, ds)
        return self.calls[0].apply(ds)


def plan(calls: Sequence[Call]) -> list[Stage]:
    """The stages that run ``calls``: each call alone, or a fused run of them."""
    stages: list[Stage] = []
    position = 0
    while position < len(calls):
        for length in (4, 3, 1):
            group = tuple(calls[position:position + length])
            if length == 1 or fusable(group):
                stages.append(Stage(group))
                position += length
                break
    return stages


def fusable(calls: Sequence[Call]) -> bool:
    """Whether ``calls`` are [fill_gaps,] zscore along time, window and a feature step,
    on one variable."""
    names = [call.name for call in calls]
    if len(calls) not in (3, 4) or names[-3:-1] != ["zscore", "window"] \
            or names[-1] not in FEATURE_STEPS or (len(calls) == 4 and names[0] != "fill_gaps"):
        return False
    params = [_params(call) for call in calls]
    variables = {p["variable"] for p in params[:-1]}
    return params[-3]["dim"] == "time" and len(variables) == 1 \
        and params[-1]["variable"] == "windows"


def _params(call: Call) -> dict[str, Any]:
    """The call's parameters, defaults included."""
    return {**get_step(call.name).defaults(), **call.params}


def _zscored_features(zscore: Call, window: Call, features: Call,
                      ds: xr.Dataset) -> xr.Dataset:
    # The steps as written, lazily: they check the data and the parameters, and
    # keep the z-scored windows for whatever reads them later.
    stepwise = features.apply(window.apply(zscore.apply(ds)))
    signal = ds[_params(zscore)["variable"]].transpose("unit", "time", "channel")
    scaling = mean_and_inverse_std(dask_data(signal), axis=1)  # (unit, 2, channel)
    fused = add_window_features(window.apply(ds), scaling=scaling,
                                **{**FEATURE_STEPS[features.name], **features.params})
    return stepwise.assign({name: fused[name] for name in ("band_power", "window_stats")
                            if name in stepwise.data_vars})


def _filled_zscored_features(fill: Call, zscore: Call, window: Call, features: Call,
                             ds: xr.Dataset) -> xr.Dataset:
    signal = ds[_params(fill)["variable"]]
    data = dask_data(signal)
    size = int(_params(window)["size"])
    if signal.dims != ("unit", "time", "channel") or data.numblocks[2] != 1 \
            or any(chunk % size for chunk in data.chunks[1][:-1]) \
            or data.chunks[1][-1] < size or not kernels.is_compiled_dtype(data._meta):
        # Windows that straddle chunks, or series that are too short, take the
        # steps' chunking; other array modules (CuPy) take the steps' code.
        return _zscored_features(zscore, window, features, fill.apply(ds))
    stepwise = features.apply(window.apply(zscore.apply(fill.apply(ds))))
    params = {**get_step("window_features").defaults(), **FEATURE_STEPS[features.name],
              **features.params}
    options = kernel_options(size, float(stepwise.attrs["sample_rate"]), data.dtype,
                             bands=params["bands"], taper=params["taper"], log=params["log"],
                             stats=params["stats"])
    n_bands = 0 if options["weights"] is None else options["weights"].shape[1]
    chunks = (data.chunks[0], tuple(chunk // size for chunk in data.chunks[1]), data.chunks[2],
              (n_bands + len(options["stats"]),))
    meta = np.empty((0,) * 4, data.dtype)
    max_gap = int(_params(fill)["max_gap"])
    if data.numblocks[1] == 1:
        # Whole series in each chunk: one task does it all.
        combined = da.map_blocks(fused.fill_zscore_features_block, data, max_gap=max_gap,
                                 size=size, **options, new_axis=3, chunks=chunks,
                                 dtype=data.dtype, meta=meta)
    else:
        # Each chunk's plan, the series' (mean, 1/std) from the plans' moments, then
        # each chunk's features: chunks pair with their plans by position.
        before, after, used = neighbour_edges(data, 1, max_gap)
        plans = da.map_blocks(fused.plan_block, data, before, after, max_gap=max_gap,
                              used=used, dtype=object,
                              chunks=tuple((1,) * n for n in data.numblocks),
                              meta=np.empty((0, 0, 0), dtype=object))
        parts = da.map_blocks(fused.plan_moments, plans, dtype=np.float64,
                              chunks=(data.chunks[0], (3,) * data.numblocks[1], data.chunks[2]),
                              meta=np.empty((0, 0, 0)))
        scaling = merged_moments(parts, 1, data.dtype)
        combined = da.map_blocks(fused.plan_features_block, data, scaling, plans, size=size,
                                 **options, new_axis=3, chunks=chunks,
                                 dtype=data.dtype, meta=meta)
    arrays = {"band_power": combined[..., :n_bands], "window_stats": combined[..., n_bands:]}
    return stepwise.assign({name: stepwise[name].copy(data=arrays[name])
                            for name in arrays if name in stepwise.data_vars})
