from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from sklearn.datasets import (
    make_classification,
    make_friedman1,
    make_friedman3,
    make_moons,
    make_regression,
)
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neural_network import MLPClassifier, MLPRegressor

from suanli import cluster
from suanli.pipelines.training.data_parallel import fit_network, rebalance
from suanli.pipelines.training.network import Network
from suanli.pipelines.training.optimizers import scheduled_rate


def _mean_loss(network: Network, params: dict[str, np.ndarray], X: np.ndarray,
               y: np.ndarray) -> float:
    return network.gradient(params, X, y, len(y))[1] / len(y)


@pytest.mark.parametrize("network", [
    Network("classification", (4, 3)),
    Network("classification", (4, 6, 5, 3)),
    Network("regression", (4, 1)),
    Network("regression", (4, 7, 1)),
], ids=["softmax", "mlp-classifier", "linear", "mlp-regressor"])
def test_gradients_match_finite_differences(network: Network) -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 4))
    y = (rng.integers(0, 3, 50) if network.task == "classification"
         else rng.standard_normal(50))
    params = {k: v + rng.standard_normal(v.shape) * 0.3 for k, v in network.init(1).items()}
    grads, _, _ = network.gradient(params, X, y, len(y))
    eps = 1e-6
    for name, value in params.items():
        for index in [(0,) * value.ndim, tuple(s - 1 for s in value.shape)]:
            shifted = {k: v.copy() for k, v in params.items()}
            shifted[name][index] += eps
            up = _mean_loss(network, shifted, X, y)
            shifted[name][index] -= 2 * eps
            down = _mean_loss(network, shifted, X, y)
            assert grads[name][index] == pytest.approx((up - down) / (2 * eps), rel=1e-4,
                                                        abs=1e-7), (name, index)


def _problem(seed: int) -> tuple[np.ndarray, np.ndarray]:
    X, y = make_classification(n_samples=6000, n_features=12, n_informative=8, n_classes=4,
                               n_clusters_per_class=1, random_state=seed)
    return X.astype(np.float32), y


def _blocks(X: np.ndarray, y: np.ndarray) -> tuple[da.Array, da.Array]:
    return rebalance(da.from_array(X, chunks=(1000, -1)), y, 4)


@pytest.mark.parametrize("seed", [0, 1])
def test_data_parallel_softmax_matches_scikit_learn(local_cluster: cluster.Cluster,
                                                     seed: int) -> None:
    X, y = _problem(seed)
    train, test = slice(0, 4500), slice(4500, None)
    network = Network("classification", (12, 4))
    params, history = fit_network(network, *_blocks(X[train], y[train]), epochs=300,
                                  learning_rate=0.05, optimizer="adam")
    ours = (network.outputs(params, X[test]).argmax(axis=1) == y[test]).mean()
    reference = LogisticRegression(max_iter=2000).fit(X[train], y[train]).score(X[test], y[test])
    assert abs(ours - reference) <= 0.01
    assert history.loss[-1] < history.loss[0]


def _mlp_classification(name: str) -> tuple[np.ndarray, np.ndarray]:
    if name == "moons":  # curved boundaries, plus four noise features
        X, y = make_moons(n_samples=6000, noise=0.3, random_state=0)
        X = np.hstack([X, np.random.default_rng(0).standard_normal((6000, 4))])
    elif name == "blobs-3":
        X, y = make_classification(n_samples=6000, n_features=10, n_informative=6,
                                   n_classes=3, n_clusters_per_class=2, class_sep=1.5,
                                   random_state=4)
    else:  # 5 classes of two clusters each in 20 dimensions
        X, y = make_classification(n_samples=6000, n_features=20, n_informative=10,
                                   n_classes=5, n_clusters_per_class=2, class_sep=1.0,
                                   random_state=7)
    return X.astype(np.float32), y


@pytest.mark.parametrize("name", ["blobs-3", "blobs-5", "moons"])
def test_data_parallel_mlp_classifier_matches_scikit_learn(local_cluster: cluster.Cluster,
                                                           name: str) -> None:
    X, y = _mlp_classification(name)
    train, test = slice(0, 4500), slice(4500, None)
    network = Network("classification", (X.shape[1], 32, int(y.max()) + 1))
    params, _ = fit_network(network, *_blocks(X[train], y[train]), epochs=1000,
                            learning_rate=0.01, optimizer="adam", l2=1e-4)
    ours = (network.outputs(params, X[test]).argmax(axis=1) == y[test]).mean()
    reference = MLPClassifier(hidden_layer_sizes=(32,), alpha=1e-4, max_iter=1000,
                              random_state=0).fit(X[train], y[train]).score(X[test], y[test])
    assert ours >= reference - 0.01, (ours, reference)


def _mlp_regression(name: str) -> tuple[np.ndarray, np.ndarray]:
    if name == "friedman1":
        X, y = make_friedman1(n_samples=12000, noise=1.0, random_state=0)
    else:
        X, y = make_friedman3(n_samples=12000, noise=0.1, random_state=0)
    X = (X - X[:9000].mean(axis=0)) / X[:9000].std(axis=0)
    return X.astype(np.float32), y.astype(np.float32)


@pytest.mark.parametrize("name", ["friedman1", "friedman3"])
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # a fixed budget
def test_data_parallel_mlp_regressor_matches_scikit_learn(local_cluster: cluster.Cluster,
                                                          name: str) -> None:
    """The same network, optimizer and budget as MLPRegressor: Adam at 0.01, batches of
    1000 rows, 200 epochs, the same L2 (scikit-learn divides alpha by the batch size)."""
    X, y = _mlp_regression(name)
    train, test = slice(0, 9000), slice(9000, None)
    network = Network("regression", (X.shape[1], 32, 1))
    params, _ = fit_network(network, *_blocks(X[train], y[train]), epochs=200,
                            learning_rate=0.01, optimizer="adam", batch_size=1000,
                            l2=1e-4 / 1000)
    ours = float(np.mean((network.outputs(params, X[test])[:, 0] - y[test]) ** 2))
    reference = MLPRegressor(hidden_layer_sizes=(32,), alpha=1e-4, batch_size=1000,
                             learning_rate_init=0.01, max_iter=200, n_iter_no_change=200,
                             random_state=0).fit(X[train], y[train])
    theirs = float(np.mean((reference.predict(X[test]) - y[test]) ** 2))
    assert ours <= 1.02 * theirs, (ours, theirs)


def test_linear_regression_reaches_least_squares(local_cluster: cluster.Cluster) -> None:
    X, y = make_regression(n_samples=5000, n_features=8, noise=5.0, random_state=2)
    X = X.astype(np.float32)
    network = Network("regression", (8, 1))
    params, history = fit_network(network, *_blocks(X, y.astype(np.float32)), epochs=300,
                                  learning_rate=0.1, optimizer="sgd")
    exact = LinearRegression().fit(X, y)
    np.testing.assert_allclose(params["W0"][:, 0], exact.coef_, rtol=2e-3, atol=0.05)
    mse = float(np.mean((network.outputs(params, X)[:, 0] - y) ** 2))
    assert mse <= 1.02 * float(np.mean((exact.predict(X) - y) ** 2))
    assert history.accuracy[-1] == pytest.approx(mse, rel=0.01)  # the score is the MSE


def test_one_block_and_many_blocks_give_the_same_model(local_cluster: cluster.Cluster) -> None:
    X, y = _problem(2)
    network = Network("classification", (12, 8, 4))
    results = []
    for blocks in (1, 6):
        X_blocks = da.from_array(X, chunks=(-(-len(X) // blocks), -1))
        y_blocks = da.from_array(y, chunks=(X_blocks.chunks[0],))
        params, _ = fit_network(network, X_blocks, y_blocks, epochs=40, learning_rate=0.05,
                                optimizer="sgd", seed=3)
        results.append(params["W0"])
    # float32 blocks: only the order of the sums differs
    np.testing.assert_allclose(results[0], results[1], rtol=1e-4, atol=1e-6)


def test_class_weights_scale_each_rows_loss() -> None:
    network = Network("classification", (2, 2))
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    y = np.array([0, 1, 1])
    params = network.init(0)
    _, plain, _ = network.gradient(params, X, y, 3)
    _, weighted, _ = network.gradient(params, X, y, 3, class_weight=np.array([2.0, 0.5]))
    # every row has loss log(2) at zero weights
    assert plain == pytest.approx(3 * np.log(2))
    assert weighted == pytest.approx((2.0 + 0.5 + 0.5) * np.log(2))


def test_learning_rate_schedules() -> None:
    assert scheduled_rate(0.1, "constant", 50, 100) == 0.1
    assert scheduled_rate(0.1, "step", 65, 100, step_every=30) == pytest.approx(0.001)
    assert scheduled_rate(0.1, "cosine", 0, 100) == pytest.approx(0.1)
    assert scheduled_rate(0.1, "cosine", 50, 100) == pytest.approx(0.05)
    assert scheduled_rate(0.1, "cosine", 100, 100) == pytest.approx(0.0, abs=1e-12)


def test_mini_batches_do_not_depend_on_the_blocks(local_cluster: cluster.Cluster) -> None:
    X, y = _problem(5)
    network = Network("classification", (12, 6, 4))
    results = []
    for rows_per_block in (6000, 1000, 700):
        X_blocks = da.from_array(X, chunks=(rows_per_block, -1))
        y_blocks = da.from_array(y, chunks=(X_blocks.chunks[0],))
        params, history = fit_network(network, X_blocks, y_blocks, epochs=4, batch_size=512,
                                      learning_rate=0.05, optimizer="adam", seed=7)
        results.append(params["W1"])
    for other in results[1:]:
        np.testing.assert_allclose(results[0], other, rtol=1e-4, atol=1e-6)
    assert history.accuracy[-1] > 0.8  # 12 steps an epoch: a few epochs learn it


def test_early_stopping_keeps_the_best_epoch(local_cluster: cluster.Cluster) -> None:
    # few rows, many weights: an MLP that overfits, so validation loss turns up
    X, y = make_classification(n_samples=300, n_features=20, n_informative=3, flip_y=0.2,
                               random_state=1)
    X = X.astype(np.float32)
    network = Network("classification", (20, 64, 2))
    train, held = _blocks(X[:150], y[:150]), _blocks(X[150:], y[150:])
    params, history = fit_network(network, *train, epochs=400, learning_rate=0.02,
                                  validation=held, patience=20)
    assert len(history.loss) < 400
    assert history.best_epoch is not None
    assert len(history.validation_loss) == history.best_epoch + 21
    best = min(history.validation_loss)
    assert network.gradient(params, X[150:], y[150:], 150)[1] / 150 == pytest.approx(best,
                                                                                      rel=1e-4)


def test_resume_from_checkpoint_gives_the_uninterrupted_model(local_cluster: cluster.Cluster,
                                                              tmp_path) -> None:  # type: ignore[no-untyped-def]
    X, y = _problem(6)
    network = Network("classification", (12, 8, 4))
    blocks = _blocks(X, y)
    options = dict(epochs=40, learning_rate=0.01, optimizer="adam", batch_size=1500, seed=2)
    uninterrupted, _ = fit_network(network, *blocks, **options)  # type: ignore[arg-type]

    class Crash(Exception):
        pass

    def crash_at_epoch_35(epoch: int, params: dict[str, np.ndarray]) -> None:
        if epoch == 35:
            raise Crash

    path = tmp_path / "checkpoint.npz"
    with pytest.raises(Crash):
        fit_network(network, *blocks, checkpoint=path, fingerprint="a",
                    on_epoch=crash_at_epoch_35, **options)  # type: ignore[arg-type]
    resumed, history = fit_network(network, *blocks, checkpoint=path, fingerprint="a",
                                   **options)  # type: ignore[arg-type]
    # checkpoints come at the end of each graph of epochs (about a second of work)
    assert history.resumed_from is not None and history.resumed_from < 35
    assert len(history.loss) == 40
    for name in uninterrupted:
        np.testing.assert_array_equal(resumed[name], uninterrupted[name])
    # another problem's checkpoint is not used
    _, fresh = fit_network(network, *blocks, checkpoint=path, fingerprint="b",
                           **options)  # type: ignore[arg-type]
    assert fresh.resumed_from is None


@pytest.mark.slow
def test_training_survives_a_killed_worker() -> None:
    """RELIABILITY R2: SIGKILL one of three workers mid-training; training completes."""
    import os
    import signal
    import threading
    import time

    X, y = _problem(8)
    network = Network("classification", (12, 8, 4))
    options = dict(epochs=60, learning_rate=0.01, optimizer="adam", batch_size=1500, seed=1)
    with cluster.start("local", workers=3, threads_per_worker=1, dashboard_address=None) as c:
        blocks = rebalance(da.from_array(X, chunks=(1000, -1)), y, 3)
        clean, _ = fit_network(network, *blocks, **options)  # type: ignore[arg-type]
        victim = next(iter(c.client.run(os.getpid).values()))
        killed_at: list[float] = []

        def kill() -> None:
            os.kill(victim, signal.SIGKILL)
            killed_at.append(time.monotonic())

        def kill_soon_after_epoch_0(epoch: int, params: dict[str, np.ndarray]) -> None:
            # the first graph is one epoch, the next one many: the kill lands while it runs
            if epoch == 0:
                threading.Timer(0.05, kill).start()

        survived, history = fit_network(network, *blocks, on_epoch=kill_soon_after_epoch_0,
                                        **options)  # type: ignore[arg-type]
        finished = time.monotonic()
        assert killed_at and killed_at[0] < finished
        assert len(history.loss) == 60

        def pids() -> set[int]:  # a dead worker the scheduler still lists answers an error
            return {p for p in c.client.run(os.getpid, on_error="ignore").values()}

        deadline = time.monotonic() + 10
        while victim in pids() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert victim not in pids()
    # lost blocks are recomputed from their lineage: the same batches, the same model
    for name in clean:
        np.testing.assert_allclose(survived[name], clean[name], rtol=1e-4, atol=1e-6)


def test_local_steps_mode_learns_with_one_sync_per_round(local_cluster: cluster.Cluster
                                                         ) -> None:
    from suanli.pipelines.training.local_steps import fit_network_local_steps

    X, y = _problem(0)
    train, test = slice(0, 4500), slice(4500, None)
    network = Network("classification", (12, 4))
    params, history = fit_network_local_steps(network, *_blocks(X[train], y[train]), rounds=20,
                                              local_steps=10, batch_size=128,
                                              learning_rate=0.05)
    ours = (network.outputs(params, X[test]).argmax(axis=1) == y[test]).mean()
    reference = LogisticRegression(max_iter=2000).fit(X[train], y[train]).score(X[test], y[test])
    assert ours >= reference - 0.02
    assert len(history.loss) == 20 and history.loss[-1] < history.loss[0]
