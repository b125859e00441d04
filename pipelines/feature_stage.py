"""A run's first stage: the steps over the input, written as ``features.zarr`` (or, for
ETL, ``features.parquet``: a table with a row per unit and window)."""

from __future__ import annotations

from pathlib import Path

import xarray as xr

from suanli import datasets

from .device import dataset_to_device, dataset_to_host
from .failures import killed_workers_named
from .run_state import Run

#: Variables at the raw sample rate are not features: they stay out of features.zarr.
RAW_DIMS = ("time", "offset")


def compute_features(run: Run, ds: xr.Dataset) -> xr.Dataset:
    """Run the steps on ``ds``, write the features and return them, read back lazily."""
    return datasets.open(write_features(run, ds))


def write_features(run: Run, ds: xr.Dataset, *, format: str = "zarr") -> Path | str:
    """Run the steps on ``ds`` and write the features as ``features.FORMAT`` (``zarr``,
    or ``parquet``: a table with a row per unit and window); returns where.

    The input's NaN/inf census (``values.policy``) rides along the features'
    computation under ``report``: one pass over the data for both; ``reject``
    checks first, so a bad input writes nothing. The workers write the features
    where they can reach: into the run's object-storage prefix when it has one.
    """
    pipe = run.pipe
    policy, allow = pipe.values["policy"], tuple(pipe.values["allow"])
    # On gpu the signal becomes CuPy blocks as soon as it is read and stays there;
    # only the features come back to be written.
    source = dataset_to_device(ds, run.device)
    values: datasets.ValueReport | None = None
    if policy == "reject":
        values = datasets.check_values(source, policy="reject", allow=allow)

    def features_of(data: xr.Dataset) -> xr.Dataset:
        transformed = pipe.transform(data)
        keep = [str(name) for name, var in transformed.data_vars.items()
                if not set(var.dims) & set(RAW_DIMS)]
        run.say(f"computing features: {', '.join(keep)}")
        return dataset_to_host(transformed[keep]) if run.device == "gpu" else transformed[keep]

    target = run.location(f"features.{format}")
    with killed_workers_named(pipe, source, run.cluster):
        if policy == "report":
            written, values = datasets.write_with_value_census(
                source, features_of, target, progress=run.progress, label="features",
                format=format)
        else:
            written = datasets.write(features_of(source), target, progress=run.progress,
                                     format=format)
    path = run.output("features", written)
    if values is not None:
        unexpected = [k for k, n in values.counts.items() if n and k not in allow]
        run.say(f"input values: {values.summary()}"
                + (f" (not handled by the steps: {', '.join(unexpected)})"
                   if unexpected else ""))
        run.metrics["input_values"] = values.to_dict()
    return path
