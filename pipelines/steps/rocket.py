"""``rocket_features``: MiniRocket's random-convolution features of each window
(the maths: :mod:`..compute.rocket`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr

from suanli.datasets import dask_array, text_values

from ..compute import rocket
from ..errors import PipelineDefinitionError
from ..registry import step
from .graphs import whole_windows


def _check(params: Mapping[str, Any]) -> None:
    if params["features"] < rocket.KERNELS:
        raise PipelineDefinitionError(f"rocket_features: features must be at least "
                                      f"{rocket.KERNELS} (one per kernel), got "
                                      f"{params['features']}")
    if params["max_dilations"] < 1:
        raise PipelineDefinitionError(f"rocket_features: max_dilations must be >= 1, got "
                                      f"{params['max_dilations']}")


@step("rocket_features", check=_check)
def rocket_features(ds: xr.Dataset, *, features: int = 10_000, max_dilations: int = 32,
                    seed: int = 0, biases: list[float] | None = None,
                    variable: str = "windows") -> xr.Dataset:
    """MiniRocket features of each window: the proportion of positive values of 84 fixed
    convolution kernels at several dilations, each minus biases fitted on training windows.

    Multivariate as the paper's variant (each kernel sums over a random combination
    of channels). The biases come from windows of the units whose ``split`` is
    ``train`` (all units without a split), chosen from ``seed``: the features do not
    depend on the chunking or the workers. ``features`` is rounded down to a
    multiple of 84. Given ``biases`` (a trained model's), none are fitted: new data
    gets the features the model was trained on. Adds ``rocket(unit, window,
    feature)`` and the biases, ``rocket_biases(feature)``; shape, not spectrum,
    is what these features see, so they suit short series whose classes differ in
    waveform and timing (with ``window: {size: series}``, one window per series).
    """
    _check({"features": features, "max_dilations": max_dilations})
    windows = ds[variable]
    data = whole_windows(dask_array(windows.transpose("unit", "window", "offset", "channel")))
    units, n_windows, length, channels = data.shape
    if length < 9:
        raise PipelineDefinitionError(f"rocket_features: windows of {length} samples are "
                                      "shorter than a kernel (9 samples); use longer windows")
    if biases is None:
        fitting = _fitting_series(ds, units, n_windows)
        plan = rocket.plan(length, channels, n_features=features,
                           max_dilations=max_dilations, n_examples=len(fitting), seed=seed)
        chosen = np.unique(plan.examples)
        series = fitting[chosen]  # (unit, window) of each series a bias is fitted on
        samples = data.vindex[series[:, 0], series[:, 1]]
        renumbered = np.searchsorted(chosen, plan.examples)
        fitted = dask.delayed(_fit, pure=True)(samples, plan, renumbered)
        given = da.from_delayed(fitted, shape=(plan.n_features,), dtype=np.float32)
    else:
        plan = rocket.plan(length, channels, n_features=features,
                           max_dilations=max_dilations, n_examples=1, seed=seed)
        if len(biases) != plan.n_features:
            raise PipelineDefinitionError(f"rocket_features: {len(biases)} biases given for "
                                          f"{plan.n_features} features")
        given = da.from_array(np.asarray(biases, dtype=np.float32), chunks=-1)
    combined = da.blockwise(_transform_block, "uwf", data, "uwoc", given, "f",
                            plan=plan, concatenate=True, dtype=np.float32,
                            meta=np.empty((0, 0, 0), dtype=np.float32))
    return ds.assign(
        rocket=(("unit", "window", "feature"), combined,
                {"long_name": "MiniRocket features (proportion of positive values)",
                 "seed": seed}),
        rocket_biases=(("feature",), given, {"long_name": "MiniRocket biases",
                                             "fitted_parameter": "rocket_features.biases"}),
    ).assign_coords(feature=np.arange(plan.n_features))


def _fitting_series(ds: xr.Dataset, units: int, n_windows: int) -> np.ndarray:
    """(unit, window) of every window the biases may be fitted on: the training units'."""
    chosen = np.arange(units)
    if "split" in ds.variables and ds["split"].dims == ("unit",):
        chosen = np.flatnonzero(text_values(ds["split"].values) == "train")
        if chosen.size == 0:
            raise PipelineDefinitionError("rocket_features: no unit has split 'train' to fit "
                                          "the biases on")
    grid = np.stack(np.meshgrid(chosen, np.arange(n_windows), indexing="ij"), axis=-1)
    return grid.reshape(-1, 2)


def _fit(samples: Any, plan: rocket.RocketPlan, renumbered: np.ndarray) -> np.ndarray:
    fitted = rocket.fit_biases(samples, dataclasses.replace(plan, examples=renumbered))
    assert fitted.biases is not None
    return fitted.biases


def _transform_block(block: Any, biases: Any, *, plan: rocket.RocketPlan) -> Any:
    units, n_windows, length, channels = block.shape
    fitted = dataclasses.replace(plan, biases=np.asarray(biases))
    out = rocket.transform(block.reshape(units * n_windows, length, channels), fitted)
    return out.reshape(units, n_windows, -1)
