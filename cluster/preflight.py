"""Check that the client and every worker run the same Python, dask and distributed.

A mismatch shows up later as baffling deserialisation errors; catching it at
start-up, with the versions side by side, saves an afternoon.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import ClusterError

if TYPE_CHECKING:
    from distributed import Client

CHECKED = ("python", "dask", "distributed")


def _short(package: str, version: str | None) -> str | None:
    if version is None:
        return None
    # Python's patch level does not matter to pickles; its minor version does.
    return ".".join(version.split(".")[:2]) if package == "python" else version


def version_mismatches(versions: dict[str, Any]) -> list[str]:
    """Lines naming each package whose version differs, from ``Client.get_versions()``."""
    sides: dict[str, dict[str, Any]] = {"client": versions["client"]["packages"]}
    if versions.get("scheduler"):
        sides["scheduler"] = versions["scheduler"]["packages"]
    for address, info in (versions.get("workers") or {}).items():
        if isinstance(info, dict) and "packages" in info:
            sides[f"worker {address}"] = info["packages"]
    lines = []
    for package in CHECKED:
        seen = {where: _short(package, packages.get(package)) for where, packages in
                sides.items()}
        if len(set(seen.values())) > 1:
            listed = ", ".join(f"{where}: {version}" for where, version in seen.items())
            lines.append(f"{package} differs: {listed}")
    return lines


def check_versions(client: Client) -> None:
    """Raise ClusterError listing every mismatch between client, scheduler and workers."""
    versions: Any = client.get_versions(check=False)
    mismatches = version_mismatches(versions)
    if mismatches:
        raise ClusterError(
            "the cluster's Python packages do not match this client's; install the same "
            "versions everywhere (or point remote_python at a matching environment):\n  "
            + "\n  ".join(mismatches)
        )
