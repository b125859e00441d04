"""The step registry: named, documented ``Dataset -> Dataset`` functions.

A step's parameters are its keyword arguments; they are checked against the
signature when a pipeline is defined, not when the step runs.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import xarray as xr

from .errors import PipelineDefinitionError

StepFunction = Callable[..., xr.Dataset]
F = TypeVar("F", bound=StepFunction)


@dataclass(frozen=True)
class StepInfo:
    name: str
    function: StepFunction
    parameters: Mapping[str, inspect.Parameter]

    @property
    def summary(self) -> str:
        return (inspect.getdoc(self.function) or "").split("\n", 1)[0]

    def defaults(self) -> dict[str, Any]:
        return {name: p.default for name, p in self.parameters.items()
                if p.default is not inspect.Parameter.empty}


_steps: dict[str, StepInfo] = {}


def step(name: str) -> Callable[[F], F]:
    """Register a step: ``@step("zscore") def zscore(ds, *, ...) -> Dataset``."""

    def register(function: F) -> F:
        signature = inspect.signature(function)
        params = dict(list(signature.parameters.items())[1:])
        for param in params.values():
            if param.kind is not inspect.Parameter.KEYWORD_ONLY:
                raise TypeError(f"step {name!r}: parameter {param.name!r} must be keyword-only")
        _steps[name] = StepInfo(name, function, params)
        return function

    return register


def step_names() -> tuple[str, ...]:
    _load_builtin_steps()
    return tuple(sorted(_steps))


def get_step(name: str) -> StepInfo:
    _load_builtin_steps()
    if name not in _steps:
        raise PipelineDefinitionError(
            f"unknown step {name!r}; known steps: {', '.join(sorted(_steps))}")
    return _steps[name]


def check_parameters(name: str, params: Mapping[str, Any]) -> None:
    """Raise PipelineDefinitionError for a parameter that ``name`` does not take."""
    info = get_step(name)
    for key in params:
        if key not in info.parameters:
            raise PipelineDefinitionError(
                f"step {name!r} has no parameter {key!r}; its parameters: "
                f"{', '.join(info.parameters) or 'none'}")


def _load_builtin_steps() -> None:
    from . import steps  # noqa: F401  (registers on import)
