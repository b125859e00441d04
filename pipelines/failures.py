"""Which pipeline step a failed Dask task belongs to, so errors name the step.

Dask reports a failed task by its key (``('_die-1f2e...', 8, 0, 0)``). The
steps are applied again, lazily, to the run's input, and each step's new
graph layers are matched with the key: only when something failed, so a
healthy run never materialises its graph layer by layer.
"""

from __future__ import annotations

from typing import Any

import xarray as xr
from dask.utils import key_split

from .pipeline import Pipeline


def steps_behind(pipe: Pipeline, ds: xr.Dataset, key: Any) -> list[str]:
    """The steps whose graph layers made ``key``: one, or several when Dask fused tasks
    of consecutive steps into one; empty when the key is from no step."""
    name = str(key[0] if isinstance(key, tuple) else key)
    per_step: list[tuple[str, set[str]]] = []
    seen = _layer_names(ds)
    for call in pipe.steps:
        ds = call.apply(ds)
        layers = _layer_names(ds)
        per_step.append((call.name, layers - seen))
        seen = layers
    exact = [step for step, layers in per_step if name in layers]
    if exact:
        return exact
    # A fused task's name joins the names of the tasks it runs.
    return [step for step, layers in per_step
            if any(key_split(layer) and key_split(layer) in name for layer in layers)]


def _layer_names(ds: xr.Dataset) -> set[str]:
    graph = ds.__dask_graph__()
    return set(getattr(graph, "layers", {})) if graph is not None else set()
