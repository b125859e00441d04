"""Turn a kind, a profile name or a spec into a validated :class:`ClusterSpec`.

Profiles live in Dask's config under ``suanli.cluster.profiles`` and are read
when a function is called, never at import time.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import dask.config

from .errors import ClusterSpecError
from .kinds import kind_names
from .spec import ClusterSpec, spec_fields, validate


def profile_names() -> tuple[str, ...]:
    """The profiles defined in Dask's config."""
    return tuple(sorted(dask.config.get("suanli.cluster.profiles", default={}) or {}))


def resolve(target: str | ClusterSpec | None = None, **overrides: Any) -> ClusterSpec:
    """The validated spec for ``target`` with ``overrides`` applied.

    ``target`` is a :class:`ClusterSpec`, a profile name from Dask's config, a
    kind name (a spec with that kind and default sizes), or None for the
    configured default (``suanli.cluster.default``).
    """
    if target is None:
        target = dask.config.get("suanli.cluster.default", default="local")
    if isinstance(target, ClusterSpec):
        base = dataclasses.asdict(target)
    else:
        base = _profile_or_kind(str(target))
    unknown = sorted(set(overrides) - set(spec_fields()))
    if unknown:
        raise ClusterSpecError(unknown[0], overrides[unknown[0]],
                               f"a spec field: one of {', '.join(spec_fields())}")
    base.update(overrides)
    if isinstance(base.get("hosts"), list):
        base["hosts"] = tuple(base["hosts"])  # YAML gives lists; the spec is frozen
    return validate(ClusterSpec(**base))


def _profile_or_kind(name: str) -> dict[str, Any]:
    profiles = dask.config.get("suanli.cluster.profiles", default={}) or {}
    if name in profiles:
        profile = dict(profiles[name] or {})
        unknown = sorted(set(profile) - set(spec_fields()))
        if unknown:
            raise ClusterSpecError(
                f"suanli.cluster.profiles.{name}.{unknown[0]}", profile[unknown[0]],
                f"a spec field: one of {', '.join(spec_fields())}",
            )
        return profile
    if name in kind_names():
        return {"kind": name}
    raise ClusterSpecError(
        "profile", name,
        f"a profile ({', '.join(profile_names()) or 'none defined'}) "
        f"or a kind ({', '.join(kind_names())})",
    )
