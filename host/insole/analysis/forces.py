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
        # a lacing pre-load reads in swing too: track each zone's swing baseline and remove it;
        # the ledger carries it per zone (stream.quality, which the document copies)
        sb = SwingBaseline().fit(force, stream.rate_hz, info.zones)
        force = sb.subtract(force)
        self.swing_baseline_n_ = sb.baseline_median_n_
        stream.quality["swing_baseline_n"] = sb.report_
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



class SwingBaseline:
    """Per-zone force that stays on in swing (a pre-load from tight lacing), tracked and removed.

    A foot in running or walking leaves the ground at least once in every ``window_s`` (2 s, over
    a stride at any cadence above 60 strides/min). In each window the swing is where the
    foot's total force is least; each zone's highest reading there (over the window's samples
    within 5 % of its force range of that least total and 100 ms or more from any sample that is
    not; then the most of it and its two neighbouring windows: a zone whose pre-load sits at the
    ADC's floor flickers between 0 and the floor with the noise, now and then, and the flicker
    must go too) is its baseline for the window,
    provided the window has a
    swing at all (its least total is under ``swing_max_frac`` of its largest: standing has
    none and keeps the neighbouring windows' baseline). The baseline is interpolated between
    window centres, so it follows a lacing that loosens, and subtracted from the zones whose
    median baseline is over ``min_baseline_n`` (2 N: sensor noise and the ADC floor leave the
    others untouched), and only when the swing itself is loaded: the median of the windows'
    least total at ``min_swing_total_n`` (10 N, half the contact threshold) or more. A swing
    that reads ~0 in total (the usual case, and every recording in ../shared/data) is left
    exactly as it is. Forces stay ≥ 0 and missing samples stay missing.
    """

    def __init__(self, window_s: float = 2.0, swing_max_frac: float = 0.3,
                 swing_band_frac: float = 0.05, edge_ms: float = 100.0,
                 min_baseline_n: float = 2.0, min_swing_total_n: float = 10.0) -> None:
        self.edge_ms = edge_ms
        self.min_swing_total_n = min_swing_total_n
        self.window_s = window_s
        self.swing_band_frac = swing_band_frac
        self.swing_max_frac = swing_max_frac
        self.min_baseline_n = min_baseline_n

    def fit(self, force_n: np.ndarray, rate_hz: float, zones: tuple[str, ...]) -> SwingBaseline:
        """Sets ``baseline_n_`` (n, C) or None, ``baseline_median_n_`` (C,), ``applied_`` (C,)
        and ``report_`` (for the quality ledger); returns self."""
        n, c = force_n.shape
        w = max(2, int(round(self.window_s * rate_hz)))
        nw = n // w
        self.baseline_n_ = None
        self.swing_total_n_ = 0.0
        self.baseline_median_n_ = np.zeros(c)
        self.applied_ = np.zeros(c, bool)
        if nw >= 1:
            f = force_n[: nw * w].reshape(nw, w, c)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-missing windows
                tot = np.where(np.all(np.isnan(f), axis=2), np.nan, np.nansum(f, axis=2))
                lo, hi = np.nanmin(tot, axis=1), np.nanmax(tot, axis=1)
                near = tot <= (lo + self.swing_band_frac * (hi - lo))[:, None]
                # away from the stance's edges: eroded by edge_ms on either side
                e = max(1, int(round(self.edge_ms * 1e-3 * rate_hz)))
                cs = np.concatenate(([0], np.cumsum(~near.ravel())))
                idx = np.arange(near.size)
                bad = cs[np.minimum(idx + e + 1, near.size)] - cs[np.maximum(idx - e, 0)]
                near = (bad == 0).reshape(near.shape)
                base = np.nanmax(np.where(near[:, :, None], f, np.nan), axis=1)  # (nw, C)
            swing = np.isfinite(lo) & (lo < self.swing_max_frac * hi)
            if swing.any():
                base = base[swing]
                # a rare flicker need not fall in every window: the most of three neighbours
                pad = np.vstack([base[:1], base, base[-1:]])
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # a channel all NaN (shorted)
                    base = np.nanmax(np.stack([pad[:-2], pad[1:-1], pad[2:]]), axis=0)
                    med = np.nanmedian(base, axis=0)
                centre = (np.flatnonzero(swing) + 0.5) * w
                self.baseline_median_n_ = np.nan_to_num(med)
                self.swing_total_n_ = float(np.median(lo[swing]))
                # only a swing that is really loaded: a foot whose swing reads ~0 in total (the
                # usual case) is left exactly as it is, toe-off tails and all
                self.applied_ = (self.baseline_median_n_ > self.min_baseline_n) & \
                    (self.swing_total_n_ >= self.min_swing_total_n)
                if self.applied_.any():
                    grid = np.arange(n)
                    self.baseline_n_ = np.stack(
                        [np.interp(grid, centre, np.nan_to_num(base[:, j])) if self.applied_[j]
                         else np.zeros(n) for j in range(c)], axis=1)
        self.report_ = {
            "window_s": self.window_s,
            "swing_total_n": round(self.swing_total_n_, 1),
            "median_n": {z: round(float(v), 1) for z, v in zip(zones, self.baseline_median_n_)},
            "subtracted": [z for z, a in zip(zones, self.applied_) if a]}
        return self

    def subtract(self, force_n: np.ndarray) -> np.ndarray:
        """``force_n`` less the fitted baseline (≥ 0; NaN stays NaN); unchanged if none."""
        if self.baseline_n_ is None:
            return force_n
        return np.maximum(force_n - self.baseline_n_, 0.0)  # NaN propagates through maximum


def total_force(force_n: np.ndarray, fault_mask: int = 0) -> np.ndarray:
    """Sum of the zones' forces; faulted channels left out; NaN where no sample arrived."""
    keep = [c for c in range(force_n.shape[1]) if not fault_mask & (1 << c)]
    f = force_n[:, keep] if keep else force_n
    missing = np.all(np.isnan(f), axis=1)
    total = np.nansum(f, axis=1)
    total[missing] = np.nan
    return total
