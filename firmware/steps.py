# On-device step detector: feeds the STATUS cadence_spm and the BLE Running Speed and Cadence
# measurement. It sees one foot's total load (sum of channel readings, 100 uV units) once per
# sample set, from the sampler's timer callback, so feed() does integer work only and allocates
# nothing. Contact = the total rising through 30 % of a decaying peak (hysteresis: release at
# half that), at most one contact per 250 ms. Cadence is reported, as sports watches expect, in
# steps per minute of both feet: twice this foot's contacts per minute.
from array import array

from micropython import const

_HISTORY = const(4)  # contact intervals averaged for the cadence
_FLOOR_UNITS = const(2000)  # 0.2 V summed: below this nothing counts as a contact
_MAX_GAP_S = const(3)  # no contact for this long: cadence 0
RUNNING_SPM = const(140)  # at or above: RSC "running", below: "walking"


class StepDetector:
    def __init__(self, rate_hz):
        self._intervals = array("H", [0] * _HISTORY)
        self.set_rate(rate_hz)

    def set_rate(self, rate_hz):
        self._rate_hz = rate_hz
        self._refractory = rate_hz // 4
        self._max_gap = rate_hz * _MAX_GAP_S
        self.reset()

    def reset(self):
        self._since = 0  # sample sets since the last contact, saturating at 65535
        self._loaded = False
        self._peak = 0
        self._k = 0
        self._valid = 0  # intervals recorded since the last long gap
        self.steps = 0

    # Cost: about a dozen integer operations per sample set.
    def feed(self, total):
        since = self._since
        if since < 65535:
            since += 1
        peak = self._peak
        peak -= peak >> 10
        if total > peak:
            peak = total
        self._peak = peak
        hi = (peak * 3) // 10
        if hi < _FLOOR_UNITS:
            hi = _FLOOR_UNITS
        if self._loaded:
            if total < hi >> 1:
                self._loaded = False
        elif total > hi and since >= self._refractory:
            self._loaded = True
            self.steps += 1
            if since <= self._max_gap:
                self._intervals[self._k] = since
                self._k = (self._k + 1) % _HISTORY
                if self._valid < _HISTORY:
                    self._valid += 1
            else:
                self._valid = 0
            since = 0
        self._since = since

    def cadence_spm(self):
        # Steps per minute of both feet; 0 until two contacts a sensible time apart.
        n = self._valid
        if n == 0 or self._since > self._max_gap:
            return 0
        total = 0
        for i in range(n):
            total += self._intervals[(self._k - 1 - i) % _HISTORY]
        # 2 feet * 60 s * rate / mean interval, rounded
        spm = (120 * self._rate_hz * n + total // 2) // total
        return spm if spm < 255 else 255
