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
    """Samples ``[start, stop)`` of ``unit``, from the blocks ``make_block`` defines."""
    first, last = start // block, (stop - 1) // block
    pieces = [make_block(seed, unit, index) for index in range(first, last + 1)]
    joined = pieces[0] if len(pieces) == 1 else np.concatenate(pieces, axis=0)
    offset = first * block
    return joined[start - offset:stop - offset]
