"""The window-features kernel against its array-module reference (what CuPy blocks
run), side by side on NumPy blocks."""

from __future__ import annotations

import numpy as np
import pytest

from suanli.pipelines.compute import window_features as wf

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
    weights = wf.band_weights(SIZE, 256.0, BANDS, taper).astype(dtype)
    taper_values = wf.taper_window(SIZE, taper).astype(dtype)
    for bands, stats in ((weights, STATS), (None, STATS), (weights, ())):
        compiled = wf._features_compiled(_interleaved(data), None, weights=bands,
                                               taper=taper_values, stats=stats)
        reference = wf.features_reference(data, weights=bands, taper=taper_values,
                                                    stats=stats)
        assert compiled.dtype == dtype and compiled.shape == reference.shape
        np.testing.assert_array_equal(np.isnan(compiled), np.isnan(reference))
        tolerance = _tolerance(dtype)
        np.testing.assert_allclose(compiled, reference, rtol=tolerance, atol=tolerance)
    constant = wf._features_compiled(_interleaved(data), None, weights=None,
                                           taper=taper_values, stats=STATS)
    assert constant[1, 30, 0, STATS.index("skewness")] == 0
    assert constant[1, 30, 0, STATS.index("kurtosis")] == 0


def test_window_features_step_reads_strided_blocks_like_contiguous_ones() -> None:
    data = _windows(np.float32)[:, :, :40]
    weights = wf.band_weights(SIZE, 256.0, BANDS, "hann").astype(np.float32)
    taper = wf.taper_window(SIZE, "hann").astype(np.float32)
    contiguous = np.moveaxis(data, 1, 3)    # what the preprocessing steps hand over
    interleaved = np.ascontiguousarray(contiguous)   # (unit, window, sample, channel) in memory
    a, b = (wf.features_block(block, None, weights=weights, taper=taper, log=True,
                                     stats=STATS) for block in (contiguous, interleaved))
    np.testing.assert_array_equal(a, b)


