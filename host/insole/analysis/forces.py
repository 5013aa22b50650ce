"""Pin voltages to newtons per channel, the channel faults, and the foot's total force.

:class:`ForceConverter` works block by block (the streaming core feeds it); every judgement
that used to look at the whole run has an online form here (docs/analysis.md, Streaming):

- *shorted*: a channel saturated (at the ADC's clip, or at 99.5 % of the supply, whichever is
  lower) for a second without a break is shorted from the sample where that second is complete;
  the device's fault bit (STATUS) on a channel that has reached saturation before it makes it
  shorted from that STATUS on. A shorted channel is left out of the total from then on.
- *disconnected*: a channel whose highest reading so far is 0 V (reported at the end).
- *saturated samples*: a running count.
"""

from __future__ import annotations

import logging

import numpy as np

from insole import protocol as P
from insole.analysis.stream import Block, FootStream
from insole.model import hardware
from insole.model.sensor import (
    DEFAULT_BETA,
    DEFAULT_K_N_OHM,
    force_from_volts,
    saturation_v,
)

log = logging.getLogger(__name__)

SHORTED_REASON = ("pinned at {sat_v:.2f} V or above (the ADC's clip) for a second or more: "
                  "shorted; left out of the total force")
DEVICE_SHORT_REASON = ("the device reports a fault and the channel reaches the ADC's clip: shorted "
                       "(intermittently)")
DISCONNECTED_REASON = "reads 0 V throughout: disconnected, or never loaded above the ADC's floor"


class Calibration:
    """k and β per zone of one foot (volts → newtons), and its name in the report.

    Args:
        channels: optional ``{zone: (k_n_ohm, beta)}`` overriding the default sensor model
            (``k = 4.0e5 N·Ω``, ``β = 1``) per zone.
        name: how the report names this calibration (file name, or ``"default sensor model"``).
    """

    def __init__(self, channels: dict[str, tuple[float, float]] | None = None,
                 name: str = "default sensor model (k=4.0e5 N·Ω, β=1)") -> None:
        self.channels = dict(channels or {})
        self.name = name

    def converter(self, info: P.Info, rate_hz: float) -> ForceConverter:
        return ForceConverter(self, info, rate_hz)

    def apply(self, stream: FootStream) -> Calibration:
        """A whole stream at once (CSV export): sets ``force_n_`` (n, C), ``total_n_``,
        ``fault_mask_``, ``shorted_mask_``, ``fault_reasons_`` and ``saturated_samples_``."""
        conv = self.converter(stream.info, stream.rate_hz)
        b = Block.from_volts(0, stream.volts)
        self.force_n_, self.total_n_ = conv.feed(0, b.units, b.valid)
        self.fault_mask_, self.shorted_mask_, self.fault_reasons_ = conv.faults(
            int(stream.quality.get("device_fault_mask", 0) or 0))
        self.saturated_samples_ = conv.saturated_samples
        return self


class ForceConverter:
    """One foot's volts → newtons, block by block, with the channel-fault state (online)."""

    def __init__(self, cal: Calibration, info: P.Info, rate_hz: float) -> None:
        self.name = cal.name
        self.supply_v = info.supply_mv / 1000.0
        self.r_fixed_ohm = info.r_fixed_ohm
        self.k, self.beta = np.array([cal.channels.get(z, (DEFAULT_K_N_OHM, DEFAULT_BETA))
                                      for z in info.zones], dtype=float).T
        self.sat_v = saturation_v(self.supply_v, hardware.adc_full_scale_mv() / 1000.0)
        c = len(info.zones)
        self.c = c
        self.n_sec = max(1, int(round(rate_hz)))
        self.saturated_samples = 0
        self.top_v = np.full(c, -np.inf)
        self.run = np.zeros(c, np.int64)  # saturated samples in a row at the end so far
        self.first_sat_row = np.full(c, -1, np.int64)
        self.shorted_from = np.full(c, -1, np.int64)  # row from which a channel is left out
        self.reasons: dict[int, str] = {}
        # F = k·G^β with G from the divider (insole.model.sensor.force_from_volts) for every
        # possible sample value; a saturated reading is a fault, not a force (0 here, and bad)
        v = np.arange(1 << 16) * P.SAMPLE_UNIT_V
        lut = np.stack([force_from_volts(v, self.supply_v, self.r_fixed_ohm, k, b,
                                         saturated_v=self.sat_v)
                        for k, b in zip(self.k, self.beta)])
        self._sat_units = int(np.argmax(np.isnan(lut[0]))) if np.isnan(lut[0]).any() else 1 << 16
        self._lut = np.nan_to_num(lut, nan=0.0)
        self._chan = np.arange(c)[None, :]

    def _short(self, ch: int, row: int, reason: str) -> None:
        if self.shorted_from[ch] < 0:
            self.shorted_from[ch] = row
            self.reasons[ch] = reason

    def feed(self, row0: int, units: np.ndarray, valid: np.ndarray,
             device_faults: list[tuple[int, int]] = (),
             want_force: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
        """Newtons per channel (NaN where saturated or missing; None unless ``want_force``) and
        the total (NaN where no kept channel has a sample) of the rows ``row0 ...`` (samples
        in wire units, ``valid`` where they arrived). Sets ``f0`` (newtons, 0 where NaN) and
        ``total_all`` (every channel) for the metrics."""
        m, c = units.shape
        # newtons by table: one entry per possible sample value and channel
        f0 = self._lut[self._chan, units]
        saturated = units >= self._sat_units
        missing = ~valid
        any_sat = saturated.any(axis=0)
        if any_sat.any():
            saturated &= valid[:, None]
            any_sat = saturated.any(axis=0)
        bad = saturated | missing[:, None] if any_sat.any() else None
        if missing.any():
            f0[missing] = 0.0
        if bad is None:  # the usual case: nothing saturated
            n_bad = np.where(missing, c, 0)
            bad = np.broadcast_to(missing[:, None], (m, c))
        else:
            n_bad = np.count_nonzero(bad, axis=1)
        self.f0, self._bad, self._n_bad = f0, bad, n_bad
        if m and valid.any():
            top = (units[valid].max(axis=0) if not valid.all() else units.max(axis=0))
            self.top_v = np.fmax(self.top_v, top * P.SAMPLE_UNIT_V)
        for ch in np.flatnonzero(any_sat):
            col = saturated[:, ch]
            self.saturated_samples += int(col.sum())
            if self.first_sat_row[ch] < 0:
                self.first_sat_row[ch] = row0 + int(np.argmax(col))
            # length of the saturated run ending at each sample, the run before carried in
            idx = np.arange(m)
            last_off = np.maximum.accumulate(np.where(col, -1, idx))
            runlen = np.where(last_off < 0, self.run[ch] + idx + 1, idx - last_off)
            if self.shorted_from[ch] < 0:
                hit = np.flatnonzero(runlen >= self.n_sec)
                if len(hit):
                    self._short(ch, row0 + int(hit[0]), SHORTED_REASON.format(sat_v=self.sat_v))
            self.run[ch] = runlen[-1]
        self.run[~any_sat] = 0
        for row, mask in device_faults:
            for ch in range(self.c):
                if mask & (1 << ch) and 0 <= self.first_sat_row[ch] <= row:
                    self._short(ch, row, DEVICE_SHORT_REASON)
        total = self._total(row0)
        if not want_force:
            return None, total
        force = f0.copy()
        force[bad] = np.nan
        return force, total

    def _total(self, row0: int) -> np.ndarray:
        """The total over the channels not left out; sets ``total_all`` (every channel)."""
        c = self.c
        f0, nan, n_nan = self.f0, self._bad, self._n_bad.copy()
        total_all = f0 @ np.ones(c)  # a matrix-vector product: much faster than sum(axis=1)
        total_all[n_nan == c] = np.nan
        self.total_all = total_all
        sf = self.shorted_from
        left_out = np.flatnonzero((sf >= 0) & (sf < row0 + f0.shape[0]))
        if not len(left_out) or len(left_out) == c:  # never leave every channel out
            return total_all
        total = total_all.copy()
        kept = np.full(f0.shape[0], c)
        for ch in left_out:
            r = max(0, int(sf[ch]) - row0)
            total[r:] -= f0[r:, ch]
            n_nan[r:] -= nan[r:, ch]
            kept[r:] -= 1
        total[n_nan == kept] = np.nan
        return total

    def faults(self, device_fault_mask: int = 0) -> tuple[int, int, dict[int, str]]:
        """(all faults, shorted) as bit masks and a reason per channel, as of now."""
        mask = shorted = 0
        reasons: dict[int, str] = {}
        for ch in range(self.c):
            if self.shorted_from[ch] >= 0:
                mask |= 1 << ch
                shorted |= 1 << ch
                reasons[ch] = self.reasons[ch]
            elif self.top_v[ch] <= 0.0:
                mask |= 1 << ch
                reasons[ch] = DISCONNECTED_REASON
        return mask, shorted, reasons
