"""Exceptions raised by :mod:`suanli.pipelines`: its part of :mod:`suanli.errors`.

``PipelineError`` is the base; ``PipelineDefinitionError`` means the pipeline,
a step, a parameter or a ``--set`` key is wrong (nothing ran); ``StepError``
means a step failed while running and names it; ``RunOutputError`` means the
output directory cannot be used; ``DeviceError`` that the device asked for is
not there; ``ModelFileError`` that a model file cannot be used; ``LeaseHeld`` that
another ETL run holds an output root, ``LeaseLost`` that this one lost it.
"""

from __future__ import annotations

from suanli.errors import (
    DeviceError,
    LeaseHeld,
    LeaseLost,
    ModelFileError,
    PipelineDefinitionError,
    PipelineError,
    RunOutputError,
    StepError,
    SuanliError,
)

__all__ = ["DeviceError", "LeaseHeld", "LeaseLost", "ModelFileError",
           "PipelineDefinitionError", "PipelineError", "RunOutputError", "StepError",
           "SuanliError"]
