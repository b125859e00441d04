"""Step fusion: a fused pipeline gives the dataset its steps give one by one, bit for bit."""

from __future__ import annotations

from typing import Any

import dask
import numpy as np
import pytest
import xarray as xr

from suanli import datasets
from suanli.pipelines import Pipeline, PipelineDefinitionError, StepCall
from suanli.pipelines.compute import gaps, moments, window_features
from suanli.pipelines.steps import fusion
from suanli.pipelines.steps.fusion import fusable, plan

RATE = 256.0
SIZE = 128


def _panel(dtype: type, time_chunk: int, outage: bool = True,
           channel_major: bool = False) -> xr.Dataset:
    rng = np.random.default_rng(7)
    t = np.arange(3000) / RATE
    values: np.ndarray = (50 + 4 * np.sin(2 * np.pi * 30 * t)[None, :, None]
                          + rng.standard_normal((3, 3000, 2))).astype(dtype)
    values[0, 100:110, 0] = np.nan     # gaps fill_gaps mends: one in a window,
    values[0, 1020:1030, 1] = np.nan   # one across two windows,
    values[2, 2990:, 0] = np.nan       # one after the last whole window
    values[1, 0:3, 1] = np.nan         # and one at the start
    if outage:
        values[1, 500:900, 1] = np.nan     # an outage it leaves: NaN windows
        values[2, 2000, 0] = np.inf        # a window the reference code redoes
    values[2, :, 1] = 7.0              # a constant series: centred, not scaled
    if channel_major:  # samples contiguous in memory
        values = np.ascontiguousarray(values.transpose(0, 2, 1)).transpose(0, 2, 1)
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
# Whole series; split on window bounds (1024 = 8 windows); split elsewhere (1000, 700).
@pytest.mark.parametrize("time_chunk", [3000, 1024, 1000, 700])
@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize(("outage", "channel_major"), [(True, False), (False, False),
                                                       (False, True)])
def test_fused_pipeline_equals_its_steps(feature: str, params: dict[str, Any], dtype: type,
                                         time_chunk: int, compiled: bool, outage: bool,
                                         channel_major: bool,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    if not compiled:  # the array-module path that CuPy blocks take
        for module in (gaps, moments, window_features, fusion):
            monkeypatch.setattr(module, "is_compiled_dtype", lambda array: False)
    ds = _panel(dtype, time_chunk, outage, channel_major)
    calls = _steps(feature, **params)
    assert [stage.names for stage in plan(calls)] == [tuple(call.name for call in calls)]
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
    found = computed[next(v for v in ("band_power", "window_stats") if v in computed)].values
    assert bool(np.isnan(found).any()) is outage  # the outage shows; every gap was mended


@pytest.mark.parametrize(("time_chunk", "absent"), [
    (3000, ("fill_block", "merge_moments", "standardise")),  # whole series: one task
    (1024, ("fill_chunk", "chunk_moments", "standardise")),  # split on window bounds
    (1000, ("standardise",)),
])
def test_fused_stages_skip_the_copies(time_chunk: int, absent: tuple[str, ...]) -> None:
    calls = _steps("window_features", bands=[[1, 20]])
    fused = Pipeline("fused", calls).transform(_panel(np.float32, time_chunk))
    keys = [str(key) for key in dict(dask.optimize(fused.band_power.data)[0].__dask_graph__())]
    for name in absent:
        assert not any(name in key for key in keys), name
    stepwise = _stepwise(calls, _panel(np.float32, time_chunk))
    keys = [str(key) for key in dict(dask.optimize(stepwise.band_power.data)[0]
                                     .__dask_graph__())]
    assert all(any(name in key for key in keys) for name in absent)


@pytest.mark.parametrize(("names_params", "fused"), [
    ([("zscore", {}), ("window", {}), ("window_features", {})], True),
    ([("fill_gaps", {}), ("zscore", {}), ("window", {}), ("window_stats", {})], True),
    ([("zscore", {"variable": "x"}), ("window", {"variable": "x"}), ("band_power", {})], True),
    ([("fill_gaps", {"variable": "x"}), ("zscore", {}), ("window", {}),
      ("band_power", {})], False),
    ([("zscore", {"variable": "x"}), ("window", {}), ("window_stats", {})], False),
    ([("zscore", {"dim": "unit"}), ("window", {}), ("window_features", {})], False),
    ([("zscore", {}), ("window", {}), ("window_features", {"variable": "other"})], False),
    ([("zscore", {}), ("window", {}), ("split", {})], False),
    ([("window", {}), ("zscore", {}), ("window_features", {})], False),
    ([("split", {}), ("zscore", {}), ("window", {}), ("window_features", {})], False),
])
def test_only_the_steps_in_a_row_on_one_variable_fuse(
        names_params: list[tuple[str, dict[str, Any]]], fused: bool) -> None:
    calls = [StepCall(name, params) for name, params in names_params]
    assert fusable(calls) is fused


def test_plan_fuses_the_longest_run_and_keeps_the_order() -> None:
    calls = [StepCall(name, {}) for name in ("split", "zscore", "window", "window_stats",
                                             "fill_gaps", "zscore", "window", "band_power")]
    assert [stage.names for stage in plan(calls)] == [
        ("split",), ("zscore", "window", "window_stats"),
        ("fill_gaps", "zscore", "window", "band_power")]


def test_a_bad_parameter_fails_as_the_step_would_when_the_pipeline_is_defined() -> None:
    with pytest.raises(PipelineDefinitionError, match="name at least one"):
        Pipeline("fused", _steps("window_stats", stats=[]))


def test_a_failed_fused_task_is_traced_to_the_steps_it_ran() -> None:
    from suanli import pipelines
    from suanli.pipelines.failures import steps_behind

    pipe = pipelines.load_pipeline("sensor-faults")
    ds = datasets.open("synthetic://telemetry?units=2&minutes=1&seed=3")
    graph = dask.optimize(pipe.transform(ds).band_power.data)[0].__dask_graph__()
    key = next(key for key in dict(graph) if "fill_zscore_features" in str(key))
    assert steps_behind(pipe, ds, key) == ["fill_gaps", "zscore", "window", "window_features"]
    fill_only = next(key for key in dict(dask.optimize(
        pipelines.get_step("fill_gaps").function(ds).signal.data)[0].__dask_graph__())
        if "fill_block" in str(key))
    assert steps_behind(pipe, ds, fill_only) == ["fill_gaps"]
