"""Local SGD with model averaging: each block takes several steps on its own rows
between synchronisations (a different algorithm from :mod:`.data_parallel`'s
synchronous steps)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dask
import dask.array as da
import numpy as np

from suanli.datasets import progress_steps

from ..array_module import array_module
from .data_parallel import FLAT_SUM, Blocks, History, sum_parts, tree_sum
from .network import Network, Params


def fit_network_local_steps(network: Network, X: da.Array, y: da.Array, *, rounds: int,
                            local_steps: int, batch_size: int, learning_rate: float,
                            momentum: float = 0.9, l2: float = 0.0, seed: int = 0,
                            class_weight: np.ndarray | None = None, progress: bool = False,
                            on_epoch: Callable[[int, Params], None] | None = None
                            ) -> tuple[Params, History]:
    """Local SGD with model averaging: a different algorithm from :func:`fit_network`.

    Each round every block starts from the shared parameters, takes
    ``local_steps`` SGD-with-momentum steps on mini-batches of its own rows,
    and the client averages the blocks' parameters (weighted by their rows).
    One synchronisation per round instead of one per step, so it suits
    clusters where synchronising is expensive; the result depends on how the
    rows are split into blocks, and ``History.loss`` holds each round's mean
    loss over the local steps.
    """
    train = Blocks.of(X, y)
    params = network.init(seed)
    history = History()
    local = dask.delayed(_local_training, pure=True)
    bar = progress_steps("training", rounds, "rounds", enabled=progress)
    for round_ in range(rounds):
        shared = dask.delayed(params)
        parts = [local(network, shared, xb, yb, index, round_, local_steps, batch_size,
                       learning_rate, momentum, l2, seed, class_weight)
                 for index, (xb, yb) in enumerate(zip(train.X, train.y, strict=True))]
        (total,) = dask.compute(dask.delayed(sum_parts, pure=True)(*tree_sum(parts, FLAT_SUM)))
        weighted, loss, rows = total
        params = {k: v / rows for k, v in weighted.items()}
        history.loss.append(loss / (rows * local_steps))
        if on_epoch is not None:
            on_epoch(round_, params)
        bar.update()
    bar.close()
    return params, history


def _local_training(network: Network, params: Params, X: Any, y: Any, index: int, round_: int,
                    steps: int, batch_size: int, learning_rate: float, momentum: float,
                    l2: float, seed: int, class_weight: np.ndarray | None
                    ) -> tuple[Params, float, float]:
    """``steps`` local steps; returns (parameters x rows, rows x mean loss, rows)."""
    rng = np.random.default_rng([seed, round_, index])
    xp = array_module(X)
    n_rows = X.shape[0]
    local = {k: v.copy() for k, v in params.items()}
    velocity = {k: np.zeros_like(v) for k, v in params.items()}
    loss_sum = 0.0
    for _ in range(steps):
        rows = xp.asarray(rng.choice(n_rows, size=min(batch_size, n_rows), replace=False))
        grads, loss, _ = network.gradient(local, X[rows], y[rows], len(rows), class_weight)
        loss_sum += loss / len(rows)
        for name, grad in grads.items():
            if name.startswith("W"):
                grad = grad + l2 * local[name]
            velocity[name] = momentum * velocity[name] + grad
            local[name] = local[name] - learning_rate * velocity[name]
    return {k: v * n_rows for k, v in local.items()}, loss_sum * n_rows, float(n_rows)
