"""Dense networks: softmax regression, linear regression and the MLP are one family.

A network is its task and layer sizes: no hidden layer with cross-entropy is
softmax (multinomial logistic) regression, no hidden layer with squared error
is linear regression, hidden ReLU layers make a multilayer perceptron. The
forward pass and the gradient are array-module agnostic (NumPy or CuPy blocks);
parameters travel as float64 NumPy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..array_module import array_module, to_numpy

Task = Literal["classification", "regression"]
Params = dict[str, np.ndarray]


@dataclass(frozen=True)
class Network:
    """``layer_sizes`` = (inputs, hidden..., outputs); a classifier has one output per class."""

    task: Task
    layer_sizes: tuple[int, ...]

    @property
    def depth(self) -> int:
        return len(self.layer_sizes) - 1

    def init(self, seed: int) -> Params:
        """Zeros for a linear model (a convex problem); Glorot-uniform weights and biases
        for an MLP (as scikit-learn: random biases spread where each ReLU bends)."""
        rng = np.random.default_rng(seed)
        params: Params = {}
        for i, (fan_in, fan_out) in enumerate(zip(self.layer_sizes, self.layer_sizes[1:],
                                                  strict=False)):
            if self.depth == 1:
                params[f"W{i}"] = np.zeros((fan_in, fan_out))
                params[f"b{i}"] = np.zeros(fan_out)
            else:
                limit = np.sqrt(6.0 / (fan_in + fan_out))
                params[f"W{i}"] = rng.uniform(-limit, limit, (fan_in, fan_out))
                params[f"b{i}"] = rng.uniform(-limit, limit, fan_out)
        return params

    def _layers(self, params: Params, X: Any) -> list[tuple[Any, Any]]:
        xp = array_module(X)
        return [(xp.asarray(params[f"W{i}"], dtype=X.dtype), xp.asarray(params[f"b{i}"],
                                                                         dtype=X.dtype))
                for i in range(self.depth)]

    def outputs(self, params: Params, X: Any) -> Any:
        """Scores (classification) or predictions (regression), shape (rows, outputs)."""
        xp = array_module(X)
        activation = X
        for i, (W, b) in enumerate(self._layers(params, X)):
            activation = activation @ W + b
            if i < self.depth - 1:
                activation = xp.maximum(activation, 0)
        return activation

    def gradient(self, params: Params, X: Any, y: Any, n_total: int,
                 class_weight: np.ndarray | None = None) -> tuple[Params, float, float]:
        """Gradient of the mean loss over ``n_total`` rows from this block's rows.

        Returns (gradients, summed loss, correct predictions or summed squared
        error): sums over blocks give the whole batch's values in any tree shape.
        """
        xp = array_module(X)
        layers = self._layers(params, X)
        inputs, activation = [], X
        for i, (W, b) in enumerate(layers):
            inputs.append(activation)
            activation = activation @ W + b
            if i < self.depth - 1:
                activation = xp.maximum(activation, 0)
        rows = xp.arange(X.shape[0])
        if self.task == "classification":
            shifted = activation - activation.max(axis=1, keepdims=True)
            log_p = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
            weight = (xp.asarray(class_weight, dtype=X.dtype)[y] if class_weight is not None
                      else xp.ones(X.shape[0], dtype=X.dtype))
            loss = float(-(weight * log_p[rows, y]).sum())
            score = float((activation.argmax(axis=1) == y).sum())
            delta = xp.exp(log_p)
            delta[rows, y] -= 1
            delta *= weight[:, None]
        else:
            residual = activation - y.reshape(activation.shape).astype(X.dtype)
            loss = float(0.5 * (residual * residual).sum())
            score = float((residual * residual).sum())
            delta = residual
        delta = delta / n_total
        grads: Params = {}
        for i in range(self.depth - 1, -1, -1):
            grads[f"W{i}"] = to_numpy(inputs[i].T @ delta).astype(np.float64)
            grads[f"b{i}"] = to_numpy(delta.sum(axis=0)).astype(np.float64)
            if i:
                delta = (delta @ layers[i][0].T) * (inputs[i] > 0)
        return grads, loss, score
