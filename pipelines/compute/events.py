"""Events ahead of each time step: onsets of a flagged state, and whether one
comes within a horizon.

A block is ``(unit, time)`` holding whole series (the look ahead spans the
series). Flags are 1 while the state lasts (NaN: not observed, taken as 0);
an onset is a step where the flag turns 1 (a series that starts flagged has
no onset there: its start was not seen). NumPy blocks.
"""

from __future__ import annotations

import numpy as np


def onsets(flags: np.ndarray) -> np.ndarray:
    """(unit, time) booleans: where the flag turns on."""
    on = np.nan_to_num(flags) > 0
    turned = np.zeros_like(on)
    turned[:, 1:] = on[:, 1:] & ~on[:, :-1]
    return turned


def steps_to_next_onset(flags: np.ndarray) -> np.ndarray:
    """(unit, time) steps from each time step to the next onset strictly after it;
    NaN where none follows."""
    starts = onsets(flags)
    length = flags.shape[1]
    position = np.where(starts, np.arange(length), length)
    # The first onset at or after each step, then shifted: strictly after.
    at_or_after = np.minimum.accumulate(position[:, ::-1], axis=1)[:, ::-1]
    after = np.full_like(at_or_after, length)
    after[:, :-1] = at_or_after[:, 1:]
    distance = (after - np.arange(length)).astype(np.float64)
    return np.where(after < length, distance, np.nan)


def event_within(flags: np.ndarray, horizon: int) -> np.ndarray:
    """(unit, time) float: 1 if an onset comes within ``horizon`` steps after the
    step, 0 if none does and that much of the future was observed, NaN if the
    state is on at the step (nothing left to warn of) or the future is too short
    to tell."""
    ahead = steps_to_next_onset(flags)
    length = flags.shape[1]
    seen_enough = np.arange(length) + horizon <= length - 1
    label = np.where(ahead <= horizon, 1.0, np.where(seen_enough, 0.0, np.nan))
    return np.where(np.nan_to_num(flags) > 0, np.nan, label)
