"""Generation in fixed blocks, so any chunk of any size is made on its own.

A generator defines one block (``BLOCK`` samples of one unit) as a pure
function of ``(seed, unit, block index)``; a range of samples is the
concatenation of the blocks it touches, sliced. The bytes of a dataset then
do not depend on its chunking, and every chunk can be made in parallel.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

BlockMaker = Callable[[int, int, int], np.ndarray]


def generate_range(make_block: BlockMaker, block: int, seed: int, unit: int, start: int,
                   stop: int) -> np.ndarray:
    """Samples ``[start, stop)`` of ``unit``, from the blocks ``make_block`` defines,
    as one C-ordered array: a panel's canonical (time, channel) layout, as Zarr
    reads it, which the compiled steps take without a copy."""
    first, last = start // block, (stop - 1) // block
    head = make_block(seed, unit, first)
    out = np.empty((stop - start, *head.shape[1:]), dtype=head.dtype)
    for index in range(first, last + 1):
        piece = head if index == first else make_block(seed, unit, index)
        begin, end = max(start, index * block), min(stop, (index + 1) * block)
        out[begin - start:end - start] = piece[begin - index * block:end - index * block]
    return out
