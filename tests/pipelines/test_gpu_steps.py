"""Every step and a whole run on CuPy blocks against NumPy: where a GPU is visible.

Run by benchmarks/gpu_check.sh on a GPU machine; skipped elsewhere.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from suanli import cluster, datasets, pipelines
from suanli.cluster.gpus import visible_gpu_count
from suanli.pipelines.array_module import to_numpy
from suanli.pipelines.device import dataset_to_device

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(visible_gpu_count() == 0,
                                                  reason="no NVIDIA GPU visible")]

DATA = "synthetic://telemetry?units=10&minutes=1&seed=5"


def _assert_close(cpu: object, gpu: object, what: str) -> None:
    expected, found = np.asarray(cpu), to_numpy(gpu)
    if expected.dtype.kind in "fc":
        np.testing.assert_allclose(found, expected, rtol=2e-4, atol=2e-4, equal_nan=True,
                                   err_msg=what)
    else:
        np.testing.assert_array_equal(found, expected, err_msg=what)


def _each_step_matches(pipeline: str, data: str) -> None:
    """Every step of ``pipeline`` on ``data`` with the signal on the GPU, and every
    variable after each step, against the same steps on NumPy blocks."""
    import cupy
    import dask

    on_cpu = datasets.open(data)
    on_gpu = dataset_to_device(on_cpu, "gpu")
    with dask.config.set(scheduler="threads"):
        for call in pipelines.load_pipeline(pipeline).steps:
            on_cpu, on_gpu = call.apply(on_cpu), call.apply(on_gpu)
            for name, variable in on_cpu.data_vars.items():
                gpu_values = on_gpu[name].data
                if hasattr(gpu_values, "compute"):
                    gpu_values = gpu_values.compute()
                assert isinstance(gpu_values, cupy.ndarray) or name != "signal", \
                    f"{pipeline} {call.name}: {name} left the GPU"
                _assert_close(variable.values, gpu_values, f"{pipeline} {call.name}: {name}")


def test_every_step_on_cupy_matches_numpy() -> None:
    _each_step_matches("sensor-faults", DATA)


def test_the_fused_feature_stages_on_cupy_match_numpy() -> None:
    """``Pipeline.transform`` fuses the steps (on CuPy, z-score folds into the feature
    kernel); the features match the NumPy ones, and stay on the GPU."""
    import cupy
    import dask

    pipe = pipelines.load_pipeline("sensor-faults")
    on_cpu = datasets.open(DATA)
    with dask.config.set(scheduler="threads"):
        cpu = pipe.transform(on_cpu)
        gpu = pipe.transform(dataset_to_device(on_cpu, "gpu"))
        for name in ("band_power", "window_stats"):
            found = gpu[name].data.compute()
            assert isinstance(found, cupy.ndarray), f"{name} left the GPU"
            _assert_close(cpu[name].values, found, f"fused: {name}")


def test_sensor_faults_on_a_local_cuda_cluster_matches_cpu(local_cluster: cluster.Cluster,
                                                            tmp_path: Path) -> None:
    cpu = pipelines.run("sensor-faults", DATA, cluster=local_cluster,
                        output=tmp_path / "cpu", train__epochs=60, device="cpu")
    with cluster.start("local-cuda", dashboard_address=None) as gpu_cluster:
        gpu = pipelines.run("sensor-faults", DATA, cluster=gpu_cluster,
                            output=tmp_path / "gpu", train__epochs=60, device="gpu")
    assert gpu.manifest["cluster"]["device"] == "gpu"
    assert gpu.metrics["accuracy"] == pytest.approx(cpu.metrics["accuracy"], abs=0.02)
    assert gpu.metrics["final_train_loss"] == pytest.approx(cpu.metrics["final_train_loss"],
                                                            rel=0.02)


def test_training_on_cupy_blocks_matches_numpy_blocks() -> None:
    """The same data-parallel training on CuPy blocks and on NumPy blocks: the same
    batches and updates, so the parameters agree to float32 summation order."""
    import dask
    import dask.array as da

    from suanli.pipelines.device import array_to_device
    from suanli.pipelines.training.data_parallel import fit_network, rebalance
    from suanli.pipelines.training.network import Network

    rng = np.random.default_rng(3)
    centres = rng.standard_normal((4, 12)).astype(np.float32) * 0.6  # classes overlap
    y = rng.integers(0, 4, 6000)
    X = (centres[y] + rng.standard_normal((6000, 12)).astype(np.float32))
    network = Network("classification", (12, 16, 4))
    options = dict(epochs=30, learning_rate=0.01, optimizer="adam", batch_size=512, seed=2)
    with dask.config.set(scheduler="threads"):
        on_cpu = rebalance(da.from_array(X, chunks=(1500, -1)), y, 4)
        on_gpu = rebalance(array_to_device(da.from_array(X, chunks=(1500, -1)), "gpu"), y, 4)
        cpu, cpu_history = fit_network(network, *on_cpu, **options)  # type: ignore[arg-type]
        gpu, gpu_history = fit_network(network, *on_gpu, **options)  # type: ignore[arg-type]
    assert cpu_history.loss[-1] < 0.5 * cpu_history.loss[0]  # it learned
    np.testing.assert_allclose(gpu_history.loss, cpu_history.loss, rtol=1e-3)
    for name in cpu:
        np.testing.assert_allclose(to_numpy(gpu[name]), cpu[name], rtol=1e-3, atol=1e-4,
                                   err_msg=name)


def test_rocket_features_on_cupy_match_numpy() -> None:
    """series-classify's steps on CuPy blocks: the biases fitted and the MiniRocket
    features computed on the GPU (the array-module code), against the compiled kernel."""
    import cupy
    import dask

    pipe = pipelines.load_pipeline("series-classify")
    on_cpu = datasets.open("synthetic://shapes?units=60&seed=2")
    with dask.config.set(scheduler="threads"):
        cpu = pipe.transform(on_cpu)["rocket"].values
        found = pipe.transform(dataset_to_device(on_cpu, "gpu"))["rocket"].data.compute()
    assert isinstance(found, cupy.ndarray), "the features left the GPU"
    differs = np.abs(to_numpy(found) - cpu)
    # A float32 output equal to its bias may fall either side on another device.
    assert (differs > 1e-6).mean() < 0.01 and differs.max() < 0.05, differs.max()


def test_time_series_steps_on_cupy_match_numpy() -> None:
    """traffic-forecast's and vitals-alerts' steps with the signal on the GPU."""
    _each_step_matches("traffic-forecast", "synthetic://traffic?units=4&days=21&seed=1")
    _each_step_matches("vitals-alerts", "synthetic://vitals?units=3&hours=12&seed=1")
