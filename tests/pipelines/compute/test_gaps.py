"""Gap filling: the compiled path against the array-module reference, side by side."""

from __future__ import annotations

import numpy as np
import pytest

from suanli.pipelines.compute import gaps

# (shape, axis): a panel's interleaved channels, one series, many series (a grid:
# one value per lane vector), time first and time in the middle of more dims; 5003
# samples leave a partial tile and partial lane vectors.
LAYOUTS = [((2, 5003, 3), 1), ((1, 5003, 1), 1), ((5003, 70), 0), ((2, 5003, 2, 5), 1)]


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
    arguments = {"max_gap": 64, "axis": axis, "n_before": 8, "n_after": 8}
    compiled = gaps.fill_block(block, *edges, **arguments)
    monkeypatch.setattr(gaps, "is_compiled_dtype", lambda array: False)
    reference = gaps.fill_block(block, *edges, **arguments)
    np.testing.assert_array_equal(compiled, reference)
    assert compiled.strides == block.strides  # mended in the block's own layout
    assert np.isnan(np.moveaxis(compiled, axis, 0)[3000:3400, -1]).all()
    assert not np.isnan(np.moveaxis(compiled, axis, 0)[:3000]).any()
    assert np.isnan(block).sum() > np.isnan(compiled).sum()  # the input is left as it was


def test_fill_gaps_compiled_returns_a_block_without_gaps_uncopied() -> None:
    block = np.ones((1, 5000, 3), dtype=np.float32)
    block[0, 7, 2] = np.inf   # flags its tile, but is not a gap
    assert gaps.fill_block(block, None, None, max_gap=8, axis=1) is block


