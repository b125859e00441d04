"""Step fusion: consecutive steps run in fewer passes over the data, with the same results.

Each step is a ``Dataset -> Dataset`` function that knows nothing of the next.
So gap filling copies the signal to mend its gaps, the z-score reads that copy
for its moments and writes a standardised copy, windowing reshapes it, and the
feature step reads it once more: on a 2-core machine those copies and passes
took half of the feature extraction. :func:`plan` fuses runs of steps by the
part each declares (:class:`~..registry.Fusion`), not by their names:

- standardise, window, window_features: the feature kernel gets the z-score's
  per-series (mean, 1/std) and standardises each batch of windows as it
  copies it into cache; the standardised copy is never written.
- fill before them, on NumPy blocks whose chunks end on window bounds (whole
  series, the usual chunking, or long series split into multiples of the
  window): the chunk is read twice and none of it is copied
  (:mod:`..compute.fused`); one task per chunk does all four when it holds
  whole series.

A fused stage computes every value as the steps do, and returns the dataset
the steps would: the filled, z-scored ``windows`` are still there, lazily,
for any later step that reads them. :meth:`Pipeline.transform` runs the plan;
a step called on its own (as in the quickstart notebook) runs as written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import dask.array as da
import numpy as np
import xarray as xr

from suanli.datasets import dask_array

from ..compute import fused
from ..compute.layout import is_compiled_dtype
from ..compute.window_features import feature_count
from ..registry import get_step
from .features import (
    add_window_features,
    feature_parameters,
    kernel_options,
    resolve_bands,
    with_window_features,
)
from .graphs import merged_scaling, neighbour_edges, series_scaling
from .preprocess import resolve_window


class Call(Protocol):
    """A step with its parameters (:class:`~suanli.pipelines.pipeline.StepCall`)."""

    @property
    def name(self) -> str: ...
    @property
    def params(self) -> Mapping[str, Any]: ...
    def apply(self, ds: xr.Dataset) -> xr.Dataset: ...


StageFunction = Callable[[Sequence[Call], xr.Dataset], xr.Dataset]


@dataclass(frozen=True)
class Stage:
    """One or more consecutive steps, run together by ``function``."""

    calls: tuple[Call, ...]
    function: StageFunction

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(call.name for call in self.calls)

    def __call__(self, ds: xr.Dataset) -> xr.Dataset:
        return self.function(self.calls, ds)


def _one_step(calls: Sequence[Call], ds: xr.Dataset) -> xr.Dataset:
    (call,) = calls
    return call.apply(ds)


def plan(calls: Sequence[Call]) -> list[Stage]:
    """The stages that run ``calls``: each call alone, or a fused run of them."""
    stages: list[Stage] = []
    position = 0
    while position < len(calls):
        for roles, function in FUSED_RUNS:
            group = tuple(calls[position:position + len(roles)])
            if _matches(group, roles):
                stages.append(Stage(group, function))
                position += len(group)
                break
        else:
            stages.append(Stage((calls[position],), _one_step))
            position += 1
    return stages


def fusable(calls: Sequence[Call]) -> bool:
    """Whether ``calls`` run as one fused stage."""
    return any(_matches(tuple(calls), roles) for roles, _ in FUSED_RUNS)


def _matches(calls: tuple[Call, ...], roles: tuple[str, ...]) -> bool:
    """Whether ``calls`` play ``roles`` in order, along time, on one variable."""
    if len(calls) != len(roles) or [_role(call) for call in calls] != list(roles):
        return False
    params = [_params(call) for call in calls]
    variables = {p["variable"] for p in params[:-1]}
    # The kernels read windows side by side: overlapping ones (a step) are not fused.
    return params[-3]["dim"] == "time" and len(variables) == 1 \
        and params[-1]["variable"] == "windows" and params[-2].get("step") is None


def _role(call: Call) -> str | None:
    fusion = get_step(call.name).fusion
    return fusion.role if fusion else None


def _params(call: Call) -> dict[str, Any]:
    """The call's parameters, defaults (and, for a feature step, what it fixes) included."""
    info = get_step(call.name)
    params = {**info.defaults(), **call.params}
    if info.fusion is not None and info.fusion.role == "window_features":
        return feature_parameters(params, info.fusion.fixed)
    return params


def _standardised_features(calls: Sequence[Call], ds: xr.Dataset) -> xr.Dataset:
    zscore, window, features = calls
    # The steps up to the windows, lazily: they check the data and the parameters,
    # and keep the z-scored windows for whatever reads them later.
    windowed = window.apply(zscore.apply(ds))
    signal = ds[_params(zscore)["variable"]].transpose("unit", "time", "channel")
    scaling = series_scaling(dask_array(signal), axis=1)  # (unit, 2, channel)
    raw = add_window_features(window.apply(ds), _params(features), scaling=scaling)
    return windowed.assign({name: raw[name] for name in ("band_power", "window_stats")
                            if name in raw.data_vars})


def _filled_standardised_features(calls: Sequence[Call], ds: xr.Dataset) -> xr.Dataset:
    fill, zscore, window, features = calls
    signal = ds[_params(fill)["variable"]]
    data = dask_array(signal)
    size = int(resolve_window(_params(window), ds)["size"])
    if signal.dims != ("unit", "time", "channel") or data.numblocks[2] != 1 \
            or any(chunk % size for chunk in data.chunks[1][:-1]) \
            or data.chunks[1][-1] < size or not is_compiled_dtype(data._meta):
        # Windows that straddle chunks, or series that are too short, take the
        # steps' chunking; other array modules (CuPy) take the steps' code.
        return _standardised_features((zscore, window, features), fill.apply(ds))
    windowed = window.apply(zscore.apply(fill.apply(ds)))
    params = resolve_bands(_params(features), windowed)
    options = kernel_options(params, size, float(windowed.attrs["sample_rate"]), data.dtype)
    chunks = (data.chunks[0], tuple(chunk // size for chunk in data.chunks[1]), data.chunks[2],
              (feature_count(options),))
    meta = np.empty((0,) * 4, data.dtype)
    max_gap = int(_params(fill)["max_gap"])
    if data.numblocks[1] == 1:
        # Whole series in each chunk: one task does it all.
        combined = da.map_blocks(fused.fill_zscore_features, data, max_gap=max_gap,
                                 size=size, **options, new_axis=3, chunks=chunks,
                                 dtype=data.dtype, meta=meta)
    else:
        # Each chunk's plan, the series' (mean, 1/std) from the plans' moments, then
        # each chunk's features: chunks pair with their plans by position.
        before, after, used = neighbour_edges(data, 1, max_gap)
        plans = da.map_blocks(_plan_block, data, before, after, max_gap=max_gap,
                              used=used, dtype=object,
                              chunks=tuple((1,) * n for n in data.numblocks),
                              meta=np.empty((0, 0, 0), dtype=object))
        parts = da.map_blocks(_plan_moments, plans, dtype=np.float64,
                              chunks=(data.chunks[0], (3,) * data.numblocks[1], data.chunks[2]),
                              meta=np.empty((0, 0, 0)))
        scaling = merged_scaling(parts, 1, data.dtype)
        combined = da.map_blocks(_plan_features, data, scaling, plans, size=size,
                                 **options, new_axis=3, chunks=chunks,
                                 dtype=data.dtype, meta=meta)
    return with_window_features(windowed, combined, params)


def _plan_block(block: np.ndarray, before: np.ndarray, after: np.ndarray, *, max_gap: int,
                used: list[tuple[int, int]], block_id: tuple[int, ...] | None = None
                ) -> np.ndarray:
    """The plan of one chunk of series split over chunks, with its neighbours' edges,
    in a (1, 1, 1) object array (one per chunk, as Dask needs)."""
    n_before, n_after = used[block_id[1] if block_id else 0]
    plan = np.empty((1, 1, 1), dtype=object)
    plan[0, 0, 0] = fused.chunk_plan(block, before, after, max_gap=max_gap,
                                     n_before=n_before, n_after=n_after)
    return plan


def _plan_moments(plan: np.ndarray) -> np.ndarray:
    moments: np.ndarray = plan[0, 0, 0][0]
    return moments


def _plan_features(block: np.ndarray, scaling: np.ndarray, plan: np.ndarray, *, size: int,
                   **options: Any) -> np.ndarray:
    return fused.features_of_plan(block, scaling, plan[0, 0, 0][1], size=size, **options)


#: Runs of roles that fuse, longest first, and the function that runs each.
FUSED_RUNS: tuple[tuple[tuple[str, ...], StageFunction], ...] = (
    (("fill", "standardise", "window", "window_features"), _filled_standardised_features),
    (("standardise", "window", "window_features"), _standardised_features),
)
