"""The registry of cluster kinds: a name -> a function that starts a Dask cluster.

Each kind is a small module that turns a :class:`ClusterSpec` into the arguments
of an existing Dask deployment class. Third parties add kinds through the
``suanli.cluster.kinds`` entry-point group (the entry point names a starter).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from distributed.deploy.cluster import Cluster as DaskCluster

    from .spec import ClusterSpec

Starter = Callable[["ClusterSpec"], "DaskCluster"]

_BUILTIN: dict[str, str] = {
    "local": "suanli.cluster.local:start_local",
}
_registered: dict[str, Starter] = {}


def register_kind(name: str, starter: Starter) -> None:
    """Make ``name`` a cluster kind started by ``starter(spec)``."""
    _registered[name] = starter


def kind_names() -> tuple[str, ...]:
    """All known kinds: built in, registered, and from entry points."""
    names = set(_BUILTIN) | set(_registered)
    names |= {ep.name for ep in entry_points(group="suanli.cluster.kinds")}
    return tuple(sorted(names))


def starter_for(name: str) -> Starter:
    """The starter of kind ``name``; imports its module only now."""
    if name in _registered:
        return _registered[name]
    target = _BUILTIN.get(name)
    if target is None:
        for ep in entry_points(group="suanli.cluster.kinds"):
            if ep.name == name:
                starter: Starter = ep.load()
                return starter
        raise KeyError(f"unknown cluster kind {name!r}; known kinds: {', '.join(kind_names())}")
    module_name, _, attr = target.partition(":")
    import importlib

    found: Starter = getattr(importlib.import_module(module_name), attr)
    return found
