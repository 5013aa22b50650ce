# Under MicroPython: the sampler with a fake ADC (real machine.ADC calls on the fake module) and
# a fake clock that wraps at 2**30 like the ESP32's ticks_us.
import gc
import time
from struct import unpack_from

import machine
import mptest
import rig
from sampler import Sampler
from steps import StepDetector

GPIOS = machine.ADC1_GPIOS[:5]  # five ADC1 pads of the board's chip: a 5-channel sampler
FULL = 32835  # 99.5 % of 3.3 V in 100 uV units


def make(rate_hz=500, start_us=0, n_buffers=8, batch_ms=0):
    clock = rig.Clock(start_us)
    adcs = [machine.ADC(machine.Pin(g), atten=machine.ADC.ATTN_11DB) for g in GPIOS]
    s = Sampler(adcs, clock.ticks_us, time.ticks_diff, StepDetector(rate_hz), rate_hz=rate_hz,
                full_scale_units=FULL, n_buffers=n_buffers, batch_ms=batch_ms)
    return s, clock


def set_units(k):
    # Set k gets channel c = 1000*c + k (mod 30000), given in uV with +49 uV to test rounding.
    for c in range(len(GPIOS)):
        machine.set_uv(GPIOS[c], ((1000 * c + k) % 30000) * 100 + 49)


def expect(k, c):
    return (1000 * c + k) % 30000


def run(s, clock, n, period_us=None, jitter=None, consume=None, first=0):
    p = s.period_us if period_us is None else period_us
    for i in range(n):
        set_units(first + i)
        clock.advance(p + (jitter(i) if jitter else 0))
        s.tick()
        if consume is not None:
            consume()


def drain(s):
    out = []
    while s.ready():
        out.append(bytes(s.packet()))
        s.release()
    return out


def header(pkt):
    # version, type, flags, C, seq, t0_us, period_us, N
    return unpack_from("<BBBBHIHB", pkt)


def start(s, mtu=247):
    s.emit = True
    n = s.set_mtu(mtu)
    s.start()
    return n


def test_values_timestamps_and_seq():
    s, clock = make()
    assert start(s) == 23
    pkts = []
    run(s, clock, 230, consume=lambda: pkts.extend(drain(s)))
    assert len(pkts) == 10, len(pkts)
    t_first = header(pkts[0])[5]
    k = 0
    for j, p in enumerate(pkts):
        v, t, flags, c, seq, t0, period, n = header(p)
        assert (v, t, flags, c, seq, period, n) == (1, 1, 0, 5, j, 2000, 23), header(p)
        assert t0 == t_first + j * 23 * 2000
        assert len(p) == 13 + 2 * 5 * 23
        for i in range(n):
            for ch in range(c):
                assert unpack_from("<H", p, 13 + 2 * (i * c + ch))[0] == expect(k, ch)
            k += 1
    assert s.overruns == 0


def test_batch_size_follows_mtu():
    for mtu, want in ((64, 4), (185, 16), (247, 23)):
        s, clock = make()
        assert start(s, mtu) == want
        run(s, clock, want * 5)
        pkts = drain(s)
        assert len(pkts) == 5
        for p in pkts:
            assert header(p)[7] == want
            assert len(p) <= mtu - 3, (mtu, len(p))


def test_batch_closes_by_time():
    # 40 ms (firmware config.BATCH_MS): a packet every 20 sets at 500 Hz, 10 at 250 Hz, 1 at
    # 25 Hz (a set is 40 ms); the MTU still caps it (MTU 247 at 1000 Hz: 23 sets, MTU 64: 4),
    # and a packet is out as soon as its last set is taken; 20 ms: 10 sets at 500 Hz
    for rate, mtu, ms, want in ((500, 247, 40, 20), (250, 247, 40, 10), (25, 247, 40, 1),
                                (1000, 247, 40, 23), (500, 64, 40, 4), (500, 247, 20, 10)):
        s, clock = make(rate_hz=rate, batch_ms=ms)
        assert start(s, mtu) == want, (rate, mtu)
        ready_after = []
        for i in range(want * 6):
            run(s, clock, 1, first=i)
            if s.ready():
                ready_after.append(i + 1)
                p = drain(s)[0]
                h = header(p)
                assert h[7] == want and len(p) == 13 + 2 * 5 * want, (rate, h)
                assert unpack_from("<H", p, 13)[0] == expect(i + 1 - want, 0)
        assert ready_after == [want * k for k in range(1, 7)], (rate, ready_after)
        assert s.overruns == 0
    # a rate change applies the time limit anew; an MTU change keeps it as the cap
    s, clock = make(batch_ms=40)
    start(s, 247)
    s.configure(100)
    assert s.set_mtu(247) == 4
    assert s.set_mtu(64) == 4
    s.configure(1000)
    assert s.set_mtu(64) == 4 and s.set_mtu(None) == 23


def test_mtu_change_applies_at_packet_boundary():
    s, clock = make()
    start(s, 247)
    run(s, clock, 10)
    s.set_mtu(64)
    s.request_close()
    run(s, clock, 9)
    ns = [header(p)[7] for p in drain(s)]
    assert ns == [10, 4, 4], ns


def test_ticks_us_wrap_at_2_30_is_seamless():
    s, clock = make(start_us=(1 << 30) - 30000)
    start(s)
    run(s, clock, 23 * 4)
    t0s = [header(p)[5] for p in drain(s)]
    for a, b in zip(t0s, t0s[1:]):
        assert b - a == 23 * 2000, t0s


def test_device_clock_wraps_at_2_32():
    s, clock = make()
    start(s)
    s._slot_hi = 0xFFFF  # white box: 10 ms before the 32-bit wrap
    s._slot_lo = 0x10000 - 10000
    run(s, clock, 46)
    t0s = [header(p)[5] for p in drain(s)]
    assert t0s[0] == (1 << 32) - 10000 + 2000, t0s
    assert t0s[1] == (t0s[0] + 23 * 2000) % (1 << 32), t0s


def test_overrun_when_link_stalls():
    s, clock = make(n_buffers=8)
    start(s)
    run(s, clock, 8 * 23)  # ring full, nothing consumed
    assert s.ready() == 8 and s.overruns == 0
    run(s, clock, 50, first=184)  # dropped: the sampler never blocks
    assert s.overruns == 50
    pkts = drain(s)
    run(s, clock, 23, first=234)
    more = drain(s)
    assert len(pkts) == 8 and len(more) == 1
    h = header(more[0])
    assert h[4] == 8, "seq has no gap: the device dropped samples, the link lost nothing"
    assert h[2] & 0x04, "overrun bit set on the first packet after the drop"
    assert h[5] - header(pkts[0])[5] == 234 * 2000, "t0 jumps over the dropped sets"
    assert unpack_from("<H", more[0], 13)[0] == expect(234, 0)
    run(s, clock, 23, first=257)
    assert not header(drain(s)[0])[2] & 0x04, "only the first packet after a drop is marked"


def test_late_timer_counts_missed_slots():
    s, clock = make()
    start(s)
    run(s, clock, 10)
    run(s, clock, 1, jitter=lambda i: 20000, first=10)  # 20 ms late: 10 slots never sampled
    run(s, clock, 22, first=11)
    assert s.overruns == 10, s.overruns
    pkts = drain(s)
    h0, h1 = header(pkts[0]), header(pkts[1])
    assert h0[7] == 10 and not h0[2] & 4, (h0, h1)
    assert h1[2] & 4 and h1[5] - h0[5] == 20 * 2000 and h1[4] == h0[4] + 1, (h0, h1)


def test_jitter_below_tolerance_is_absorbed():
    s, clock = make()
    start(s)
    pkts = []
    run(s, clock, 23 * 20, jitter=lambda i: (1500, 0, -1500, 0)[i % 4],
        consume=lambda: pkts.extend(drain(s)))
    t0s = [header(p)[5] for p in pkts]
    assert s.overruns == 0
    for a, b in zip(t0s, t0s[1:]):
        assert b - a == 46000


def test_burst_after_delay_is_not_a_drop():
    s, clock = make()
    start(s)
    run(s, clock, 5)
    p = s.period_us
    seq = [p * 4, 1, 1, 1, p, p]  # 3 periods late, then the queued callbacks at once
    for i in range(len(seq)):
        set_units(5 + i)
        clock.advance(seq[i] if i else seq[0])
        s.tick()
    assert s.overruns == 0


def test_non_integer_period_does_not_drift():
    s, clock = make(rate_hz=300)
    start(s)
    pkts = []
    # the fake clock advances 3333 or 3334 us per tick, as a 300 Hz timer fires
    drv = rig.Driver(clock, lambda: pkts.extend(drain(s)), poll_every=1)
    machine.Timer(0).init(freq=300, callback=s.tick)
    drv.run(23 * 40)
    machine.Timer(0).deinit()
    base = header(pkts[0])[5]
    for k, p in enumerate(pkts):
        h = header(p)
        assert h[6] == 3333
        exact = k * 23 * 1000000 // 300
        assert abs((h[5] - base) - exact) <= 1, (k, h[5] - base, exact)
    assert s.overruns == 0


def test_achieved_rate_and_rate_range():
    for rate in (25, 500, 1000):
        s, clock = make(rate_hz=rate)
        start(s)
        run(s, clock, rate * 2, consume=lambda: drain(s))
        assert s.achieved_hz == rate, (rate, s.achieved_hz)
    s, clock = make(rate_hz=500)
    start(s)
    run(s, clock, 600, period_us=4000, consume=lambda: drain(s))  # timer at half the rate
    assert 249 <= s.achieved_hz <= 251, s.achieved_hz
    assert s.overruns >= 599, s.overruns


def test_fault_bits_after_one_second():
    s, clock = make()
    start(s)
    for c in range(5):
        machine.set_uv(GPIOS[c], 1000000)
    machine.set_uv(GPIOS[2], 0)  # disconnected
    machine.set_uv(GPIOS[3], 3290000)  # shorted: >= 99.5 % of 3.3 V
    for i in range(499):
        clock.advance(2000)
        s.tick()
    assert s.fault_mask() == 0, "not yet a second"
    clock.advance(2000)
    s.tick()
    assert s.fault_mask() == 0b01100, s.fault_mask()
    drain(s)
    machine.set_uv(GPIOS[2], 5000)
    clock.advance(2000)
    s.tick()
    assert s.fault_mask() == 0b01000
    assert s.ready() or s._fill, "streaming goes on with a fault"


def test_sampling_path_allocates_nothing():
    s, clock = make()
    start(s)
    set_units(7)
    tick = s.tick
    adv = clock.advance
    release = s.release
    ready = s.ready

    def loop(n):
        for _ in range(n):
            adv(2000)
            tick()
            if ready() > 4:
                release()

    loop(100)
    gc.collect()
    before = gc.mem_alloc()
    loop(5000)
    after = gc.mem_alloc()
    assert s.taken >= 5100 and s.error is None
    assert after == before, "sampling path allocated %d bytes" % (after - before)


def test_stopped_stream_samples_but_sends_nothing():
    s, clock = make()
    start(s)
    s.emit = False
    run(s, clock, 100)
    assert s.ready() == 0 and s.overruns == 0 and s.taken == 100


mptest.run(globals())
