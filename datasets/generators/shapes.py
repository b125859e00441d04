"""Short labelled series whose classes differ in waveform shape and timing, not spectrum.

Each unit is one series (1 Hz, ``length`` samples, two channels): a bump early or
late in the series, or a sawtooth that ramps up or down, with a random amplitude,
position jitter, a slow random-walk drift and noise; the second channel carries a
delayed, weaker echo of the first plus its own noise. A late bump is an early one
moved in time, and a falling sawtooth is a rising one reversed: each pair has the
same power spectrum and the same distribution of values, so spectral band powers
and window statistics cannot tell them apart, while features that see shape can.
Everything is a function of ``(seed, unit)``.
"""

from __future__ import annotations

import numpy as np

CLASSES = ("bump_early", "bump_late", "ramp_up", "ramp_down")
CHANNELS = ("shape", "echo")
SAMPLE_RATE = 1.0


def label_of(seed: int, unit: int) -> int:
    """The class of ``unit``: balanced in each group of four, in a seeded order."""
    order = np.random.default_rng([seed, unit // len(CLASSES), 7]).permutation(len(CLASSES))
    return int(order[unit % len(CLASSES)])


def series(seed: int, unit: int, length: int, noise: float) -> np.ndarray:
    """One unit's series: (length, 2) float32."""
    rng = np.random.default_rng([seed, unit, 11])
    t = np.arange(length) / length
    label = label_of(seed, unit)
    amplitude = rng.uniform(0.8, 1.6)
    if label in (0, 1):
        centre = (0.27 if label == 0 else 0.73) + rng.uniform(-0.06, 0.06)
        width = rng.uniform(0.04, 0.07)
        shape = np.exp(-0.5 * ((t - centre) / width) ** 2)
    else:
        periods = rng.integers(2, 4)
        phase = rng.uniform(0, 1)
        saw = (t * periods + phase) % 1.0
        shape = saw if label == 2 else 1.0 - saw
    drift = np.cumsum(rng.normal(0, 0.02, length))
    first = amplitude * shape + drift + rng.normal(0, noise, length)
    delay = int(rng.integers(2, 6))
    echo = 0.5 * np.roll(first, delay) + rng.normal(0, noise, length)
    return np.stack([first, echo], axis=1).astype(np.float32)
