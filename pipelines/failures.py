"""Run failures told in the pipeline's terms: which step a failed Dask task
belongs to, and what to do about it.

Dask reports a failed task by its key (``('_die-1f2e...', 8, 0, 0)``). The
steps are applied again, lazily, to the run's input, and each step's new
graph layers are matched with the key: only when something failed, so a
healthy run never materialises its graph layer by layer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import xarray as xr
from dask.utils import format_bytes, key_split
from distributed import KilledWorker

from suanli.cluster import Cluster

from .errors import PipelineError, StepError
from .pipeline import Pipeline
from .steps.fusion import Stage, plan


def steps_behind(pipe: Pipeline, ds: xr.Dataset, key: Any) -> list[str]:
    """The steps whose graph layers made ``key``: one, or several when Dask fused tasks
    of consecutive steps into one, or the pipeline ran them as one stage
    (:mod:`.fusion`); empty when the key is from no step."""
    name = str(key[0] if isinstance(key, tuple) else key)
    each = _new_layers([stage for call in pipe.steps for stage in plan([call])], ds)
    # A fused stage also builds its steps' own layers (lazily, for later readers):
    # only the layers of its fused tasks are its own.
    own = set().union(*(layers for _, layers in each))
    fused = [(steps, layers - own) for steps, layers in _new_layers(plan(pipe.steps), ds)
             if len(steps) > 1]
    for stages in (each, fused):
        exact = [step for steps, layers in stages if name in layers for step in steps]
        if exact:
            return exact
    # A fused task's name joins the names of the tasks it runs.
    for stages in (fused, each):
        found = [step for steps, layers in stages
                 if any(key_split(layer) and key_split(layer) in name for layer in layers)
                 for step in steps]
        if found:
            return list(dict.fromkeys(found))
    return []


def _new_layers(stages: list[Stage], ds: xr.Dataset) -> list[tuple[tuple[str, ...], set[str]]]:
    """Each stage's step names and the graph layers it adds, applied in order to ``ds``."""
    added = []
    seen = _layer_names(ds)
    for stage in stages:
        ds = stage(ds)
        layers = _layer_names(ds)
        added.append((stage.names, layers - seen))
        seen = layers
    return added


def _layer_names(ds: xr.Dataset) -> set[str]:
    graph = ds.__dask_graph__()
    return set(getattr(graph, "layers", {})) if graph is not None else set()


def worker_memory_limit(active: Cluster) -> int | None:
    """The smallest memory limit of the cluster's workers (bytes), if it can be asked."""
    with contextlib.suppress(Exception):  # the scheduler may be the thing that failed
        return min((w["memory_limit"] for w in active.client.scheduler_info()["workers"].values()
                    if w.get("memory_limit")), default=None)
    return None


def suspicious_task_groups(active: Cluster) -> dict[str, int]:
    """For each task name prefix, how often a worker died while one of its tasks ran
    (the scheduler's running count; compare two readings)."""
    def read(dask_scheduler: Any) -> dict[str, int]:
        return {name: prefix.suspicious
                for name, prefix in dask_scheduler.task_prefixes.items() if prefix.suspicious}

    with contextlib.suppress(Exception):  # the scheduler may be the thing that failed
        return dict(active.client.run_on_scheduler(read))
    return {}


@contextlib.contextmanager
def killed_workers_named(pipe: Pipeline, ds: xr.Dataset, active: Cluster) -> Iterator[None]:
    """Turn a ``KilledWorker`` raised in the block into :func:`killed_workers_error`,
    with the task groups that were running at the deaths during the block as suspects.

    The workers' memory limit is read before the block: after the deaths the
    workers may still be restarting, and the scheduler would list none.
    """
    before, memory_limit = suspicious_task_groups(active), worker_memory_limit(active)
    try:
        yield
    except KilledWorker as error:
        after = suspicious_task_groups(active)
        suspects = {name: count - before.get(name, 0) for name, count in after.items()
                    if count > before.get(name, 0)}
        raise killed_workers_error(pipe, ds, error, memory_limit, suspects) from error


def killed_workers_error(pipe: Pipeline, ds: xr.Dataset, error: KilledWorker,
                         memory_limit: int | None = None,
                         suspects: dict[str, int] | None = None) -> PipelineError:
    """RELIABILITY R4/R5: a task that killed every worker that ran it, named by its step,
    with the workers' memory limit (the usual cause).

    Dask suspects every task a dying worker was running, and names whichever
    reaches the limit first: sometimes a cheap bystander (a census scan next to
    the step that used the memory). ``suspects`` (task prefix: deaths seen,
    during this run) then points at the step's tasks that were there each time.
    """
    steps = steps_behind(pipe, ds, error.task)
    culprit = error.task
    suspects = suspects or {}
    for prefix in sorted(suspects, key=suspects.__getitem__, reverse=True):
        if steps:
            break
        steps, culprit = steps_behind(pipe, ds, prefix), prefix
    what = (f"a task of this step, {culprit!r}," if steps
            else f"a task reading the input, {error.task!r},")
    message = (f"{what} killed each of the {error.allowed_failures + 1} workers that ran it "
               f"(a crash in native code, an exit from the process, or the operating "
               f"system's out-of-memory killer; the workers' logs say which). The cluster "
               f"restarted the workers; nothing was written.")
    if memory_limit:
        message += (f" Each worker may use {format_bytes(memory_limit)} (its nanny stops it "
                    f"at 95%); if the step needs more for a chunk, give the workers more "
                    f"memory (memory_limit in the cluster profile) or the data smaller chunks.")
    if not steps:
        return PipelineError(message[0].upper() + message[1:])
    return StepError(" or ".join(steps), message)


def no_workers_error(active: Cluster, error: Exception,
                     kept: str = "Nothing was written") -> PipelineError:
    """The cluster's workers all went away and none came back within the scheduler's
    ``distributed.scheduler.no-workers-timeout`` (RELIABILITY R3: no run waits for ever).
    ``kept``: what the run leaves behind."""
    return PipelineError(
        f"the cluster at {active.scheduler_address} had no workers while the run waited "
        f"for them: they exited or were stopped and nothing replaced them (a nanny does "
        f"not restart a worker that exits cleanly; the workers' logs say why). {kept}; "
        f"restart the cluster and rerun. Dask said: {error}")
