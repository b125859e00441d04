"""The registry of cluster kinds: a name -> how to plan and start it.

Each kind is a small module with two functions: ``launch(spec)`` says what it
would start (the Dask deployment class, its arguments and any rendered
artefact such as a batch job script) without starting anything, and
``start(spec)`` starts it, returning a Dask cluster object or, for kinds that
join a running scheduler, its address. Third parties add kinds through the
``suanli.cluster.kinds`` entry-point group; an entry point names a module
with ``start`` (and optionally ``launch``), or a bare start function.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .errors import ClusterError

if TYPE_CHECKING:
    from distributed.deploy.cluster import Cluster as DaskCluster

    from .spec import ClusterSpec

#: Starts a kind: returns a Dask cluster object, or the address of a running scheduler.
Starter = Callable[["ClusterSpec"], "DaskCluster | str"]


@dataclass(frozen=True)
class Launch:
    """What a kind would start, for ``suanli cluster plan``: nothing is started."""

    #: The deployment class (or function) called, e.g. ``dask_jobqueue.SLURMCluster``.
    call: str
    #: Its keyword arguments, JSON-ready.
    arguments: dict[str, Any]
    #: Rendered files the library would submit, by name (job script, resource YAML).
    artefacts: dict[str, str] = field(default_factory=dict)
    #: Plain-words remarks: defaults chosen, what is needed to start it for real.
    notes: tuple[str, ...] = ()


_BUILTIN: dict[str, str] = {
    "local": "suanli.cluster.local",
    "auto": "suanli.cluster.auto",
    "local-cuda": "suanli.cluster.local_cuda",
    "ssh": "suanli.cluster.ssh",
    "shared": "suanli.cluster.shared",
    "ec2": "suanli.cluster.cloud:ec2",
    "gcp": "suanli.cluster.cloud:gcp",
    "azure": "suanli.cluster.cloud:azure",
    "kubernetes": "suanli.cluster.kubernetes",
    "slurm": "suanli.cluster.jobqueue:slurm",
    "pbs": "suanli.cluster.jobqueue:pbs",
}


@dataclass(frozen=True)
class KindDefinition:
    """A kind's two functions."""

    name: str
    start: Starter
    launch: Callable[[ClusterSpec], Launch] | None = None
    #: How many workers to wait for after start-up, where the deployment class
    #: itself returns before they have all joined (ssh).
    expected_workers: Callable[[ClusterSpec], int] | None = None


_registered: dict[str, KindDefinition] = {}


def register_kind(name: str, starter: Starter,
                  launch: Callable[[ClusterSpec], Launch] | None = None) -> None:
    """Make ``name`` a cluster kind started by ``starter(spec)`` and planned by ``launch``."""
    _registered[name] = KindDefinition(name, starter, launch)


def kind_names() -> tuple[str, ...]:
    """All known kinds: built in, registered, and from entry points."""
    names = set(_BUILTIN) | set(_registered)
    names |= {ep.name for ep in entry_points(group="suanli.cluster.kinds")}
    return tuple(sorted(names))


def kind_definition(name: str) -> KindDefinition:
    """The definition of kind ``name``; imports its module only now."""
    if name in _registered:
        return _registered[name]
    target = _BUILTIN.get(name)
    if target is not None:
        module_name, _, variant = target.partition(":")
        return _from_module(name, importlib.import_module(module_name), variant)
    for ep in entry_points(group="suanli.cluster.kinds"):
        if ep.name == name:
            loaded = ep.load()
            if isinstance(loaded, ModuleType):
                return _from_module(name, loaded, "")
            return KindDefinition(name, loaded)
    raise ClusterError(f"unknown cluster kind {name!r}; known kinds: {', '.join(kind_names())}")


def _from_module(name: str, module: ModuleType, variant: str) -> KindDefinition:
    # Modules serving several kinds (cloud: ec2/gcp/azure) name them start_<variant>.
    suffix = f"_{variant}" if variant else ""
    return KindDefinition(name, getattr(module, f"start{suffix}"),
                          getattr(module, f"launch{suffix}", None),
                          getattr(module, f"expected_workers{suffix}", None))
