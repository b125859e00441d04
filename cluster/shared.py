"""The ``shared`` kind: join a scheduler that is already running, over TLS.

A shared scheduler serves several people, so suanli requires TLS with mutual
certificates unless the profile says ``insecure: true`` (plain tcp on a
trusted network). ``suanli cluster up`` starts such a scheduler.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .errors import ClusterSpecError
from .kinds import Launch

if TYPE_CHECKING:
    from distributed.security import Security

    from .spec import ClusterSpec


def validate(spec: ClusterSpec) -> None:
    """A scheduler address, over TLS unless ``insecure`` says otherwise."""
    if not spec.address:
        raise ClusterSpecError("address", spec.address,
                               "the scheduler address, e.g. tls://scheduler.lab:8786")
    protocol = spec.address.partition("://")[0] if "://" in spec.address else "tcp"
    if protocol != "tls" and not spec.insecure:
        raise ClusterSpecError(
            "address", spec.address,
            "a tls:// address: a shared cluster requires TLS (set insecure: true in "
            "the profile to allow plain tcp on a trusted network)")
    if protocol == "tls" and spec.tls is None:
        raise ClusterSpecError("tls", None,
                               "ca_file, cert and key: the shared cluster requires TLS")


def security_for(spec: ClusterSpec) -> Security | None:
    """distributed's Security for the spec's TLS files (encryption required), or None."""
    if spec.tls is None:
        return None
    from distributed.security import Security

    files = tls_paths(spec)
    return Security(tls_ca_file=files["ca_file"], tls_client_cert=files["cert"],
                    tls_client_key=files["key"], require_encryption=True)


def tls_paths(spec: ClusterSpec) -> dict[str, str]:
    """The spec's TLS files with ``~`` expanded."""
    return {role: os.path.expanduser(path) for role, path in (spec.tls or {}).items()}


def launch(spec: ClusterSpec) -> Launch:
    arguments: dict[str, object] = {"address": spec.address, "timeout": spec.startup_timeout}
    if spec.tls is not None:
        arguments["security"] = {"tls_ca_file": spec.tls["ca_file"],
                                 "tls_client_cert": spec.tls["cert"],
                                 "tls_client_key": spec.tls["key"],
                                 "require_encryption": True}
    note = ("TLS with client certificates is required" if spec.tls is not None
            else "plain tcp, allowed because the profile says insecure: true")
    return Launch("distributed.Client", arguments,
                  notes=("nothing is started: the client joins a running scheduler", note))


def start(spec: ClusterSpec) -> str:
    """The scheduler's address; :class:`~suanli.cluster.Cluster` connects to it."""
    assert spec.address is not None  # validate() guarantees it for this kind
    return spec.address
