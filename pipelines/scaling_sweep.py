"""``pipelines.scaling``: one pipeline measured on clusters of several sizes.

Each point (a mode and a worker count) starts a fresh cluster of that size, so no
point inherits another's warm workers, and runs the pipeline ``repeats`` times,
restarting the workers between repeats (on a shared cluster, K of its workers,
neither started nor restarted by suanli). Strong scaling gives every point the same
data; weak scaling gives K workers K/Kmax of the units (the dataset given is the
largest point's). Every point's features are checked against the smallest point's
on the units they share, and a strong point's metrics against its metrics: a size
that computes something else is not a faster version of the same run.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from suanli import cluster as clusters
from suanli import datasets

from .errors import PipelineDefinitionError
from .pipeline import Pipeline, load_pipeline
from .run_directory import RunDirectory, default_output
from .run_record import versions
from .runner import run
from .scaling_laws import (
    DEFAULT_THRESHOLD,
    efficiencies,
    fit_amdahl,
    fit_gustafson,
    karp_flatt,
    last_worthwhile_workers,
    scaled_speedups,
    speedups,
    verdict,
    weak_efficiencies,
)
from .scaling_report import markdown_table, write_report
from .time_breakdown import breakdown, totals

MODES = ("strong", "weak")
#: Relative difference of a metric between sizes still counted as the same result
#: (sums over blocks may be grouped differently on more workers).
METRIC_TOLERANCE = 1e-6


@dataclass(frozen=True)
class PlannedPoint:
    """One point of a sweep, before anything runs: the data it gets and the cluster."""

    mode: str
    workers: int
    units: int
    nbytes: int
    spec: clusters.ClusterSpec

    def describe(self) -> str:
        size = (f"{self.mode:<6} {self.workers:>3} workers  {self.units:>6} units  "
                f"{self.nbytes / 1e9:8.3f} GB  ")
        if self.spec.kind == "shared":
            return size + (f"{self.workers} of the workers of the shared cluster at "
                           f"{self.spec.address} (tasks restricted to them; not restarted)")
        where = ", ".join(f"{h['address']} x{h['workers']}" for h in self.spec.host_entries())
        return size + clusters.launch_plan(self.spec).call + (f" ({where})" if where else "")


@dataclass
class ScalingResult:
    """What a sweep measured (``record``, as in ``scaling.json``) and where it is."""

    pipeline: str
    output: Path | str
    record: dict[str, Any]
    outputs: dict[str, Path | str] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        """Every point computed the same features (and, strong, metrics) as the first."""
        return all(point["valid"] for mode in self.record["modes"].values()
                   for point in mode["points"])

    def table(self) -> str:
        """The Markdown table of ``scaling.md``."""
        return markdown_table(self.record)

    def summary(self) -> str:
        lines = [f"scaling of {self.pipeline}: {', '.join(self.record['modes'])}, workers "
                 f"{', '.join(map(str, self.record['workers']))}, {self.record['repeats']} "
                 f"repeat(s) each", "", self.table(), ""]
        lines += [mode["verdict"] for mode in self.record["modes"].values()]
        overhead = self.record["overhead"]
        lines.append(f"tool overhead {overhead['tool_seconds']:.1f} s, "
                     f"{overhead['tool_share']:.1%} of the {overhead['measured_seconds']:.1f} s "
                     f"measured")
        if not self.valid:
            lines.append("WARNING: some points computed different results from the first: "
                         "see 'valid' and 'differs' in scaling.json")
        lines.append(f"output {self.output}")
        return "\n".join(lines)


def plan_scaling(pipeline: str | Path | Pipeline, dataset: str | xr.Dataset | None = None,
                 cluster: str | clusters.ClusterSpec | None = None,
                 workers: Iterable[int] = (1, 2), *, mode: str = "strong",
                 overrides: Mapping[str, Any] | None = None) -> list[PlannedPoint]:
    """The points a sweep would run, each with its data size and cluster spec, checked
    as far as can be without starting anything (pipeline, dataset, sizes, specs)."""
    return _prepare(pipeline, dataset, cluster, workers, mode, overrides)[2]


def scaling(pipeline: str | Path | Pipeline, dataset: str | xr.Dataset | None = None,
            cluster: str | clusters.ClusterSpec | None = None,
            workers: Iterable[int] = (1, 2), *, mode: str = "strong", repeats: int = 3,
            output: str | Path | None = None, overrides: Mapping[str, Any] | None = None,
            threshold: float = DEFAULT_THRESHOLD, warmup: bool = True,
            say: Callable[[str], None] | None = None) -> ScalingResult:
    """Measure ``pipeline`` on ``workers`` workers each; write ``scaling.json``,
    ``scaling.md``, ``scaling.png`` and a performance report per point to ``output``.

    Parameters
    ----------
    cluster
        A kind or profile (not a started cluster: each point starts its own, resized
        with :func:`suanli.cluster.with_workers`). Threads per worker stay as the
        profile says, 1 when it does not say. On a ``shared`` cluster, which is not
        ours to resize or restart, each point's tasks are restricted to K of its
        workers (Dask's worker restrictions), and the workers are not restarted.
    mode
        ``strong`` (the same data at every size), ``weak`` (K/Kmax of the units on K
        workers) or ``both``.
    warmup
        Run once, unmeasured, before the first point: compiles and caches the kernels
        and warms the file cache, which would otherwise slow only the first point.
    """
    say = say or (lambda message: None)
    if not isinstance(repeats, int) or repeats < 1:
        raise PipelineDefinitionError(f"repeats must be a whole number >= 1, not {repeats!r}")
    if not 0 < threshold <= 1:
        raise PipelineDefinitionError(f"threshold must be an efficiency in (0, 1], "
                                      f"not {threshold!r}")
    pipe, ds, points, source = _prepare(pipeline, dataset, cluster, workers, mode, overrides)
    directory = RunDirectory(output if output is not None
                             else default_output(f"scaling-{pipe.name}"))
    scratch = Path(tempfile.mkdtemp(prefix="suanli-scaling-"))
    began, started = time.perf_counter(), datetime.now(UTC)
    costs = {"cluster_start_seconds": 0.0, "restart_seconds": 0.0, "warmup_seconds": 0.0}
    try:
        measured: list[dict[str, Any]] = []
        reference: dict[str, dict[str, Any]] = {}
        for index, point in enumerate(points):
            # Features are compared on the units the mode's first (smallest) point has.
            shared = next(p.units for p in points if p.mode == point.mode)
            say(f"{point.mode} scaling, {point.workers} worker(s): {point.units} units, "
                f"{repeats} repeat(s)")
            result = _measure(point, pipe, ds, repeats, scratch, costs, shared_units=shared,
                              warm=warmup and index == 0, directory=directory)
            first = reference.setdefault(point.mode, result)
            result.update(_validated(result, first, point.mode))
            measured.append(result)
            say(f"  median {result['seconds']['median']:.2f} s"
                + ("" if result["valid"] else f"; differs from {first['workers']} worker(s): "
                   f"{', '.join(result['differs'])}"))
        record = _record(pipe, source, ds, points, measured, repeats, threshold, started)
        outputs = write_report(record, directory.path("."))
        # The tool's time includes the report it just drew: account, and write it again.
        record["overhead"] = _overhead(measured, time.perf_counter() - began, costs)
        outputs = write_report(record, directory.path("."), plot=False)
        final = directory.commit()
    except BaseException:
        directory.discard()
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return ScalingResult(pipe.name, final, record,
                         {name: directory.published(final, path)
                          for name, path in outputs.items()})


def _prepare(pipeline: str | Path | Pipeline, dataset: str | xr.Dataset | None,
             cluster: str | clusters.ClusterSpec | None, workers: Iterable[int], mode: str,
             overrides: Mapping[str, Any] | None
             ) -> tuple[Pipeline, xr.Dataset, list[PlannedPoint], str]:
    counts = _worker_counts(workers)
    modes = MODES if mode == "both" else (mode,)
    if mode not in (*MODES, "both"):
        raise PipelineDefinitionError(f"mode must be strong, weak or both, not {mode!r}")
    if isinstance(cluster, clusters.Cluster):
        raise PipelineDefinitionError(
            "scaling starts a cluster of each size itself: give a kind, profile or spec, "
            "not a started cluster")
    pipe = load_pipeline(pipeline).with_overrides(dict(overrides or {}))
    source = dataset if dataset is not None else pipe.dataset
    if source is None:
        raise PipelineDefinitionError(f"pipeline {pipe.name!r} names no dataset: pass one")
    label = str(source) if isinstance(source, str | Path) else "<in-memory dataset>"
    ds = datasets.open(source) if isinstance(source, str | Path) else source
    ds = datasets.validate(ds, require_label=pipe.needs_label,
                           source=label if isinstance(source, str | Path) else None)
    pipe.resolve(ds)  # a setting that fits no data fails here, before any cluster starts
    spec = clusters.plan(cluster)
    if spec.threads_per_worker is None:
        # Otherwise a local cluster gives one worker every core: K would not be K times
        # the compute.
        spec = spec.replace(threads_per_worker=1)
    units = ds.sizes["unit"]
    points = []
    for name in modes:
        for count in counts:
            share = units if name == "strong" else units * count // counts[-1]
            if share < 1:
                raise PipelineDefinitionError(
                    f"weak scaling gives {count} worker(s) {count}/{counts[-1]} of the "
                    f"{units} units, which is none: give a dataset of at least "
                    f"{math.ceil(counts[-1] / count)} units")
            # A shared cluster is not ours to resize: each point's tasks are confined to
            # ``count`` of its workers instead.
            sized = spec if spec.kind == "shared" else clusters.with_workers(spec, count)
            points.append(PlannedPoint(name, count, share, _subset(ds, share).nbytes, sized))
    return pipe, ds, points, label


def _worker_counts(workers: Iterable[int]) -> list[int]:
    counts = list(workers)
    if not counts or not all(isinstance(k, int) and not isinstance(k, bool) and k >= 1
                             for k in counts):
        raise PipelineDefinitionError(f"workers must be whole numbers >= 1, such as 1,2,4,8; "
                                      f"got {counts!r}")
    if len(set(counts)) != len(counts):
        raise PipelineDefinitionError(f"workers lists a count twice: {counts!r}")
    return sorted(counts)


def _subset(ds: xr.Dataset, units: int) -> xr.Dataset:
    return ds if units == ds.sizes["unit"] else ds.isel(unit=slice(0, units))


def _measure(point: PlannedPoint, pipe: Pipeline, ds: xr.Dataset, repeats: int,
             scratch: Path, costs: dict[str, float], *, shared_units: int, warm: bool,
             directory: RunDirectory) -> dict[str, Any]:
    data = _subset(ds, point.units)
    owned = point.spec.kind != "shared"
    with clusters.start(point.spec) as active:
        costs["cluster_start_seconds"] += active.startup_seconds
        chosen = _chosen_workers(active, point)
        confined = _confined(chosen, owned)
        threads = sum(int(w["nthreads"]) for w in chosen.values())
        if warm:
            began = time.perf_counter()
            with confined():
                run(pipe, data, cluster=active, output=scratch / "warmup")
            shutil.rmtree(scratch / "warmup", ignore_errors=True)
            costs["warmup_seconds"] += time.perf_counter() - began
        hosts = Counter(str(w["host"]) for w in chosen.values())
        repeats_done = []
        for repeat in range(repeats):
            if owned and (warm or repeat):
                with _counted(costs, "restart_seconds"), _quiet_restarts():
                    active.client.restart()
            name = f"{point.mode}-{point.workers}-{repeat}"
            with confined():
                # The features are deterministic: one repeat's are checked.
                repeats_done.append(_timed_run(
                    active, pipe, data, scratch / name, None if owned else set(chosen),
                    threads, shared_units if repeat == 0 else None))
    middle = sorted(repeats_done, key=lambda r: r["seconds"])[(len(repeats_done) - 1) // 2]
    report = directory.path(f"reports/{point.mode}-{point.workers}-workers.html")
    shutil.copyfile(middle["report"], report)
    seconds = [r["seconds"] for r in repeats_done]
    median = statistics.median(seconds)
    return {
        "mode": point.mode, "workers": point.workers, "threads": threads,
        "units": point.units, "nbytes": point.nbytes,
        "seconds": {"median": median, "min": min(seconds), "max": max(seconds),
                    "spread": (max(seconds) - min(seconds)) / median, "each": seconds},
        "stage_seconds": middle["stage_seconds"],
        "time_goes": middle["time_goes"], "time_goes_total": totals(middle["time_goes"]),
        "scheduler": middle["scheduler"], "task_stream_complete": middle["complete"],
        "workers_used": middle["workers_used"],
        "features_digest": repeats_done[0]["digest"], "metrics": middle["metrics"],
        "hosts": dict(sorted(hosts.items())), "restarted_between_repeats": owned,
        "report": report.name,
    }


def _chosen_workers(active: clusters.Cluster, point: PlannedPoint) -> dict[str, Any]:
    """The workers a point runs on, by address: all of a cluster started for it, or the
    first ``point.workers`` of a shared one."""
    info: dict[str, Any] = active.client.scheduler_info(n_workers=-1)["workers"]
    if point.spec.kind != "shared":
        return info
    if len(info) < point.workers:
        raise clusters.ClusterError(
            f"the shared cluster at {active.scheduler_address} has {len(info)} workers; the "
            f"sweep's point asks for {point.workers}: measure at most {len(info)} workers "
            f"there, or start more")
    return {address: info[address] for address in sorted(info)[:point.workers]}


def _confined(chosen: Mapping[str, Any], owned: bool
              ) -> Callable[[], contextlib.AbstractContextManager[Any]]:
    """A context in which every task a run submits may only run on ``chosen`` (Dask's
    worker restrictions); nothing to confine on a cluster started for the point."""
    if owned:
        return contextlib.nullcontext
    import dask

    return lambda: dask.annotate(workers=sorted(chosen), allow_other_workers=False)


@contextlib.contextmanager
def _quiet_restarts() -> Iterator[None]:
    """Restarting on purpose: the nannies' "Restarting worker" warnings say nothing."""
    nanny = logging.getLogger("distributed.nanny")
    level = nanny.level
    nanny.setLevel(logging.ERROR)
    try:
        yield
    finally:
        nanny.setLevel(level)


@contextlib.contextmanager
def _counted(costs: dict[str, float], key: str) -> Iterator[None]:
    began = time.perf_counter()
    yield
    costs[key] += time.perf_counter() - began


def _timed_run(active: clusters.Cluster, pipe: Pipeline, data: xr.Dataset, output: Path,
               workers: set[str] | None, threads: int, shared_units: int | None
               ) -> dict[str, Any]:
    """One measured run. ``workers``: count only tasks on these (a shared cluster's
    chosen workers); None for a cluster started for the point (a restart gives its
    workers new addresses, and every task on it is the run's)."""
    import dask.config

    client = active.client
    loop_cpu = client.run_on_scheduler(_loop_cpu_seconds)
    wall_began, began = time.time(), time.perf_counter()
    result = run(pipe, data, cluster=active, output=output)
    seconds = time.perf_counter() - began
    wall_ended = time.time()
    scheduler_cpu = client.run_on_scheduler(_loop_cpu_seconds) - loop_cpu
    stream = client.get_task_stream(start=wall_began)
    tasks = [t for t in stream if workers is None or t.get("worker") in workers]
    limit = dask.config.get("distributed.scheduler.dashboard.tasks.task-stream-length")
    spans = {stage: (float(a), float(b)) for stage, (a, b) in result.manifest["spans"].items()}
    stages = breakdown(tasks, spans, (wall_began, wall_ended), threads)
    count = sum(int(stage["tasks"]) for stage in stages.values())
    features = output / "features.zarr"
    kept = Path(tempfile.mkstemp(suffix=".html", dir=output.parent)[1])
    shutil.copyfile(output / "report.html", kept)
    measured = {
        "seconds": seconds, "stage_seconds": dict(result.manifest["timings"]),
        "time_goes": stages,
        "scheduler": {"loop_cpu_seconds": scheduler_cpu, "tasks": count,
                      "ms_per_task": 1000 * scheduler_cpu / count if count else None},
        "complete": len(stream) < limit,
        # Workers any task ran on in the window (others' tasks included, on a shared one).
        "workers_used": len({t.get("worker") for t in stream}),
        "digest": None if shared_units is None else features_digest(
            datasets.open(features), units=shared_units),
        "metrics": numeric_metrics(result.metrics), "report": kept,
    }
    shutil.rmtree(output, ignore_errors=True)
    return measured


def _loop_cpu_seconds() -> float:
    """CPU seconds of the thread this runs in: the scheduler's event loop (and, on a
    local cluster, the client's, which shares it)."""
    return time.thread_time()


def features_digest(features: xr.Dataset, units: int | None = None,
                    slab: int = 256) -> dict[str, str]:
    """SHA-256 of each variable's values over its first ``units`` units (all by
    default), read in unit slabs in order, so the chunking does not change it."""
    digests = {}
    for name, variable in sorted(features.data_vars.items(), key=lambda item: str(item[0])):
        digest = hashlib.sha256(str(variable.dtype).encode())
        if "unit" in variable.dims:
            count = variable.sizes["unit"] if units is None else min(units,
                                                                     variable.sizes["unit"])
            for start in range(0, count, slab):
                block = variable.isel(unit=slice(start, min(start + slab, count)))
                digest.update(np.ascontiguousarray(block.transpose("unit", ...).values)
                              .tobytes())
        else:
            digest.update(np.ascontiguousarray(variable.values).tobytes())
        digests[str(name)] = digest.hexdigest()
    return digests


def numeric_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Every number in ``metrics``, flattened to ``a.b.c`` keys."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(numeric_metrics(value, f"{name}."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[name] = float(value)
        elif isinstance(value, list) and all(isinstance(v, int | float) for v in value):
            flat.update({f"{name}.{i}": float(v) for i, v in enumerate(value)})
    return flat


def _validated(point: dict[str, Any], first: dict[str, Any], mode: str) -> dict[str, Any]:
    """``valid`` and what ``differs`` from the mode's first point.

    Strong: every feature variable and every metric (within METRIC_TOLERANCE). Weak:
    the feature variables on the units both points hold (the first point's), but the
    split, which is drawn over each point's own units."""
    if point is first:
        return {"valid": True, "differs": []}
    mine, theirs = point["features_digest"], first["features_digest"]
    names = [n for n in theirs if mode == "strong" or n != "split"]
    differs = [f"feature {n}" for n in names if mine.get(n) != theirs.get(n)]
    if mode == "strong":
        for key, value in first["metrics"].items():
            other = point["metrics"].get(key)
            if other is None or not math.isclose(other, value, rel_tol=METRIC_TOLERANCE,
                                                 abs_tol=METRIC_TOLERANCE):
                differs.append(f"metric {key}")
    return {"valid": not differs, "differs": differs}


def _record(pipe: Pipeline, source: str, ds: xr.Dataset, points: Sequence[PlannedPoint],
            measured: list[dict[str, Any]], repeats: int, threshold: float,
            started: datetime) -> dict[str, Any]:
    modes: dict[str, Any] = {}
    for mode in dict.fromkeys(p.mode for p in points):
        rows = [m for m in measured if m["mode"] == mode]
        times = {m["workers"]: m["seconds"]["median"] for m in rows}
        for m in rows:
            threads, seconds, gb = m["threads"], m["seconds"]["median"], m["nbytes"] / 1e9
            m["throughput"] = {"gb_per_second": gb / seconds, "units_per_second":
                               m["units"] / seconds,
                               "core_hours_per_gb": threads * seconds / 3600 / gb if gb else None}
        if mode == "strong":
            s, e = speedups(times), efficiencies(times)
            for m in rows:
                k = m["workers"]
                m.update(speedup=s[k], efficiency=e[k], karp_flatt=karp_flatt(s[k], k))
            fit = fit_amdahl(times)
            modes[mode] = {"points": rows, "verdict": verdict(fit, threshold, times),
                           "amdahl": None if fit is None else {
                               "serial_fraction": fit.serial_fraction,
                               "serial_seconds": fit.serial_seconds,
                               "parallel_seconds": fit.parallel_seconds,
                               "last_worthwhile_workers": _finite(last_worthwhile_workers(
                                   fit.serial_fraction, threshold))}}
        else:
            e, scaled = weak_efficiencies(times), scaled_speedups(times)
            for m in rows:
                m.update(efficiency=e[m["workers"]], scaled_speedup=scaled[m["workers"]])
            serial = fit_gustafson(times)
            modes[mode] = {"points": rows, "gustafson_serial_fraction": serial,
                           "verdict": _weak_verdict(e, serial)}

    return {
        "pipeline": pipe.name, "pipeline_definition": pipe.to_mapping(),
        "dataset": {"source": source, "units": ds.sizes["unit"], "nbytes": ds.nbytes,
                    "sizes": {str(k): int(v) for k, v in ds.sizes.items()}},
        "cluster": {**points[0].spec.to_dict(), "workers": None},
        "workers": sorted({p.workers for p in points}), "repeats": repeats,
        "threshold": threshold, "modes": modes, "overhead": {},
        "machine": _machine(), "versions": versions(),
        "started": started.isoformat(), "finished": datetime.now(UTC).isoformat(),
    }


def _overhead(measured: list[dict[str, Any]], elapsed: float, costs: dict[str, float]
              ) -> dict[str, Any]:
    """The sweep's time outside the measured runs: cluster starts, restarts, the warm-up
    run, and the tool's own work (checking features, task streams, the report)."""
    measured_seconds = sum(sum(m["seconds"]["each"]) for m in measured)
    tool = max(elapsed - measured_seconds - sum(costs.values()), 0.0)
    return {"measured_seconds": measured_seconds, **costs, "tool_seconds": tool,
            "tool_share": tool / measured_seconds if measured_seconds else None,
            "total_seconds": elapsed}


def _finite(value: float) -> float | None:
    return None if math.isinf(value) else value


def _weak_verdict(efficiency: Mapping[int, float], serial: float | None) -> str:
    largest = max(efficiency)
    if serial is None:
        return "One worker count only: measure at two or more for weak scaling."
    return (f"Weak scaling: {largest} workers on {largest} times the data keep "
            f"{efficiency[largest]:.0%} of the smallest point's pace (Gustafson fit: serial "
            f"fraction {serial:.1%}).")


def _machine() -> dict[str, Any]:
    import psutil

    return {"system": platform.system(), "machine": platform.machine(),
            "processor": platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version()}

