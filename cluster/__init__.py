"""Start, plan and connect to Dask clusters of every kind from one spec.

>>> from suanli import cluster
>>> with cluster.start("local", workers=2) as c:      # doctest: +SKIP
...     c.client, c.dashboard_link
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import dask.config
import yaml

from .errors import ClusterError, ClusterSpecError, ClusterUsageError, SchedulerLost, SuanliError
from .handle import Cluster
from .kinds import Launch, kind_definition, kind_names, register_kind
from .preflight import version_mismatches
from .profiles import profile_names, resolve
from .sizing import with_workers
from .spec import ClusterSpec, validate

__all__ = [
    "Cluster",
    "ClusterError",
    "ClusterSpec",
    "ClusterSpecError",
    "ClusterUsageError",
    "Launch",
    "SchedulerLost",
    "SuanliError",
    "connect",
    "kind_names",
    "launch_plan",
    "plan",
    "profile_names",
    "register_kind",
    "start",
    "validate",
    "version_mismatches",
    "with_workers",
]

# Package defaults join Dask's config (as dask-jobqueue and dask-cuda do); the
# values are read when a function is called, so user config always wins.
dask.config.update_defaults(yaml.safe_load((Path(__file__).parent / "cluster.yaml").read_text()))

# distributed estimates each message's size before sending it, and the estimate gives
# up (RecursionError) on deeply nested messages, which distributed expects and handles
# (distributed/comm/utils.py); the warning it logs each time, seen at the end of
# training, says nothing a user can act on. Set here, at import, because every
# process that runs suanli's tasks imports this package, while Dask's `logging`
# config reaches a worker only if it is in place before the worker imports distributed.
logging.getLogger("distributed.sizeof").setLevel(logging.ERROR)


def plan(target: str | ClusterSpec | None = None, **overrides: Any) -> ClusterSpec:
    """The resolved, validated spec for a kind or profile; nothing is started."""
    return resolve(target, **overrides)


def launch_plan(target: str | ClusterSpec | None = None, **overrides: Any) -> Launch:
    """What starting ``target`` would launch: the Dask deployment call, its arguments
    and rendered artefacts (job script, Kubernetes resource). Nothing is started."""
    spec = resolve(target, **overrides)
    launch = kind_definition(spec.kind).launch
    if launch is None:
        return Launch(f"{spec.kind} (a third-party kind)", spec.to_dict(),
                      notes=("this kind does not describe its launch",))
    return launch(spec)


def connect(address: str, tls: dict[str, str] | None = None, insecure: bool = False,
            **overrides: Any) -> Cluster:
    """Join a running scheduler (the ``shared`` kind): TLS unless ``insecure``.

    ``tls`` holds the PEM files ``ca_file``, ``cert`` and ``key``.
    """
    return start(ClusterSpec(kind="shared", address=address, tls=tls, insecure=insecure),
                 **overrides)


def start(target: str | ClusterSpec | None = None, **overrides: Any) -> Cluster:
    """Start a cluster from a kind, a profile or a spec and connect a client.

    Parameters
    ----------
    target
        A kind (``"local"``), a profile name from Dask's config, a
        :class:`ClusterSpec`, or None for ``suanli.cluster.default``.
    **overrides
        Spec fields to change, e.g. ``workers=4``.
    """
    profile = target if isinstance(target, str) and target in profile_names() else None
    return Cluster.start(resolve(target, **overrides), profile=profile)
