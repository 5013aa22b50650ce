# Fixed-rate sampler and DATA packet ring.
#
# tick() runs once per sample period from the board's timer callback (on the ESP32 a scheduled,
# "soft" callback). ISR contract: it reads every ADC channel, converts to 100 uV units, writes
# them into a preallocated packet buffer, updates the fault counters and the step detector, and
# allocates nothing (a test checks gc.mem_alloc() over thousands of calls).
#
# Time: ticks_us wraps at 2**30 on the ESP32, so the device clock is kept here as a 32-bit
# microsecond count accumulated from ticks_diff, held as two 16-bit halves (a 32-bit value
# would be a heap-allocated long int). Each sample set is labelled with its nominal slot
# time (slot k at t_start + k * period). Timer jitter up to `tolerance` is absorbed; when the
# real clock runs ahead of the slots by more than that, the missed slots are counted as dropped.
#
# Batch: a packet closes when it holds as many sets as the link's MTU allows (sets_for_mtu) or
# when it spans batch_ms of slots (sets_for_time), whichever comes first, so that a host sees a
# sample at most batch_ms after it was taken (docs/latency.md: 38 ms, 19 sets at 500 Hz, on
# serial and BLE alike). The count is of slots, so the simulator cuts the same packets.
#
# Ring: n_buffers packet buffers, one being filled by tick(), the rest ready for the link.
# Single producer (tick) / single consumer (the main loop): each side writes only its own
# counter. When every buffer is waiting for the link, tick() drops the sample set, counts it in
# `overruns` and sets the overrun flag of the next packet. It never blocks.
from array import array

from wire import DATA_HEADER_BYTES, FLAG_OVERRUN, put_data_header, sets_for_mtu, sets_for_time

from micropython import const

_MIN_TOLERANCE_US = const(8000)  # the ESP32 queues up to 4 timer callbacks: 4 x 2 ms
_SERIAL_MTU = const(247)  # serial links batch as a 247-byte ATT MTU would


class Sampler:
    def __init__(self, adcs, ticks_us, ticks_diff, steps, rate_hz=500, full_scale_units=65535,
                 n_buffers=8, max_mtu=247, batch_ms=0):
        self.channels = len(adcs)
        c = self.channels
        self._reads = [a.read_uv for a in adcs]  # bound methods, looked up once
        self._ticks_us = ticks_us
        self._ticks_diff = ticks_diff
        self._steps = steps
        self._step_feed = steps.feed
        self.max_sets = sets_for_mtu(max_mtu, c)
        self.batch_ms = batch_ms
        self._mtu_sets = self.max_sets
        self._time_sets = self.max_sets
        cap = DATA_HEADER_BYTES + 2 * c * self.max_sets
        self._bufs = [bytearray(cap) for _ in range(n_buffers)]
        self._views = [memoryview(b) for b in self._bufs]
        self._lens = array("H", [0] * n_buffers)
        self._scratch = bytearray(cap)  # sample sets read but not sent go here
        self._nbuf = n_buffers
        # Faults: consecutive sample sets at 0 or at/above full_scale_units, per channel.
        self._bad = array("H", [0] * c)
        self._full_scale = full_scale_units
        self.latest = array("H", [0] * c)
        self.side = 0
        self.emit = False
        self._seq = 0
        self._head = 0
        self._tail = 0
        self._produced = 0
        self._consumed = 0
        self._fill = 0
        self._t0_lo = 0
        self._t0_hi = 0
        self._pending_overrun = 0
        self._close_req = False
        self.overruns = 0
        self.taken = 0  # sample sets taken since boot, modulo 2**30
        self.achieved_hz = 0
        self._win_us = 0
        self._win_n = 0
        self._slot_lo = 0
        self._slot_hi = 0
        self._lag_us = 0
        self._frac_acc = 0
        self._last = ticks_us()
        self._n_sets = self.max_sets
        self._n_next = self.max_sets
        self.error = None
        self.configure(rate_hz)

    def configure(self, rate_hz):
        # Call with the timer stopped. period_us is the whole microseconds of the packets; the
        # remainder of 1e6 / rate is carried so slot times do not drift (e.g. 300 Hz).
        self.rate_hz = rate_hz
        self.period_us = 1000000 // rate_hz
        self._frac = 1000000 % rate_hz
        self._frac_acc = 0
        t = self.period_us * 3 // 2
        self._tolerance_us = t if t > _MIN_TOLERANCE_US else _MIN_TOLERANCE_US
        self._fault_after = rate_hz  # one second of sample sets
        self._time_sets = sets_for_time(rate_hz, self.batch_ms)
        self._n_next = self._batch()
        for i in range(self.channels):
            self._bad[i] = 0
        self._steps.set_rate(rate_hz)

    def set_mtu(self, mtu):
        # Batch size for a link MTU (None: serial only); applied at the next packet boundary.
        n = sets_for_mtu(mtu if mtu else _SERIAL_MTU, self.channels)
        self._mtu_sets = n if n < self.max_sets else self.max_sets
        self._n_next = self._batch()
        return self._n_next

    def _batch(self):
        # Sets in the next packet: what the MTU allows, or batch_ms of slots if fewer.
        m = self._mtu_sets
        t = self._time_sets
        return t if t < m else m

    def start(self):
        # Resume the device clock across the time the timer was stopped, then sample.
        now = self._ticks_us()
        self._advance(self._ticks_diff(now, self._last))
        self._last = now
        self._lag_us = 0

    def stop(self):
        # Call after the timer is stopped: the partial batch goes out as a short packet.
        if self._fill:
            self._close()

    def request_close(self):
        # From the main loop while the timer runs: close the partial batch at the next tick.
        self._close_req = True

    def _advance(self, add_us):
        lo = self._slot_lo + add_us
        self._slot_hi = (self._slot_hi + (lo >> 16)) & 0xFFFF
        self._slot_lo = lo & 0xFFFF

    def clock_us(self):
        # Device time of the latest slot (allocates a long int: not for the sampling path).
        return (self._slot_hi << 16) | self._slot_lo

    def _close(self):
        h = self._head
        buf = self._bufs[h]
        flags = self.side | (FLAG_OVERRUN if self._pending_overrun else 0)
        put_data_header(buf, flags, self.channels, self._seq, self._t0_lo, self._t0_hi,
                        self.period_us, self._fill)
        self._lens[h] = DATA_HEADER_BYTES + 2 * self.channels * self._fill
        self._seq = (self._seq + 1) & 0xFFFF
        self._pending_overrun = 0
        self._fill = 0
        self._head = (h + 1) % self._nbuf
        self._produced = (self._produced + 1) & 0xFFFF

    def tick(self, _timer=None):
        try:
            self._tick()
        except Exception as e:  # noqa: BLE001  the main loop restarts the stream and logs it
            self.error = e
            if self.emit:
                self.overruns += 1  # this sample set is lost
                self._pending_overrun = 1

    # Measured (`make bench`): 55-110 us per 5-channel set in the MicroPython wasm port on the
    # project's machine, fake ADC reads included; estimated 80-210 us on an ESP32 at 240 MHz with
    # five real ADC1 conversions, i.e. 4-11 % of the 2 ms period at 500 Hz.
    def _tick(self):
        now = self._ticks_us()
        el = self._ticks_diff(now, self._last)
        self._last = now
        # Achieved rate: sample sets per second of real clock.
        w = self._win_us + el
        n = self._win_n + 1
        if w >= 1000000:
            self.achieved_hz = n
            w -= 1000000
            n = 0
            if w >= 1000000:  # a stall of over a second: nothing was taken in it
                w = 0
        self._win_us = w
        self._win_n = n
        # Slot of this sample set: one period after the previous one.
        step = self.period_us
        acc = self._frac_acc + self._frac
        if acc >= self.rate_hz:
            acc -= self.rate_hz
            step += 1
        self._frac_acc = acc
        lag = self._lag_us + el - step
        if lag < -self._tolerance_us:
            # Called early (clock stepped or a burst): this set has no slot of its own.
            self._frac_acc = (acc - self._frac) % self.rate_hz
            self._lag_us = lag + step
            return
        self._advance(step)
        fill = self._fill
        if self._close_req:
            self._close_req = False
            if fill:
                self._close()
                fill = 0
        if lag > self._tolerance_us:
            # The timer fell behind by whole periods: those slots were never sampled.
            missed = lag // self.period_us
            acc = self._frac_acc + missed * self._frac
            add = missed * self.period_us + acc // self.rate_hz
            self._frac_acc = acc % self.rate_hz
            self._advance(add)
            lag -= add
            if self.emit:
                if fill:
                    self._close()  # the sets before the gap keep their unmarked packet
                    fill = 0
                self.overruns += missed
                self._pending_overrun = 1
        self._lag_us = lag
        # Where this set goes: the head packet buffer, or scratch when it cannot be kept.
        if not self.emit:
            fill = 0  # a partial batch of a stopped stream is not sent
            buf = self._scratch
            o = DATA_HEADER_BYTES
        elif ((self._produced - self._consumed) & 0xFFFF) >= self._nbuf:
            self.overruns += 1
            self._pending_overrun = 1
            buf = self._scratch
            o = DATA_HEADER_BYTES
        else:
            buf = self._bufs[self._head]
            if fill == 0:
                self._t0_lo = self._slot_lo
                self._t0_hi = self._slot_hi
                self._n_sets = self._n_next
            o = DATA_HEADER_BYTES + 2 * self.channels * fill
            fill += 1
        # Read, convert uV -> 100 uV units (rounded, saturating), store little-endian.
        reads = self._reads
        bad = self._bad
        latest = self.latest
        full = self._full_scale
        limit = self._fault_after
        total = 0
        for i in range(self.channels):
            v = (reads[i]() + 50) // 100
            if v > 65535:
                v = 65535
            elif v < 0:
                v = 0
            buf[o] = v & 0xFF
            buf[o + 1] = v >> 8
            o += 2
            latest[i] = v
            total += v
            if v == 0 or v >= full:
                if bad[i] < limit:
                    bad[i] += 1
            else:
                bad[i] = 0
        self._fill = fill
        if fill and fill >= self._n_sets:
            self._close()
        self.taken = (self.taken + 1) & 0x3FFFFFFF
        self._step_feed(total)

    def fault_mask(self):
        m = 0
        for i in range(self.channels):
            if self._bad[i] >= self._fault_after:
                m |= 1 << i
        return m

    # Consumer side (main loop only).
    def ready(self):
        return (self._produced - self._consumed) & 0xFFFF

    def packet(self):
        # The oldest ready DATA packet as a memoryview (valid until release()).
        t = self._tail
        return self._views[t][:self._lens[t]]

    def release(self):
        self._tail = (self._tail + 1) % self._nbuf
        self._consumed = (self._consumed + 1) & 0xFFFF

    def reset(self):
        # With the timer stopped: drop every ready packet and the partial batch. Their sample
        # sets count as dropped, and the next packet carries the overrun bit.
        dropped = self._fill
        while self.ready():
            dropped += (self._lens[self._tail] - DATA_HEADER_BYTES) // (2 * self.channels)
            self.release()
        self._fill = 0
        self._close_req = False
        if dropped:
            self.overruns += dropped
            self._pending_overrun = 1

    def discard_all(self):
        # Drop every ready packet (link gone): not an overrun, nobody was listening.
        while self.ready():
            self.release()
