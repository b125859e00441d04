"""The ``auto`` kind: ``local-cuda`` where a GPU is visible, else ``local``."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from . import local, local_cuda
from .gpus import visible_gpu_count
from .kinds import Launch

if TYPE_CHECKING:
    from distributed.deploy.cluster import Cluster as DaskCluster

    from .spec import ClusterSpec


def chosen_kind(gpu_count: int | None = None) -> str:
    """The kind ``auto`` resolves to on this machine."""
    count = visible_gpu_count() if gpu_count is None else gpu_count
    return "local-cuda" if count > 0 else "local"


def validate(spec: ClusterSpec) -> None:
    """What a local cluster checks: ``auto`` starts one (or a local-cuda one)."""
    local.validate(spec)


def launch(spec: ClusterSpec) -> Launch:
    kind = chosen_kind()
    module = local_cuda if kind == "local-cuda" else local
    planned = module.launch(dataclasses.replace(spec, kind=kind))
    return dataclasses.replace(planned, notes=(f"auto chose {kind!r} on this machine",
                                               *planned.notes))


def start(spec: ClusterSpec) -> DaskCluster:
    kind = chosen_kind()
    module = local_cuda if kind == "local-cuda" else local
    return module.start(dataclasses.replace(spec, kind=kind))
