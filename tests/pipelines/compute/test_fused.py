"""The fused chunk computation against the separate computations it replaces."""

from __future__ import annotations

import numpy as np

from suanli.pipelines.compute import fused, gaps, moments
from suanli.pipelines.compute.window_features import feature_options, features_block


def test_fill_zscore_features_equals_fill_then_standardise_then_features() -> None:
    rng = np.random.default_rng(5)
    block = (rng.standard_normal((2, 4096, 3)) * 2 + 1).astype(np.float32)
    block[0, 100:140, 1] = np.nan     # a gap inside a window
    block[1, 1020:1030, 0] = np.nan   # one across two windows
    block[1, 2000:2600, 2] = np.nan   # an outage longer than max_gap: stays NaN
    options = feature_options(256, 512.0, np.float32, bands=[[1, 50], [50, 200]],
                              taper="hann", log=True, stats=("mean", "std", "kurtosis"))
    found = fused.fill_zscore_features(block, max_gap=64, size=256, **options)

    filled = gaps.fill_block(block, None, None, max_gap=64, axis=1)
    scaling = moments.merge_moments(moments.chunk_moments(filled, axis=1), axis=1,
                                    out_dtype=np.float32)
    standardised = moments.standardise(filled, scaling, axis=1)
    expected = features_block(standardised.reshape(2, 16, 256, 3), None, **options)
    np.testing.assert_array_equal(found, expected)
    assert np.isnan(found[1, 7:11, 2]).all() and not np.isnan(found[0]).any()
