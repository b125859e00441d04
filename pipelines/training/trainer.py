"""The ``train`` stage of a pipeline: features in, a fitted :class:`Model` out."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr

from suanli.datasets import text_values

from ..errors import PipelineDefinitionError, PipelineError
from .data_parallel import History, fit_softmax, rebalance
from .features import FeatureTable, encode_labels, feature_table
from .model import Model

MODELS = ("softmax",)


@dataclass(frozen=True)
class TrainConfig:
    """Parameters of the ``train`` stage (the ``train:`` block of a pipeline file)."""

    features: tuple[str, ...] = ("band_power", "window_stats")
    model: str = "softmax"
    optimizer: str = "adam"
    learning_rate: float = 0.05
    epochs: int = 200
    l2: float = 1e-4

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> TrainConfig:
        allowed = [f.name for f in dataclasses.fields(cls)]
        for key in values:
            if key not in allowed:
                raise PipelineDefinitionError(
                    f"train has no parameter {key!r}; its parameters: {', '.join(allowed)}")
        values = dict(values)
        if "features" in values:
            values["features"] = tuple([values["features"]] if isinstance(values["features"], str)
                                       else values["features"])
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


@dataclass
class TrainingOutcome:
    model: Model
    history: History
    train_rows: int
    dropped_rows: int


def split_tables(ds: xr.Dataset, features: tuple[str, ...]
                 ) -> tuple[FeatureTable, FeatureTable, list[str]]:
    """Feature tables of the train and test units, and the class names."""
    if "label" not in ds.variables:
        raise PipelineDefinitionError("train: the dataset has no 'label' variable")
    codes, classes = encode_labels(ds["label"])
    sides = text_values(ds["split"].values)
    tables = []
    for side in ("train", "test"):
        chosen = sides == side
        if not chosen.any():
            raise PipelineError(f"train: no units in the {side!r} split; give more units or "
                                f"change split.test_fraction")
        table = feature_table(ds.isel(unit=chosen), features, codes[chosen])
        # Features are small: hold them on the workers once instead of re-reading
        # the store for every pass (finite check, statistics, each epoch).
        table.X = table.X.persist()
        tables.append(table)
    return tables[0], tables[1], classes


def fit(table: FeatureTable, classes: list[str], config: TrainConfig, *, parallelism: int,
        progress: bool = False, pipeline: dict[str, Any] | None = None) -> TrainingOutcome:
    """Standardise the features and fit the model data-parallel."""
    assert table.y is not None
    finite = da.isfinite(table.X).all(axis=1).compute()
    X, y = table.X[finite], table.y[finite]
    if X.shape[0] == 0:
        raise PipelineError("train: every training row has a NaN or infinite feature")
    mean, std = dask.compute(X.mean(axis=0, dtype=np.float64), X.std(axis=0, dtype=np.float64))
    std = np.where(std > 0, std, 1.0)
    standardised = (X - mean.astype(X.dtype)) / std.astype(X.dtype)
    X_blocks, y_blocks = rebalance(standardised, y, parallelism)
    params, history = fit_softmax(X_blocks, y_blocks, len(classes), epochs=config.epochs,
                                  learning_rate=config.learning_rate,
                                  optimizer=config.optimizer, l2=config.l2, progress=progress)
    model = Model(weights=params["weights"], bias=params["bias"],
                  feature_names=table.feature_names, feature_mean=mean, feature_std=std,
                  classes=classes, kind=config.model, pipeline=pipeline or {})
    return TrainingOutcome(model, history, int(finite.sum()), int((~finite).sum()))


def predict_table(model: Model, table: FeatureTable) -> tuple[np.ndarray, np.ndarray]:
    """Predicted codes for the finite rows of ``table``, computed where the blocks are."""
    finite = da.isfinite(table.X).all(axis=1).compute()
    X = table.X[finite]
    predicted = X.map_blocks(model.predict, drop_axis=1, dtype=np.int64).compute()
    return np.asarray(predicted), finite
