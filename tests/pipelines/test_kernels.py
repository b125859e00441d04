"""The compiled CPU kernels against the array-module code they replace on NumPy blocks
(that code is what CuPy blocks run, and the reference here)."""

from __future__ import annotations

import numpy as np
import pytest

from suanli.pipelines.steps import features, preprocess

SIZE = 256
BANDS = [[1, 20], [20, 40], [40, 128]]
# Any subset, in any order: the kernel computes all and the step picks.
STATS = ("kurtosis", "mean", "crest_factor", "peak_to_peak", "std", "rms", "skewness")


def _tolerance(dtype: type) -> float:
    return 2e-4 if dtype == np.float32 else 1e-9


def _windows(dtype: type) -> np.ndarray:
    """(unit, channel, window, sample), with windows that need the reference's semantics."""
    rng = np.random.default_rng(0)
    # 700 windows: two full batches and a short one.
    data = (rng.standard_normal((2, 3, 700, SIZE)) * 2 + 0.5).astype(dtype)
    data[0, 1, 7, 10:20] = np.nan   # a NaN gap left by fill_gaps
    data[1, 2, 650, 3] = np.inf
    data[1, 0, 30] = 1.5            # constant: skewness and kurtosis 0
    data[0, 2, 400] *= 1e3          # large values against small ones
    return data


def _interleaved(data: np.ndarray) -> np.ndarray:
    """(unit, channel, window, sample) -> the panel's (unit, window, sample, channel) layout."""
    return np.ascontiguousarray(np.moveaxis(data, 1, 3))


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # the inf window
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("taper", ["hann", "none"])
def test_window_features_compiled_match_the_reference(dtype: type, taper: str) -> None:
    data = _windows(dtype)
    weights = features.band_weights(SIZE, 256.0, BANDS, taper).astype(dtype)
    taper_values = features._taper(SIZE, taper).astype(dtype)
    for bands, stats in ((weights, STATS), (None, STATS), (weights, ())):
        compiled = features._features_compiled(_interleaved(data), None, weights=bands,
                                               taper=taper_values, stats=stats)
        reference = features._features_array_module(data, weights=bands, taper=taper_values,
                                                    stats=stats)
        assert compiled.dtype == dtype and compiled.shape == reference.shape
        np.testing.assert_array_equal(np.isnan(compiled), np.isnan(reference))
        tolerance = _tolerance(dtype)
        np.testing.assert_allclose(compiled, reference, rtol=tolerance, atol=tolerance)
    constant = features._features_compiled(_interleaved(data), None, weights=None,
                                           taper=taper_values, stats=STATS)
    assert constant[1, 30, 0, STATS.index("skewness")] == 0
    assert constant[1, 30, 0, STATS.index("kurtosis")] == 0


def test_window_features_step_reads_strided_blocks_like_contiguous_ones() -> None:
    data = _windows(np.float32)[:, :, :40]
    weights = features.band_weights(SIZE, 256.0, BANDS, "hann").astype(np.float32)
    taper = features._taper(SIZE, "hann").astype(np.float32)
    contiguous = np.moveaxis(data, 1, 3)    # what the preprocessing steps hand over
    interleaved = np.ascontiguousarray(contiguous)   # (unit, window, sample, channel) in memory
    a, b = (features.features_block(block, None, weights=weights, taper=taper, log=True,
                                     stats=STATS) for block in (contiguous, interleaved))
    np.testing.assert_array_equal(a, b)


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
    found = np.moveaxis(preprocess.chunk_moments(block, axis=axis), axis, -1)
    np.testing.assert_array_equal(found[..., 0], shape[axis])
    np.testing.assert_allclose(found[..., 1], series.mean(axis=axis), rtol=1e-6)
    np.testing.assert_allclose(found[..., 2], ((series - series.mean(axis=axis, keepdims=True))
                                               ** 2).sum(axis=axis), rtol=1e-5)
    stats = preprocess.merge_moments(preprocess.chunk_moments(block, axis=axis), axis=axis,
                                      out_dtype=dtype)
    out = preprocess._standardise(block, stats, axis=axis)
    expected = ((block - block.mean(axis=axis, keepdims=True))
                / block.std(axis=axis, keepdims=True))
    assert out.dtype == dtype and out.shape == block.shape
    np.testing.assert_allclose(out, expected, rtol=_tolerance(dtype), atol=_tolerance(dtype))
    # Any memory layout (here: samples contiguous, fill_gaps' layout on GPUs) gives
    # the same result.
    strided = np.moveaxis(np.ascontiguousarray(np.moveaxis(block, axis, -1)), -1, axis)
    np.testing.assert_allclose(preprocess._standardise(strided, stats, axis=axis), out,
                               rtol=_tolerance(dtype), atol=_tolerance(dtype))


@pytest.mark.parametrize("samples_contiguous", [False, True])
@pytest.mark.parametrize(("shape", "axis"), LAYOUTS)
def test_fill_gaps_compiled_matches_the_reference(monkeypatch: pytest.MonkeyPatch,
                                                  shape: tuple[int, ...], axis: int,
                                                  samples_contiguous: bool) -> None:
    rng = np.random.default_rng(2)
    block = rng.standard_normal(shape).astype(np.float32)
    if samples_contiguous:
        block = np.moveaxis(np.ascontiguousarray(np.moveaxis(block, axis, -1)), -1, axis)
    moved = np.moveaxis(block, axis, 0)  # a view: gaps along the time axis
    moved[10:20, ...] = np.nan           # in every series
    moved[2040:2060, 0] = np.nan         # across a tile boundary, in the first series
    moved[3000:3400, -1] = np.nan        # longer than max_gap: stays NaN
    moved[-5:, 0] = np.nan               # at the end: continues into the next chunk
    before = rng.standard_normal(moved[:8].shape).astype(np.float32)
    after = np.full_like(before, np.nan)
    after[3:] = 1.0
    edges = (np.moveaxis(before, 0, axis), np.moveaxis(after, 0, axis))
    arguments = {"max_gap": 64, "axis": axis, "used": [(8, 8)]}
    compiled = preprocess.fill_block(block, *edges, **arguments)
    monkeypatch.setattr(preprocess.kernels, "is_compiled_dtype", lambda array: False)
    reference = preprocess.fill_block(block, *edges, **arguments)
    np.testing.assert_array_equal(compiled, reference)
    assert compiled.strides == block.strides  # mended in the block's own layout
    assert np.isnan(np.moveaxis(compiled, axis, 0)[3000:3400, -1]).all()
    assert not np.isnan(np.moveaxis(compiled, axis, 0)[:3000]).any()
    assert np.isnan(block).sum() > np.isnan(compiled).sum()  # the input is left as it was


def test_fill_gaps_compiled_returns_a_block_without_gaps_uncopied() -> None:
    block = np.ones((1, 5000, 3), dtype=np.float32)
    block[0, 7, 2] = np.inf   # flags its tile, but is not a gap
    assert preprocess.fill_block(block, None, None, max_gap=8, axis=1, used=[(0, 0)]) is block


def test_chunk_moments_fall_back_to_nan_aware_sums() -> None:
    block = np.arange(30, dtype=np.float32).reshape(1, 10, 3)
    block[0, 4, 1] = np.nan
    found = preprocess.chunk_moments(block, axis=1)[0]   # (3 stats, channel)
    assert found[0].tolist() == [10, 9, 10]
    column = np.delete(block[0, :, 1], 4)
    assert found[1, 1] == pytest.approx(column.mean())
    assert found[2, 1] == pytest.approx(((column - column.mean()) ** 2).sum())
