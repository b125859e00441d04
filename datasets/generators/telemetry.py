"""Industrial machine telemetry: vibration, temperature and motor current.

Each unit is a motor-driven machine turning at its own shaft speed (20-30 Hz).
Its class is one of:

- ``normal``: shaft harmonics, supply current, slow temperature swings, noise;
- ``imbalance``: a strong 1x shaft tone in vibration and current sidebands at 50 Hz +/- 1x;
- ``misalignment``: strong 2x and 3x shaft harmonics;
- ``bearing``: an outer-race defect: bursts of the housing resonance (200-400 Hz)
  repeating at the defect frequency (~3.58x shaft);
- ``overheating``: failing lubrication: broadband vibration, rising temperature and current.

A few short sensor dropouts (NaN in every channel) make the data realistic.

Everything is a function of ``(seed, unit, block)`` where a block is
:data:`BLOCK` samples: any chunk of any size is generated on its own, in
parallel, and the bytes do not depend on the chunking.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import blocks

CLASSES = ("normal", "imbalance", "misalignment", "bearing", "overheating")
CHANNELS = ("vibration", "temperature", "current")
UNITS_OF_MEASURE = {"vibration": "g", "temperature": "degC", "current": "A"}
#: Samples per generation block: the unit of seeding.
BLOCK = 65_536
SUPPLY_HZ = 50.0


@dataclass(frozen=True)
class MachineParameters:
    """What makes one machine (unit) different from the next."""

    label: int
    shaft_hz: float
    phases: tuple[float, float, float]
    harmonic_amplitudes: tuple[float, float, float]
    resonance_hz: float
    defect_ratio: float
    noise: float
    temperature_base: float
    temperature_slope_per_hour: float
    current_amplitude: float
    current_slope_per_hour: float
    sideband_amplitude: float


def machine_parameters(seed: int, unit: int) -> MachineParameters:
    """The parameters of ``unit``; classes are balanced within each group of 5 units."""
    n_classes = len(CLASSES)
    label = int(np.random.default_rng([seed, unit // n_classes, 7]).permutation(n_classes)
                [unit % n_classes])
    rng = np.random.default_rng([seed, unit, 1])
    name = CLASSES[label]
    amplitudes = [rng.uniform(0.3, 0.5), rng.uniform(0.1, 0.2), rng.uniform(0.03, 0.08)]
    if name == "imbalance":
        amplitudes[0] *= rng.uniform(3.0, 5.0)
    if name == "misalignment":
        amplitudes[1] *= rng.uniform(5.0, 7.0)
        amplitudes[2] *= rng.uniform(6.0, 9.0)
    overheating = name == "overheating"
    return MachineParameters(
        label=label,
        shaft_hz=float(rng.uniform(20.0, 30.0)),
        phases=tuple(float(p) for p in rng.uniform(0, 2 * np.pi, 3)),  # type: ignore[arg-type]
        harmonic_amplitudes=tuple(float(a) for a in amplitudes),  # type: ignore[arg-type]
        resonance_hz=float(rng.uniform(220.0, 380.0)),
        defect_ratio=float(rng.uniform(3.4, 3.8)) if name == "bearing" else 0.0,
        noise=float(rng.uniform(0.15, 0.25) * (4.0 if overheating else 1.0)),
        temperature_base=float(rng.uniform(40.0, 60.0)),
        temperature_slope_per_hour=float(rng.uniform(8.0, 15.0)) if overheating else 0.0,
        current_amplitude=float(rng.uniform(10.0, 20.0)),
        current_slope_per_hour=float(rng.uniform(1.0, 2.0)) if overheating else 0.0,
        sideband_amplitude=float(rng.uniform(0.8, 1.2)) if name == "imbalance" else 0.05,
    )


def _tone(hz: float, seconds: np.ndarray, phase: float = 0.0) -> np.ndarray:
    # Phase in float64 from the absolute time keeps tones exact after days of samples.
    return np.sin((2 * np.pi * hz) * seconds + phase)


def generate_block(seed: int, unit: int, block: int, sample_rate: float,
                   gaps_per_hour: float, params: MachineParameters | None = None) -> np.ndarray:
    """Samples ``[block*BLOCK, (block+1)*BLOCK)`` of ``unit``, shape (BLOCK, channel), float32."""
    p = params or machine_parameters(seed, unit)
    rng = np.random.default_rng([seed, unit, block, 2])
    seconds = (block * BLOCK + np.arange(BLOCK, dtype=np.float64)) / sample_rate
    out = np.empty((len(CHANNELS), BLOCK), dtype=np.float32)

    vibration = rng.standard_normal(BLOCK, dtype=np.float32) * np.float32(p.noise)
    for k, (amplitude, phase) in enumerate(zip(p.harmonic_amplitudes, p.phases, strict=True)):
        if (k + 1) * p.shaft_hz < sample_rate / 2:
            vibration += (amplitude * _tone((k + 1) * p.shaft_hz, seconds, phase)).astype(
                np.float32)
    if p.defect_ratio and p.resonance_hz < sample_rate / 2:
        # Impacts at the defect frequency ring the housing resonance.
        envelope = (0.5 + 0.5 * np.cos(2 * np.pi * p.defect_ratio * p.shaft_hz * seconds)) ** 16
        vibration += (2.0 * envelope * _tone(p.resonance_hz, seconds)).astype(np.float32)
    out[0] = vibration

    hours = seconds / 3600.0
    out[1] = (p.temperature_base + 0.4 * _tone(1 / 600, seconds, p.phases[0])
              + p.temperature_slope_per_hour * hours
              + 0.05 * rng.standard_normal(BLOCK))
    current = (p.current_amplitude + p.current_slope_per_hour * hours) * _tone(SUPPLY_HZ, seconds)
    for side in (SUPPLY_HZ - p.shaft_hz, SUPPLY_HZ + p.shaft_hz):
        current += p.sideband_amplitude * _tone(side, seconds, p.phases[1])
    out[2] = current + 0.3 * rng.standard_normal(BLOCK)

    block_hours = BLOCK / sample_rate / 3600.0
    for _ in range(rng.poisson(gaps_per_hour * block_hours)):
        start = int(rng.integers(0, BLOCK))
        length = int(rng.integers(5, 100))
        out[:, start:start + length] = np.nan
    return out.T


def generate_range(seed: int, unit: int, start: int, stop: int, sample_rate: float,
                   gaps_per_hour: float) -> np.ndarray:
    """Samples ``[start, stop)`` of ``unit`` as (time, channel), assembled from whole blocks."""
    params = machine_parameters(seed, unit)
    return blocks.generate_range(
        lambda s, u, b: generate_block(s, u, b, sample_rate, gaps_per_hour, params),
        BLOCK, seed, unit, start, stop)
