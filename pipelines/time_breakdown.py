"""Where a run's time went, from Dask's task stream: per stage, the worker threads'
seconds spent computing, writing, transferring, deserialising, spilling, or idle.

The task stream (what the dashboard's "Task Stream" and the performance report
show) records, per task, its worker and the start and stop of each action:
``compute``, ``transfer`` (fetching inputs from another worker), ``deserialize``,
``disk-read`` and ``disk-write`` (spilling). A task belongs to the run stage
(:attr:`~.run_state.Run.spans`) its compute began in. ``writing`` is the compute of
the tasks that store chunks (Dask's ``store-map``); ``idle`` is what is left of the
stage's thread-seconds (threads x wall time): no task was ready, or the scheduler
had not handed one over.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: The categories of thread-seconds, in the order a stacked bar shows them.
CATEGORIES = ("compute", "writing", "transfer", "serialisation", "spill", "idle")
#: Task-stream actions counted in each category (compute of storing tasks is writing).
ACTIONS = {"transfer": "transfer", "deserialize": "serialisation", "disk-read": "spill",
           "disk-write": "spill"}
#: Task name prefixes (distributed's key_split) of tasks that write chunks.
WRITING_PREFIXES = ("store-map", "store", "to-zarr", "store-sources")
#: Time of the run outside every recorded stage: opening, planning, manifest, commit.
OUTSIDE = "other"


def task_name(key: Any) -> str:
    """A task key's group name, as the dashboard shows it (``store-map``, ``getitem``)."""
    from distributed.utils import key_split

    return str(key_split(key))


def breakdown(tasks: Iterable[Mapping[str, Any]], spans: Mapping[str, tuple[float, float]],
              run_span: tuple[float, float], threads: int) -> dict[str, dict[str, float]]:
    """Per stage (and ``other``, the rest of ``run_span``), its wall seconds, tasks and
    thread-seconds by :data:`CATEGORIES`.

    ``tasks`` is what ``Client.get_task_stream`` returns; ``threads`` the worker
    threads of the cluster (the stage's capacity is ``threads x wall``).
    """
    ordered = sorted(spans.items(), key=lambda item: item[1][0])
    inside = sum(stop - start for _, (start, stop) in ordered)
    stages: dict[str, dict[str, float]] = {
        name: _empty(stop - start) for name, (start, stop) in ordered}
    stages[OUTSIDE] = _empty(max(run_span[1] - run_span[0] - inside, 0.0))
    for task in tasks:
        startstops = task.get("startstops") or ()
        computing = [s for s in startstops if s["action"] == "compute"]
        began = (computing or list(startstops) or [{"start": None}])[0]["start"]
        if began is None:
            continue
        stage = next((name for name, (start, stop) in ordered if start <= began <= stop),
                     OUTSIDE)
        record = stages[stage]
        record["tasks"] += 1
        writing = task_name(task.get("key")).startswith(WRITING_PREFIXES)
        for part in startstops:
            seconds = max(part["stop"] - part["start"], 0.0)
            if part["action"] == "compute":
                record["writing" if writing else "compute"] += seconds
            elif part["action"] in ACTIONS:
                record[ACTIONS[part["action"]]] += seconds
    for record in stages.values():
        busy = sum(record[c] for c in CATEGORIES if c != "idle")
        # Transfers run beside the threads (on the event loop), so busy can exceed the
        # capacity a little: idle is then 0, not negative.
        record["idle"] = max(threads * record["wall"] - busy, 0.0)
    return stages


def totals(stages: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """The stages summed: wall seconds, tasks and each category's thread-seconds."""
    keys = ("wall", "tasks", *CATEGORIES)
    return {key: sum(stage[key] for stage in stages.values()) for key in keys}


def _empty(wall: float) -> dict[str, float]:
    return {"wall": wall, "tasks": 0, **{category: 0.0 for category in CATEGORIES}}
