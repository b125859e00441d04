"""Synchronous data-parallel training on the workers that hold the data.

Every step each block's gradient is computed where the block lives, the
gradients are summed by a tree reduction, and the client applies the update;
the new parameters travel to the workers with the next step's tasks.

Mini-batches are drawn globally: each epoch ranks all rows by a permutation
seeded by (seed, epoch), and step ``s`` takes the rows ranked in
``[s * batch_size, (s + 1) * batch_size)``. Each block computes the part of
that batch it holds, so the batches, and the model, do not depend on how the
rows are split into blocks or over how many workers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
from tqdm.auto import tqdm

from ..array_module import array_module
from .checkpoint import TrainingState, load_checkpoint, save_checkpoint
from .network import Network, Params
from .optimizers import make_optimizer, scheduled_rate

#: At least this many rows per block: fewer, larger tasks keep each step's
#: scheduling overhead (~2 ms a task through distributed) below its compute.
MIN_BLOCK_ROWS = 4096


@dataclass
class History:
    """Per-epoch training loss and score (accuracy, or mean squared error), validation loss."""

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    validation_loss: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    resumed_from: int | None = None


def rebalance(X: da.Array, y: np.ndarray, parallelism: int) -> tuple[da.Array, da.Array]:
    """Row blocks of at least MIN_BLOCK_ROWS, about two per worker thread, persisted."""
    n_rows = X.shape[0]
    n_blocks = max(1, min(2 * parallelism, n_rows // MIN_BLOCK_ROWS))
    rows = -(-n_rows // n_blocks)
    X = X.rechunk((rows, -1))
    y_array = da.from_array(y, chunks=(X.chunks[0],))
    X, y_array = dask.persist(X, y_array)
    return X, y_array


@dataclass(frozen=True)
class _Blocks:
    """Delayed row blocks and where each starts in the global row order."""

    X: list[Any]
    y: list[Any]
    offsets: list[int]
    rows: int

    @classmethod
    def of(cls, X: da.Array, y: da.Array) -> _Blocks:
        offsets = np.concatenate([[0], np.cumsum(X.chunks[0])[:-1]]).astype(int).tolist()
        return cls(X.to_delayed().ravel().tolist(), y.to_delayed().ravel().tolist(), offsets,
                   int(X.shape[0]))


def fit_network(network: Network, X: da.Array, y: da.Array, *, epochs: int,
                learning_rate: float, optimizer: str = "adam", l2: float = 0.0,
                schedule: str = "constant", seed: int = 0, batch_size: int | None = None,
                class_weight: np.ndarray | None = None,
                validation: tuple[da.Array, da.Array] | None = None,
                patience: int | None = None, checkpoint: Path | None = None,
                fingerprint: str = "", progress: bool = False,
                on_epoch: Callable[[int, Params], None] | None = None
                ) -> tuple[Params, History]:
    """Fit ``network`` data-parallel; full batches unless ``batch_size`` is given.

    With ``validation`` blocks the validation loss is recorded every epoch and
    the best parameters are returned; with ``patience`` too, training stops
    after that many epochs without improvement. With ``checkpoint`` the state
    is saved after every epoch and a later call with the same ``fingerprint``
    resumes from it.
    """
    train = _Blocks.of(X, y)
    held_out = _Blocks.of(*validation) if validation is not None else None
    step = make_optimizer(optimizer, learning_rate)
    state = load_checkpoint(checkpoint, fingerprint) if checkpoint is not None else None
    history = History()
    if state is None:
        params = network.init(seed)
        best_params, best_loss, since_best, first_epoch = params, math.inf, 0, 0
    else:
        params, best_params = state.params, state.best_params
        best_loss, since_best, first_epoch = state.best_loss, state.since_best, state.epoch + 1
        step.load_state(state.optimizer)
        history.loss, history.accuracy = list(state.loss), list(state.accuracy)
        history.validation_loss = list(state.validation_loss)
        history.resumed_from = state.epoch
    steps = 1 if batch_size is None else max(1, math.ceil(train.rows / batch_size))
    for epoch in tqdm(range(first_epoch, epochs), desc="training", disable=not progress,
                      leave=False):
        step.learning_rate = scheduled_rate(learning_rate, schedule, epoch, epochs)
        epoch_loss = epoch_score = 0.0
        for index in range(steps):
            batch = None if batch_size is None else (seed, epoch, index, batch_size)
            grads, loss, score = _summed(network, params, train, batch, class_weight)
            for name in grads:
                if name.startswith("W"):
                    grads[name] = grads[name] + l2 * params[name]
            params = step.update(params, grads)
            epoch_loss, epoch_score = epoch_loss + loss, epoch_score + score
        penalty = 0.5 * l2 * sum(float((v ** 2).sum()) for k, v in params.items()
                                 if k.startswith("W"))
        history.loss.append(epoch_loss / train.rows + penalty)
        history.accuracy.append(epoch_score / train.rows)
        if held_out is not None:
            _, loss, _ = _summed(network, params, held_out, None, class_weight)
            history.validation_loss.append(loss / held_out.rows)
            if history.validation_loss[-1] < best_loss:
                best_params, best_loss, since_best = params, history.validation_loss[-1], 0
            else:
                since_best += 1
        if checkpoint is not None:
            save_checkpoint(checkpoint, TrainingState(
                epoch, params, step.state(), best_params, best_loss, since_best, history.loss,
                history.accuracy, history.validation_loss), fingerprint)
        if on_epoch is not None:
            on_epoch(epoch, params)
        if patience is not None and since_best >= patience:
            break
    if held_out is None:
        return params, history
    history.best_epoch = int(np.argmin(history.validation_loss))
    return best_params, history


def _summed(network: Network, params: Params, blocks: _Blocks,
            batch: tuple[int, int, int, int] | None, class_weight: np.ndarray | None
            ) -> tuple[Params, float, float]:
    """One synchronised step: every block's part, summed by a tree reduction."""
    gradient = dask.delayed(_block_gradient, pure=True)
    shared = dask.delayed(params)
    parts = [gradient(network, shared, xb, yb, offset, blocks.rows, batch, class_weight)
             for xb, yb, offset in zip(blocks.X, blocks.y, blocks.offsets, strict=True)]
    (total,) = dask.compute(_tree_sum(parts))
    return total


@lru_cache(maxsize=4)
def _epoch_ranks(n_rows: int, seed: int, epoch: int) -> np.ndarray:
    """Each row's position in epoch ``epoch``'s shuffled order (cached per worker)."""
    order = np.random.default_rng([seed, epoch]).permutation(n_rows)
    ranks = np.empty(n_rows, dtype=np.int64)
    ranks[order] = np.arange(n_rows)
    return ranks


def _block_gradient(network: Network, params: Params, X: Any, y: Any, offset: int,
                    n_total: int, batch: tuple[int, int, int, int] | None,
                    class_weight: np.ndarray | None) -> tuple[Params, float, float]:
    if batch is None:
        return network.gradient(params, X, y, n_total, class_weight)
    seed, epoch, index, size = batch
    ranks = _epoch_ranks(n_total, seed, epoch)[offset:offset + X.shape[0]]
    chosen = np.flatnonzero(ranks // size == index)
    xp = array_module(X)
    rows = xp.asarray(chosen)
    batch_rows = min(size, n_total - index * size)
    return network.gradient(params, X[rows], y[rows], batch_rows, class_weight)


def _add_parts(a: tuple[Params, float, float], b: tuple[Params, float, float]
               ) -> tuple[Params, float, float]:
    return ({k: a[0][k] + b[0][k] for k in a[0]}, a[1] + b[1], a[2] + b[2])


def _tree_sum(parts: list[Any]) -> Any:
    add = dask.delayed(_add_parts, pure=True)
    while len(parts) > 1:
        paired = [add(parts[i], parts[i + 1]) for i in range(0, len(parts) - 1, 2)]
        parts = paired + ([parts[-1]] if len(parts) % 2 else [])
    return parts[0]


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
    train = _Blocks.of(X, y)
    params = network.init(seed)
    history = History()
    local = dask.delayed(_local_training, pure=True)
    for round_ in tqdm(range(rounds), desc="training", disable=not progress, leave=False):
        shared = dask.delayed(params)
        parts = [local(network, shared, xb, yb, index, round_, local_steps, batch_size,
                       learning_rate, momentum, l2, seed, class_weight)
                 for index, (xb, yb) in enumerate(zip(train.X, train.y, strict=True))]
        (total,) = dask.compute(_tree_sum(parts))
        weighted, loss, rows = total
        params = {k: v / rows for k, v in weighted.items()}
        history.loss.append(loss / (rows * local_steps))
        if on_epoch is not None:
            on_epoch(round_, params)
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
