"""``pipelines.etl``: a pipeline's features, partition by partition, each committed
whole with a manifest that says it is done.

Each partition reads only its own files (the source template filled in with its
key) and writes one folder under the output root, ``ROOT/date=2024-03-01``,
through the same atomic commit as every run directory: ``features.zarr`` (or
``features.parquet``, a table with a row per unit and window) and ``etl.json`` (the
key, the pipeline's fingerprint, versions, the input files, the output format,
checksums, sizes and timings) appear together or not at all. The plan reads
every partition's state from storage (:mod:`.state`): done partitions are left
alone and said to be, stale ones (inputs or pipeline changed) are rerun only with
``force``, missing and failed ones run; one partition's failure is recorded and
does not stop the others.

ETL computes a pipeline's **features**. A pipeline's ``train`` block is not run
per partition: a model is trained over many partitions with ``suanli run`` (the
manifest says so), so the same pipeline serves both.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from distributed.scheduler import NoWorkerError

from suanli import cluster as clusters
from suanli import datasets

from ..errors import LeaseLost, PipelineDefinitionError, PipelineError
from ..failures import no_workers_error
from ..feature_stage import write_features
from ..pipeline import Pipeline, load_pipeline
from ..run_directory import RunDirectory
from ..run_record import versions
from ..run_state import Run
from .lease import DEFAULT_TAKEOVER_AFTER, Lease, held
from .partitions import PartitionTemplate
from .state import (
    MANIFEST,
    PartitionState,
    clear_failure,
    fingerprint,
    partition_state,
    remove_unfinished_writes,
    write_failure,
)

#: What happens to a partition in each state (``force`` reruns done and stale ones).
RUNS = ("missing", "failed")
#: Partitions computed at once on the cluster.
DEFAULT_PARALLEL = 2
#: What a partition's features can be written as.
FORMATS = ("zarr", "parquet")
#: Where each invocation's Dask performance report goes, under the root.
REPORTS = "_etl/reports"


@dataclass
class EtlResult:
    """What an ETL invocation did to each partition of its plan."""

    pipeline: str
    root: str
    #: Per partition: key, state before, outcome (``ran``, ``failed``, ``done``,
    #: ``stale``, ``skipped``, or ``would run`` in a dry run), reason, seconds.
    partitions: list[dict[str, Any]] = field(default_factory=list)
    #: The invocation's Dask performance report, when it ran anything.
    report: str | None = None

    @property
    def ok(self) -> bool:
        """No partition failed (skipped ones, with no input yet, are not failures)."""
        return all(p["outcome"] != "failed" for p in self.partitions)

    def counts(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for p in self.partitions:
            found[p["outcome"]] = found.get(p["outcome"], 0) + 1
        return found

    def summary(self) -> str:
        lines = [f"etl {self.pipeline} -> {self.root}: "
                 + ", ".join(f"{n} {o}" for o, n in sorted(self.counts().items()))]
        for p in self.partitions:
            note = f" ({p['reason']})" if p.get("reason") else ""
            took = f" in {p['seconds']:.1f} s" if p.get("seconds") is not None else ""
            lines.append(f"  {p['key']:<14} {p['outcome']:<10}{took}{note}")
        if self.report:
            lines.append(f"performance report: {self.report}")
        return "\n".join(lines)


def plan_etl(pipeline: str | Path | Pipeline, source: str, output: str, *,
             partition: str | None = None, since: str | None = None,
             until: str | None = None, overrides: Mapping[str, Any] | None = None,
             format: str = "zarr"
             ) -> tuple[Pipeline, PartitionTemplate, list[PartitionState]]:
    """The pipeline, the template and every planned partition's state; nothing runs."""
    pipe, template, keys = _request(pipeline, source, partition, since, until, overrides,
                                    format)
    return pipe, template, _states(pipe, template, keys, output, format)


def _request(pipeline: str | Path | Pipeline, source: str, partition: str | None,
             since: str | None, until: str | None, overrides: Mapping[str, Any] | None,
             format: str) -> tuple[Pipeline, PartitionTemplate, list[str]]:
    """The pipeline, the template and the partition keys asked for, checked; reads
    no storage."""
    if format not in FORMATS:
        raise PipelineDefinitionError(f"format must be one of {', '.join(FORMATS)}, not "
                                      f"{format!r}")
    pipe = load_pipeline(pipeline).with_overrides(dict(overrides or {}))
    template = PartitionTemplate.parse(source)
    if (partition is None) == (since is None and until is None):
        raise PipelineDefinitionError("give one partition (--partition KEY) or a range "
                                      "(--since A --until B), not both")
    if partition is not None:
        return pipe, template, [template.key(template.start(partition))]
    if since is None or until is None:
        raise PipelineDefinitionError("a range needs both --since and --until")
    return pipe, template, template.keys(since, until)


def _states(pipe: Pipeline, template: PartitionTemplate, keys: list[str], output: str,
            format: str) -> list[PartitionState]:
    pipeline_hash = fingerprint(pipe.to_mapping())
    return [partition_state(template, key, output, pipeline_hash, output_format=format)
            for key in keys]


def etl(pipeline: str | Path | Pipeline, source: str, output: str, *,
        partition: str | None = None, since: str | None = None, until: str | None = None,
        cluster: str | clusters.ClusterSpec | clusters.Cluster | None = None,
        format: str = "zarr", force: bool = False, dry_run: bool = False,
        overrides: Mapping[str, Any] | None = None, wait: float = 0.0,
        takeover_after: float = DEFAULT_TAKEOVER_AFTER, parallel: int = DEFAULT_PARALLEL,
        say: Callable[[str], None] | None = None) -> EtlResult:
    """Compute ``pipeline``'s features for each planned partition that needs it.

    ``source`` is the template (``raw/{date}/*.parquet``); ``output`` the root the
    partitions' folders go under; ``format`` what each partition's features are
    written as (``zarr``, or ``parquet``: a table with a row per unit and window, for
    SQL engines and warehouses). ``force`` reruns done and stale partitions too;
    ``dry_run`` only plans. Up to ``parallel`` partitions run at once on the cluster.
    The run holds the root's lease (:mod:`.lease`) while it
    works: another run's raises :class:`~suanli.errors.LeaseHeld` unless it ends
    within ``wait`` seconds or its heartbeat is ``takeover_after`` seconds old.
    """
    say = say or (lambda message: None)
    if not isinstance(parallel, int) or parallel < 1:
        raise PipelineDefinitionError(f"parallel must be a whole number >= 1, not "
                                      f"{parallel!r}")
    # The request is checked before the lease; the states are read once, under it (a
    # run that just finished may have done some).
    pipe, template, keys = _request(pipeline, source, partition, since, until, overrides,
                                    format)
    if dry_run:
        return _outcomes(pipe, _states(pipe, template, keys, output, format), output, force,
                         dry_run=True)
    with held(output, pipeline=pipe.name, wait=wait, takeover_after=takeover_after) as lease:
        states = _states(pipe, template, keys, output, format)
        return _run(pipe, template, states, output, format, force, cluster, lease, parallel,
                    say)


def _outcomes(pipe: Pipeline, states: list[PartitionState], output: str, force: bool,
              dry_run: bool) -> EtlResult:
    """The result for the partitions that will not run (all of them in a dry run)."""
    result = EtlResult(pipe.name, output)
    todo = _todo(states, force)
    for state in states:
        if state not in todo:
            reason = state.reason or ("already done with these inputs and this pipeline"
                                      if state.state == "done" else "")
            if state.state == "stale":
                reason += "; --force reruns it"
            result.partitions.append({"key": state.key, "state": state.state,
                                      "outcome": state.state, "reason": reason})
        elif dry_run:
            result.partitions.append({"key": state.key, "state": state.state,
                                      "outcome": "would run", "reason": state.reason})
    result.partitions.sort(key=lambda p: p["key"])
    return result


def _todo(states: list[PartitionState], force: bool) -> list[PartitionState]:
    return [s for s in states if s.state in RUNS or (force and s.state in ("done", "stale"))]


def _run(pipe: Pipeline, template: PartitionTemplate, states: list[PartitionState],
         output: str, format: str, force: bool,
         cluster: str | clusters.ClusterSpec | clusters.Cluster | None, lease: Lease,
         parallel: int, say: Callable[[str], None]) -> EtlResult:
    result = _outcomes(pipe, states, output, force, dry_run=False)
    todo = _todo(states, force)
    if not todo:
        return result
    if not isinstance(cluster, clusters.Cluster):
        cluster = clusters.plan(cluster)

    def one(state: PartitionState) -> dict[str, Any]:
        say(f"partition {state.key}: {state.state}, running")
        began = time.perf_counter()
        try:
            _run_partition(pipe, template, state, output, format, active, lease, say)
        except (LeaseLost, NoWorkerError):
            raise  # this run may not commit anything more; or the cluster is empty
        except Exception as error:  # recorded; the other partitions go on
            if active.client.status != "running":
                raise  # the scheduler is gone: the run stops, this partition did not fail
            write_failure(output, template.folder(state.key), {
                "key": state.key, "error": f"{type(error).__name__}: {error}",
                "failed": datetime.now(UTC).isoformat()})
            outcome, reason = "failed", f"{type(error).__name__}: {error}"
        else:
            outcome, reason = "ran", ""
        seconds = time.perf_counter() - began
        say(f"partition {state.key}: {outcome} in {seconds:.1f} s"
            + (f" ({reason})" if reason else ""))
        return {"key": state.key, "state": state.state, "outcome": outcome,
                "reason": reason, "seconds": seconds}

    with _cluster(cluster) as active:
        try:
            with active.failing_fast_if_scheduler_lost(), _report(output) as report, \
                    ThreadPoolExecutor(max(1, min(parallel, len(todo))),
                                       thread_name_prefix="suanli-etl") as pool:
                # A bounded number of partitions at once share the cluster; a lost
                # lease or scheduler stops the rest (what has not started is cancelled).
                futures = [pool.submit(one, state) for state in todo]
                try:
                    result.partitions += [future.result() for future in futures]
                except BaseException:
                    for future in futures:
                        future.cancel()
                    raise
        except clusters.SchedulerLost as error:
            raise PipelineError(f"{error} The partitions committed before stay done; "
                                f"the rerun does the rest.") from error
        except NoWorkerError as error:
            # Every partition would wait as long again and fail the same way: the run
            # stops, and no partition is marked failed for the cluster's fault.
            raise no_workers_error(active, error, "The partitions committed before stay "
                                   "done, no other is marked failed") from error
    result.report = report.published
    result.partitions.sort(key=lambda p: p["key"])
    return result


class _Report:
    """The Dask performance report of one invocation, kept under ``ROOT/_etl/reports``."""

    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")
        self.name = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + ".html"
        self.local = Path(tempfile.mkdtemp(prefix="suanli-etl-report-")) / self.name
        self.published: str | None = None

    def publish(self) -> None:
        import fsspec

        if not self.local.exists():
            return
        fs, path = fsspec.core.url_to_fs(f"{self.root}/{REPORTS}/{self.name}")
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        fs.put_file(str(self.local), path)
        self.published = f"{self.root}/{REPORTS}/{self.name}"
        shutil.rmtree(self.local.parent, ignore_errors=True)


@contextlib.contextmanager
def _report(root: str) -> Iterator[_Report]:
    from distributed import performance_report

    report = _Report(root)
    try:
        with performance_report(filename=str(report.local)):
            yield report
    finally:
        with contextlib.suppress(OSError):
            report.publish()


def _with_checksums(inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The input listing with each local file's CRC32C (read while the cluster computes:
    the cheap checksum, since every input byte is read once more for it). Object
    storage's ETag, already in the listing, serves instead there."""
    return [{**entry, "crc32c": datasets.file_crc32c(entry["path"])}
            if datasets.is_local(entry["path"]) and Path(entry["path"]).is_file() else entry
            for entry in inputs]


def _cluster(target: clusters.ClusterSpec | clusters.Cluster) -> Any:
    if isinstance(target, clusters.Cluster):
        return contextlib.nullcontext(target)
    return clusters.start(target)


def _run_partition(pipe: Pipeline, template: PartitionTemplate, state: PartitionState,
                   root: str, format: str, active: clusters.Cluster, lease: Lease,
                   say: Callable[[str], None]) -> None:
    folder = template.folder(state.key)
    remove_unfinished_writes(root, folder)  # a killed runner's, from any host
    directory = RunDirectory(f"{root.rstrip('/')}/{folder}", replace=True)
    started = datetime.now(UTC)
    began = time.perf_counter()
    # The inputs' checksums are read while the cluster computes (hashing frees the GIL).
    hashing = ThreadPoolExecutor(1, thread_name_prefix="suanli-etl-checksums")
    input_checksums = hashing.submit(_with_checksums, state.inputs)
    try:
        source = template.source(state.key)
        ds = datasets.validate(datasets.open(source), require_label=pipe.needs_label,
                               source=source)
        resolved = pipe.resolve(ds)
        run = Run(resolved, directory, active, say=say)
        with run.timed("features"):
            write_features(run, ds, format=format)
        run.timings["total"] = round(time.perf_counter() - began, 3)
        manifest = {
            "partition": state.key, "field": template.field, "source": source,
            "format": format,
            "pipeline": pipe.name, "pipeline_hash": fingerprint(pipe.to_mapping()),
            "pipeline_definition": resolved.to_mapping(),
            "training": None if pipe.train is None else
            "not run per partition: train over partitions with 'suanli run'",
            "inputs": input_checksums.result(), "inputs_hash": fingerprint(state.inputs),
            "sizes": {str(k): int(v) for k, v in ds.sizes.items()},
            "versions": versions(), "started": started.isoformat(),
            "finished": datetime.now(UTC).isoformat(), "timings": run.timings,
            "outputs": directory.checksums(), "lease_token": lease.token,
        }
        directory.path(MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
        lease.check()  # the fence: a run that lost its lease commits nothing
        directory.commit()
    except BaseException:
        directory.discard()
        raise
    finally:
        hashing.shutdown(wait=True, cancel_futures=True)
    clear_failure(root, folder)
