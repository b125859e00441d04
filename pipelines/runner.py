"""``pipelines.run``: a pipeline on a cluster, from dataset to run directory.

The runner only orchestrates: it checks everything it can before starting
anything (the pipeline and its overrides, the dataset, the steps' graph, the
cluster spec, the output), then runs the stages (:mod:`.feature_stage`,
:mod:`.training_stage`) on a :class:`~.run_state.Run` and publishes the run
directory whole, or nothing.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import xarray as xr
from distributed.scheduler import NoWorkerError

from suanli import cluster as clusters
from suanli import datasets

from .device import resolve_device, worker_devices
from .errors import PipelineError
from .failures import no_workers_error
from .feature_stage import compute_features
from .pipeline import Pipeline, load_pipeline
from .run_directory import RunDirectory, default_output
from .run_record import run_manifest
from .run_state import Run
from .training_stage import train_and_evaluate


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
        for key in ("accuracy", "macro_f1", "rmse", "mae", "r2", "mape", "mase"):
            if key in self.metrics:
                lines.append(f"  {key:<9} {self.metrics[key]:.3f}")
        if "alert_budget_per_100_patient_days" in self.metrics:
            lines.append(f"  alerts at a budget of "
                         f"{self.metrics['alert_budget_per_100_patient_days']:g} per 100 "
                         f"patient-days (threshold set on validation patients):")
            lines += [_alert_line(name, self.metrics[name]) for name in ("model", "news2")
                      if name in self.metrics]
        if "best_baseline" in self.metrics:
            best = self.metrics["best_baseline"]
            lines.append(f"  skill     {self.metrics['skill'][best]:.3f} against {best} (RMSE "
                         f"{self.metrics['baselines'][best]['rmse']:.3f})")
        if "backtest" in self.metrics:
            mean = self.metrics["backtest"]["mean"]
            lines.append(f"  backtest  {len(self.metrics['backtest']['folds'])} folds: mean RMSE "
                         f"{mean['rmse']:.3f}, MASE {mean['mase']:.3f}, skill {mean['skill']:.3f}")
        if "scored_points" in self.metrics:
            lines.append(f"  test points {self.metrics['scored_points']} "
                         f"({self.metrics['test_units']} units, the test period)")
        elif "test_samples" in self.metrics:
            lines.append(f"  test windows {self.metrics['test_samples']} from "
                         f"{self.metrics['test_units']} unseen units")
        lines.append(f"  run directory {self.output}")
        return "\n".join(lines)


def _alert_line(name: str, scores: dict[str, Any]) -> str:
    return (f"  {name:<9} {scores['alerts_per_100_patient_days']:.1f} alerts/100 patient-days: "
            f"event recall {scores['event_recall']:.2f}, PPV {scores['ppv']:.2f}, "
            f"AUROC {scores['auroc']:.3f}")


def run(pipeline: str | Path | Pipeline | Mapping[str, Any],
        dataset: str | xr.Dataset | None = None,
        cluster: str | clusters.ClusterSpec | clusters.Cluster | None = None,
        output: str | Path | None = None, *, overrides: Mapping[str, Any] | None = None,
        progress: bool = False, say: Callable[[str], None] | None = None,
        **params: Any) -> RunResult:
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
    overrides
        Changes as ``--set`` takes them: ``{"train.epochs": 50, "window.size": 512}``.
    **params
        The same as keywords, ``__`` for the dot: ``train__epochs=50``.
    """
    say = say or (lambda message: None)
    overrides = {**(overrides or {}),
                 **{key.replace("__", "."): value for key, value in params.items()}}
    pipe = load_pipeline(pipeline).with_overrides(overrides)
    source = dataset if dataset is not None else pipe.dataset
    if source is None:
        raise PipelineError(f"pipeline {pipe.name!r} names no dataset: pass dataset=")
    ds = datasets.open(source) if isinstance(source, str | Path) else source
    ds = datasets.validate(ds, require_label=pipe.needs_label,
                           source=str(source) if isinstance(source, str | Path) else None)
    given = pipe
    pipe = pipe.resolve(ds)  # the steps meet the data: window and band sizes, before any start
    if not isinstance(cluster, clusters.Cluster):
        cluster = clusters.plan(cluster)  # a bad kind or profile fails before anything is written
    directory = RunDirectory(output if output is not None else default_output(pipe.name))
    started = datetime.now(UTC)
    try:
        with _cluster(cluster) as active:
            current = Run(pipe, directory, active, progress=progress, say=say)
            try:
                with active.failing_fast_if_scheduler_lost():
                    _announce(current)
                    current.device = _choose_device(current)
                    _execute(current, ds)
            except clusters.SchedulerLost as error:
                raise PipelineError(str(error)) from error  # a failed run, not bad input
            except NoWorkerError as error:
                raise no_workers_error(active, error) from error
            cluster_record = {**active.spec.to_dict(), "workers_started": active.worker_count,
                              "startup_seconds": round(active.startup_seconds, 3),
                              "device": current.device}
        current.path("metrics.json").write_text(json.dumps(current.metrics, indent=2))
        current.timings["total"] = round((datetime.now(UTC) - started).total_seconds(), 3)
        manifest = run_manifest(current, source, ds, overrides, cluster_record, started,
                                resolved=_resolved(given, pipe))
        current.path("manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
        final = directory.commit()
    except BaseException:
        directory.discard()
        raise
    return RunResult(pipe.name, final, current.metrics, manifest, active.dashboard_link,
                     {name: directory.published(final, path)
                      for name, path in current.outputs.items()})


def _resolved(given: Pipeline, resolved: Pipeline) -> dict[str, Any]:
    """``STEP.PARAM: value`` for each parameter the data made concrete."""
    return {f"{after.name}.{key}": value
            for before, after in zip(given.steps, resolved.steps, strict=True)
            for key, value in after.params.items() if before.params.get(key) != value}


def _execute(current: Run, ds: xr.Dataset) -> None:
    from distributed import performance_report

    report = current.path("report.html")
    with performance_report(filename=str(report)):
        with current.timed("features"):
            features = compute_features(current, ds)
        if current.pipe.train is not None:
            train_and_evaluate(current, features)
    current.output("report", report)


@contextlib.contextmanager
def _cluster(target: str | clusters.ClusterSpec | clusters.Cluster | None
             ) -> Iterator[clusters.Cluster]:
    if isinstance(target, clusters.Cluster):
        yield target
        return
    with clusters.start(target) as started:
        yield started


def _announce(current: Run) -> None:
    active = current.cluster
    replaced = active.replace_lost_workers()
    if replaced:
        current.say(f"cluster: started {replaced} worker(s) again that had been lost")
    link = active.dashboard_link
    current.say(f"cluster: {active.spec.kind}, {active.worker_count} workers"
                + (f", dashboard {link}" if link else ""))


def _choose_device(current: Run) -> str:
    """``cpu`` or ``gpu`` for this run, from the pipeline's ``device`` and the workers."""
    requested = current.pipe.device
    if requested == "cpu":
        return "cpu"
    device = resolve_device(requested, worker_devices(current.cluster.client))
    current.say(f"device: {device}" + (" (auto)" if requested == "auto" else ""))
    return device
