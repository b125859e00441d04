"""The ``train`` stage of a pipeline: features in, a fitted :class:`Model` out."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr

from suanli.datasets import text_values

from ..array_module import to_numpy
from ..compute.sampling import stratified_sample
from ..errors import PipelineDefinitionError, PipelineError
from ..parameters import check_type
from .data_parallel import History, fit_network, rebalance
from .features import FeatureTable, encode_labels, feature_table
from .local_steps import fit_network_local_steps
from .model import Model
from .network import Network, Task
from .optimizers import OPTIMIZERS, SCHEDULES
from .ridge import ALPHAS, fit_ridge, ridge_targets

#: softmax: classification; linear: regression; mlp and ridge (exact, alpha chosen by
#: leave-one-out error): either, from the label's dtype.
MODELS = ("softmax", "linear", "mlp", "ridge")
CLASS_WEIGHTS = (None, "balanced")


@dataclass(frozen=True)
class TrainConfig:
    """Parameters of the ``train`` stage (the ``train:`` block of a pipeline file)."""

    features: tuple[str, ...] = ("band_power", "window_stats")
    model: str = "softmax"
    #: Hidden layer widths of an ``mlp`` (ReLU).
    hidden: tuple[int, ...] = (32,)
    optimizer: str = "adam"
    learning_rate: float = 0.05
    schedule: str = "constant"
    epochs: int = 200
    l2: float = 1e-4
    #: ``balanced`` weighs each class by n_samples / (n_classes * its count), as scikit-learn.
    class_weight: str | None = None
    #: Rows per synchronised step; null: the whole training set (full batch).
    batch_size: int | None = None
    #: Share of the training units held out to pick the best epoch; 0: none.
    validation_fraction: float = 0.0
    #: Stop after this many epochs without a better validation loss; null: never.
    patience: int | None = None
    #: Local SGD with model averaging (a different algorithm): each of ``epochs``
    #: rounds, every block takes this many SGD steps of ``batch_size`` rows on its
    #: own data, then the parameters are averaged. null: synchronous steps.
    local_steps: int | None = None
    #: ridge: the regularisation strengths tried; the one with the least
    #: leave-one-out error is kept (scikit-learn's RidgeClassifierCV / RidgeCV).
    alphas: tuple[float, ...] = ALPHAS
    seed: int = 0

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> TrainConfig:
        allowed = [f.name for f in dataclasses.fields(cls)]
        for key in values:
            if key not in allowed:
                raise PipelineDefinitionError(
                    f"train has no parameter {key!r}; its parameters: {', '.join(allowed)}")
        values = dict(values)
        defaults = cls()
        for key, value in values.items():
            if key not in ("features", "hidden"):  # a single name or width is allowed there
                check_type("train", key, value, getattr(defaults, key))
        if "features" in values:
            values["features"] = tuple([values["features"]] if isinstance(values["features"], str)
                                       else values["features"])
        if "alphas" in values:
            values["alphas"] = tuple(float(a) for a in values["alphas"])
        if "hidden" in values:
            values["hidden"] = tuple(int(h) for h in ([values["hidden"]] if isinstance(
                values["hidden"], int) else values["hidden"]))
        config = cls(**values)
        config.check()
        return config

    def check(self) -> None:
        if self.model not in MODELS:
            raise PipelineDefinitionError(f"train: model {self.model!r} is unknown; choose from "
                                          f"{', '.join(MODELS)}")
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise PipelineDefinitionError(f"train: epochs must be a whole number >= 1, got "
                                          f"{self.epochs!r}")
        if not self.learning_rate > 0:
            raise PipelineDefinitionError(f"train: learning_rate must be > 0, got "
                                          f"{self.learning_rate!r}")
        if not self.features:
            raise PipelineDefinitionError("train: name at least one feature variable")
        if self.optimizer not in OPTIMIZERS:
            raise PipelineDefinitionError(f"train: optimizer {self.optimizer!r} is unknown; "
                                          f"choose from {', '.join(OPTIMIZERS)}")
        if not self.l2 >= 0:
            raise PipelineDefinitionError(f"train: l2 must be >= 0, got {self.l2!r}")
        if self.schedule not in SCHEDULES:
            raise PipelineDefinitionError(f"train: schedule {self.schedule!r} is unknown; "
                                          f"choose from {', '.join(SCHEDULES)}")
        if self.class_weight not in CLASS_WEIGHTS:
            raise PipelineDefinitionError(f"train: class_weight must be null or 'balanced', "
                                          f"got {self.class_weight!r}")
        if self.batch_size is not None and (not isinstance(self.batch_size, int)
                                            or self.batch_size < 1):
            raise PipelineDefinitionError(f"train: batch_size must be a whole number >= 1 or "
                                          f"null, got {self.batch_size!r}")
        if not 0 <= self.validation_fraction < 1:
            raise PipelineDefinitionError(f"train: validation_fraction must be in [0, 1), got "
                                          f"{self.validation_fraction!r}")
        if self.patience is not None and not self.validation_fraction:
            raise PipelineDefinitionError("train: patience needs a validation_fraction > 0 "
                                          "to measure improvement on")
        if self.local_steps is not None and (
                self.batch_size is None or self.validation_fraction or self.optimizer != "sgd"):
            raise PipelineDefinitionError(
                "train: local_steps needs a batch_size and optimizer 'sgd', and works without "
                "validation_fraction (averaging rounds are not epochs)")
        if not self.alphas or min(self.alphas) <= 0:
            raise PipelineDefinitionError(f"train: alphas must be numbers > 0, got "
                                          f"{list(self.alphas)}")
        if self.model == "mlp" and (not self.hidden or min(self.hidden) < 1):
            raise PipelineDefinitionError(f"train: an mlp needs hidden layer widths >= 1, got "
                                          f"{list(self.hidden)}")

    def network(self, n_features: int, classes: list[str]) -> Network:
        """The network for this config; ``classes`` empty means a regression label."""
        task: Task = "classification" if classes else "regression"
        expected = {"softmax": "classification", "linear": "regression"}.get(self.model, task)
        if expected != task:
            raise PipelineError(
                f"train: model {self.model!r} is for {expected}, but the label is "
                f"{'categorical' if classes else 'a floating-point number'}; use "
                f"{'softmax' if classes else 'linear'}, mlp or ridge")
        if task == "regression" and self.class_weight is not None:
            raise PipelineError("train: class_weight applies to classification only")
        hidden = self.hidden if self.model == "mlp" else ()
        return Network(task, (n_features, *hidden, max(len(classes), 1)))


@dataclass
class TrainingOutcome:
    model: Model
    history: History
    train_rows: int
    dropped_rows: int


def split_tables(ds: xr.Dataset, features: tuple[str, ...], validation_fraction: float = 0.0,
                 seed: int = 0) -> tuple[FeatureTable, FeatureTable, list[str],
                                         FeatureTable | None]:
    """Feature tables of the train and test rows, the class names, and the validation
    rows' table when ``validation_fraction`` > 0.

    ``split`` is per unit (whole units to one side; validation: a stratified share
    of the train units) or per window (by time; validation: the latest share of
    the train windows). Rows whose label is NaN (a target not known) are left out.
    """
    if "label" not in ds.variables:
        raise PipelineDefinitionError("train: the dataset has no 'label' variable")
    codes, classes = encode_labels(ds["label"])
    n_units, n_windows = ds.sizes["unit"], ds.sizes["window"]
    sides = _row_sides(ds["split"], n_units, n_windows)
    wanted = ["train", "test"]
    if validation_fraction:
        wanted.append("validation")
        if ds["split"].dims == ("unit",):
            train_units = np.flatnonzero(sides[:, 0] == "train")
            groups = text_values(ds["label"].values)[train_units] if ds["label"].dims == (
                "unit",) else np.zeros(len(train_units), dtype=str)
            held = train_units[stratified_sample(groups, validation_fraction, seed)]
            sides[held] = "validation"
        else:
            train_windows = np.flatnonzero((sides == "train").any(axis=0))
            latest = train_windows[len(train_windows) - max(1, round(
                validation_fraction * len(train_windows))):]
            sides[:, latest] = np.where(sides[:, latest] == "train", "validation",
                                        sides[:, latest])
    row_codes = np.broadcast_to(codes[:, None] if codes.ndim == 1 else codes,
                                (n_units, n_windows)).reshape(-1)
    known = np.isfinite(row_codes) if row_codes.dtype.kind == "f" else np.ones(
        row_codes.shape, bool)
    whole = feature_table(ds, features, codes)
    tables = []
    for side in wanted:
        chosen = (sides.reshape(-1) == side) & known
        if not chosen.any():
            raise PipelineError(f"train: no rows in the {side!r} split with a known label; "
                                f"give more units or time, or change the split")
        table = whole.select(chosen)
        if classes and table.y is not None:
            table.y = table.y.astype(np.int64)  # codes that were float only to hold NaN
        # Features are small: hold them on the workers once instead of re-reading
        # the store for every pass (finite check, statistics, each epoch).
        table.X = table.X.persist()
        tables.append(table)
    return tables[0], tables[1], classes, tables[2] if validation_fraction else None


def _row_sides(split: xr.DataArray, n_units: int, n_windows: int) -> np.ndarray:
    """The split of every (unit, window) row, as a writable (unit, window) array."""
    values = text_values(np.asarray(split.values)).astype(object)
    if split.dims == ("unit",):
        values = values[:, None]
    elif split.dims == ("window",):
        values = values[None, :]
    elif split.dims != ("unit", "window"):
        raise PipelineDefinitionError(f"train: 'split' must have dims (unit,), (window,) or "
                                      f"(unit, window), got {split.dims}")
    return np.broadcast_to(values, (n_units, n_windows)).copy()


def fit(table: FeatureTable, classes: list[str], config: TrainConfig, *, parallelism: int,
        progress: bool = False, pipeline: dict[str, Any] | None = None,
        validation: FeatureTable | None = None, checkpoint: Path | None = None
        ) -> TrainingOutcome:
    """Standardise the features and fit the model data-parallel.

    ``validation`` rows pick the best epoch (and stop early with ``patience``);
    ``checkpoint`` saves every epoch and resumes a run of the same problem.
    """
    assert table.y is not None
    finite = da.isfinite(table.X).all(axis=1).compute()
    X, y = table.X[finite], table.y[finite]
    if X.shape[0] == 0:
        raise PipelineError("train: every training row has a NaN or infinite feature")
    mean, std = dask.compute(X.mean(axis=0, dtype=np.float64), X.std(axis=0, dtype=np.float64))
    std = np.where(std > 0, std, 1.0)
    standardised = (X - mean.astype(X.dtype)) / std.astype(X.dtype)
    X_blocks, y_blocks = rebalance(standardised, y, parallelism)
    network = config.network(X.shape[1], classes)
    weights = None
    if config.class_weight == "balanced":
        counts = np.bincount(y, minlength=len(classes)).astype(float)
        weights = np.where(counts > 0, len(y) / (len(classes) * np.maximum(counts, 1)), 0.0)
    if config.model == "ridge":
        params, history = _fit_ridge(network, X_blocks, y_blocks, classes, config.alphas,
                                     weights)
    elif config.local_steps is not None:
        assert config.batch_size is not None
        params, history = fit_network_local_steps(
            network, X_blocks, y_blocks, rounds=config.epochs, local_steps=config.local_steps,
            batch_size=config.batch_size, learning_rate=config.learning_rate, l2=config.l2,
            seed=config.seed, class_weight=weights, progress=progress)
        history.accuracy = [float("nan")] * len(history.loss)  # rounds report only loss
    else:
        held_out = None
        if validation is not None:
            assert validation.y is not None
            kept = da.isfinite(validation.X).all(axis=1).compute()
            held_out = rebalance(
                (validation.X[kept] - mean.astype(X.dtype)) / std.astype(X.dtype),
                validation.y[kept], parallelism)
        fingerprint = hashlib.sha256(json.dumps(
            {"pipeline": pipeline, "rows": int(X.shape[0]), "features": table.feature_names},
            sort_keys=True, default=str).encode()).hexdigest()
        params, history = fit_network(
            network, X_blocks, y_blocks, epochs=config.epochs,
            learning_rate=config.learning_rate, optimizer=config.optimizer, l2=config.l2,
            schedule=config.schedule, seed=config.seed, batch_size=config.batch_size,
            class_weight=weights, validation=held_out, patience=config.patience,
            checkpoint=checkpoint, fingerprint=fingerprint, progress=progress)
    model = Model(network=network, params=params, feature_names=table.feature_names,
                  feature_mean=mean, feature_std=std, classes=classes, kind=config.model,
                  pipeline=pipeline or {})
    return TrainingOutcome(model, history, int(finite.sum()), int((~finite).sum()))


def _fit_ridge(network: Network, X: da.Array, y: da.Array, classes: list[str],
               alphas: tuple[float, ...], class_weight: np.ndarray | None
               ) -> tuple[dict[str, np.ndarray], History]:
    """Exact ridge as the network's one layer; the history holds the best leave-one-out
    error and the training score."""
    y_values = y.compute()
    targets = ridge_targets(y_values, len(classes))
    Y = da.from_array(targets, chunks=(X.chunks[0], -1))
    weights = None if class_weight is None else da.from_array(
        class_weight[y_values].astype(np.float64), chunks=(X.chunks[0],))
    found = fit_ridge(X, Y, weights, alphas)
    coef, intercept = found.coef, found.intercept
    if len(classes) == 2:  # one score s for the second class: scores (-s, s), argmax s > 0
        coef, intercept = np.hstack([-coef, coef]), np.concatenate([-intercept, intercept])
    params = {"W0": coef, "b0": intercept}
    scores = to_numpy(da.map_blocks(lambda block: network.outputs(params, block), X,
                                    dtype=X.dtype,
                                    chunks=(X.chunks[0], (coef.shape[1],))).compute())
    score = (float((scores.argmax(axis=1) == y_values).mean()) if classes
             else float(((scores[:, 0] - y_values) ** 2).mean()))
    return params, History(loss=[min(found.loo_errors)], accuracy=[score])


def predict_table(model: Model, table: FeatureTable) -> tuple[np.ndarray, np.ndarray]:
    """Predicted codes (or values) for the finite rows of ``table``, computed where the
    blocks are."""
    finite = to_numpy(da.isfinite(table.X).all(axis=1).compute())  # CuPy on GPU runs
    X = table.X[finite]
    dtype = np.int64 if model.network.task == "classification" else X.dtype
    predicted = X.map_blocks(model.predict, drop_axis=1, dtype=dtype).compute()
    return to_numpy(predicted), finite


def score_table(model: Model, table: FeatureTable) -> tuple[np.ndarray, np.ndarray]:
    """A two-class model's score for its second class (the difference of the two
    outputs: the log-odds for softmax) on the finite rows of ``table``, and which
    rows those are: what an alert threshold is set on."""
    if len(model.classes) != 2:
        raise PipelineError(f"train: alerting needs two classes, the model has "
                            f"{len(model.classes)}: {model.classes}")
    finite = to_numpy(da.isfinite(table.X).all(axis=1).compute())
    X = table.X[finite]
    scores = X.map_blocks(lambda block: _second_minus_first(model.outputs(block)),
                          drop_axis=1, dtype=X.dtype).compute()
    return to_numpy(scores), finite


def _second_minus_first(outputs: Any) -> Any:
    return outputs[:, 1] - outputs[:, 0]
