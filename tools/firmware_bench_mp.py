# Benchmark run inside MicroPython (WebAssembly port) by tools/firmware_bench.py: prints one
# JSON line of timings. Timing uses ticks_ms over long loops (the port's ticks_us has 1 ms
# resolution anyway).
import gc
import json
import time

import machine
import rig
import wire
from sampler import Sampler
from steps import StepDetector

GPIOS = (36, 39, 34, 32, 33)
N = 20000


def per_call_us(fn, n):
    gc.collect()
    t0 = time.ticks_ms()
    fn(n)
    return time.ticks_diff(time.ticks_ms(), t0) * 1000.0 / n


def ref_loop(n):
    x = 0
    for i in range(n):
        x = i + 1  # small ints only: no allocation, no long-int arithmetic
    return x


for g in GPIOS:
    machine.set_uv(g, 1234500)
adcs = [machine.ADC(machine.Pin(g)) for g in GPIOS]
clock = rig.Clock(0)
s = Sampler(adcs, clock.ticks_us, time.ticks_diff, StepDetector(500), rate_hz=500,
            full_scale_units=32835)
s.emit = True
s.set_mtu(247)
s.start()
reads = [a.read_uv for a in adcs]


def adc_only(n):
    for _ in range(n):
        for i in range(5):
            reads[i]()


def sampling(n):
    adv = clock.advance
    tick = s.tick
    ready = s.ready
    release = s.release
    for _ in range(n):
        adv(2000)
        tick()
        if ready():
            release()


def loop_only(n):
    adv = clock.advance
    ready = s.ready
    for _ in range(n):
        adv(2000)
        if ready():
            pass


pkt = bytearray(244)
for i in range(244):
    pkt[i] = (i * 37) & 0xFF
out = bytearray(wire.frame_bytes_max(244))


def framing(n):
    for _ in range(n):
        wire.frame_into(pkt, 244, out)


def measure_alloc(n):
    sampling(100)
    gc.collect()
    a0 = gc.mem_alloc()
    sampling(n)
    return gc.mem_alloc() - a0


# The loop's own bound-method locals cost a fixed 64 bytes per call: report the growth.
alloc = measure_alloc(5000) - measure_alloc(1000)

app_clock = rig.Clock(0)
app, port, radio = rig.make_app(app_clock, BLE=False, SERIAL_STREAM=True)
app.start()
drv = rig.Driver(app_clock, app.poll, poll_every=5)


def whole(n):
    drv.run(n)
    port.take()


res = {
    "ref_loop_ns": per_call_us(ref_loop, 200000) * 1000,
    "adc_fake_us": per_call_us(adc_only, N),
    "loop_us": per_call_us(loop_only, N),
    "sampling_us": per_call_us(sampling, N),
    "frame_244_us": per_call_us(framing, 2000),
    "whole_us": per_call_us(whole, N),
    "sets_per_packet": 23,
    "alloc_bytes_5000_sets": alloc,
}
print(json.dumps(res))
