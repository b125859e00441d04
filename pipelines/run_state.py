"""One run's state, handed from stage to stage instead of a list of parameters."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from suanli import cluster as clusters

from .pipeline import Pipeline
from .run_directory import RunDirectory


@dataclass
class Run:
    """What a run is doing: the pipeline, where it writes, on which cluster and device,
    how it reports, and what it has measured and written so far."""

    pipe: Pipeline
    directory: RunDirectory
    cluster: clusters.Cluster
    #: ``cpu`` or ``gpu``: where the steps and training compute.
    device: str = "cpu"
    #: Show progress bars (or lines, or JSON: ``suanli.progress``) on long work.
    progress: bool = False
    #: Where one-line messages go (the command's standard error, or nowhere).
    say: Callable[[str], None] = field(default=lambda message: None)
    #: Seconds per stage, for the manifest.
    timings: dict[str, float] = field(default_factory=dict)
    #: When each stage began and ended (Unix time, as Dask's task stream has it): which
    #: tasks belong to which stage (:mod:`.time_breakdown`).
    spans: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: Files written, by name, inside the run directory (while it is staged).
    outputs: dict[str, Path | str] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    @contextlib.contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Record how long the block takes as ``timings[stage]``, and when, as ``spans``."""
        began, wall = time.perf_counter(), time.time()
        yield
        self.timings[stage] = round(time.perf_counter() - began, 3)
        self.spans[stage] = (wall, wall + self.timings[stage])

    def path(self, relative: str) -> Path:
        """A path inside the run directory."""
        return self.directory.path(relative)

    def location(self, relative: str) -> Path | str:
        """Where the workers write a dataset of the run (a local path, or a URL when the
        run is published to object storage)."""
        return self.directory.location(relative)

    def output(self, name: str, path: Path | str) -> Path | str:
        """Record ``path`` as the run's output ``name``."""
        self.outputs[name] = path
        return path
