"""Exact data-parallel ridge against scikit-learn's RidgeClassifierCV and RidgeCV."""

from __future__ import annotations

from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest
from sklearn.linear_model import RidgeClassifierCV, RidgeCV

from suanli import cluster, pipelines
from suanli.pipelines.training.features import FeatureTable
from suanli.pipelines.training.ridge import ALPHAS, fit_ridge, ridge_targets
from suanli.pipelines.training.trainer import TrainConfig, fit


def _problem(classes: int, rows: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, 20)) * rng.uniform(0.5, 3, 20) + rng.uniform(-2, 2, 20)
    scores = X @ rng.standard_normal((20, max(classes, 1))) + rng.standard_normal(
        (rows, max(classes, 1)))
    return X, (scores.argmax(axis=1) if classes else scores[:, 0])


@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("chunk", [150, 600])   # blocks, or one
def test_ridge_classifier_equals_scikit_learn(classes: int, weighted: bool, chunk: int) -> None:
    X, y = _problem(classes)
    weight_of = {c: 1.0 + c for c in range(classes)} if weighted else None
    weights = (da.from_array(np.array([weight_of[c] for c in y]), chunks=chunk)
               if weight_of else None)
    with dask.config.set(scheduler="sync"):
        found = fit_ridge(da.from_array(X, chunks=(chunk, -1)),
                          da.from_array(ridge_targets(y, classes), chunks=(chunk, -1)),
                          weights, ALPHAS)
    expected = RidgeClassifierCV(alphas=ALPHAS, class_weight=weight_of).fit(X, y)
    assert found.alpha == expected.alpha_
    np.testing.assert_allclose(found.coef.T, np.atleast_2d(expected.coef_), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(found.intercept, expected.intercept_, rtol=1e-9, atol=1e-12)
    assert len(found.loo_errors) == len(ALPHAS)


def test_ridge_regression_equals_scikit_learn() -> None:
    X, y = _problem(0)
    alphas = (0.01, 1.0, 100.0, 1e4)
    with dask.config.set(scheduler="sync"):
        found = fit_ridge(da.from_array(X, chunks=(100, -1)),
                          da.from_array(y[:, None], chunks=(100, -1)), None, alphas)
    expected = RidgeCV(alphas=alphas).fit(X, y)
    assert found.alpha == expected.alpha_
    np.testing.assert_allclose(found.coef[:, 0], expected.coef_, rtol=1e-9, atol=1e-12)


def test_the_ridge_model_predicts_as_scikit_learn_on_the_standardised_features() -> None:
    X, y = _problem(3, rows=900, seed=2)
    table = FeatureTable(da.from_array(X.astype(np.float32), chunks=(300, -1)), y,
                         [f"f{i}" for i in range(20)], np.arange(900))
    config = TrainConfig.from_mapping({"model": "ridge", "features": ["f"]})
    with dask.config.set(scheduler="sync"):
        outcome = fit(table, ["a", "b", "c"], config, parallelism=2)
    model = outcome.model
    standardised = (X.astype(np.float32) - model.feature_mean) / model.feature_std
    expected = RidgeClassifierCV(alphas=ALPHAS).fit(standardised, y)
    agree = (model.predict(X.astype(np.float32)) == expected.predict(standardised)).mean()
    assert agree > 0.995 and outcome.history.accuracy[0] > 0.7


@pytest.mark.parametrize(("key", "value", "message"), [
    ("train.alphas", [0, 1], r"alphas must be numbers > 0"),
    ("train.alphas", "big", r"alphas must be a list"),
])
def test_bad_alphas_are_refused_up_front(key: str, value: object, message: str) -> None:
    with pytest.raises(pipelines.PipelineDefinitionError, match=message):
        pipelines.load_pipeline("sensor-faults").with_overrides({key: value})


def test_sensor_faults_with_ridge_runs_and_predicts(local_cluster: cluster.Cluster,
                                                    tmp_path: Path) -> None:
    result = pipelines.run("sensor-faults", "synthetic://telemetry?units=40&minutes=1&seed=2",
                           cluster=local_cluster, output=tmp_path / "run",
                           overrides={"train.model": "ridge"})
    assert result.metrics["accuracy"] > 0.8, result.metrics
    model = pipelines.load_model(result.output / "model.npz")
    assert model.kind == "ridge" and model.network.layer_sizes[-1] == 5


@pytest.mark.parametrize("weighted", [False, True])
def test_more_features_than_rows_takes_the_kernel_form_with_the_same_result(
        weighted: bool) -> None:
    rng = np.random.default_rng(4)
    X = rng.standard_normal((90, 400))
    y = (X[:, :5] @ rng.standard_normal((5, 3)) + 0.5 * rng.standard_normal((90, 3))
         ).argmax(axis=1)
    weight_of = {0: 1.0, 1: 2.0, 2: 0.5} if weighted else None
    weights = (da.from_array(np.array([weight_of[c] for c in y]), chunks=30)
               if weight_of else None)
    with dask.config.set(scheduler="sync"):
        found = fit_ridge(da.from_array(X, chunks=(30, -1)),
                          da.from_array(ridge_targets(y, 3), chunks=(30, -1)), weights, ALPHAS)
    expected = RidgeClassifierCV(alphas=ALPHAS, class_weight=weight_of).fit(X, y)
    assert found.alpha == expected.alpha_
    assert weighted or ALPHAS[0] < found.alpha < ALPHAS[-1]  # a choice, not an edge of the grid
    np.testing.assert_allclose(found.coef.T, expected.coef_, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(found.intercept, expected.intercept_, rtol=1e-8, atol=1e-12)
