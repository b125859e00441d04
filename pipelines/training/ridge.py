"""Exact ridge regression and classification, data-parallel.

One pass over the blocks sums each block's weighted Gram matrix ``XᵀWX``,
``XᵀWY`` and column sums (a tree reduction, as the gradients are summed), so
the model is solved once, exactly, on the client. The regularisation is chosen
as scikit-learn's ``RidgeCV`` and ``RidgeClassifierCV`` choose it: by exact
leave-one-out errors over a grid of ``alphas``, from the eigendecomposition of
the centred Gram matrix, with the intercept unpenalised. The leave-one-out
errors need each row's leverage, so a second pass goes over the (persisted,
small) feature blocks, returning one number per alpha from each. A classifier
fits targets of +1 and -1 per class (one column for two classes), as
scikit-learn's does, and predicts the class with the largest score.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import dask
import dask.array as da
import numpy as np

from ..array_module import to_numpy
from .data_parallel import FLAT_SUM, tree_sum

#: The grid of MiniRocket's paper (and aeon's examples): 10 values from 1e-3 to 1e3.
ALPHAS = tuple(float(a) for a in np.logspace(-3, 3, 10))

Moments = tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@dataclass
class RidgeFit:
    """The fitted model: ``X @ coef + intercept`` gives each target's score."""

    coef: np.ndarray          # (features, targets)
    intercept: np.ndarray     # (targets,)
    alpha: float
    #: Mean squared leave-one-out error for each alpha tried, in ``alphas`` order.
    loo_errors: list[float] = field(default_factory=list)


def ridge_targets(y: np.ndarray, n_classes: int) -> np.ndarray:
    """The columns ridge fits: +1/-1 per class (one column for two classes, +1 for
    the second, as scikit-learn's LabelBinarizer), or the values of a regression."""
    if n_classes == 0:
        return np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    codes = np.asarray(y, dtype=np.int64)
    if n_classes == 2:
        return np.where(codes == 1, 1.0, -1.0)[:, None]
    targets = -np.ones((len(codes), n_classes))
    targets[np.arange(len(codes)), codes] = 1.0
    return targets


def fit_ridge(X: da.Array, Y: da.Array, weights: da.Array | None = None,
              alphas: tuple[float, ...] = ALPHAS) -> RidgeFit:
    """Ridge of ``Y`` (rows, targets) on ``X`` (rows, features), with an intercept and
    optional row ``weights``, alpha chosen by exact leave-one-out error."""
    if weights is None:
        weights = da.ones(X.shape[0], chunks=(X.chunks[0],), dtype=np.float64)
    if X.shape[0] <= X.shape[1]:
        # More features than rows (MiniRocket's 10,000 on a few hundred series): the
        # rows are few, so they come to the client and the kernel form is solved.
        x, y, w = (to_numpy(a).astype(np.float64) for a in dask.compute(X, Y, weights))
        return _fit_dual(x, y, w, alphas)
    blocks = list(zip(X.to_delayed().ravel(), Y.to_delayed().ravel(),
                      weights.to_delayed().ravel(), strict=True))
    moments = dask.delayed(_block_moments, pure=True)
    parts = [moments(x, y, w) for x, y, w in blocks]
    (total,) = dask.compute(dask.delayed(_sum_all, pure=True)(
        _add, *tree_sum(parts, FLAT_SUM, _add)))
    weight, x_sum, y_sum, gram, cross = total
    x_mean, y_mean = x_sum / weight, y_sum / weight
    gram = gram - weight * np.outer(x_mean, x_mean)   # centred: the intercept is free
    cross = cross - weight * np.outer(x_mean, y_mean)
    eigenvalues, vectors = np.linalg.eigh(gram)
    eigenvalues = np.maximum(eigenvalues, 0.0)
    projected = vectors.T @ cross                      # (features, targets) in the eigenbasis
    errors = dask.delayed(_block_loo_errors, pure=True)
    sums = [errors(x, y, w, x_mean, y_mean, vectors, eigenvalues, projected, weight, alphas)
            for x, y, w in blocks]
    (squared,) = dask.compute(dask.delayed(_sum_all, pure=True)(
        np.add, *tree_sum(sums, FLAT_SUM, np.add)))
    loo = squared / (X.shape[0] * Y.shape[1])
    best = int(np.argmin(loo))  # the first of equals, as scikit-learn's argmax of the score
    coef = vectors @ (projected / (eigenvalues + alphas[best])[:, None])
    return RidgeFit(coef, y_mean - x_mean @ coef, alphas[best], loo.tolist())


def _fit_dual(x: np.ndarray, y: np.ndarray, weights: np.ndarray, alphas: tuple[float, ...]
              ) -> RidgeFit:
    """The kernel form, for as many features as rows or more: the eigendecomposition
    of the (weighted, centred) rows' Gram matrix ``K = X Xᵀ`` instead of ``XᵀX``."""
    total = weights.sum()
    x_mean, y_mean = weights @ x / total, weights @ y / total
    root = np.sqrt(weights)[:, None]
    xs, ys = root * (x - x_mean), root * (y - y_mean)
    eigenvalues, vectors = np.linalg.eigh(xs @ xs.T)
    eigenvalues = np.maximum(eigenvalues, 0.0)
    projected = vectors.T @ ys
    loo = []
    for alpha in alphas:
        shrink = eigenvalues / (eigenvalues + alpha)
        fitted = vectors @ (projected * shrink[:, None])          # of the centred targets
        leverage = weights / total + (vectors * vectors) @ shrink
        residual = (ys - fitted) / (1.0 - leverage)[:, None]
        loo.append(float((residual * residual).mean()))
    best = int(np.argmin(loo))
    dual = vectors @ (projected / (eigenvalues + alphas[best])[:, None])
    coef = xs.T @ dual
    return RidgeFit(coef, y_mean - x_mean @ coef, alphas[best], loo)


def _block_moments(X: Any, Y: Any, w: Any) -> Moments:
    x, y, weights = (to_numpy(a).astype(np.float64) for a in (X, Y, w))
    weighted = x * weights[:, None]
    return (float(weights.sum()), weighted.sum(axis=0), (y * weights[:, None]).sum(axis=0),
            weighted.T @ x, weighted.T @ y)


def _add(a: Any, b: Any) -> Any:
    return tuple(p + q for p, q in zip(a, b, strict=True))


def _sum_all(add: Any, *parts: Any) -> Any:
    """The last level of the tree: the remaining parts summed in one task."""
    return functools.reduce(add, parts)


def _block_loo_errors(X: Any, Y: Any, w: Any, x_mean: np.ndarray, y_mean: np.ndarray,
                      vectors: np.ndarray, eigenvalues: np.ndarray, projected: np.ndarray,
                      weight: float, alphas: tuple[float, ...]) -> np.ndarray:
    """This block's summed squared leave-one-out residuals, one per alpha.

    A row's leverage is ``w/Σw + w (x - mean)ᵀ (G + αI)⁻¹ (x - mean)``, its
    residual ``√w (y - ŷ)`` and its leave-one-out residual that over
    ``1 - leverage`` (scikit-learn's ``_RidgeGCV``, weighted the same way).
    """
    x, y, weights = (to_numpy(a).astype(np.float64) for a in (X, Y, w))
    rotated = (x - x_mean) @ vectors            # rows in the eigenbasis
    squared = rotated * rotated
    out = np.empty(len(alphas))
    for k, alpha in enumerate(alphas):
        inverse = 1.0 / (eigenvalues + alpha)
        fitted = y_mean + rotated @ (projected * inverse[:, None])
        leverage = weights / weight + weights * (squared @ inverse)
        residual = np.sqrt(weights)[:, None] * (y - fitted) / (1.0 - leverage)[:, None]
        out[k] = float((residual * residual).sum())
    return out
