"""Step fusion: a fused pipeline gives the dataset its steps give one by one, bit for bit."""

from __future__ import annotations

from typing import Any

import dask
import numpy as np
import pytest
import xarray as xr

from suanli import datasets
from suanli.pipelines import Pipeline, StepCall
from suanli.pipelines.fusion import plan, zscore_folds_into_features
from suanli.pipelines.steps import features, preprocess

RATE = 256.0
SIZE = 128


def _panel(dtype: type, time_chunk: int) -> xr.Dataset:
    rng = np.random.default_rng(7)
    t = np.arange(3000) / RATE
    values: np.ndarray = (50 + 4 * np.sin(2 * np.pi * 30 * t)[None, :, None]
              + rng.standard_normal((3, 3000, 2))).astype(dtype)
    values[0, 100:110, 0] = np.nan     # a gap fill_gaps mends
    values[1, 500:900, 1] = np.nan     # an outage it leaves: NaN windows
    values[2, 2000, 0] = np.inf        # a window the reference code redoes
    values[2, :, 1] = 7.0              # a constant series: centred, not scaled
    return datasets.from_arrays(values, sample_rate=RATE).chunk(
        {"unit": 2, "time": time_chunk})


def _steps(feature: str, **params: Any) -> tuple[StepCall, ...]:
    return (StepCall("fill_gaps", {"max_gap": 32}), StepCall("zscore"),
            StepCall("window", {"size": SIZE}), StepCall(feature, params))


def _stepwise(calls: tuple[StepCall, ...], ds: xr.Dataset) -> xr.Dataset:
    for call in calls:
        ds = call.apply(ds)
    return ds


FEATURES = [("window_features", {"bands": [[1, 20], [20, 100]], "log": True}),
            ("band_power", {"bands": [[5, 40]], "taper": "none"}),
            ("window_stats", {"stats": ["rms", "crest_factor", "kurtosis"]})]


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # the inf window
@pytest.mark.parametrize(("feature", "params"), FEATURES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("time_chunk", [3000, 1000, 700])
@pytest.mark.parametrize("compiled", [True, False])
def test_fused_pipeline_equals_its_steps(feature: str, params: dict[str, Any], dtype: type,
                                         time_chunk: int, compiled: bool,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    if not compiled:  # the array-module path that CuPy blocks take
        monkeypatch.setattr(features.kernels, "is_compiled_dtype", lambda array: False)
        monkeypatch.setattr(preprocess.kernels, "is_compiled_dtype", lambda array: False)
    ds = _panel(dtype, time_chunk)
    calls = _steps(feature, **params)
    assert len(plan(calls)) == 2  # fill_gaps, then the other three as one stage
    with dask.config.set(scheduler="sync"):
        fused = Pipeline("fused", calls).transform(ds)
        stepwise = _stepwise(calls, ds)
        assert list(fused.data_vars) == list(stepwise.data_vars)
        for name in fused.data_vars:
            assert fused[name].dims == stepwise[name].dims
            assert fused[name].attrs == stepwise[name].attrs
            np.testing.assert_array_equal(fused[name].values, stepwise[name].values,
                                          err_msg=name)
    computed = stepwise.drop_vars("windows").compute()
    assert np.isnan(computed[next(v for v in ("band_power", "window_stats")
                                  if v in computed)].values).any()  # the outage shows


def test_fused_features_skip_the_standardised_copy() -> None:
    calls = _steps("window_features", bands=[[1, 20]])
    fused = Pipeline("fused", calls).transform(_panel(np.float32, 3000))
    graph = dict(dask.optimize(fused.band_power.data)[0].__dask_graph__())
    assert not any("standardise" in str(key) for key in graph)


@pytest.mark.parametrize(("names_params", "fused"), [
    ([("zscore", {}), ("window", {}), ("window_features", {})], True),
    ([("zscore", {"variable": "x"}), ("window", {"variable": "x"}), ("band_power", {})], True),
    ([("zscore", {"variable": "x"}), ("window", {}), ("window_stats", {})], False),
    ([("zscore", {"dim": "unit"}), ("window", {}), ("window_features", {})], False),
    ([("zscore", {}), ("window", {}), ("window_features", {"variable": "other"})], False),
    ([("zscore", {}), ("window", {}), ("split", {})], False),
    ([("window", {}), ("zscore", {}), ("window_features", {})], False),
    ([("zscore", {}), ("window", {})], False),
])
def test_only_zscore_window_and_a_feature_step_on_one_variable_fuse(
        names_params: list[tuple[str, dict[str, Any]]], fused: bool) -> None:
    calls = [StepCall(name, params) for name, params in names_params]
    assert zscore_folds_into_features(calls) is fused
    assert len(plan(calls)) == (len(calls) - 2 if fused else len(calls))


def test_a_bad_parameter_fails_as_the_step_would() -> None:
    calls = _steps("window_stats", stats=[])
    with pytest.raises(Exception, match="name at least one"):
        Pipeline("fused", calls).transform(_panel(np.float32, 3000))
