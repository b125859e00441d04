"""Synchronous data-parallel training on the workers that hold the data.

Every iteration each block's gradient is computed where the block lives, the
gradients are summed by a tree reduction, and the client applies the update;
the new parameters travel to the workers with the next iteration's tasks.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dask
import dask.array as da
import numpy as np
from tqdm.auto import tqdm

from .optimizers import Params, make_optimizer
from .softmax import block_gradient

#: At least this many rows per block: fewer, larger tasks keep each iteration's
#: scheduling overhead (~2 ms a task through distributed) below its compute.
MIN_BLOCK_ROWS = 4096


@dataclass
class History:
    """Per-epoch training loss and accuracy."""

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


def fit_softmax(X: da.Array, y: da.Array, n_classes: int, *, epochs: int,
                learning_rate: float, optimizer: str = "adam", l2: float = 0.0,
                progress: bool = False,
                on_epoch: Callable[[int, Params], None] | None = None) -> tuple[Params, History]:
    """Fit softmax regression by full-batch data-parallel gradient descent."""
    n_rows, n_features = X.shape
    params: Params = {"weights": np.zeros((n_features, n_classes)),
                      "bias": np.zeros(n_classes)}
    step = make_optimizer(optimizer, learning_rate)
    history = History()
    x_blocks = X.to_delayed().ravel().tolist()
    y_blocks = y.to_delayed().ravel().tolist()
    gradient = dask.delayed(block_gradient, pure=True)
    for epoch in tqdm(range(epochs), desc="training", disable=not progress, leave=False):
        weights = dask.delayed(params["weights"])
        bias = dask.delayed(params["bias"])
        parts = [gradient(xb, yb, weights, bias, n_rows)
                 for xb, yb in zip(x_blocks, y_blocks, strict=True)]
        (total,) = dask.compute(_tree_sum(parts))
        grad_w, grad_b, loss, correct = total
        grads = {"weights": grad_w + l2 * params["weights"], "bias": grad_b}
        params = step.update(params, grads)
        history.loss.append(loss / n_rows + 0.5 * l2 * float((params["weights"] ** 2).sum()))
        history.accuracy.append(correct / n_rows)
        if on_epoch is not None:
            on_epoch(epoch, params)
    return params, history


def _add_parts(a: tuple[Any, ...], b: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(map(operator.add, a, b))


def _tree_sum(parts: list[Any]) -> Any:
    add = dask.delayed(_add_parts, pure=True)
    while len(parts) > 1:
        paired = [add(parts[i], parts[i + 1]) for i in range(0, len(parts) - 1, 2)]
        parts = paired + ([parts[-1]] if len(parts) % 2 else [])
    return parts[0]
