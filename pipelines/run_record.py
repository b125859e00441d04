"""What a run's ``manifest.json`` records: inputs, parameters, versions, cluster,
timings and the checksum of every output."""

from __future__ import annotations

import contextlib
import platform
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import xarray as xr

from .run_state import Run

VERSIONED = ("suanli", "dask", "distributed", "numpy", "scipy", "xarray", "zarr", "pandas",
             "pyarrow", "cupy", "dask-cuda")


def versions() -> dict[str, str]:
    """Python's and the installed versions of the packages a run's results depend on."""
    found = {"python": sys.version.split()[0]}
    for package in VERSIONED:
        with contextlib.suppress(PackageNotFoundError):
            found[package] = version(package)
    return found


def run_manifest(run: Run, source: object, ds: xr.Dataset, overrides: Mapping[str, Any],
                 cluster_record: dict[str, Any], started: datetime,
                 resolved: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The manifest of a run that succeeded, with checksums of what it wrote so far.

    ``pipeline`` is what ran, with every setting given relative to the data
    made concrete; ``resolved`` lists those (``window.size: 100`` for ``series``)."""
    return {
        "status": "succeeded",
        "pipeline": run.pipe.to_mapping(),
        "overrides": dict(overrides),
        "resolved": dict(resolved or {}),
        "dataset": {
            "source": str(source) if isinstance(source, str | Path) else "<in-memory dataset>",
            "sizes": {str(k): int(v) for k, v in ds.sizes.items()},
            "variables": {str(k): str(v.dtype) for k, v in ds.data_vars.items()},
            "attrs": {str(k): v for k, v in ds.attrs.items() if isinstance(v, str | int | float)},
        },
        "cluster": cluster_record,
        "versions": versions(),
        "platform": {"machine": platform.machine(), "system": platform.system(),
                     "processor": platform.processor()},
        "started": started.isoformat(),
        "finished": datetime.now(UTC).isoformat(),
        "timings": run.timings,
        "spans": {stage: list(span) for stage, span in run.spans.items()},
        "outputs": run.directory.checksums(),
    }
