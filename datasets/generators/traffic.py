"""City road sensors: vehicle flow, speed and occupancy every 5 minutes.

Each unit is a loop detector on a road with its own capacity and free-flow
speed. Flow follows a daily profile (morning and evening rush hours on
weekdays, one broad midday hump at weekends and on public holidays) scaled
by a weekly pattern, with noise. Incidents (``label`` 1 while one lasts) cut
speed and raise occupancy for 20-120 minutes; sensor outages leave NaN for
1-6 hours.

Everything is a function of ``(seed, unit, week)``: a block is one week of
:data:`BLOCK` samples. Incidents and outages that start late in a week spill
into the next one, which looks back a week, so chunking never changes the bytes.
"""

from __future__ import annotations

import functools

import numpy as np

CHANNELS = ("flow", "speed", "occupancy")
UNITS_OF_MEASURE = {"flow": "vehicles/5min", "speed": "km/h", "occupancy": "%"}
STEP_SECONDS = 300.0
SAMPLE_RATE = 1.0 / STEP_SECONDS
#: Readings per day.
DAY = 288
#: Samples per generation block: one week (the unit of seeding).
BLOCK = 7 * DAY
CLASSES = ("free", "incident")
#: Days of the generated year (from day 0, a Monday) that are public holidays.
HOLIDAYS_PER_YEAR = 10


@functools.lru_cache(maxsize=256)
def _holidays(seed: int, year: int) -> frozenset[int]:
    chosen = np.random.default_rng([seed, year + 8, 11]).choice(365, HOLIDAYS_PER_YEAR,
                                                                replace=False)
    return frozenset(int(d) for d in chosen)


def is_holiday(seed: int, day: int) -> bool:
    year, day_of_year = divmod(day, 365)
    return day_of_year in _holidays(seed, year)


@functools.cache
def day_profile(weekend: bool) -> np.ndarray:
    """Relative flow over one day (DAY samples), peak about 1."""
    hours = np.arange(DAY) * STEP_SECONDS / 3600.0
    night = 0.06
    if weekend:
        return night + 0.7 * np.exp(-0.5 * ((hours - 13.5) / 3.2) ** 2)
    return (night + 0.95 * np.exp(-0.5 * ((hours - 8.0) / 1.1) ** 2)
            + 0.85 * np.exp(-0.5 * ((hours - 17.5) / 1.4) ** 2)
            + 0.45 * np.exp(-0.5 * ((hours - 12.5) / 2.5) ** 2))


WEEKLY = np.array([1.0, 1.02, 1.03, 1.04, 1.08, 0.85, 0.7])  # Monday..Sunday


def _sensor(seed: int, unit: int) -> tuple[float, float]:
    rng = np.random.default_rng([seed, unit, 1])
    return float(rng.uniform(60, 180)), float(rng.uniform(50, 110))  # capacity, free speed


def _events(seed: int, unit: int, week: int, tag: int, per_day: float,
            minutes: tuple[float, float]) -> list[tuple[int, int]]:
    """(start, length) in samples from the start of ``week`` for one kind of event."""
    rng = np.random.default_rng([seed, unit, week + 8, tag])  # + 8: weeks before 0 too
    count = rng.poisson(per_day * 7)
    starts = rng.integers(0, BLOCK, count)
    lengths = np.round(rng.uniform(*minutes, count) * 60 / STEP_SECONDS).astype(int) + 1
    return list(zip(starts.tolist(), lengths.tolist(), strict=True))


def _mask(seed: int, unit: int, week: int, tag: int, per_day: float,
          minutes: tuple[float, float]) -> np.ndarray:
    mask = np.zeros(BLOCK, dtype=bool)
    for back in (1, 0):  # events from last week may run into this one
        for start, length in _events(seed, unit, week - back, tag, per_day, minutes):
            begin = start - back * BLOCK
            mask[max(begin, 0):max(begin + length, 0)] = True
    return mask


def make_block(seed: int, unit: int, week: int, incidents_per_week: float = 1.5,
               outages_per_month: float = 1.0) -> np.ndarray:
    """One week of one sensor: (BLOCK, 4) float32 = flow, speed, occupancy, incident flag."""
    capacity, free_speed = _sensor(seed, unit)
    demand = np.concatenate([
        day_profile(weekday >= 5 or is_holiday(seed, week * 7 + weekday))
        * WEEKLY[weekday] * (0.9 if weekday >= 5 or is_holiday(seed, week * 7 + weekday)
                             else 1.0)
        for weekday in range(7)])
    rng = np.random.default_rng([seed, unit, week + 8, 2])
    flow = capacity * demand * rng.lognormal(0.0, 0.08, BLOCK)
    congestion = np.clip(demand, 0, None) ** 3
    speed = free_speed * (1.0 - 0.45 * congestion) + rng.normal(0, 2.0, BLOCK)
    occupancy = 100.0 * (0.04 + 0.35 * congestion) + rng.normal(0, 0.8, BLOCK)
    incident = _mask(seed, unit, week, 3, incidents_per_week / 7.0, (20, 120))
    speed = np.where(incident, speed * 0.35, speed)
    occupancy = np.where(incident, np.minimum(occupancy * 2.5 + 15, 95), occupancy)
    flow = np.where(incident, flow * 0.55, flow)
    outage = _mask(seed, unit, week, 4, outages_per_month / 30.0, (60, 360))
    values = np.stack([flow, np.clip(speed, 3, None), np.clip(occupancy, 0, 100),
                       incident.astype(float)], axis=1).astype(np.float32)
    values[outage, :3] = np.nan
    return values
