"""Steps, pipelines, data-parallel training and the runner.

>>> from suanli import pipelines
>>> result = pipelines.run("sensor-faults")            # doctest: +SKIP
>>> result.metrics["accuracy"]                         # doctest: +SKIP
"""

from __future__ import annotations

from . import steps  # noqa: F401  (registers the built-in steps)
from .array_module import array_module
from .errors import (
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
from .etl import EtlResult, etl, etl_status, plan_etl
from .evaluation import classification_metrics
from .pipeline import Pipeline, StepCall, load_pipeline, pipeline_names, step_sequence
from .predict import predict_dataset
from .registry import get_step, step, step_names
from .runner import RunResult, run
from .scaling_sweep import PlannedPoint, ScalingResult, plan_scaling, scaling
from .training.model import Model, load_model
from .training.trainer import TrainConfig

__all__ = [
    "DeviceError",
    "EtlResult",
    "LeaseHeld",
    "LeaseLost",
    "Model",
    "ModelFileError",
    "Pipeline",
    "PipelineDefinitionError",
    "PipelineError",
    "PlannedPoint",
    "RunOutputError",
    "RunResult",
    "ScalingResult",
    "StepCall",
    "StepError",
    "SuanliError",
    "TrainConfig",
    "array_module",
    "classification_metrics",
    "etl",
    "etl_status",
    "get_step",
    "load_model",
    "load_pipeline",
    "pipeline_names",
    "plan_etl",
    "plan_scaling",
    "predict_dataset",
    "run",
    "scaling",
    "step",
    "step_names",
    "step_sequence",
]
