"""Pin voltages to newtons per channel, the channel faults, and the foot's total force."""

from __future__ import annotations

import logging
import warnings

import numpy as np

from insole.analysis.arrays import longest_run
from insole.analysis.stream import FootStream
from insole.model import hardware
from insole.model.sensor import (
    DEFAULT_BETA,
    DEFAULT_K_N_OHM,
    force_from_volts,
    saturation_v,
)

log = logging.getLogger(__name__)


# --- calibration ------------------------------------------------------------------------------


class Calibration:
    """Pin voltages → force in newtons for each channel of one foot.

    Args:
        channels: optional ``{zone: (k_n_ohm, beta)}`` overriding the default sensor model
            (``k = 4.0e5 N·Ω``, ``β = 1``) per zone.
        name: how the report names this calibration (file name, or ``"default sensor model"``).
    """

    def __init__(self, channels: dict[str, tuple[float, float]] | None = None,
                 name: str = "default sensor model (k=4.0e5 N·Ω, β=1)") -> None:
        self.channels = dict(channels or {})
        self.name = name

    def apply(self, stream: FootStream) -> Calibration:
        """Sets ``force_n_`` (n, C), ``fault_mask_``, ``shorted_mask_`` (channels to leave out of
        the total), ``fault_reasons_`` and ``saturated_samples_``; returns self."""
        info = stream.info
        supply_v = info.supply_mv / 1000.0
        v = stream.volts
        k, beta = np.array([self.channels.get(z, (DEFAULT_K_N_OHM, DEFAULT_BETA))
                            for z in info.zones], dtype=float).T
        sat_v = saturation_v(supply_v, hardware.adc_full_scale_mv() / 1000.0)
        force = force_from_volts(v, supply_v, info.r_fixed_ohm, k, beta, saturated_v=sat_v)
        saturated = v >= sat_v
        self.saturated_samples_ = int(np.count_nonzero(saturated))
        self.fault_mask_, self.shorted_mask_, self.fault_reasons_ = _fault_mask(
            v, saturated, stream.rate_hz, sat_v)
        # The device's own fault bit (STATUS) on a channel that reached saturation: also a short
        # (an intermittent one the host's one-second rule can miss). A device fault on a channel
        # that reads 0 V (disconnected) is reported; it adds nothing to the total either way.
        device_mask = int(stream.quality.get("device_fault_mask", 0) or 0)
        for c in range(v.shape[1]):
            if device_mask & (1 << c) and saturated[:, c].any() and not self.shorted_mask_ & (1 << c):
                self.shorted_mask_ |= 1 << c
                self.fault_mask_ |= 1 << c
                self.fault_reasons_[c] = ("the device reports a fault and the channel reaches the "
                                          "ADC's clip: shorted (intermittently)")
        self.force_n_ = force
        return self


def _fault_mask(v: np.ndarray, saturated: np.ndarray, rate_hz: float,
                sat_v: float) -> tuple[int, int, dict[int, str]]:
    """Channels that look broken: (all faults, shorted ones) as bit masks, and a reason each.

    A channel that never leaves 0 V is disconnected, or never loaded (a healthy arch can stay
    under the original ESP32 ADC's 150 mV floor all run): reported, and it adds nothing to the
    total anyway. A channel saturated (at the ADC's clip, or at 99.5 % of the supply, whichever is
    lower: ``sat_v``) for a second or more is shorted: reported and left out of the total force.
    """
    n_sec = max(1, int(round(rate_hz)))
    mask, shorted, reasons = 0, 0, {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a channel with no sample at all
        top = np.nanmax(v, axis=0) if len(v) else np.zeros(v.shape[1])
    shorted_any = np.any(saturated, axis=0)
    for c in range(v.shape[1]):
        if top[c] <= 0.0:
            mask |= 1 << c
            reasons[c] = ("reads 0 V throughout: disconnected, or never loaded above the ADC's "
                          "floor")
            continue
        if shorted_any[c] and longest_run(saturated[:, c].view(np.int8)) >= n_sec:
            mask |= 1 << c
            shorted |= 1 << c
            reasons[c] = (f"pinned at {sat_v:.2f} V or above (the ADC's clip) for a second or "
                          "more: shorted; left out of the total force")
    return mask, shorted, reasons



def total_force(force_n: np.ndarray, fault_mask: int = 0) -> np.ndarray:
    """Sum of the zones' forces; faulted channels left out; NaN where no sample arrived."""
    keep = [c for c in range(force_n.shape[1]) if not fault_mask & (1 << c)]
    f = force_n[:, keep] if keep else force_n
    missing = np.all(np.isnan(f), axis=1)
    total = np.nansum(f, axis=1)
    total[missing] = np.nan
    return total
