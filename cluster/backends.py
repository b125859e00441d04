"""What every kind needs from its deployment library: importing it, and settings for workers."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import dask.config

from .errors import ClusterError
from .spec import ClusterSpec

#: Which extra of suanli installs each optional deployment library.
EXTRAS = {
    "asyncssh": ("ssh", "asyncssh"),
    "dask_cuda": ("gpu", "dask-cuda"),
    "dask_cloudprovider": ("cloud", "dask-cloudprovider"),
    "dask_kubernetes": ("k8s", "dask-kubernetes"),
    "dask_jobqueue": ("hpc", "dask-jobqueue"),
}


def import_backend(module: str, kind: str) -> ModuleType:
    """Import ``module`` for kind ``kind``, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        extra, package = EXTRAS[module.partition(".")[0]]
        raise ClusterError(
            f"the {kind!r} cluster kind needs {package}, which is not installed here: "
            f"pip install 'suanli[{extra}]' ({error})"
        ) from error


def flat_config(spec: ClusterSpec) -> dict[str, Any]:
    """``spec.config`` as dotted keys, ready for ``dask.config.set``.

    Dotted keys, because ``dask.config.set({"distributed": {...}})`` would
    replace the whole ``distributed`` section rather than merge into it.
    """
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        else:
            out[prefix] = value

    walk("", spec.config)
    return out


@contextlib.contextmanager
def worker_settings(spec: ClusterSpec) -> Iterator[None]:
    """Within: the spec's Dask config, and its environment in every worker process
    from the start.

    Nannies read ``distributed.nanny.pre-spawn-environ`` when created and set it
    before spawning each worker (and each respawn), so variables read at process
    start, such as glibc's MALLOC_*, take effect; a nanny's ``env`` is applied only
    after start-up. Nannies (and SSH launches, which serialise it into their
    command line) also hand the global Dask config to their workers: the spec's
    config rides along that way.
    """
    environ = {**dask.config.get("distributed.nanny.pre-spawn-environ", default={}),
               **spec.environment}
    with dask.config.set({**flat_config(spec), "distributed.nanny.pre-spawn-environ": environ}):
        yield


def expanded_config(spec: ClusterSpec) -> dict[str, Any]:
    """``spec.config`` as one nested mapping (dotted keys expanded)."""
    out: dict[str, Any] = {}
    for key, value in flat_config(spec).items():
        dask.config.set({key: value}, config=out)
    return out


def worker_environment(spec: ClusterSpec) -> dict[str, str]:
    """Environment variables for remote workers: the spec's, plus its Dask config.

    distributed's own mechanism carries config to processes it spawns
    (``DASK_INTERNAL_INHERIT_CONFIG``, read by dask at import); remote kinds use
    the same variable so workers on other machines see the profile's config.
    """
    env = dict(spec.environment)
    if spec.config:
        env["DASK_INTERNAL_INHERIT_CONFIG"] = dask.config.serialize(expanded_config(spec))
    return env


def scheduler_options(spec: ClusterSpec) -> dict[str, Any]:
    """Options every kind passes to its scheduler."""
    options: dict[str, Any] = {}
    if spec.idle_timeout is not None:
        options["idle_timeout"] = spec.idle_timeout
    return options
