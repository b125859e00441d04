"""The step registry: named, documented ``Dataset -> Dataset`` functions.

A step's parameters are its keyword arguments. They are checked when a
pipeline is defined, before any data is touched: names against the
signature, types against the defaults' types, and values by the step's own
``check`` (ranges, choices). A step may also declare how it takes part in a
fused stage (:class:`Fusion`, used by :mod:`.steps.fusion`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import xarray as xr

from .errors import PipelineDefinitionError
from .parameters import check_type, has_type_of

StepFunction = Callable[..., xr.Dataset]
#: Turns parameters given relative to the data (``size: series``) into the values
#: the step uses on ``ds``, the dataset it receives; run when the pipeline meets it.
Resolver = Callable[[Mapping[str, Any], xr.Dataset], dict[str, Any]]
#: Checks a step's parameters (its defaults, then the given ones), raising
#: PipelineDefinitionError; data-free, so it runs when the pipeline is defined.
ParameterCheck = Callable[[Mapping[str, Any]], None]
F = TypeVar("F", bound=StepFunction)


@dataclass(frozen=True)
class Fusion:
    """The part a step plays in a fused stage: ``role`` (fill, standardise, window,
    window_features), and the parameters of that role's computation the step fixes
    (``band_power`` is ``window_features`` without statistics)."""

    role: str
    fixed: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StepInfo:
    name: str
    function: StepFunction
    parameters: Mapping[str, inspect.Parameter]
    check: ParameterCheck | None = None
    fusion: Fusion | None = None
    resolve: Resolver | None = None
    #: Parameters whose values may have another type than their default's (the
    #: step's ``check`` checks them).
    flexible: tuple[str, ...] = ()
    #: The step makes the ``label`` (a forecast's target): the input needs none.
    makes_label: bool = False

    @property
    def summary(self) -> str:
        """The docstring's first sentence, on one line."""
        paragraph = (inspect.getdoc(self.function) or "").split("\n\n", 1)[0]
        sentence = " ".join(paragraph.split()).split(". ", 1)[0]
        return sentence if sentence.endswith(".") else sentence + "."

    def is_relative(self, params: Mapping[str, Any]) -> bool:
        """Whether ``params`` give a flexible parameter relative to the data (``size:
        series``), to be made concrete by :attr:`resolve` first."""
        defaults = self.defaults()
        return any(key in params and not has_type_of(params[key], defaults.get(key))
                   for key in self.flexible)

    def defaults(self) -> dict[str, Any]:
        return {name: p.default for name, p in self.parameters.items()
                if p.default is not inspect.Parameter.empty}


_steps: dict[str, StepInfo] = {}


def step(name: str, *, check: ParameterCheck | None = None, fusion: Fusion | None = None,
         resolve: Resolver | None = None, flexible: tuple[str, ...] = (),
         makes_label: bool = False) -> Callable[[F], F]:
    """Register a step: ``@step("zscore") def zscore(ds, *, ...) -> Dataset``."""

    def register(function: F) -> F:
        signature = inspect.signature(function)
        params = dict(list(signature.parameters.items())[1:])
        for param in params.values():
            if param.kind is not inspect.Parameter.KEYWORD_ONLY:
                raise TypeError(f"step {name!r}: parameter {param.name!r} must be keyword-only")
        _steps[name] = StepInfo(name, function, params, check, fusion, resolve, flexible,
                                makes_label)
        return function

    return register


def step_names() -> tuple[str, ...]:
    return tuple(sorted(_steps))


def get_step(name: str) -> StepInfo:
    if name not in _steps:
        raise PipelineDefinitionError(
            f"unknown step {name!r}; known steps: {', '.join(sorted(_steps))}")
    return _steps[name]


def check_parameters(name: str, params: Mapping[str, Any]) -> None:
    """Raise PipelineDefinitionError for a parameter ``name`` does not take, a value
    of another type than its default's, or a value the step's check refuses."""
    info = get_step(name)
    defaults = info.defaults()
    for key, value in params.items():
        if key not in info.parameters:
            raise PipelineDefinitionError(
                f"step {name!r} has no parameter {key!r}; its parameters: "
                f"{', '.join(info.parameters) or 'none'}")
        if key not in info.flexible:
            check_type(name, key, value, defaults.get(key))
    if info.check is not None:
        info.check({**defaults, **params})

