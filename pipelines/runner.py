"""``pipelines.run``: a pipeline on a cluster, from dataset to run directory."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import platform
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import xarray as xr
from distributed.scheduler import NoWorkerError

from suanli import cluster as clusters
from suanli import datasets

from .array_module import to_numpy
from .device import (
    array_to_device,
    dataset_to_device,
    dataset_to_host,
    resolve_device,
    worker_devices,
)
from .errors import PipelineError
from .evaluation import classification_metrics, regression_metrics
from .failures import killed_workers_named, no_workers_error
from .pipeline import Pipeline, load_pipeline
from .plots import (
    plot_confusion_matrix,
    plot_feature_distributions,
    plot_predicted_vs_true,
    plot_training_curve,
)
from .run_directory import RunDirectory, default_output
from .training.trainer import fit, predict_table, split_tables

#: Variables at the raw sample rate are not features: they stay out of features.zarr.
RAW_DIMS = ("time", "offset")
VERSIONED = ("suanli", "dask", "distributed", "numpy", "scipy", "xarray", "zarr", "pandas",
             "pyarrow", "cupy", "dask-cuda")


@dataclass
class RunResult:
    """What a run produced: metrics and where its outputs are."""

    pipeline: str
    output: Path | str  # a local Path, or the object-storage URL it was published to
    metrics: dict[str, Any]
    manifest: dict[str, Any]
    dashboard_link: str | None = None
    outputs: dict[str, Path | str] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [f"pipeline {self.pipeline}: done in {self.manifest['timings']['total']:.1f} s"]
        for key in ("accuracy", "macro_f1", "rmse", "mae", "r2"):
            if key in self.metrics:
                lines.append(f"  {key:<9} {self.metrics[key]:.3f}")
        if "test_samples" in self.metrics:
            lines.append(f"  test windows {self.metrics['test_samples']} from "
                         f"{self.metrics['test_units']} unseen units")
        lines.append(f"  run directory {self.output}")
        return "\n".join(lines)


def run(pipeline: str | Path | Pipeline | Mapping[str, Any],
        dataset: str | xr.Dataset | None = None,
        cluster: str | clusters.ClusterSpec | clusters.Cluster | None = None,
        output: str | Path | None = None, *, progress: bool = False,
        say: Callable[[str], None] | None = None, **params: Any) -> RunResult:
    """Run ``pipeline`` on ``dataset`` and write a run directory.

    Parameters
    ----------
    pipeline
        A shipped pipeline's name (``"sensor-faults"``), a YAML file, or a Pipeline.
    dataset
        A URI for :func:`suanli.datasets.open` or an xarray Dataset; default: the pipeline's.
    cluster
        A kind or profile name, a ClusterSpec, a started Cluster (left running), or None
        for the configured default (started here and closed at the end).
    output
        The run directory; default ``runs/PIPELINE-TIMESTAMP``. It must not hold another run.
    **params
        Overrides as ``--set`` takes them, with ``__`` for the dot: ``train__epochs=50``,
        ``window__size=512``.
    """
    say = say or (lambda message: None)
    overrides = {key.replace("__", "."): value for key, value in params.items()}
    pipe = load_pipeline(pipeline).with_overrides(overrides)
    source = dataset if dataset is not None else pipe.dataset
    if source is None:
        raise PipelineError(f"pipeline {pipe.name!r} names no dataset: pass dataset=")
    ds = datasets.open(source) if isinstance(source, str | Path) else source
    ds = datasets.validate(ds, require_label=pipe.train is not None,
                           source=str(source) if isinstance(source, str | Path) else None)
    if not isinstance(cluster, clusters.Cluster):
        cluster = clusters.plan(cluster)  # a bad kind or profile fails before anything is written
    directory = RunDirectory(output if output is not None else default_output(pipe.name))
    started = datetime.now(UTC)
    timings: dict[str, float] = {}
    try:
        with _cluster(cluster) as active:
            replaced = active.replace_lost_workers()
            if replaced:
                say(f"cluster: started {replaced} worker(s) again that had been lost")
            link = active.dashboard_link
            say(f"cluster: {active.spec.kind}, {active.worker_count} workers"
                + (f", dashboard {link}" if link else ""))
            device = _choose_device(pipe, active, say)
            try:
                with active.failing_fast_if_scheduler_lost():
                    metrics, outputs = _execute(pipe, ds, directory, active, timings, progress,
                                                say, device)
            except clusters.SchedulerLost as error:
                raise PipelineError(str(error)) from error  # a failed run, not bad input
            except NoWorkerError as error:
                raise no_workers_error(active, error) from error
            cluster_record = {**active.spec.to_dict(), "workers_started": active.worker_count,
                              "startup_seconds": round(active.startup_seconds, 3),
                              "device": device}
        outputs.update(_plots(directory, metrics))
        metrics_path = directory.path("metrics.json")
        metrics_path.write_text(json.dumps(metrics, indent=2))
        timings["total"] = round((datetime.now(UTC) - started).total_seconds(), 3)
        manifest = _manifest(pipe, source, ds, overrides, cluster_record, timings, started,
                             directory.checksums())
        directory.path("manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
        final = directory.commit()
    except BaseException:
        directory.discard()
        raise
    return RunResult(pipe.name, final, metrics, manifest, link,
                     {name: directory.published(final, path) for name, path in outputs.items()})


@contextlib.contextmanager
def _cluster(target: str | clusters.ClusterSpec | clusters.Cluster | None
             ) -> Iterator[clusters.Cluster]:
    if isinstance(target, clusters.Cluster):
        yield target
        return
    with clusters.start(target) as started:
        yield started


@contextlib.contextmanager
def _timed(timings: dict[str, float], name: str) -> Iterator[None]:
    began = time.perf_counter()
    yield
    timings[name] = round(time.perf_counter() - began, 3)


def _choose_device(pipe: Pipeline, active: clusters.Cluster, say: Callable[[str], None]
                   ) -> str:
    """``cpu`` or ``gpu`` for this run; on gpu, each worker gets a CuPy memory pool."""
    if pipe.device == "cpu":
        return "cpu"
    device = resolve_device(pipe.device, worker_devices(active.client))
    if device == "gpu":
        from suanli.cluster.plugins import CupyMemoryPool

        active.client.register_plugin(CupyMemoryPool())
    say(f"device: {device}" + (" (auto)" if pipe.device == "auto" else ""))
    return device


def _execute(pipe: Pipeline, ds: xr.Dataset, directory: RunDirectory,
             active: clusters.Cluster, timings: dict[str, float], progress: bool,
             say: Callable[[str], None], device: str = "cpu"
             ) -> tuple[dict[str, Any], dict[str, Path]]:
    from distributed import performance_report

    outputs: dict[str, Path] = {}
    report = directory.path("report.html")
    with performance_report(filename=str(report)):
        with _timed(timings, "features"):
            # On gpu the signal becomes CuPy blocks as soon as it is read and
            # stays there; only the features come back to be written.
            ds = dataset_to_device(ds, device)
            policy, allow = pipe.values["policy"], tuple(pipe.values["allow"])
            if policy == "report":
                ds = share_input_chunks(ds)
            transformed = pipe.transform(ds)
            keep = [str(name) for name, var in transformed.data_vars.items()
                    if not set(var.dims) & set(RAW_DIMS)]
            say(f"computing features: {', '.join(keep)}")
            values: datasets.ValueReport | None = None
            if policy == "reject":
                # Before any output: one extra pass, so a bad input writes nothing.
                values = datasets.check_values(ds, policy="reject", allow=allow)
            # Otherwise the input's NaN/inf census rides along the feature
            # computation: one pass over the data for both.
            census = [datasets.lazy_value_report(ds)] if policy == "report" else []
            features_out = transformed[keep]
            if device == "gpu":
                features_out = dataset_to_host(features_out)
            pending = prepare_features_write(features_out, directory.path("features.zarr"),
                                             keep_input_chunks=bool(census))
            try:
                with killed_workers_named(pipe, ds, active):
                    _, *found = datasets.compute(pending.delayed, *census, progress=progress,
                                                 label="features")
                    features_path = Path(pending.commit())  # the run directory is local
            finally:
                pending.discard()
            outputs["features"] = features_path
            if found:
                values = found[0]
            if values is not None:
                unexpected = [k for k, n in values.counts.items() if n and k not in allow]
                say(f"input values: {values.summary()}"
                    + (f" (not handled by the steps: {', '.join(unexpected)})"
                       if unexpected else ""))
        features = datasets.open(features_path)
        metrics: dict[str, Any] = {"input_values": values.to_dict()} \
            if values is not None else {}
        if pipe.train is not None:
            metrics |= _train_and_evaluate(pipe, features, directory, active, timings, progress,
                                          outputs, say, device)
    outputs["report"] = report
    return metrics, outputs


def share_input_chunks(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with each Dask variable's chunk tasks in a plain graph layer of their own.

    Dask's blockwise fusion folds an input layer into the first step that reads
    it, renaming its tasks; a census computed alongside (by the input's own
    keys) would then read, or generate, the input a second time. A materialised
    layer is never folded, so both share each chunk.
    """
    from dask.highlevelgraph import HighLevelGraph

    shared = {}
    for name, array in ds.data_vars.items():
        data = array.data
        if isinstance(data, da.Array):
            graph = HighLevelGraph.from_collections(data.name, dict(data.__dask_graph__()))
            shared[name] = array.copy(data=da.Array(graph, data.name, data.chunks,
                                                    meta=data._meta))
    return ds.assign(shared)


def prepare_features_write(features: xr.Dataset, path: Path, *, keep_input_chunks: bool
                           ) -> datasets.PendingWrite:
    """The features' atomic Zarr write, not yet computed.

    With ``keep_input_chunks`` the write's graph keeps the input's chunk tasks
    under their own names (with :func:`share_input_chunks` on the input): low-level
    fusion would rename them, and a census computed alongside would then read
    (or generate) the input a second time.
    """
    with dask.config.set({"optimization.fuse.active": False} if keep_input_chunks else {}):
        return datasets.prepare_zarr(features, path)


def _train_and_evaluate(pipe: Pipeline, features: xr.Dataset, directory: RunDirectory,
                        active: clusters.Cluster, timings: dict[str, float], progress: bool,
                        outputs: dict[str, Path], say: Callable[[str], None],
                        device: str = "cpu") -> dict[str, Any]:
    assert pipe.train is not None
    train_table, test_table, classes, validation_table = split_tables(
        features, pipe.train.features, pipe.train.validation_fraction, pipe.train.seed)
    for table in (train_table, test_table, validation_table):
        if table is not None and device == "gpu":
            table.X = array_to_device(table.X, device).persist()
    # The planned threads, not those alive now: the blocks, and so the model, are the
    # same whether or not a worker is restarting at this moment.
    parallelism = active.planned_threads
    with _timed(timings, "training"):
        say(f"training {pipe.train.model} on {train_table.X.shape[0]} windows x "
            f"{train_table.X.shape[1]} features, {pipe.train.epochs} epochs")
        outcome = fit(train_table, classes, pipe.train, parallelism=parallelism,
                      progress=progress, pipeline=pipe.to_mapping(),
                      validation=validation_table, checkpoint=directory.checkpoint)
        if outcome.history.resumed_from is not None:
            say(f"resumed training after epoch {outcome.history.resumed_from + 1} from "
                f"{directory.checkpoint}")
    outputs["model"] = outcome.model.save(directory.path("model.npz"))
    with _timed(timings, "evaluation"):
        predicted, finite = predict_table(outcome.model, test_table)
        assert test_table.y is not None
        metrics = (classification_metrics(test_table.y[finite], predicted, classes) if classes
                   else regression_metrics(test_table.y[finite], predicted))
    metrics.update(
        test_samples=int(finite.sum()), test_units=len(test_table.units),
        train_samples=outcome.train_rows, train_units=len(train_table.units),
        dropped_nonfinite_windows=outcome.dropped_rows + int((~finite).sum()),
        final_train_loss=outcome.history.loss[-1],
        **{"final_train_accuracy" if classes else "final_train_mse":
           outcome.history.accuracy[-1]},
        epochs_run=len(outcome.history.loss), best_epoch=outcome.history.best_epoch,
        resumed_after_epoch=outcome.history.resumed_from,
    )
    with _timed(timings, "plots"):
        train_X = to_numpy(train_table.X.compute())
        assert train_table.y is not None
        if classes:
            plot_feature_distributions(train_X, train_table.y, train_table.feature_names,
                                       classes, outcome.model.params["W0"],
                                       directory.path("plots/feature_distributions.png"))
        else:
            plot_predicted_vs_true(test_table.y[finite], predicted, metrics,
                                   directory.path("plots/predicted_vs_true.png"))
        plot_training_curve(outcome.history.loss, outcome.history.accuracy,
                            directory.path("plots/training_curve.png"),
                            outcome.history.validation_loss)
    directory.path("training_history.json").write_text(json.dumps(
        dataclasses.asdict(outcome.history)))
    return metrics


def _plots(directory: RunDirectory, metrics: dict[str, Any]) -> dict[str, Path]:
    if "confusion_matrix" not in metrics:
        return {}
    return {"confusion_matrix_plot": plot_confusion_matrix(
        metrics, directory.path("plots/confusion_matrix.png"))}


def _versions() -> dict[str, str]:
    found = {"python": sys.version.split()[0]}
    for package in VERSIONED:
        with contextlib.suppress(PackageNotFoundError):
            found[package] = version(package)
    return found


def _manifest(pipe: Pipeline, source: object, ds: xr.Dataset, overrides: Mapping[str, Any],
              cluster_record: dict[str, Any], timings: dict[str, float], started: datetime,
              checksums: dict[str, str]) -> dict[str, Any]:
    return {
        "status": "succeeded",
        "pipeline": pipe.to_mapping(),
        "overrides": dict(overrides),
        "dataset": {
            "source": str(source) if isinstance(source, str | Path) else "<in-memory dataset>",
            "sizes": {str(k): int(v) for k, v in ds.sizes.items()},
            "variables": {str(k): str(v.dtype) for k, v in ds.data_vars.items()},
            "attrs": {str(k): v for k, v in ds.attrs.items() if isinstance(v, str | int | float)},
        },
        "cluster": cluster_record,
        "versions": _versions(),
        "platform": {"machine": platform.machine(), "system": platform.system(),
                     "processor": platform.processor()},
        "started": started.isoformat(),
        "finished": datetime.now(UTC).isoformat(),
        "timings": timings,
        "outputs": checksums,
    }
