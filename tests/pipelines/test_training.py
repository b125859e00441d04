from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from suanli import cluster
from suanli.pipelines.training.data_parallel import fit_softmax, rebalance
from suanli.pipelines.training.softmax import block_gradient


def _loss(X: np.ndarray, y: np.ndarray, W: np.ndarray, b: np.ndarray) -> float:
    scores = X @ W + b
    scores -= scores.max(axis=1, keepdims=True)
    log_p = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(y)), y].mean())


def test_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((50, 4)), rng.integers(0, 3, 50)
    W, b = rng.standard_normal((4, 3)) * 0.3, rng.standard_normal(3) * 0.1
    grad_w, grad_b, loss, _ = block_gradient(X, y, W, b, len(y))
    assert loss / len(y) == pytest.approx(_loss(X, y, W, b))
    eps = 1e-6
    for i, j in [(0, 0), (2, 1), (3, 2)]:
        step = np.zeros_like(W)
        step[i, j] = eps
        numeric = (_loss(X, y, W + step, b) - _loss(X, y, W - step, b)) / (2 * eps)
        assert grad_w[i, j] == pytest.approx(numeric, rel=1e-5, abs=1e-8)
    step_b = np.array([0, eps, 0])
    numeric_b = (_loss(X, y, W, b + step_b) - _loss(X, y, W, b - step_b)) / (2 * eps)
    assert grad_b[1] == pytest.approx(numeric_b, rel=1e-5, abs=1e-8)


def _problem(seed: int) -> tuple[np.ndarray, np.ndarray]:
    X, y = make_classification(n_samples=6000, n_features=12, n_informative=8, n_classes=4,
                               n_clusters_per_class=1, random_state=seed)
    return X.astype(np.float32), y


@pytest.mark.parametrize("seed", [0, 1])
def test_data_parallel_softmax_matches_scikit_learn(local_cluster: cluster.Cluster,
                                                     seed: int) -> None:
    X, y = _problem(seed)
    train, test = slice(0, 4500), slice(4500, None)
    X_blocks, y_blocks = rebalance(da.from_array(X[train], chunks=(1000, -1)), y[train], 4)
    params, history = fit_softmax(X_blocks, y_blocks, 4, epochs=300, learning_rate=0.05,
                                  optimizer="adam")
    ours = ((X[test] @ params["weights"] + params["bias"]).argmax(axis=1) == y[test]).mean()
    reference = LogisticRegression(max_iter=2000).fit(X[train], y[train]).score(X[test], y[test])
    assert abs(ours - reference) <= 0.01
    assert history.loss[-1] < history.loss[0]


def test_one_block_and_many_blocks_give_the_same_model(local_cluster: cluster.Cluster) -> None:
    X, y = _problem(2)
    results = []
    for blocks in (1, 6):
        X_blocks = da.from_array(X, chunks=(-(-len(X) // blocks), -1))
        y_blocks = da.from_array(y, chunks=(X_blocks.chunks[0],))
        params, _ = fit_softmax(X_blocks, y_blocks, 4, epochs=40, learning_rate=0.05,
                                optimizer="sgd")
        results.append(params["weights"])
    np.testing.assert_allclose(results[0], results[1], rtol=1e-5, atol=1e-7)
