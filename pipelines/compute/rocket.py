"""MiniRocket's transform (Dempster, Schmidt and Webb, KDD 2021), multivariate.

84 fixed kernels of length 9 (weight 2 at three positions, -1 at the other six),
several dilations per kernel, and for each (dilation, kernel) a few biases taken
from quantiles of that kernel's output on a training series; a feature is the
proportion of positive values (PPV) of ``output - bias``. Multivariate as in the
paper's multivariate variant: each (dilation, kernel) sums its output over a
random combination of channels.

As the reference implementation does, the output of a kernel is built from
``A = -x`` summed over all nine positions and ``G = 3x`` at the kernel's three
positions, with zero padding; every other (dilation, kernel) pair counts its PPV
over the unpadded part only. Everything random (the channel combinations and
the series each bias is fitted on) comes from ``seed`` alone, so the features
do not depend on the chunking or the number of workers. The compiled kernel
runs NumPy blocks; :func:`transform_reference` is the array-module code CuPy
blocks run and the reference it is tested against.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numba
import numpy as np

from ..array_module import array_module

#: The 84 kernels: the three positions (of 9) that weigh 2.
INDICES = np.array(list(combinations(range(9), 3)), dtype=np.int32)
KERNELS = len(INDICES)


@dataclass(frozen=True)
class RocketPlan:
    """What the transform needs besides the data; everything but ``biases`` is fixed
    by the series length, the channel count, the feature count and the seed."""

    length: int
    dilations: np.ndarray              # (D,) int32
    features_per_dilation: np.ndarray  # (D,) int32
    #: Channels each (dilation, kernel) sums over, row d * 84 + k, padded with -1.
    channels: np.ndarray               # (D * 84, at most 9) int32
    #: For each (dilation, kernel), which fitting series its biases come from.
    examples: np.ndarray               # (D * 84,) int64, indices into the fitting sample
    biases: np.ndarray | None = None   # (features,) float32, from :func:`fit_biases`

    @property
    def n_features(self) -> int:
        return KERNELS * int(self.features_per_dilation.sum())


def plan(length: int, n_channels: int, *, n_features: int = 10_000, max_dilations: int = 32,
         n_examples: int, seed: int = 0) -> RocketPlan:
    """Dilations, features per dilation and channel combinations for series of
    ``length`` samples, and which of ``n_examples`` fitting series each bias uses."""
    per_kernel = max(1, n_features // KERNELS)
    true_max = min(per_kernel, max_dilations)
    multiplier = per_kernel / true_max
    max_exponent = np.log2((length - 1) / (9 - 1))
    dilations, counts = np.unique(
        np.logspace(0, max_exponent, true_max, base=2).astype(np.int32), return_counts=True)
    per_dilation = (counts * multiplier).astype(np.int32)
    remainder = per_kernel - int(per_dilation.sum())
    i = 0
    while remainder > 0:
        per_dilation[i] += 1
        remainder -= 1
        i = (i + 1) % len(per_dilation)
    rng = np.random.default_rng(seed)
    combos = len(dilations) * KERNELS
    most = min(n_channels, 9)
    sizes = (2 ** rng.uniform(0, np.log2(most + 1), combos)).astype(np.int32)
    channels = np.full((combos, most), -1, dtype=np.int32)
    for row, size in enumerate(sizes):
        channels[row, :size] = np.sort(rng.choice(n_channels, size, replace=False))
    examples = rng.integers(0, n_examples, combos)
    return RocketPlan(length, dilations.astype(np.int32), per_dilation, channels, examples)


def quantiles(n: int) -> np.ndarray:
    """The low-discrepancy quantiles of the biases: ``k * golden ratio mod 1``."""
    return np.array([(k * ((np.sqrt(5) + 1) / 2)) % 1 for k in range(1, n + 1)],
                    dtype=np.float32)


def _kernel_output(x: Any, dilation: int, kernel: int, channels: Any, xp: Any) -> Any:
    """One kernel's output at ``dilation`` over ``x`` (series, channel, sample), summed
    over ``channels``; zero padding, as the reference builds it."""
    n, _, length = x.shape
    picked = x[:, channels[channels >= 0]]
    A = -picked
    G = picked + picked + picked
    padding = ((9 - 1) * dilation) // 2
    total = xp.zeros((n, length), dtype=x.dtype)
    C_alpha = A.copy()
    C_gamma = xp.zeros((9, *A.shape), dtype=x.dtype)
    C_gamma[9 // 2] = G
    start, end = dilation, length - padding
    for gamma in range(9 // 2):
        if end > 0:
            C_alpha[..., -end:] = C_alpha[..., -end:] + A[..., :end]
            C_gamma[gamma, ..., -end:] = G[..., :end]
        end += dilation
    for gamma in range(9 // 2 + 1, 9):
        if start < length:
            C_alpha[..., :-start] = C_alpha[..., :-start] + A[..., start:]
            C_gamma[gamma, ..., :-start] = G[..., start:]
        start += dilation
    i0, i1, i2 = (int(i) for i in INDICES[kernel])
    for c in range(picked.shape[1]):  # channels summed in order, as the kernel does
        total = total + (C_alpha[:, c] + C_gamma[i0, :, c] + C_gamma[i1, :, c]
                         + C_gamma[i2, :, c])
    return total


def fit_biases(samples: Any, rocket: RocketPlan) -> RocketPlan:
    """``rocket`` with its biases: the quantiles of each (dilation, kernel)'s output on
    its fitting series, ``samples`` (series, sample, channel)."""
    xp = array_module(samples)
    x = xp.ascontiguousarray(xp.moveaxis(samples, 2, 1).astype(xp.float32))
    q = quantiles(rocket.n_features)
    biases = np.empty(rocket.n_features, dtype=np.float32)
    first = 0
    for d, dilation in enumerate(rocket.dilations.tolist()):
        count = int(rocket.features_per_dilation[d])
        for k in range(KERNELS):
            row = d * KERNELS + k
            example = int(rocket.examples[row])
            output = _kernel_output(x[example:example + 1], dilation, k,
                                    rocket.channels[row], xp)[0]
            found = xp.quantile(output, xp.asarray(q[first:first + count]))
            biases[first:first + count] = np.asarray(
                found.get() if hasattr(found, "get") else found, dtype=np.float32)
            first += count
    return dataclasses.replace(rocket, biases=biases)


def transform(block: Any, rocket: RocketPlan) -> Any:
    """Features (series, feature) of ``block`` (series, sample, channel)."""
    if isinstance(block, np.ndarray):
        x = np.ascontiguousarray(np.moveaxis(block, 2, 1), dtype=np.float32)
        out = np.empty((x.shape[0], rocket.n_features), dtype=np.float32)
        assert rocket.biases is not None
        _transform_compiled(x, rocket.dilations, rocket.features_per_dilation,
                            rocket.channels, rocket.biases, INDICES, out)
        return out
    return transform_reference(block, rocket)


def transform_reference(block: Any, rocket: RocketPlan) -> Any:
    """The array-module transform (CuPy on GPUs; the compiled kernel's reference)."""
    xp = array_module(block)
    assert rocket.biases is not None
    x = xp.ascontiguousarray(xp.moveaxis(block, 2, 1).astype(xp.float32))
    n, _, length = x.shape
    biases = xp.asarray(rocket.biases)
    out = xp.empty((n, rocket.n_features), dtype=xp.float32)
    first = 0
    for d, dilation in enumerate(rocket.dilations.tolist()):
        count = int(rocket.features_per_dilation[d])
        padding = ((9 - 1) * dilation) // 2
        for k in range(KERNELS):
            output = _kernel_output(x, dilation, k, rocket.channels[d * KERNELS + k], xp)
            if (d + k) % 2 == 1:
                output = output[:, padding:length - padding]
            chosen = biases[first:first + count]
            out[:, first:first + count] = (output[:, :, None] > chosen).mean(
                axis=1, dtype=xp.float32)
            first += count
    return out


@numba.njit(nogil=True, cache=True)
def _transform_compiled(x: Any, dilations: Any, per_dilation: Any, channels: Any, biases: Any,
                        indices: Any, out: Any) -> None:  # pragma: no cover - compiled
    """``x`` (series, channel, sample) float32 -> ``out`` (series, feature), in the
    reference's order of operations, so the same float32 outputs meet the same biases."""
    n, n_channels, length = x.shape
    C_alpha = np.empty((n_channels, length), dtype=np.float32)
    C_gamma = np.empty((9, n_channels, length), dtype=np.float32)
    total = np.empty(length, dtype=np.float32)
    for s in range(n):
        A = -x[s]
        G = x[s] + x[s] + x[s]
        first = 0
        for d in range(dilations.shape[0]):
            dilation = dilations[d]
            count = per_dilation[d]
            padding = ((9 - 1) * dilation) // 2
            C_alpha[:] = A
            C_gamma[:] = 0
            C_gamma[9 // 2] = G
            start = dilation
            end = length - padding
            for gamma in range(9 // 2):
                if end > 0:
                    C_alpha[:, -end:] = C_alpha[:, -end:] + A[:, :end]
                    C_gamma[gamma, :, -end:] = G[:, :end]
                end += dilation
            for gamma in range(9 // 2 + 1, 9):
                if start < length:
                    C_alpha[:, :-start] = C_alpha[:, :-start] + A[:, start:]
                    C_gamma[gamma, :, :-start] = G[:, start:]
                start += dilation
            for k in range(indices.shape[0]):
                i0, i1, i2 = indices[k, 0], indices[k, 1], indices[k, 2]
                row = channels[d * indices.shape[0] + k]
                total[:] = 0
                for j in range(row.shape[0]):
                    c = row[j]
                    if c < 0:
                        break
                    for t in range(length):
                        total[t] = total[t] + (C_alpha[c, t] + C_gamma[i0, c, t]
                                               + C_gamma[i1, c, t] + C_gamma[i2, c, t])
                low, high = (padding, length - padding) if (d + k) % 2 == 1 else (0, length)
                span = max(high - low, 0)
                segment = total[low:high]
                for f in range(count):
                    bias = biases[first + f]
                    # An int32 count over a slice: LLVM vectorises it (3x the branch).
                    positive = np.int32(0)
                    for t in range(segment.shape[0]):
                        positive += np.int32(segment[t] > bias)
                    out[s, first + f] = np.float32(positive) / np.float32(span) \
                        if span > 0 else np.float32(0)
                first += count
