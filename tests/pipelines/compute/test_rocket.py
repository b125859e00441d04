"""MiniRocket's transform: the compiled kernel against the array-module reference, and
both against the paper's definition written out as plain convolutions."""

from __future__ import annotations

import dask
import numpy as np
import pytest

from suanli import datasets
from suanli.pipelines import StepCall
from suanli.pipelines.compute import rocket


def _series(n: int, length: int, channels: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.standard_normal((n, length, channels)), axis=1).astype(np.float32)


def _by_definition(x: np.ndarray, fitted: rocket.RocketPlan) -> np.ndarray:
    """Each feature as the paper defines it: the dilated convolution of weights -1 and 2
    (zero padding), summed over the kernel's channels, its proportion of values above
    the bias; every other (dilation, kernel) over the unpadded part only. float64."""
    assert fitted.biases is not None
    length = x.shape[0]
    features = []
    first = 0
    for d, dilation in enumerate(fitted.dilations.tolist()):
        padding = 4 * dilation
        for k in range(rocket.KERNELS):
            weights = -np.ones(9)
            weights[rocket.INDICES[k]] = 2
            row = fitted.channels[d * rocket.KERNELS + k]
            summed = x[:, row[row >= 0]].astype(np.float64).sum(axis=1)
            output = np.zeros(length)
            for j in range(9):
                shift = (j - 4) * dilation
                low, high = max(0, -shift), min(length, length - shift)
                if low < high:
                    output[low:high] += weights[j] * summed[low + shift:high + shift]
            region = output[padding:length - padding] if (d + k) % 2 else output
            for f in range(int(fitted.features_per_dilation[d])):
                features.append((region > fitted.biases[first + f]).mean())
            first += int(fitted.features_per_dilation[d])
    return np.array(features)


@pytest.mark.parametrize(("length", "channels"), [(150, 1), (64, 3), (500, 12)])
def test_compiled_equals_reference_and_the_definition(length: int, channels: int) -> None:
    x = _series(12, length, channels)
    plan = rocket.plan(length, channels, n_features=840, n_examples=8, seed=3)
    fitted = rocket.fit_biases(x[:8], plan)
    compiled = rocket.transform(x, fitted)
    np.testing.assert_array_equal(compiled, rocket.transform_reference(x, fitted))
    assert compiled.shape == (12, fitted.n_features) and fitted.n_features == 840
    for i in range(3):
        expected = _by_definition(x[i], fitted)
        # float32 against float64 at a bias taken from the outputs themselves: a value
        # equal to its bias may fall either side.
        differs = np.abs(compiled[i] - expected)
        assert (differs > 1e-6).mean() < 0.005 and differs.max() < 0.01, differs.max()


def test_the_plan_follows_the_reference_for_dilations_and_quantiles() -> None:
    plan = rocket.plan(500, 1, n_features=10_000, n_examples=10)
    assert plan.n_features == 9_996 and plan.dilations[0] == 1
    assert plan.dilations[-1] == int(2 ** np.log2(499 / 8)) and len(plan.dilations) <= 32
    assert np.all(np.diff(plan.dilations) > 0) and plan.features_per_dilation.sum() == 119
    assert rocket.quantiles(3) == pytest.approx([0.618034, 0.236068, 0.854102], abs=1e-6)


def test_the_step_does_not_depend_on_chunking_and_fits_on_training_units() -> None:
    x = _series(20, 120, 2, seed=5)
    labels = np.arange(20) % 2
    ds = datasets.from_arrays(x, sample_rate=1.0, label=labels)
    ds = StepCall("split", {"test_fraction": 0.25}).apply(StepCall(
        "window", {"size": "series"}).apply(ds))
    call = StepCall("rocket_features", {"features": 168, "seed": 1})
    with dask.config.set(scheduler="sync"):
        whole = call.apply(ds.chunk({"unit": 20}))["rocket"].values
        pieces = call.apply(ds.chunk({"unit": 3}))["rocket"].values
        test = np.flatnonzero(ds["split"].values == "test")
        changed = ds.copy(deep=True)
        changed["windows"].values[test] *= -5  # the test units must not move the biases
        moved = call.apply(changed.chunk({"unit": 7}))["rocket"].values
    np.testing.assert_array_equal(whole, pieces)
    train = np.flatnonzero(ds["split"].values == "train")
    np.testing.assert_array_equal(whole[train], moved[train])
    assert whole.shape == (20, 1, 168) and 0 < whole.mean() < 1
