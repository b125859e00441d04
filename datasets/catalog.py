"""Named datasets in Dask's config, so pipelines and scheduled jobs say ``plant-a``.

.. code-block:: yaml

    suanli:
      datasets:
        catalog:
          plant-a:
            uri: s3://plant-a/exports/*.parquet
            description: Line A vibration, exported nightly
            unit: machine
            storage_options: {anon: false}
"""

from __future__ import annotations

from typing import Any

import dask.config

from .errors import DatasetError

ENTRY_KEYS = ("uri", "description", "storage_options", "format", "unit", "time", "channels",
              "label", "layout", "sample_rate", "channel", "value")


def catalog() -> dict[str, dict[str, Any]]:
    """The catalog: name -> entry (``uri`` and how to open it)."""
    found = dask.config.get("suanli.datasets.catalog", default={}) or {}
    return {str(k): dict(v or {}) for k, v in found.items()}


def catalog_entry(name: str) -> dict[str, Any] | None:
    """The open arguments for catalog entry ``name``, or None when it is not one."""
    entries = catalog()
    if name not in entries:
        return None
    entry = dict(entries[name])
    if "uri" not in entry:
        raise DatasetError("a catalog entry needs a 'uri'",
                           path=f"suanli.datasets.catalog.{name}")
    unknown = sorted(set(entry) - set(ENTRY_KEYS))
    if unknown:
        raise DatasetError(f"unknown key {unknown[0]!r}; allowed: {', '.join(ENTRY_KEYS)}",
                           path=f"suanli.datasets.catalog.{name}")
    entry.pop("description", None)
    return entry
