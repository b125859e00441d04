"""City road sensors: vehicle flow, speed and occupancy every 5 minutes, with the weather.

Each unit is a loop detector on a road with its own capacity and free-flow
speed. Flow follows a daily profile (morning and evening rush hours on
weekdays, one broad midday hump at weekends and on the public holidays of a
real country, from the ``holidays`` package) scaled by a weekly pattern,
with noise. Rain (city-wide showers of 1-6 hours) cuts flow and speed while
it falls; the city's temperature and rain are two more channels, the same at
every sensor, as a weather station's. Incidents (``label`` 1 while one lasts)
cut speed and raise occupancy for 20-120 minutes; sensor outages leave the
sensor's own channels NaN for 1-6 hours.

Everything is a function of ``(seed, unit, week)``: a block is one week of
:data:`BLOCK` samples from a Monday. Events that start late in a week spill
into the next one, which looks back a week, so chunking never changes the bytes.
"""

from __future__ import annotations

import datetime
import functools

import holidays
import numpy as np

CHANNELS = ("flow", "speed", "occupancy", "temperature", "rain")
#: Channels a sensor measures itself (an outage blanks them); the rest is the weather.
SENSOR_CHANNELS = 3
UNITS_OF_MEASURE = {"flow": "vehicles/5min", "speed": "km/h", "occupancy": "%",
                    "temperature": "degC", "rain": "mm/h"}
STEP_SECONDS = 300.0
SAMPLE_RATE = 1.0 / STEP_SECONDS
#: Readings per day.
DAY = 288
#: Samples per generation block: one week (the unit of seeding).
BLOCK = 7 * DAY
CLASSES = ("free", "incident")
EPOCH = datetime.date(1970, 1, 1)


@functools.lru_cache(maxsize=256)
def _holidays(country: str, year: int) -> frozenset[datetime.date]:
    return frozenset(holidays.country_holidays(country, years=year))


def is_holiday(country: str, day: int) -> bool:
    """Whether ``day`` (days since 1970-01-01) is a public holiday in ``country``."""
    date = EPOCH + datetime.timedelta(days=day)
    return date in _holidays(country, date.year)


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


def weather(seed: int, week: int, first_day: int) -> tuple[np.ndarray, np.ndarray]:
    """The city's temperature (degC) and rain (mm/h) over one week: the same for
    every sensor. Showers (about one every two days, 1-6 h) may start in the
    week before; the temperature follows the season, the hour and a daily
    anomaly interpolated between days."""
    rain = np.zeros(BLOCK)
    for back in (1, 0):
        rng = np.random.default_rng([seed, week - back + 8, 5])
        count = rng.poisson(0.5 * 7)
        starts = rng.integers(0, BLOCK, count)
        lengths = rng.integers(12, 72, count)
        intensities = rng.uniform(0.5, 6.0, count)
        for start, length, intensity in zip(starts, lengths, intensities, strict=True):
            begin = int(start) - back * BLOCK
            rain[max(begin, 0):max(begin + int(length), 0)] += intensity
    hours = np.arange(BLOCK) * STEP_SECONDS / 3600.0
    day = first_day + week * 7 + hours / 24.0
    anomaly_days = np.arange(first_day + week * 7, first_day + week * 7 + 8)
    anomalies = [np.random.default_rng([seed, int(d) + 8, 6]).normal(0, 3.0)
                 for d in anomaly_days]
    temperature = (11.0 - 9.0 * np.cos(2 * np.pi * (day - 15.0) / 365.25)
                   + 4.0 * np.sin(2 * np.pi * (hours % 24 - 9.0) / 24.0)
                   + np.interp(day, anomaly_days, anomalies) - 1.5 * (rain > 0))
    return temperature, rain


def make_block(seed: int, unit: int, week: int, incidents_per_week: float = 1.5,
               outages_per_month: float = 1.0, first_day: int = 19723,
               country: str = "DE") -> np.ndarray:
    """One week of one sensor from the Monday ``first_day + 7 * week`` (days since
    1970-01-01): (BLOCK, 6) float32 = flow, speed, occupancy, temperature, rain,
    incident flag."""
    capacity, free_speed = _sensor(seed, unit)
    quiet = [weekday >= 5 or is_holiday(country, first_day + week * 7 + weekday)
             for weekday in range(7)]
    demand = np.concatenate([day_profile(quiet[weekday]) * WEEKLY[weekday]
                             * (0.9 if quiet[weekday] else 1.0) for weekday in range(7)])
    temperature, rain = weather(seed, week, first_day)
    wet = np.minimum(rain / 3.0, 1.0)
    rng = np.random.default_rng([seed, unit, week + 8, 2])
    flow = capacity * demand * (1.0 - 0.12 * wet) * rng.lognormal(0.0, 0.08, BLOCK)
    congestion = np.clip(demand, 0, None) ** 3
    speed = (free_speed * (1.0 - 0.45 * congestion) * (1.0 - 0.2 * wet)
             + rng.normal(0, 2.0, BLOCK))
    occupancy = 100.0 * (0.04 + 0.35 * congestion) + rng.normal(0, 0.8, BLOCK)
    incident = _mask(seed, unit, week, 3, incidents_per_week / 7.0, (20, 120))
    speed = np.where(incident, speed * 0.35, speed)
    occupancy = np.where(incident, np.minimum(occupancy * 2.5 + 15, 95), occupancy)
    flow = np.where(incident, flow * 0.55, flow)
    outage = _mask(seed, unit, week, 4, outages_per_month / 30.0, (60, 360))
    values = np.stack([flow, np.clip(speed, 3, None), np.clip(occupancy, 0, 100),
                       temperature, rain, incident.astype(float)], axis=1).astype(np.float32)
    values[outage, :SENSOR_CHANNELS] = np.nan
    return values
