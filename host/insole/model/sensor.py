"""The force-sensor model of PROTOCOL.md and its inverse.

Each FSR sits in a divider: sensor from the supply to the ADC pin, ``r_fixed_ohm`` from the pin
to ground, so ``V = supply · R_fixed / (R_fixed + R_sensor)``. Conductance ``G = 1/R_sensor`` is
taken as ``G = (F / k)^(1/β)``, i.e. ``F = k · G^β`` with ``k = 4.0e5 N·Ω`` and ``β = 1`` by default
(1 kΩ ↔ 400 N). A calibration file overrides ``k`` and ``β`` per channel.
"""

from __future__ import annotations

import numpy as np

from insole.protocol import SAMPLE_UNIT_V

DEFAULT_K_N_OHM = 4.0e5
DEFAULT_BETA = 1.0
# A reading at or above this fraction of the supply is a short, not a force.
FAULT_FRACTION = 0.995
# The ADC clips below the supply (the original ESP32 at about 3.1 V with 11 dB attenuation,
# hardware/pinmap.json): a reading at or above this fraction of its full scale is saturated.
ADC_CLIP_FRACTION = 0.99


def saturation_v(supply_v: float, adc_full_scale_v: float | None = None) -> float:
    """The pin voltage from which a reading says nothing about force: the lower of 99.5 % of the
    supply (the divider's own limit) and 99 % of the ADC's full scale (where it clips)."""
    limit = FAULT_FRACTION * supply_v
    if adc_full_scale_v is not None:
        limit = min(limit, ADC_CLIP_FRACTION * adc_full_scale_v)
    return limit


def volts_from_force(force_n, supply_v: float, r_fixed_ohm: float,
                     k_n_ohm: float = DEFAULT_K_N_OHM, beta: float = DEFAULT_BETA) -> np.ndarray:
    """Voltage at the ADC pin for a force on the sensor (negative forces read as 0 N)."""
    f = np.clip(np.asarray(force_n, dtype=float), 0.0, None)
    g = (f / k_n_ohm) ** (1.0 / beta)  # siemens
    x = r_fixed_ohm * g
    return supply_v * x / (1.0 + x)


def force_from_volts(volts, supply_v: float, r_fixed_ohm: float,
                     k_n_ohm: float = DEFAULT_K_N_OHM, beta: float = DEFAULT_BETA,
                     saturated_v: float | None = None) -> np.ndarray:
    """Force on the sensor from the pin voltage; NaN where the reading is saturated (at or above
    ``saturated_v``, by default 99.5 % of the supply: see :func:`saturation_v`).

    ``k_n_ohm`` and ``beta`` may be arrays that broadcast against ``volts`` (one per channel).
    """
    v = np.asarray(volts, dtype=float)
    k = np.asarray(k_n_ohm, dtype=float)
    beta = np.asarray(beta, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.maximum(v, 0.0)
        f /= r_fixed_ohm * (supply_v - v)
        if np.any(beta != 1.0):
            f **= beta
        f *= k
    f[v >= (FAULT_FRACTION * supply_v if saturated_v is None else saturated_v)] = np.nan
    return f


def volts_to_units(volts) -> np.ndarray:
    """Quantise volts to the wire's u16 units of 100 µV (saturating)."""
    return np.clip(np.rint(np.asarray(volts, dtype=float) / SAMPLE_UNIT_V), 0, 65535).astype(np.uint16)


def units_to_volts(units) -> np.ndarray:
    return np.asarray(units, dtype=float) * SAMPLE_UNIT_V
