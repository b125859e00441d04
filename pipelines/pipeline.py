"""Pipelines: an ordered list of steps with parameters, then training and evaluation.

Declared in YAML (the shipped ones live in ``definitions/``) or in Python; every
step name and parameter is checked when the pipeline is built, before any data
is touched.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import xarray as xr
import yaml

from .errors import PipelineDefinitionError
from .evaluation import (
    CLASSIFICATION_METRICS,
    DEFAULT_ALERTS,
    DEFAULT_BACKTEST,
    METRICS,
    REGRESSION_METRICS,
)
from .registry import check_parameters, get_step
from .steps.durations import seconds
from .steps.fusion import plan
from .training.trainer import TrainConfig


@dataclass(frozen=True)
class StepCall:
    """One use of a registered step, with its parameters."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_parameters(self.name, self.params)

    def apply(self, ds: xr.Dataset) -> xr.Dataset:
        return get_step(self.name).function(ds, **self.params)


@dataclass(frozen=True)
class Pipeline:
    """Steps (``Dataset -> Dataset``, lazy), then an optional train stage and metrics."""

    name: str
    steps: tuple[StepCall, ...]
    train: TrainConfig | None = None
    evaluate: tuple[str, ...] = METRICS
    dataset: str | None = None
    description: str = ""
    #: One line for ``suanli pipelines list``; default: the description's first clause.
    summary: str = ""
    #: What to do with non-finite input values: ``policy`` report|reject|ignore,
    #: and the kinds (nan, +inf, -inf) the steps handle, allowed under reject.
    values: Mapping[str, Any] = dataclasses.field(
        default_factory=lambda: dict(DEFAULT_VALUES))
    #: Where to compute: auto (GPUs when every worker has one), cpu or gpu.
    device: str = "auto"
    #: Early-warning evaluation (``evaluate.alerts``): ``budget`` (alerts per 100
    #: patient-days) and ``refractory`` (a duration); None: not an alerting pipeline.
    alerts: Mapping[str, Any] | None = None
    #: Rolling-origin backtesting of a forecast (``evaluate.backtest``): ``folds`` test
    #: periods of ``every`` from the split's ``test_from``, the model ``refit`` on all
    #: the data before each or fitted once; None: the one split only.
    backtest: Mapping[str, Any] | None = None

    @classmethod
    def from_mapping(cls, spec: Mapping[str, Any], *, source: str = "<dict>") -> Pipeline:
        allowed = ("name", "summary", "description", "dataset", "steps", "train", "evaluate",
                   "values", "device")
        for key in spec:
            if key not in allowed:
                raise PipelineDefinitionError(f"{source}: unknown key {key!r}; allowed: "
                                              f"{', '.join(allowed)}")
        if "name" not in spec or "steps" not in spec:
            raise PipelineDefinitionError(f"{source}: a pipeline needs 'name' and 'steps'")
        steps = tuple(_step_call(entry, source) for entry in spec["steps"] or [])
        train = spec.get("train")
        config = TrainConfig.from_mapping(dict(train)) if train is not None else None
        metrics, alerts, backtest = _evaluate(spec.get("evaluate"), config, source)
        if backtest is not None and not any(call.name == "forecast_target" for call in steps):
            raise PipelineDefinitionError(f"{source}: evaluate.backtest scores forecasts: add "
                                          f"a forecast_target step")
        return cls(
            name=str(spec["name"]), steps=steps, train=config, alerts=alerts, backtest=backtest,
            evaluate=metrics, dataset=spec.get("dataset"),
            description=str(spec.get("description", "")).strip(),
            summary=str(spec.get("summary") or re.split(r"[.:;]", str(
                spec.get("description", "")).strip(), maxsplit=1)[0]).strip(),
            values=_values_policy(spec.get("values"), source),
            device=_device(spec.get("device", "auto"), source),
        )

    def to_mapping(self) -> dict[str, Any]:
        """The pipeline as plain data (the YAML form; recorded in manifests and models)."""
        out: dict[str, Any] = {"name": self.name, "summary": self.summary,
                               "description": self.description,
                               "dataset": self.dataset,
                               "steps": [{s.name: dict(s.params)} for s in self.steps]}
        if self.train is not None:
            out["train"] = {k: list(v) if isinstance(v, tuple) else v
                            for k, v in dataclasses.asdict(self.train).items()}
        out["evaluate"] = {"metrics": list(self.evaluate)}
        if self.alerts is not None:
            out["evaluate"]["alerts"] = dict(self.alerts)
        if self.backtest is not None:
            out["evaluate"]["backtest"] = dict(self.backtest)
        out["values"] = {"policy": self.values["policy"], "allow": list(self.values["allow"])}
        out["device"] = self.device
        return out

    def with_overrides(self, assignments: Mapping[str, Any]) -> Pipeline:
        """A copy with ``key=value`` changes: ``dataset``, ``train.FIELD`` or ``STEP.PARAM``."""
        spec = self.to_mapping()
        for key, value in assignments.items():
            _assign(spec, key, value)
        return Pipeline.from_mapping(spec, source=f"pipeline {self.name!r}")

    @property
    def needs_label(self) -> bool:
        """Whether the input must hold a ``label``: it trains, and no step makes one."""
        return self.train is not None and not any(get_step(call.name).makes_label
                                                  for call in self.steps)

    def resolve(self, ds: xr.Dataset) -> Pipeline:
        """This pipeline with every parameter given relative to the data (``size:
        series``, ``size: 1s``) made concrete for ``ds``. The steps' graph is built
        on the way, without computing anything, so that what depends on the data
        (a window longer than the series, a band above the Nyquist frequency)
        fails now, before a cluster starts or a file is written."""
        calls = []
        for call in self.steps:
            resolver = get_step(call.name).resolve
            if resolver is not None:
                call = StepCall(call.name, resolver(call.params, ds))
            calls.append(call)
            ds = call.apply(ds)
        return dataclasses.replace(self, steps=tuple(calls))

    def transform(self, ds: xr.Dataset) -> xr.Dataset:
        """Apply every step, lazily; consecutive steps that can share a pass over the
        data are fused (:mod:`.fusion`: same results, fewer passes). Settings given
        relative to the data are made concrete first (:meth:`resolve`), only when
        there are some: a resolved pipeline (as a run's) is not resolved again."""
        relative = any(get_step(call.name).is_relative(call.params) for call in self.steps)
        for stage in plan(self.resolve(ds).steps if relative else self.steps):
            ds = stage(ds)
        return ds


def _step_call(entry: Any, source: str) -> StepCall:
    if isinstance(entry, str):
        return StepCall(entry)
    if isinstance(entry, Mapping) and len(entry) == 1:
        ((name, params),) = entry.items()
        if params is not None and not isinstance(params, Mapping):
            raise PipelineDefinitionError(f"{source}: parameters of step {name!r} must be a "
                                          f"mapping, got {params!r}")
        get_step(name)
        return StepCall(name, dict(params or {}))
    raise PipelineDefinitionError(f"{source}: each step is 'name' or {{name: {{param: value}}}}, "
                                  f"got {entry!r}")


DEFAULT_VALUES: Mapping[str, Any] = {"policy": "report", "allow": ("nan",)}


def _evaluate(given: Any, train: TrainConfig | None, source: str
              ) -> tuple[tuple[str, ...], dict[str, Any] | None, dict[str, Any] | None]:
    """The ``evaluate`` block: its metrics, and its alerting and backtest settings."""
    given = given or {}
    if not isinstance(given, Mapping) or set(given) - {"metrics", "alerts", "backtest"}:
        raise PipelineDefinitionError(f"{source}: evaluate is a mapping with the keys metrics, "
                                      f"alerts and backtest")
    return (_metrics(given, train, source), _alerts(given.get("alerts"), train, source),
            _backtest(given.get("backtest"), train, source))


def _backtest(given: Any, train: TrainConfig | None, source: str) -> dict[str, Any] | None:
    if given is None:
        return None
    if not isinstance(given, Mapping) or set(given) - set(DEFAULT_BACKTEST):
        raise PipelineDefinitionError(f"{source}: evaluate.backtest takes "
                                      f"{', '.join(DEFAULT_BACKTEST)}, got {given!r}")
    backtest = {**DEFAULT_BACKTEST, **given}
    folds = backtest["folds"]
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 1:
        raise PipelineDefinitionError(f"{source}: evaluate.backtest.folds is a whole number "
                                      f">= 1, got {folds!r}")
    seconds(str(backtest["every"]), where=f"{source}: evaluate.backtest.every")
    if not isinstance(backtest["refit"], bool):
        raise PipelineDefinitionError(f"{source}: evaluate.backtest.refit is true or false, "
                                      f"got {backtest['refit']!r}")
    if train is None:
        raise PipelineDefinitionError(f"{source}: evaluate.backtest needs a train stage")
    return backtest


def _alerts(given: Any, train: TrainConfig | None, source: str) -> dict[str, Any] | None:
    if given is None:
        return None
    if not isinstance(given, Mapping) or set(given) - set(DEFAULT_ALERTS):
        raise PipelineDefinitionError(f"{source}: evaluate.alerts takes "
                                      f"{', '.join(DEFAULT_ALERTS)}, got {given!r}")
    alerts = {**DEFAULT_ALERTS, **given}
    if isinstance(alerts["budget"], bool) or not isinstance(alerts["budget"], int | float) \
            or alerts["budget"] <= 0:
        raise PipelineDefinitionError(f"{source}: evaluate.alerts.budget is alerts per 100 "
                                      f"patient-days, a number > 0, got {alerts['budget']!r}")
    seconds(str(alerts["refractory"]), where=f"{source}: evaluate.alerts.refractory")
    if train is None or not train.validation_fraction:
        raise PipelineDefinitionError(
            f"{source}: evaluate.alerts sets its threshold on validation units: give "
            f"train.validation_fraction > 0")
    return alerts


def _metrics(given: Mapping[str, Any], train: TrainConfig | None, source: str
             ) -> tuple[str, ...]:
    """The ``evaluate`` block's metrics: known ones, and ones the model can be scored by."""
    metrics = given.get("metrics", METRICS)
    metrics = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise PipelineDefinitionError(f"{source}: unknown metrics {unknown}; known: "
                                      f"{', '.join(METRICS)}")
    model = train.model if train is not None else None
    allowed = {"softmax": CLASSIFICATION_METRICS, "linear": REGRESSION_METRICS}.get(model or "")
    # All of them (the default) means "whichever apply": only a choice is checked.
    if allowed is not None and metrics != METRICS and any(m not in allowed for m in metrics):
        raise PipelineDefinitionError(
            f"{source}: a {model} model is scored by {', '.join(allowed)}; "
            f"evaluate.metrics asks for {', '.join(m for m in metrics if m not in allowed)}")
    return metrics


def _device(value: Any, source: str) -> str:
    if value not in ("auto", "cpu", "gpu"):
        raise PipelineDefinitionError(f"{source}: device must be auto, cpu or gpu, not "
                                      f"{value!r}")
    return str(value)


def _values_policy(given: Any, source: str) -> dict[str, Any]:
    values = {**DEFAULT_VALUES, **(given or {})}
    unknown = sorted(set(values) - set(DEFAULT_VALUES))
    if unknown:
        raise PipelineDefinitionError(f"{source}: unknown key values.{unknown[0]}; allowed: "
                                      "policy, allow")
    if values["policy"] not in ("report", "reject", "ignore"):
        raise PipelineDefinitionError(f"{source}: values.policy must be report, reject or "
                                      f"ignore, not {values['policy']!r}")
    allow = [values["allow"]] if isinstance(values["allow"], str) else list(values["allow"])
    bad = [k for k in allow if k not in ("nan", "+inf", "-inf")]
    if bad:
        raise PipelineDefinitionError(f"{source}: values.allow takes nan, +inf, -inf; got "
                                      f"{bad[0]!r}")
    return {"policy": values["policy"], "allow": tuple(allow)}


def _assign(spec: dict[str, Any], key: str, value: Any) -> None:
    if key == "dataset":
        spec["dataset"] = value
        return
    if key == "device":
        spec["device"] = value
        return
    if key in ("values.policy", "values.allow"):
        spec.setdefault("values", {})[key.split(".")[1]] = value
        return
    for block in ("alerts", "backtest"):
        if key.startswith(f"evaluate.{block}.") and spec.get("evaluate", {}).get(block):
            spec["evaluate"][block][key.rpartition(".")[2]] = value
            return
    head, dot, param = key.partition(".")
    if not dot or not param:
        raise PipelineDefinitionError(_set_help(spec, key))
    if head == "train" and "train" in spec:
        fields = [f.name for f in dataclasses.fields(TrainConfig)]
        if param not in fields:
            raise PipelineDefinitionError(_set_help(spec, key))
        spec["train"][param] = value
        return
    matches = [entry for entry in spec["steps"] if head in entry]
    if not matches:
        raise PipelineDefinitionError(_set_help(spec, key))
    (step_name,) = matches[0]
    if param not in get_step(step_name).parameters:
        raise PipelineDefinitionError(_set_help(spec, key))
    for entry in matches:
        entry[step_name][param] = value


def _set_help(spec: Mapping[str, Any], key: str) -> str:
    keys = ["dataset", "device", "values.policy", "values.allow"]
    for block in ("alerts", "backtest"):
        if spec.get("evaluate", {}).get(block):
            keys += [f"evaluate.{block}.{k}" for k in spec["evaluate"][block]]
    for entry in spec["steps"]:
        (name,) = entry
        keys += [f"{name}.{p}" for p in get_step(name).parameters]
    if "train" in spec:
        keys += [f"train.{f.name}" for f in dataclasses.fields(TrainConfig)]
    return (f"--set key {key!r} does not exist in pipeline {spec['name']!r}; settable keys: "
            f"{', '.join(keys)}")


def pipeline_names() -> tuple[str, ...]:
    """The pipelines shipped with suanli."""
    folder = resources.files("suanli.pipelines") / "definitions"
    return tuple(sorted(p.name.removesuffix(".yaml") for p in folder.iterdir()
                        if p.name.endswith(".yaml")))


def load_pipeline(name_or_path: str | Path | Pipeline | Mapping[str, Any]) -> Pipeline:
    """A shipped pipeline by name, a user's YAML file, a mapping, or a Pipeline as is."""
    if isinstance(name_or_path, Pipeline):
        return name_or_path
    if isinstance(name_or_path, Mapping):
        return Pipeline.from_mapping(name_or_path)
    text = str(name_or_path)
    path = Path(text)
    if text.endswith((".yaml", ".yml")) or path.is_file():
        if not path.is_file():
            raise PipelineDefinitionError(f"pipeline file {text!r} does not exist")
        return Pipeline.from_mapping(_read_yaml(path.read_text(), text), source=text)
    if text not in pipeline_names():
        raise PipelineDefinitionError(f"unknown pipeline {text!r}; shipped pipelines: "
                                      f"{', '.join(pipeline_names())} (or give a YAML file)")
    shipped = resources.files("suanli.pipelines") / "definitions" / f"{text}.yaml"
    return Pipeline.from_mapping(_read_yaml(shipped.read_text(), text), source=text)


def pipeline_source(name_or_path: str | Path) -> str:
    """The YAML text of a shipped pipeline or a pipeline file, comments included."""
    text = str(name_or_path)
    if text in pipeline_names() and not Path(text).is_file():
        return (resources.files("suanli.pipelines") / "definitions" / f"{text}.yaml"
                ).read_text()
    return Path(text).read_text()


def _read_yaml(text: str, source: str) -> Mapping[str, Any]:
    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise PipelineDefinitionError(f"{source}: not valid YAML: {error}") from error
    if not isinstance(spec, Mapping):
        raise PipelineDefinitionError(f"{source}: a pipeline file holds a mapping")
    return spec


def step_sequence(names: Sequence[str | tuple[str, Mapping[str, Any]]]) -> tuple[StepCall, ...]:
    """Build step calls in Python: ``step_sequence(["zscore", ("window", {"size": 512})])``."""
    return tuple(StepCall(n) if isinstance(n, str) else StepCall(n[0], dict(n[1]))
                 for n in names)
