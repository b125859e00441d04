"""Synchronous data-parallel training on the workers that hold the data.

Every iteration each block's gradient is computed where the block lives, the
gradients are summed by a tree reduction, and the client applies the update;
the new parameters travel to the workers with the next iteration's tasks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dask
import dask.array as da
import numpy as np
from tqdm.auto import tqdm

from .network import Network, Params
from .optimizers import make_optimizer, scheduled_rate

#: At least this many rows per block: fewer, larger tasks keep each iteration's
#: scheduling overhead (~2 ms a task through distributed) below its compute.
MIN_BLOCK_ROWS = 4096


@dataclass
class History:
    """Per-epoch training loss and score (accuracy, or mean squared error)."""

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)


def rebalance(X: da.Array, y: np.ndarray, parallelism: int) -> tuple[da.Array, da.Array]:
    """Row blocks of at least MIN_BLOCK_ROWS, about two per worker thread, persisted."""
    n_rows = X.shape[0]
    n_blocks = max(1, min(2 * parallelism, n_rows // MIN_BLOCK_ROWS))
    rows = -(-n_rows // n_blocks)
    X = X.rechunk((rows, -1))
    y_array = da.from_array(y, chunks=(X.chunks[0],))
    X, y_array = dask.persist(X, y_array)
    return X, y_array


def fit_network(network: Network, X: da.Array, y: da.Array, *, epochs: int,
                learning_rate: float, optimizer: str = "adam", l2: float = 0.0,
                schedule: str = "constant", seed: int = 0,
                class_weight: np.ndarray | None = None, progress: bool = False,
                on_epoch: Callable[[int, Params], None] | None = None
                ) -> tuple[Params, History]:
    """Fit ``network`` by full-batch data-parallel gradient descent."""
    n_rows = X.shape[0]
    params = network.init(seed)
    step = make_optimizer(optimizer, learning_rate)
    history = History()
    x_blocks = X.to_delayed().ravel().tolist()
    y_blocks = y.to_delayed().ravel().tolist()
    gradient = dask.delayed(_block_gradient, pure=True)
    for epoch in tqdm(range(epochs), desc="training", disable=not progress, leave=False):
        shared = dask.delayed(params)
        parts = [gradient(network, shared, xb, yb, n_rows, class_weight)
                 for xb, yb in zip(x_blocks, y_blocks, strict=True)]
        (total,) = dask.compute(_tree_sum(parts))
        grads, loss, score = total
        for name in grads:
            if name.startswith("W"):
                grads[name] = grads[name] + l2 * params[name]
        step.learning_rate = scheduled_rate(learning_rate, schedule, epoch, epochs)
        params = step.update(params, grads)
        penalty = 0.5 * l2 * sum(float((v ** 2).sum()) for k, v in params.items()
                                 if k.startswith("W"))
        history.loss.append(loss / n_rows + penalty)
        history.accuracy.append(score / n_rows)
        if on_epoch is not None:
            on_epoch(epoch, params)
    return params, history


def _block_gradient(network: Network, params: Params, X: Any, y: Any, n_total: int,
                    class_weight: np.ndarray | None) -> tuple[Params, float, float]:
    return network.gradient(params, X, y, n_total, class_weight)


def _add_parts(a: tuple[Params, float, float], b: tuple[Params, float, float]
               ) -> tuple[Params, float, float]:
    return ({k: a[0][k] + b[0][k] for k in a[0]}, a[1] + b[1], a[2] + b[2])


def _tree_sum(parts: list[Any]) -> Any:
    add = dask.delayed(_add_parts, pure=True)
    while len(parts) > 1:
        paired = [add(parts[i], parts[i + 1]) for i in range(0, len(parts) - 1, 2)]
        parts = paired + ([parts[-1]] if len(parts) % 2 else [])
    return parts[0]
