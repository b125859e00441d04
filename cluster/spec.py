"""One description of a cluster, whatever its kind, and its validation."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .errors import ClusterSpecError

LOOPBACK = "127.0.0.1"

#: Keys a ``hosts`` entry may have besides its address.
HOST_KEYS = ("address", "workers", "gpus", "python")
#: Keys of the ``tls`` mapping: PEM files, as distributed's Security takes them.
TLS_KEYS = ("ca_file", "cert", "key")
#: Keys of the ``ssh`` mapping (asyncssh connection options, in plain words).
SSH_KEYS = ("username", "port", "client_keys", "known_hosts", "check_host_keys",
            "connect_timeout")
#: Keys of the ``spill`` mapping: dask-cuda's device-memory policy.
SPILL_KEYS = ("device_memory_limit", "rmm_pool_size", "enable_cudf_spill", "log_spilling")


@dataclass(frozen=True)
class ClusterSpec:
    """What to start: the kind of cluster, where, and how big.

    ``None`` means "let the kind choose a sensible default". Which fields a kind
    reads is listed in ``docs/clusters.md``; fields a kind does not use are
    ignored by it.

    Examples
    --------
    >>> ClusterSpec(kind="local", workers=2, threads_per_worker=1)  # doctest: +ELLIPSIS
    ClusterSpec(kind='local', workers=2, threads_per_worker=1, ...)
    """

    kind: str = "local"
    #: Worker processes (local), per host (ssh, unless a host says otherwise), or in all
    #: (cloud, kubernetes, slurm, pbs). GPU kinds start one worker per GPU instead.
    workers: int | None = None
    threads_per_worker: int | None = None
    #: Per worker: a number of bytes, a string such as ``"4GiB"``, or ``"auto"``.
    memory_limit: str | int | None = "auto"
    #: GPUs per worker host; None: every visible GPU (local-cuda), 0: CPU workers.
    gpus: int | None = None
    #: ssh: the worker hosts, each an address or a mapping with ``address`` and
    #: optionally ``workers``, ``gpus`` and ``python`` for that host.
    hosts: tuple[str | dict[str, Any], ...] = ()
    #: ssh: the host that runs the scheduler (default: the first of ``hosts``).
    #: shared: the scheduler to connect to, e.g. ``tls://sched.lab:8786``.
    address: str | None = None
    #: Interface address the scheduler and workers of local kinds listen on.
    host: str = LOOPBACK
    #: TLS files (``ca_file``, ``cert``, ``key``); the shared kind requires them.
    tls: dict[str, str] | None = None
    #: shared: allow a plain-tcp scheduler without TLS. Off unless set explicitly.
    insecure: bool = False
    #: ``host:port`` for the dashboard; port 0 picks a free one; ``None`` turns it off.
    dashboard_address: str | None = f"{LOOPBACK}:8787"
    #: Shut the cluster down after this long without work (e.g. ``"1h"``); None: never.
    idle_timeout: str | None = None
    #: Give up on starting or reaching the cluster after this long.
    startup_timeout: str = "60s"
    #: Environment variables set in every worker process before it starts.
    environment: dict[str, str] = field(default_factory=dict)
    #: Dask config set on the workers (and the scheduler), e.g. ``{"distributed.worker.
    #: memory.spill": 0.7}``, as dotted keys or nested mappings.
    config: dict[str, Any] = field(default_factory=dict)
    #: ssh: the Python on the remote hosts (default: the same path as here).
    remote_python: str | None = None
    #: ssh: connection options: username, port, client_keys, known_hosts,
    #: check_host_keys (true unless turned off explicitly), connect_timeout.
    ssh: dict[str, Any] = field(default_factory=dict)
    #: Cloud, Kubernetes and HPC kinds: arguments for the deployment library
    #: (region, instance type, image, queue, walltime, ...), passed through.
    options: dict[str, Any] = field(default_factory=dict)
    #: GPU kinds: device memory policy (device_memory_limit, rmm_pool_size,
    #: enable_cudf_spill, log_spilling); see docs/clusters.md for what each does.
    spill: dict[str, Any] = field(default_factory=dict)

    def replace(self, **changes: Any) -> ClusterSpec:
        """A copy with ``changes`` applied and validated."""
        return validate(dataclasses.replace(self, **changes))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (used in run manifests and ``suanli cluster plan``)."""
        out = dataclasses.asdict(self)
        out["hosts"] = [dict(h) if isinstance(h, dict) else h for h in self.hosts]
        return out

    def host_entries(self) -> list[dict[str, Any]]:
        """``hosts`` as mappings, each with address, workers, gpus and python filled in."""
        entries = []
        for entry in self.hosts:
            item: dict[str, Any] = ({"address": entry} if isinstance(entry, str)
                                    else dict(entry))
            item.setdefault("workers", self.workers or 1)
            item.setdefault("gpus", self.gpus or 0)
            item.setdefault("python", self.remote_python)
            entries.append(item)
        return entries


def spec_fields() -> tuple[str, ...]:
    """Names of the fields a profile may set."""
    return tuple(f.name for f in dataclasses.fields(ClusterSpec))


def validate(spec: ClusterSpec) -> ClusterSpec:
    """Check every field of ``spec``; return it unchanged or raise ClusterSpecError.

    Pure: starts nothing, opens no file and reads nothing but the spec (and the
    core count, to explain a too-large request).
    """
    from .kinds import kind_definition, kind_names

    if spec.kind not in kind_names():
        raise ClusterSpecError("kind", spec.kind, f"one of {', '.join(kind_names())}")
    for name in ("workers", "threads_per_worker"):
        _validate_count(name, getattr(spec, name), minimum=1)
    _validate_count("gpus", spec.gpus, minimum=0)
    _validate_memory(spec.memory_limit)
    if not isinstance(spec.host, str) or not spec.host:
        raise ClusterSpecError("host", spec.host, "an interface address such as 127.0.0.1")
    if spec.dashboard_address is not None:
        host, sep, port = str(spec.dashboard_address).rpartition(":")
        if not sep or not port.isdigit() or not host:
            raise ClusterSpecError("dashboard_address", spec.dashboard_address,
                                   "'host:port' (port 0 picks a free one), or null to turn it off")
    if spec.idle_timeout is not None:
        _validate_timedelta("idle_timeout", spec.idle_timeout)
    _validate_timedelta("startup_timeout", spec.startup_timeout)
    _validate_str_mapping("environment", spec.environment)
    for name in ("config", "ssh", "options", "spill"):
        if not isinstance(getattr(spec, name), dict):
            raise ClusterSpecError(name, getattr(spec, name), "a mapping")
    _validate_keys("ssh", spec.ssh, SSH_KEYS)
    _validate_keys("spill", spec.spill, SPILL_KEYS)
    if spec.ssh.get("check_host_keys", True) not in (True, False):
        raise ClusterSpecError("ssh.check_host_keys", spec.ssh["check_host_keys"],
                               "true (the default) or false")
    if spec.tls is not None:
        _validate_str_mapping("tls", spec.tls)
        _validate_keys("tls", spec.tls, TLS_KEYS)
        missing = [k for k in TLS_KEYS if k not in spec.tls]
        if missing:
            raise ClusterSpecError(f"tls.{missing[0]}", None,
                                   "a PEM file path: tls needs ca_file, cert and key")
    if not isinstance(spec.insecure, bool):
        raise ClusterSpecError("insecure", spec.insecure, "true or false")
    _validate_hosts(spec.hosts)
    kind_check = kind_definition(spec.kind).validate
    if kind_check is not None:
        kind_check(spec)  # the fields only this kind reads
    return spec


def _validate_count(name: str, value: object, minimum: int) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                              or value < minimum):
        raise ClusterSpecError(name, value, f"a whole number >= {minimum}, or null for a default")


def _validate_str_mapping(name: str, value: object) -> None:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ClusterSpecError(name, value, "a mapping of names to string values")


def _validate_keys(name: str, value: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ClusterSpecError(f"{name}.{unknown[0]}", value[unknown[0]],
                               f"a key of {name}: one of {', '.join(allowed)}")


def _validate_hosts(hosts: object) -> None:
    if not isinstance(hosts, (list, tuple)):
        raise ClusterSpecError("hosts", hosts, "a list of host addresses or mappings")
    for i, entry in enumerate(hosts):
        where = f"hosts[{i}]"
        if isinstance(entry, str) and entry:
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("address"), str):
            raise ClusterSpecError(where, entry,
                                   "an address, or a mapping with 'address' (and optionally "
                                   "workers, gpus, python)")
        _validate_keys(where, entry, HOST_KEYS)
        _validate_count(f"{where}.workers", entry.get("workers"), minimum=1)
        _validate_count(f"{where}.gpus", entry.get("gpus"), minimum=0)


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
