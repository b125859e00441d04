"""The registry of cluster kinds: a name -> how to plan and start it.

Each kind is a small module with two functions: ``launch(spec)`` says what it
would start (the Dask deployment class, its arguments and any rendered
artefact such as a batch job script) without starting anything, and
``start(spec)`` starts it, returning a Dask cluster object or, for kinds that
join a running scheduler, its address. Optionally, ``validate(spec)`` checks
the fields only that kind reads (raising ClusterSpecError; it runs with the
common checks of :func:`~.spec.validate`), and ``worker_plugins(spec)`` gives
the Dask worker plugins its workers need (GPU kinds: a CuPy memory pool).
Third parties add kinds through the ``suanli.cluster.kinds`` entry-point
group; an entry point names a module with those functions, or a bare start
function.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .errors import ClusterSpecError

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
    #: Checks the spec fields this kind reads; raises ClusterSpecError.
    validate: Callable[[ClusterSpec], None] | None = None
    #: Dask worker plugins the kind's workers get, registered once it starts.
    worker_plugins: Callable[[ClusterSpec], list[Any]] | None = None
    #: While waiting for workers: ``(fatal, summary)`` from the deployment object,
    #: why its workers will never all join (None while they may) and what it is
    #: doing, so a start fails fast with the reason (batch kinds: SLURM's).
    worker_trouble: Callable[[Any], tuple[str | None, str]] | None = None


_registered: dict[str, KindDefinition] = {}


def register_kind(name: str, starter: Starter,
                  launch: Callable[[ClusterSpec], Launch] | None = None, *,
                  validate: Callable[[ClusterSpec], None] | None = None,
                  worker_plugins: Callable[[ClusterSpec], list[Any]] | None = None) -> None:
    """Make ``name`` a cluster kind started by ``starter(spec)``, planned by ``launch``,
    its own fields checked by ``validate``."""
    _registered[name] = KindDefinition(name, starter, launch, validate=validate,
                                       worker_plugins=worker_plugins)


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
    raise ClusterSpecError("kind", name, f"one of {', '.join(kind_names())}")


def _from_module(name: str, module: ModuleType, variant: str) -> KindDefinition:
    # Modules serving several kinds (cloud: ec2/gcp/azure) name them start_<variant>.
    suffix = f"_{variant}" if variant else ""
    return KindDefinition(name, getattr(module, f"start{suffix}"),
                          getattr(module, f"launch{suffix}", None),
                          getattr(module, f"expected_workers{suffix}", None),
                          getattr(module, f"validate{suffix}", None),
                          getattr(module, f"worker_plugins{suffix}", None),
                          getattr(module, f"worker_trouble{suffix}", None))
