"""Scheduled ETL: a pipeline's features per partition, whose state lives in storage.

>>> from suanli import pipelines
>>> pipelines.etl("sensor-faults", "raw/{date}.zarr", "features/",
...               since="2024-03-01", until="2024-03-07")      # doctest: +SKIP
"""

from __future__ import annotations

from .backfill import EtlResult, etl, plan_etl
from .partitions import PartitionTemplate
from .state import STATES, PartitionState
from .status import etl_status

__all__ = ["STATES", "EtlResult", "PartitionState", "PartitionTemplate", "etl", "etl_status",
           "plan_etl"]
