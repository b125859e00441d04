"""Edge inference: a model file applied to a dataset on one machine, no cluster.

The model records the pipeline that made its features; the same steps run
here (lazily, on Dask's local threads), then the network predicts with NumPy.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from suanli import datasets

from .errors import ModelFileError
from .pipeline import Pipeline, StepCall
from .steps.forecasting import SCALE
from .training.features import feature_names, feature_table
from .training.model import Model


def _fitted_for(model: Model, step: str) -> dict[str, list[float]]:
    return {key.partition(".")[2]: values.tolist() for key, values in model.fitted.items()
            if key.partition(".")[0] == step}


def predict_dataset(model: Model, ds: xr.Dataset) -> xr.Dataset:
    """``prediction(unit, window)`` for every window of panel ``ds``: class names, or
    values for a regression model (a forecast: in the target's units, for the
    target time a horizon after each ``origin_time``).

    The dataset's own ``label`` (if any) is kept as ``label`` (names) for comparison.
    """
    pipe = Pipeline.from_mapping(model.pipeline)
    # The split is the training run's; what steps fitted there goes back to them.
    steps = [StepCall(call.name, {**call.params, **_fitted_for(model, call.name)})
             for call in pipe.steps if call.name != "split"]
    features = Pipeline(pipe.name, tuple(steps)).transform(datasets.validate(ds))
    assert pipe.train is not None
    if feature_names(features, pipe.train.features) != model.feature_names:
        raise ModelFileError("the pipeline recorded in the model makes different features than "
                         "the model was trained on; was the model file edited?")
    table = feature_table(features, pipe.train.features, None)
    X = np.asarray(table.X.compute(scheduler="threads"))
    finite = np.isfinite(X).all(axis=1)
    shape = (features.sizes["unit"], features.sizes["window"])
    values: np.ndarray
    if model.classes:
        codes = np.full(len(X), -1)
        codes[finite] = model.predict(X[finite])
        names = np.array([*model.classes, ""], dtype=object)  # -1: a window with NaN features
        values = names[codes]
    else:
        values = np.full(len(X), np.nan, dtype=np.float32)
        values[finite] = model.predict(X[finite])
    # A scaled forecast target comes back in its own units.
    scale = np.asarray(features[SCALE].values) if SCALE in features.data_vars else None
    values = values.reshape(shape)
    out = xr.Dataset(
        {"prediction": (("unit", "window"), values if scale is None else values * scale)},
        coords={"unit": features["unit"].values, "window": features["window"].values},
    )
    if "origin_time" in features.coords:
        out = out.assign_coords(origin_time=features["origin_time"])
    if "label" in features.variables:
        label = features["label"]
        truth = np.asarray(label.values)
        if scale is not None:
            truth = truth * scale
        if truth.dtype.kind in "iu" and "classes" in label.attrs:
            truth = np.asarray(label.attrs["classes"], dtype=object)[truth]
        out["label"] = label.dims, (truth if truth.dtype.kind == "f"
                                    else datasets.text_values(truth).astype(object))
    return out
