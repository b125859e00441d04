"""Window sizes and bands given relative to the panel, made concrete when the pipeline
meets the data: sensor-faults fits a slow, short panel without ``--set``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from suanli import cluster, datasets, pipelines
from suanli.pipelines import PipelineDefinitionError, StepCall
from suanli.pipelines.steps.features import hz_bands
from suanli.pipelines.steps.preprocess import resolve_window


def _panel(units: int, samples: int, rate: float) -> xr.Dataset:
    rng = np.random.default_rng(3)
    labels = np.arange(units) % 2
    t = np.arange(samples) / rate
    shape = np.where(labels[:, None] == 1, np.sign(np.sin(2 * np.pi * 0.05 * t)),
                     np.sin(2 * np.pi * 0.05 * t))
    signal = shape[:, :, None] + 0.3 * rng.standard_normal((units, samples, 1))
    return datasets.from_arrays(signal.astype(np.float32), sample_rate=rate,
                                label=np.array(["sine", "square"])[labels])


@pytest.mark.parametrize(("size", "samples", "rate", "expected"), [
    (["1s", "series"], 614_400, 1024.0, 1024),
    (["1s", "series"], 100, 1.0, 100),
    ("250ms", 5000, 1024.0, 256),
    ("series", 333, 10.0, 333),
    ([4096, 512], 1000, 1.0, 512),
])
def test_window_sizes_resolve_to_the_first_choice_that_fits(size: object, samples: int,
                                                            rate: float, expected: int) -> None:
    ds = _panel(2, samples, rate)
    assert resolve_window({"size": size}, ds)["size"] == expected
    assert StepCall("window", {"size": size}).apply(ds).sizes["offset"] == expected


def test_a_size_that_fits_nowhere_says_what_would() -> None:
    with pytest.raises(PipelineDefinitionError,
                       match=r"size \['1h', 5000\] does not fit these series \(100 samples at "
                             r"1 Hz\): a window holds 2 to 100 samples \(2 to 100 s\)"):
        resolve_window({"size": ["1h", 5000]}, _panel(2, 100, 1.0))


def test_auto_bands_cover_the_resolved_frequencies_up_to_nyquist() -> None:
    for size, rate in ((100, 1.0), (1024, 1024.0), (37, 3.0), (9, 1.0)):
        bands = hz_bands("auto", size, rate)
        frequencies = np.fft.rfftfreq(size, 1 / rate)
        assert len(bands) <= 8 and bands[-1][1] == rate / 2
        assert bands[0][0] == pytest.approx(rate / size)
        assert len(bands) == 8 or size < 64
        for low, high in bands:  # every band holds at least one frequency bin
            assert ((frequencies >= low) & (frequencies < high)).any(), (size, rate, low)
    assert hz_bands({"nyquist_fraction": [["1/512", "10/512"], [0.5, 1]]}, 1024, 1024.0) == \
        [[1.0, 10.0], [256.0, 512.0]]


def test_sensor_faults_runs_on_a_slow_short_panel_without_set(local_cluster: cluster.Cluster,
                                                              tmp_path: Path) -> None:
    panel = _panel(40, 100, 1.0)  # 1 Hz, 100 samples per series
    result = pipelines.run("sensor-faults", panel, cluster=local_cluster,
                           output=tmp_path / "run", overrides={"train.epochs": 20})
    resolved = result.manifest["resolved"]
    assert resolved["window.size"] == 100
    assert resolved["window_features.bands"][0] == pytest.approx([1 / 1024, 10 / 1024])
    assert result.manifest["pipeline"]["steps"][2] == {"window": {"size": 100}}
    assert result.metrics["test_samples"] == 10  # one window per unit, 10 test units


def test_only_relative_settings_send_a_pipeline_through_resolution() -> None:
    window, features = pipelines.get_step("window"), pipelines.get_step("window_features")
    assert window.is_relative({"size": "series"}) and window.is_relative({"size": ["1s", 64]})
    assert not window.is_relative({"size": 1024}) and not window.is_relative({})
    assert features.is_relative({"bands": "auto"})
    assert features.is_relative({"bands": {"nyquist_fraction": [[0, 1]]}})
    assert not features.is_relative({"bands": [[1, 10]], "log": True})
