"""Patients' vital signs once a second, with labelled deterioration episodes.

Channels: heart rate (bpm), SpO2 (%), respiratory rate (breaths/min),
systolic blood pressure (mmHg) and temperature (degC). Each patient has a
baseline; the heart rate carries respiratory sinus arrhythmia and slow drifts,
every channel has measurement noise, and probe-off dropouts leave short NaN
runs. Deterioration episodes (``label`` 1 while one lasts, 30-180 minutes,
``episodes_per_day`` per patient on average) raise heart and respiratory rate
and temperature and lower SpO2 and blood pressure, ramping in over the
first third of the episode. Most (:data:`PRODROME_SHARE`) are announced by a
prodrome: over the 1-6 hours before the onset the same signs drift a quarter
of the way there, as vital signs often do hours before a patient deteriorates
on a ward; the rest come without warning.

Everything is a function of ``(seed, unit, hour)``: a block is one hour of
:data:`BLOCK` samples; episodes look back a few hours and prodromes ahead,
so chunking never changes the bytes.
"""

from __future__ import annotations

import numpy as np

CHANNELS = ("heart_rate", "spo2", "resp_rate", "systolic_bp", "temperature")
UNITS_OF_MEASURE = {"heart_rate": "bpm", "spo2": "%", "resp_rate": "breaths/min",
                    "systolic_bp": "mmHg", "temperature": "degC"}
SAMPLE_RATE = 1.0
#: Samples per generation block: one hour at 1 Hz.
BLOCK = 3600
CLASSES = ("stable", "deteriorating")
MAX_EPISODE_HOURS = 3
#: Prodromes last up to this long before an onset.
MAX_PRODROME_HOURS = 6
PRODROME_SHARE = 0.7
#: How far a prodrome goes towards the episode's full signs.
PRODROME_DEPTH = 0.25


def prodrome(seed: int, unit: int, hour: int, start: int) -> float:
    """Length in seconds of the prodrome before the episode starting at ``start``
    seconds into ``hour`` (0: none)."""
    rng = np.random.default_rng([seed, unit, hour + 8, start, 4])
    announced = rng.random() < PRODROME_SHARE
    return float(rng.uniform(1.0, MAX_PRODROME_HOURS) * 3600) if announced else 0.0


def _baseline(seed: int, unit: int) -> np.ndarray:
    rng = np.random.default_rng([seed, unit, 1])
    return np.array([rng.uniform(60, 90), rng.uniform(95, 99), rng.uniform(12, 18),
                     rng.uniform(105, 135), rng.uniform(36.4, 37.1)])


def episodes(seed: int, unit: int, hour: int, per_day: float) -> list[tuple[int, int]]:
    """Episodes starting in ``hour``: (start second within the hour, length in seconds)."""
    rng = np.random.default_rng([seed, unit, hour + 8, 3])  # + 8: hours before 0 too
    count = rng.poisson(per_day / 24.0)
    starts = rng.integers(0, BLOCK, count)
    lengths = rng.integers(30 * 60, MAX_EPISODE_HOURS * 3600, count)
    return list(zip(starts.tolist(), lengths.tolist(), strict=True))


def make_block(seed: int, unit: int, hour: int, episodes_per_day: float = 0.5,
               dropouts_per_hour: float = 0.5) -> np.ndarray:
    """One hour of one patient: (BLOCK, 6) float32 = five channels and the episode flag."""
    base = _baseline(seed, unit)
    rng = np.random.default_rng([seed, unit, hour, 2])
    seconds = hour * BLOCK + np.arange(BLOCK)
    breathing = base[2] / 60.0
    heart = (base[0] + 3.0 * np.sin(2 * np.pi * breathing * seconds)
             + 4.0 * np.sin(2 * np.pi * seconds / 5400.0 + unit) + rng.normal(0, 1.5, BLOCK))
    spo2 = base[1] + rng.normal(0, 0.4, BLOCK)
    resp = base[2] + 1.0 * np.sin(2 * np.pi * seconds / 3000.0) + rng.normal(0, 0.8, BLOCK)
    bp = base[3] + 5.0 * np.sin(2 * np.pi * seconds / 7200.0) + rng.normal(0, 3.0, BLOCK)
    temperature = base[4] + 0.2 * np.sin(2 * np.pi * seconds / 86400.0) + rng.normal(0, 0.03,
                                                                                      BLOCK)
    severity = np.zeros(BLOCK)
    flag = np.zeros(BLOCK, dtype=bool)
    for back in range(MAX_EPISODE_HOURS, -1, -1):
        for start, length in episodes(seed, unit, hour - back, episodes_per_day):
            begin = start - back * BLOCK
            t = np.arange(BLOCK) - begin
            inside = (t >= 0) & (t < length)
            flag |= inside
            ramp = np.clip(t / (length / 3.0), 0, 1)
            severity = np.where(inside, np.maximum(severity, ramp), severity)
    for ahead in range(0, MAX_PRODROME_HOURS + 1):
        for start, _ in episodes(seed, unit, hour + ahead, episodes_per_day):
            lead = prodrome(seed, unit, hour + ahead, start)
            if lead:
                until = start + ahead * BLOCK - np.arange(BLOCK)  # seconds to the onset
                drift = PRODROME_DEPTH * np.clip(1 - until / lead, 0, 1) ** 2
                severity = np.where(until > 0, np.maximum(severity, drift), severity)
    heart = heart + 35.0 * severity
    spo2 = spo2 - 7.0 * severity
    resp = resp + 10.0 * severity
    bp = bp - 30.0 * severity
    temperature = temperature + 1.3 * severity
    values = np.stack([heart, np.clip(spo2, 70, 100), resp, bp, temperature,
                       flag.astype(float)], axis=1).astype(np.float32)
    for _ in range(rng.poisson(dropouts_per_hour)):
        start = int(rng.integers(0, BLOCK))
        values[start:start + int(rng.integers(5, 120)), :5] = np.nan
    return values
