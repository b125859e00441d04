"""Softmax (multinomial logistic) regression: loss and gradient on one block.

Array-module agnostic: the same functions run on NumPy and CuPy blocks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..array_module import array_module


def logits(X: Any, weights: Any, bias: Any) -> Any:
    return X @ weights + bias


def probabilities(scores: Any) -> Any:
    xp = array_module(scores)
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = xp.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def block_gradient(X: Any, y: Any, weights: np.ndarray, bias: np.ndarray, n_total: int
                   ) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Gradient of the mean cross-entropy over all ``n_total`` rows, from this block's rows.

    Returns (dW, db, summed loss, correct predictions): sums over blocks give the
    full-batch values, so blocks can be reduced in any tree shape.
    """
    xp = array_module(X)
    W, b = xp.asarray(weights, dtype=X.dtype), xp.asarray(bias, dtype=X.dtype)
    p = probabilities(logits(X, W, b))
    rows = xp.arange(X.shape[0])
    true_p = p[rows, y]
    loss = float(-xp.log(xp.maximum(true_p, 1e-12)).sum())
    correct = int((p.argmax(axis=1) == y).sum())
    p[rows, y] -= 1
    grad_w = (X.T @ p) / n_total
    grad_b = p.sum(axis=0) / n_total
    return _host(grad_w), _host(grad_b), loss, correct


def _host(array: Any) -> np.ndarray:
    return np.asarray(array.get() if hasattr(array, "get") else array, dtype=np.float64)
