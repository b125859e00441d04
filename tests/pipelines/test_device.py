"""Device selection on CPU: the choice, its errors, the memory-pool plugin."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
from click.testing import CliRunner

from suanli import cluster, datasets, pipelines
from suanli.pipelines.cli import main
from suanli.pipelines.device import (
    DeviceError,
    WorkerDevice,
    dataset_to_device,
    resolve_device,
    worker_devices,
)

GPU = WorkerDevice(gpus=1, cupy="13.6.0")
CPU = WorkerDevice(gpus=0, cupy=None)
NO_CUPY = WorkerDevice(gpus=2, cupy=None, problem="CuPy is not installed (No module 'cupy')")


def test_resolution() -> None:
    assert resolve_device("cpu", {"a": GPU}) == "cpu"
    assert resolve_device("auto", {"a": GPU, "b": GPU}) == "gpu"
    assert resolve_device("auto", {"a": GPU, "b": CPU}) == "cpu"  # all or nothing
    assert resolve_device("auto", {"a": NO_CUPY}) == "cpu"
    assert resolve_device("gpu", {"a": GPU}) == "gpu"


@pytest.mark.parametrize(("workers", "expected"), [
    ({"tcp://w1": CPU, "tcp://w2": GPU}, "1 of 2 workers see no GPU"),
    ({"tcp://w1": NO_CUPY}, r"CuPy is not installed.*install suanli\[gpu\]"),
    ({}, "no workers"),
])
def test_gpu_errors_say_what_is_wrong(workers: dict[str, WorkerDevice], expected: str) -> None:
    with pytest.raises(DeviceError, match=expected):
        resolve_device("gpu", workers)
    with pytest.raises(DeviceError, match="one of auto, cpu, gpu"):
        resolve_device("tpu", {})


def test_cpu_cluster_workers_report_no_gpu(local_cluster: cluster.Cluster) -> None:
    found = worker_devices(local_cluster.client)
    assert len(found) == 2 and all(w.gpus == 0 for w in found.values())
    assert resolve_device("auto", found) == "cpu"


def test_a_worker_gone_while_probed_is_left_out_but_a_failing_probe_is_not() -> None:
    """Under worker churn (RELIABILITY R3) the probe meets closed connections; those
    workers are left out. Any other error is a real problem and is raised."""
    from distributed.comm.core import CommClosedError

    class Answers:
        def __init__(self, answers: dict[str, object]) -> None:
            self.answers = answers

        def run(self, function: object, on_error: str = "raise") -> dict[str, object]:
            assert on_error == "return"
            return self.answers

    churned = Answers({"tcp://w1": CommClosedError("in <TCP (closed)>"), "tcp://w2": CPU})
    assert worker_devices(churned) == {"tcp://w2": CPU}  # type: ignore[arg-type]
    with pytest.raises(ZeroDivisionError):
        worker_devices(Answers({"tcp://w1": ZeroDivisionError(), "tcp://w2": CPU})
                       )  # type: ignore[arg-type]


def test_device_gpu_on_a_cpu_cluster_is_bad_input(local_cluster: cluster.Cluster,
                                                  tmp_path: Path) -> None:
    with pytest.raises(DeviceError, match=r"see no GPU.*local-cuda"):
        pipelines.run("sensor-faults", "synthetic://telemetry?units=10&minutes=1",
                      cluster=local_cluster, output=tmp_path / "run", device="gpu")
    assert not (tmp_path / "run").exists()
    ran = CliRunner().invoke(main, ["run", "sensor-faults", "--cluster", "test", "--dataset",
                                    "synthetic://telemetry?units=10&minutes=1", "--output",
                                    str(tmp_path / "cli"), "--set", "device=gpu"])
    assert ran.exit_code == 2 and "device=gpu" in ran.output


def test_device_in_pipeline_definitions() -> None:
    pipe = pipelines.load_pipeline("sensor-faults")
    assert pipe.device == "auto"
    assert pipe.with_overrides({"device": "cpu"}).device == "cpu"
    with pytest.raises(pipelines.PipelineDefinitionError, match="device must be"):
        pipe.with_overrides({"device": "quantum"})


def test_cpu_device_leaves_data_alone() -> None:
    ds = datasets.open("synthetic://telemetry?units=2&minutes=1")
    assert dataset_to_device(ds, "cpu") is ds


def test_memory_pool_plugin_sets_one_allocator(monkeypatch: pytest.MonkeyPatch) -> None:
    from suanli.cluster.plugins import CupyMemoryPool

    calls: dict[str, object] = {}

    class Pool:
        def set_limit(self, fraction: float) -> None:
            calls["limit"] = fraction

        def malloc(self, size: int) -> None:  # pragma: no cover - never called
            raise AssertionError

    fake = types.SimpleNamespace(cuda=types.SimpleNamespace(
        MemoryPool=Pool, set_allocator=lambda f: calls.setdefault("allocator", f)))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setitem(sys.modules, "rmm", None)
    worker = types.SimpleNamespace()
    CupyMemoryPool(limit_fraction=0.5).setup(worker)
    assert calls["limit"] == 0.5 and worker.suanli_cupy_pool == "cupy"
    assert getattr(calls["allocator"], "__name__", "") == "malloc"
