"""One description of a cluster, whatever its kind, and its validation."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from .errors import ClusterSpecError

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class ClusterSpec:
    """What to start: the kind of cluster and how big.

    ``None`` means "let the kind choose a sensible default for this machine".

    Examples
    --------
    >>> ClusterSpec(kind="local", workers=2, threads_per_worker=1)  # doctest: +ELLIPSIS
    ClusterSpec(kind='local', workers=2, threads_per_worker=1, ...)
    """

    kind: str = "local"
    workers: int | None = None
    threads_per_worker: int | None = None
    #: Per worker: a number of bytes, a string such as ``"4GiB"``, or ``"auto"``.
    memory_limit: str | int | None = "auto"
    #: Interface address the scheduler and workers listen on.
    host: str = LOOPBACK
    #: ``host:port`` for the dashboard; port 0 picks a free one; ``None`` turns it off.
    dashboard_address: str | None = f"{LOOPBACK}:8787"
    #: Shut the cluster down after this long without work (e.g. ``"1h"``); None: never.
    idle_timeout: str | None = None
    #: Environment variables set in every worker process before it starts.
    environment: dict[str, str] = field(default_factory=dict)

    def replace(self, **changes: Any) -> ClusterSpec:
        """A copy with ``changes`` applied and validated."""
        return validate(dataclasses.replace(self, **changes))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (used in run manifests)."""
        return dataclasses.asdict(self)


def spec_fields() -> tuple[str, ...]:
    """Names of the fields a profile may set."""
    return tuple(f.name for f in dataclasses.fields(ClusterSpec))


def validate(spec: ClusterSpec) -> ClusterSpec:
    """Check every field of ``spec``; return it unchanged or raise ClusterSpecError.

    Pure: starts nothing and reads nothing but the spec (and the core count, to
    explain a too-large request).
    """
    from .kinds import kind_names

    if spec.kind not in kind_names():
        raise ClusterSpecError("kind", spec.kind, f"one of {', '.join(kind_names())}")
    for name in ("workers", "threads_per_worker"):
        value = getattr(spec, name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or value < 1):
            raise ClusterSpecError(name, value, "a whole number >= 1, or null for a default")
    cores = os.cpu_count() or 1
    if spec.threads_per_worker is not None and spec.threads_per_worker > 4 * cores:
        raise ClusterSpecError("threads_per_worker", spec.threads_per_worker,
                               f"at most {4 * cores} (4x the {cores} cores here)")
    _validate_memory(spec.memory_limit)
    if not isinstance(spec.host, str) or not spec.host:
        raise ClusterSpecError("host", spec.host, "an interface address such as 127.0.0.1")
    if spec.dashboard_address is not None:
        host, sep, port = spec.dashboard_address.rpartition(":")
        if not sep or not port.isdigit() or not host:
            raise ClusterSpecError("dashboard_address", spec.dashboard_address,
                                   "'host:port' (port 0 picks a free one), or null to turn it off")
    if spec.idle_timeout is not None:
        _validate_timedelta("idle_timeout", spec.idle_timeout)
    if not isinstance(spec.environment, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in spec.environment.items()
    ):
        raise ClusterSpecError("environment", spec.environment,
                               "a mapping of variable names to string values")
    return spec


def _validate_memory(value: object) -> None:
    from dask.utils import parse_bytes

    if value is None or value == "auto":
        return
    try:
        nbytes = parse_bytes(value) if isinstance(value, str) else int(value)  # type: ignore[call-overload]
    except (ValueError, TypeError):
        nbytes = -1
    if nbytes <= 0:
        raise ClusterSpecError("memory_limit", value,
                               "a size such as '4GiB', a number of bytes, 'auto' or null")


def _validate_timedelta(name: str, value: object) -> None:
    from dask.utils import parse_timedelta

    try:
        seconds = parse_timedelta(value)  # type: ignore[call-overload]
    except (ValueError, TypeError, KeyError):
        seconds = None
    if seconds is None or seconds <= 0:
        raise ClusterSpecError(name, value, "a positive duration such as '30 minutes' or '1h'")
