"""End-to-end runs of sensor-faults on a real local cluster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from suanli import cluster, datasets, pipelines
from suanli.datasets import DatasetError
from suanli.pipelines import RunOutputError, StepError

FAST = {"train__epochs": 60}


@pytest.fixture(scope="module")
def finished_run(local_cluster: cluster.Cluster, tmp_path_factory: pytest.TempPathFactory
                 ) -> pipelines.RunResult:
    output = tmp_path_factory.mktemp("runs") / "first"
    return pipelines.run("sensor-faults", "synthetic://telemetry?units=40&minutes=2&seed=1",
                         cluster=local_cluster, output=output, **FAST)


def test_run_directory_has_everything_needed_to_audit(finished_run: pipelines.RunResult
                                                      ) -> None:
    out = finished_run.output
    for name in ("manifest.json", "metrics.json", "model.npz", "report.html",
                 "features.zarr", "plots/confusion_matrix.png",
                 "plots/feature_distributions.png", "plots/training_curve.png"):
        assert (out / name).exists(), name
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "succeeded"
    assert manifest["overrides"] == {"train.epochs": 60}
    assert manifest["pipeline"]["train"]["epochs"] == 60
    assert manifest["cluster"]["kind"] == "local"
    assert {"dask", "distributed", "numpy", "xarray"} <= set(manifest["versions"])
    assert "model.npz" in manifest["outputs"] and len(manifest["outputs"]["model.npz"]) == 32
    # The datasets' atomic output and checksums: the run verifies as any output does.
    verified = datasets.verify(finished_run.output)
    assert verified.ok and verified.files_checked >= len(manifest["outputs"]) + 1
    assert manifest["timings"]["features"] > 0
    assert "Dask Performance Report" in (out / "report.html").read_text()[:20000]
    assert (out / "plots/confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(out.parent.glob(".*partial*"))


def test_run_learns_the_faults(finished_run: pipelines.RunResult) -> None:
    metrics = finished_run.metrics
    assert metrics["accuracy"] >= 0.9, metrics
    assert metrics["macro_f1"] >= 0.85
    assert np.asarray(metrics["confusion_matrix"]["counts"]).sum() == metrics["test_samples"]
    assert json.loads((finished_run.output / "metrics.json").read_text())["accuracy"] == \
        metrics["accuracy"]


def test_features_open_in_plain_xarray_and_fit_in_scikit_learn(
        finished_run: pipelines.RunResult) -> None:
    """A user takes the run's features elsewhere: no warnings, types sklearn takes."""
    import warnings

    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        features = xr.open_zarr(finished_run.output / "features.zarr").load()
        assert features.split.dtype.kind == "U"
        windows = features.sizes["window"]
        X = np.concatenate([features[name].values.reshape(features.sizes["unit"] * windows, -1)
                            for name in ("band_power", "window_stats")], axis=1)
        y = np.repeat(features.label.values, windows)
        train = np.repeat(features.split.values == "train", windows)
        finite = np.isfinite(X).all(axis=1)
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
        model.fit(X[train & finite], y[train & finite])
        assert model.score(X[~train & finite], y[~train & finite]) > 0.8


def test_a_run_is_published_to_object_storage(
        local_cluster: cluster.Cluster, s3: dict[str, Any], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """--output s3://...: built locally, published atomically with a manifest; never a
    local folder named after the URL. (fsspec's own config gives s3fs moto's endpoint,
    as a user's ~/.config/fsspec/s3.json would give theirs.)"""
    import uuid

    import fsspec.config

    from suanli.pipelines import feature_stage

    monkeypatch.setitem(fsspec.config.conf, "s3", s3["options"])
    monkeypatch.chdir(tmp_path)
    url = f"s3://suanli-test/runs/{uuid.uuid4().hex[:8]}"
    targets: list[str] = []
    census = feature_stage.datasets.write_with_value_census

    def spied(source: Any, derive: Any, path: Any, **options: Any) -> Any:
        targets.append(str(path))
        return census(source, derive, path, **options)

    monkeypatch.setattr(feature_stage.datasets, "write_with_value_census", spied)
    result = pipelines.run("sensor-faults", "synthetic://telemetry?units=20&minutes=1&seed=1",
                           cluster=local_cluster, output=url, train__epochs=20)
    assert result.output == url and result.outputs["model"] == f"{url}/model.npz"
    # The workers wrote the features into the run's staging prefix, not into a folder
    # of this machine's (which a worker on another host could not reach).
    assert len(targets) == 1 and targets[0].startswith(f"{url.rpartition('/')[0]}/.")
    assert result.outputs["features"] == f"{url}/features.zarr"
    assert list(tmp_path.iterdir()) == []
    fs = s3["fs"]
    fs.invalidate_cache()
    manifest = json.loads(fs.cat_file(f"{url}/manifest.json"))
    assert manifest["status"] == "succeeded"
    assert datasets.verify(url).ok
    features = datasets.open(f"{url}/features.zarr")
    assert features.sizes["unit"] == 20
    assert [p for p in fs.find("suanli-test/runs", withdirs=True)
            if p.rpartition("/")[2].startswith(".")] == []
    with pytest.raises(RunOutputError, match="holds something already"):
        pipelines.run("sensor-faults", "synthetic://telemetry?units=20&minutes=1&seed=1",
                      cluster=local_cluster, output=url, train__epochs=20)


def test_saved_model_predicts_without_a_cluster(finished_run: pipelines.RunResult) -> None:
    model = pipelines.load_model(finished_run.output / "model.npz")
    features = datasets.open(finished_run.output / "features.zarr").load()
    from suanli.pipelines.training.trainer import split_tables

    _, test, classes, _ = split_tables(features, ("band_power", "window_stats"))
    predicted = model.predict(np.asarray(test.X))
    assert classes == model.classes
    assert (predicted == test.y).mean() == pytest.approx(finished_run.metrics["accuracy"])


def test_output_holding_another_run_is_refused(finished_run: pipelines.RunResult,
                                               local_cluster: cluster.Cluster) -> None:
    before = (finished_run.output / "manifest.json").read_bytes()
    with pytest.raises(RunOutputError, match="holds another run"):
        pipelines.run("sensor-faults", "synthetic://telemetry?units=5&minutes=1",
                      cluster=local_cluster, output=finished_run.output)
    assert (finished_run.output / "manifest.json").read_bytes() == before


def test_failed_run_leaves_nothing(local_cluster: cluster.Cluster, tmp_path: Path) -> None:
    # two units cannot be split into train and test for five classes: fails after features
    with pytest.raises(pipelines.PipelineError):
        pipelines.run("sensor-faults", "synthetic://telemetry?units=1&minutes=1",
                      cluster=local_cluster, output=tmp_path / "run", **FAST)
    assert list(tmp_path.iterdir()) == []


def test_hand_built_panel_with_split_and_datetime_time(local_cluster: cluster.Cluster,
                                                       tmp_path: Path) -> None:
    """A panel as a user would build it from real measurements, stored as Zarr."""
    source = datasets.open("synthetic://telemetry?units=20&minutes=2&seed=7").load()
    names = np.array(source.label.attrs["classes"])[source.label.values]
    panel = (source.drop_vars("label")
             .assign(label=("unit", names.astype(object)),
                     split=("unit", np.array(["train"] * 15 + ["test"] * 5, dtype=object)))
             .assign_coords(time=pd.date_range("2026-03-01", periods=source.sizes["time"],
                                               freq=pd.Timedelta(seconds=1 / 1024)),
                            unit=[f"pump-{i:02d}" for i in range(20)]))
    panel.attrs = {}
    path = datasets.write(panel, tmp_path / "plant.zarr")
    result = pipelines.run("sensor-faults", str(path), cluster=local_cluster,
                           output=tmp_path / "run", **FAST)
    assert result.metrics["test_units"] == 5
    assert result.metrics["accuracy"] > 0.6
    assert result.manifest["dataset"]["source"] == str(path)


def test_predict_on_raw_data_without_a_cluster_matches_the_run(
        finished_run: pipelines.RunResult) -> None:
    """Edge inference replays the recorded steps and gives the cluster's predictions."""
    model = pipelines.load_model(finished_run.output / "model.npz")
    raw = datasets.open("synthetic://telemetry?units=40&minutes=2&seed=1")
    predictions = pipelines.predict_dataset(model, raw)
    features = datasets.open(finished_run.output / "features.zarr").load()
    from suanli.pipelines.training.trainer import split_tables

    _, test, _, _ = split_tables(features, ("band_power", "window_stats"))
    expected = np.asarray(model.classes, dtype=object)[model.predict(np.asarray(test.X))]
    got = predictions["prediction"].sel(unit=test.units).values.ravel()
    assert (got == expected).mean() > 0.999  # float32 summation order may flip a tie
    test_accuracy = (got == predictions["label"].sel(unit=test.units).values.repeat(
        predictions.sizes["window"])).mean()
    assert test_accuracy == pytest.approx(finished_run.metrics["accuracy"], abs=0.002)


def test_validation_early_stopping_and_resume_through_the_runner(
        local_cluster: cluster.Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from suanli.pipelines import training_stage

    options = {"train__epochs": 30, "train__validation_fraction": 0.25, "train__patience": 5,
               "train__model": "mlp", "train__hidden": [16], "train__batch_size": 1024,
               "train__learning_rate": 0.01}
    source = "synthetic://telemetry?units=40&minutes=1&seed=4"

    def fail_after_training(*args: object, **kwargs: object) -> None:
        raise RuntimeError("evaluation crashed")

    monkeypatch.setattr(training_stage, "predict_table", fail_after_training)
    with pytest.raises(RuntimeError, match="evaluation crashed"):
        pipelines.run("sensor-faults", source, cluster=local_cluster, output=tmp_path / "run",
                      **options)
    checkpoint = tmp_path / ".run.checkpoint.npz"
    assert checkpoint.exists() and not (tmp_path / "run").exists()
    monkeypatch.undo()
    result = pipelines.run("sensor-faults", source, cluster=local_cluster,
                           output=tmp_path / "run", **options)
    metrics = result.metrics
    assert metrics["resumed_after_epoch"] == metrics["epochs_run"] - 1
    assert metrics["best_epoch"] is not None and metrics["epochs_run"] <= 30
    assert metrics["accuracy"] > 0.8
    assert not checkpoint.exists()
    history = json.loads((result.output / "training_history.json").read_text())
    assert len(history["validation_loss"]) == metrics["epochs_run"]
    assert pipelines.load_model(result.output / "model.npz").network.layer_sizes[1] == 16


def test_regression_pipeline_with_a_linear_model(local_cluster: cluster.Cluster,
                                                 tmp_path: Path) -> None:
    """A floating-point label makes a regression run: linear model, RMSE/MAE/R^2."""
    rng = np.random.default_rng(0)
    amplitude = rng.uniform(0.5, 3.0, 40)
    seconds = np.arange(4096) / 256
    signal = (amplitude[:, None, None] * np.sin(2 * np.pi * 10 * seconds)[None, :, None]
              + 0.1 * rng.standard_normal((40, 4096, 1)))
    panel = datasets.from_arrays(signal.astype(np.float32), sample_rate=256, label=amplitude)
    pipe = {
        "name": "vibration-amplitude",
        "steps": [{"window": {"size": 256}},
                  {"window_features": {"bands": [[5, 15], [15, 128]], "stats": ["rms"]}},
                  {"split": {"test_fraction": 0.25}}],
        "train": {"model": "linear", "features": ["window_stats"], "epochs": 200,
                  "optimizer": "sgd", "learning_rate": 0.1},
    }
    result = pipelines.run(pipe, panel, cluster=local_cluster, output=tmp_path / "run")
    assert result.metrics["r2"] > 0.99, result.metrics
    assert result.metrics["rmse"] < 0.1
    assert "accuracy" not in result.metrics
    assert (result.output / "plots/predicted_vs_true.png").exists()
    model = pipelines.load_model(result.output / "model.npz")
    predicted = pipelines.predict_dataset(model, panel)["prediction"].values
    np.testing.assert_allclose(predicted.mean(axis=1), amplitude, rtol=0.05)
    with pytest.raises(pipelines.PipelineError, match="model 'softmax' is for classification"):
        pipelines.run({**pipe, "train": {**pipe["train"], "model": "softmax"}}, panel,
                      cluster=local_cluster, output=tmp_path / "wrong")


@pytest.mark.filterwarnings("ignore:Sending large graph")  # the panel is in memory here
def test_values_policy_reports_or_rejects_infinities(local_cluster: cluster.Cluster,
                                                     tmp_path: Path) -> None:
    source = datasets.open("synthetic://telemetry?units=10&minutes=1&seed=2").load()
    signal = source.signal.values.copy()
    signal[3, 5000, 0] = np.inf
    dirty = source.assign(signal=(source.signal.dims, signal))
    reported = pipelines.run("sensor-faults", dirty, cluster=local_cluster,
                             output=tmp_path / "reported", train__epochs=5)
    census = reported.metrics["input_values"]
    assert census["counts"]["+inf"] == 1 and census["counts"]["nan"] > 0  # gaps: allowed
    assert census["places"]["+inf"] == [{"unit": 3, "time": 5000, "channel": "vibration"}]
    with pytest.raises(DatasetError, match=r"1 \+inf \(first at unit=3, time=5000"):
        pipelines.run("sensor-faults", dirty, cluster=local_cluster,
                      output=tmp_path / "rejected", train__epochs=5, values__policy="reject")
    assert not (tmp_path / "rejected").exists()
    clean = pipelines.run("sensor-faults", source, cluster=local_cluster,
                          output=tmp_path / "clean", train__epochs=5, values__policy="reject")
    assert clean.metrics["input_values"]["counts"]["+inf"] == 0


@pytest.mark.slow
def test_a_worker_killed_during_the_features_changes_nothing(tmp_path: Path) -> None:
    """RELIABILITY R1: SIGKILL 1 of 3 workers when 40% of the feature blocks are done;
    the run finishes with the clean run's features and metrics."""
    import os
    import signal

    from distributed.diagnostics.plugin import SchedulerPlugin

    class FeatureBlocks(SchedulerPlugin):
        """Counts finished feature blocks; kills ``victim`` when ``kill_after`` are done."""

        def __init__(self) -> None:
            self.done, self.kill_after, self.victim, self.killed_at = 0, None, 0, None

        def transition(self, key, start, finish, *args, **kwargs):  # type: ignore[no-untyped-def]
            if finish == "memory" and "fill_zscore_features" in str(key):
                self.done += 1
                if self.kill_after is not None and self.killed_at is None \
                        and self.done >= self.kill_after:
                    os.kill(self.victim, signal.SIGKILL)
                    self.killed_at = self.done

    dataset = "synthetic://telemetry?units=40&minutes=6&seed=4"
    counter = FeatureBlocks()
    with cluster.start("local", workers=3, threads_per_worker=1,
                       dashboard_address=None) as c:
        c.dask_cluster.scheduler.add_plugin(counter)  # in-process scheduler: same object
        clean = pipelines.run("sensor-faults", dataset, cluster=c, output=tmp_path / "clean",
                              train__epochs=20)
        blocks, counter.done = counter.done, 0
        counter.victim = next(iter(c.client.run(os.getpid).values()))
        counter.kill_after = max(1, int(0.4 * blocks))
        survived = pipelines.run("sensor-faults", dataset, cluster=c,
                                 output=tmp_path / "survived", train__epochs=20)
        assert blocks >= 10 and counter.killed_at == counter.kill_after
        assert counter.victim not in c.client.run(os.getpid, on_error="ignore").values()
    for name in ("band_power", "window_stats"):
        xr.testing.assert_identical(
            datasets.open(str(clean.outputs["features"]))[name].load(),
            datasets.open(str(survived.outputs["features"]))[name].load())
    assert survived.metrics["accuracy"] == clean.metrics["accuracy"]
    assert survived.metrics["confusion_matrix"] == clean.metrics["confusion_matrix"]


def _sensor_faults_with(monkeypatch: pytest.MonkeyPatch, step_name: str,
                       on_block: Any) -> pipelines.Pipeline:
    """sensor-faults with one more step after fill_gaps that maps ``on_block`` over the
    signal (registered in a copy of the step registry, for this test only)."""
    from importlib import resources

    import yaml

    from suanli.pipelines import registry

    registry.step_names()  # the built-in steps, before the registry is swapped for a copy
    monkeypatch.setattr(registry, "_steps", dict(registry._steps))

    def mapped(ds: xr.Dataset) -> xr.Dataset:
        data = ds.signal.data.map_blocks(on_block, meta=ds.signal.data._meta)
        return ds.assign(signal=ds.signal.copy(data=data))

    registry.step(step_name)(mapped)
    shipped = resources.files("suanli.pipelines") / "definitions" / "sensor-faults.yaml"
    spec = yaml.safe_load(shipped.read_text())
    spec["steps"].insert(1, {step_name: {}})
    return pipelines.load_pipeline(spec)


@pytest.mark.slow
def test_a_step_whose_tasks_kill_their_workers_is_named(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """RELIABILITY R4: a task that kills its own process; the run fails quickly, naming
    the step, and writes nothing; the cluster stays usable."""
    import os
    import time

    def exit_process(block: np.ndarray) -> np.ndarray:  # local: pickled by value
        os._exit(3)

    pipe = _sensor_faults_with(monkeypatch, "crash_workers", exit_process)
    with cluster.start("local", workers=2, threads_per_worker=1,
                       dashboard_address=None) as c:
        began = time.monotonic()
        with pytest.raises(StepError, match=r"step 'crash_workers' failed: a task of this "
                                            r"step, .* killed each of the \d workers"):
            pipelines.run(pipe, "synthetic://telemetry?units=4&minutes=1&seed=1", cluster=c,
                          output=tmp_path / "crashed", train__epochs=2)
        assert time.monotonic() - began < 60
        assert not (tmp_path / "crashed").exists()
        assert c.client.submit(sum, [1, 2]).result(timeout=30) == 3


@pytest.mark.slow
def test_a_step_that_exceeds_worker_memory_names_the_step_and_the_limit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """RELIABILITY R5: a step needs more memory than a worker has; the run fails naming
    the step and the memory limit; the cluster stays usable."""
    import time

    def hold_too_much(block: np.ndarray) -> np.ndarray:
        ballast = np.ones(512 * 2**20, dtype=np.float32)  # 2 GiB, touched
        time.sleep(5)  # the nanny's memory monitor looks every 100 ms
        return block + ballast[0]

    # A worker with NumPy, pandas, Numba and xarray loaded holds about 350 MB before
    # any task: a limit under 440 MiB would pause it (at 80%) before it runs one.
    pipe = _sensor_faults_with(monkeypatch, "needs_memory", hold_too_much)
    with cluster.start("local", workers=2, threads_per_worker=1, memory_limit="1GiB",
                       dashboard_address=None) as c:
        with pytest.raises(StepError, match=r"step 'needs_memory' failed: .* Each worker may "
                                            r"use 1\.00 GiB"):
            pipelines.run(pipe, "synthetic://telemetry?units=4&minutes=1&seed=1", cluster=c,
                          output=tmp_path / "too-big", train__epochs=2)
        assert not (tmp_path / "too-big").exists()
        assert c.client.submit(sum, [1, 2]).result(timeout=30) == 3


@pytest.mark.slow
@pytest.mark.parametrize("after", [2.0, 0.0], ids=["mid-run", "before-its-first-call"])
def test_a_lost_scheduler_fails_the_run_within_seconds(tmp_path: Path, plain_scheduler: Any,
                                                      after: float) -> None:
    """RELIABILITY R7: the scheduler is killed mid-run, or before the run's first call
    to it (which then meets a closed connection at once); the run fails within seconds
    saying the scheduler was lost and to rerun, writes nothing, and leaves nothing."""
    import threading
    import time

    team = plain_scheduler(2)
    spec = cluster.ClusterSpec(kind="shared", address=team.address, insecure=True, workers=2)
    with cluster.start(spec) as c:
        if after:
            threading.Timer(after, team.scheduler.kill).start()
        else:
            team.scheduler.kill()
            team.scheduler.wait(timeout=10)
        began = time.monotonic()
        with pytest.raises(pipelines.PipelineError, match=r"lost the scheduler at "
                                                          r"tcp://127\.0\.0\.1:\d+: .* rerun"):
            pipelines.run("sensor-faults", cluster=c, output=tmp_path / "lost")
        assert time.monotonic() - began < 20
    assert not (tmp_path / "lost").exists()
    assert team.workers.wait(timeout=30) is not None  # the workers give up on their own


def test_a_bystander_dask_names_is_traced_to_the_step_that_was_there_each_time() -> None:
    """Dask suspects every task on a dying worker and names whichever reaches the limit
    first: a census scan beside the real culprit is traced to the culprit's step."""
    from distributed import KilledWorker

    from suanli.pipelines.failures import killed_workers_error

    pipe = pipelines.load_pipeline("sensor-faults")
    ds = datasets.open("synthetic://telemetry?units=2&minutes=1&seed=3")
    error = KilledWorker(task=("_scan-0d1e", 0), last_worker=None, allowed_failures=3)
    traced = killed_workers_error(pipe, ds, error, 2**30, suspects={"_scan": 4,
                                                                     "fill_block": 4})
    assert isinstance(traced, StepError)
    assert "step 'fill_gaps' failed: a task of this step, 'fill_block'" in str(traced)
    alone = killed_workers_error(pipe, ds, error, 2**30, suspects={"_scan": 4})
    assert not isinstance(alone, StepError)
    assert str(alone).startswith("A task reading the input")
