"""Per-series moments and standardising: compiled kernels against NumPy, side by side."""

from __future__ import annotations

import numpy as np
import pytest

from suanli.pipelines.compute import moments


def _tolerance(dtype: type) -> float:
    return 2e-4 if dtype == np.float32 else 1e-9


# (shape, axis): a panel's interleaved channels, one series, many series (a grid:
# one value per lane vector), time first and time in the middle of more dims; 5003
# samples leave a partial tile and partial lane vectors.
LAYOUTS = [((2, 5003, 3), 1), ((1, 5003, 1), 1), ((5003, 70), 0), ((2, 5003, 2, 5), 1)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("shape", "axis"), LAYOUTS)
def test_chunk_moments_and_standardise_compiled_match_numpy(
        dtype: type, shape: tuple[int, ...], axis: int) -> None:
    rng = np.random.default_rng(1)
    block = (rng.standard_normal(shape) * 3 + 7).astype(dtype)
    series = block.astype(np.float64)
    found = np.moveaxis(moments.chunk_moments(block, axis=axis), axis, -1)
    np.testing.assert_array_equal(found[..., 0], shape[axis])
    np.testing.assert_allclose(found[..., 1], series.mean(axis=axis), rtol=1e-6)
    np.testing.assert_allclose(found[..., 2], ((series - series.mean(axis=axis, keepdims=True))
                                               ** 2).sum(axis=axis), rtol=1e-5)
    stats = moments.merge_moments(moments.chunk_moments(block, axis=axis), axis=axis,
                                      out_dtype=dtype)
    out = moments.standardise(block, stats, axis=axis)
    expected = ((block - block.mean(axis=axis, keepdims=True))
                / block.std(axis=axis, keepdims=True))
    assert out.dtype == dtype and out.shape == block.shape
    np.testing.assert_allclose(out, expected, rtol=_tolerance(dtype), atol=_tolerance(dtype))
    # Any memory layout (here: samples contiguous, fill_gaps' layout on GPUs) gives
    # the same result.
    strided = np.moveaxis(np.ascontiguousarray(np.moveaxis(block, axis, -1)), -1, axis)
    np.testing.assert_allclose(moments.standardise(strided, stats, axis=axis), out,
                               rtol=_tolerance(dtype), atol=_tolerance(dtype))


def test_chunk_moments_fall_back_to_nan_aware_sums() -> None:
    block = np.arange(30, dtype=np.float32).reshape(1, 10, 3)
    block[0, 4, 1] = np.nan
    found = moments.chunk_moments(block, axis=1)[0]   # (3 stats, channel)
    assert found[0].tolist() == [10, 9, 10]
    column = np.delete(block[0, :, 1], 4)
    assert found[1, 1] == pytest.approx(column.mean())
    assert found[2, 1] == pytest.approx(((column - column.mean()) ** 2).sum())
