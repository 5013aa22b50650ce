"""`make bench` (firmware part): cost of the firmware's sampling and packing path per sample set.

Runs the real firmware modules under the MicroPython WebAssembly port (the pinned npm package),
prints the measured cost per sample set there, and the estimate it implies for an ESP32 at
240 MHz, with the reasoning. Tests never assert on these numbers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "host"))
import firmware_loop  # noqa: E402

# Assumptions for the ESP32 estimate (stated, not measured here: no board).
# The reference loop `x = i + 1` is about 5 bytecodes per iteration (FOR_ITER, STORE, LOAD,
# LOAD_CONST/BINARY_OP, STORE). The ESP32's MicroPython VM (Xtensa LX6 at 240 MHz, code through
# the flash cache) spends roughly 15-50 cycles per simple bytecode, so 75-250 cycles, i.e.
# about 0.3-1.0 us per iteration. The ratio ESP32 / wasm of that loop is applied to the
# sampler's measured Python work.
ESP32_REF_LOOP_NS = (300.0, 1000.0)
# One calibrated ESP32 ADC1 conversion through machine.ADC.read_uv() (12-bit, 11 dB, eFuse
# calibration): roughly 10-20 us in ESP-IDF, which replaces the fake ADC's Python read.
ESP32_ADC_READ_US = (10.0, 20.0)
CHANNELS = 5
RATE_HZ = 500


def main() -> int:
    firmware_loop.check_environment()
    script = ROOT / "tools" / "firmware_bench_mp.py"
    cmd = firmware_loop.micropython_command(script, ROOT / "firmware", heap_mb=16)
    r = subprocess.run(cmd, capture_output=True, timeout=600, cwd=ROOT)
    if r.returncode != 0:
        print(f"firmware bench failed: {r.stderr.decode()[-2000:]}", file=sys.stderr)
        return 1
    m = json.loads(r.stdout.decode().strip().splitlines()[-1])
    python_us = m["sampling_us"] - m["loop_us"] - m["adc_fake_us"]  # sampler's own Python work
    frame_per_set_us = m["frame_244_us"] / m["sets_per_packet"]
    print("firmware: sampling and packing path, 5 channels, MicroPython 1.29 WebAssembly port (Node)")
    print(f"  reference loop `x = i + 1`                {m['ref_loop_ns']:8.1f} ns/iteration")
    print(f"  Sampler.tick() per sample set             {m['sampling_us'] - m['loop_us']:8.2f} us"
          f"  (of which fake ADC reads {m['adc_fake_us']:.2f} us)")
    print(f"  serial framing, 244-byte DATA packet      {m['frame_244_us']:8.1f} us"
          f"  ({frame_per_set_us:.2f} us per sample set)")
    print(f"  whole firmware loop per sample set        {m['whole_us']:8.2f} us"
          "  (sampler, DATA, STATUS, framing, fake serial, driver)")
    print(f"  heap growth over 4000 more sample sets    {m['alloc_bytes_5000_sets']:8d} bytes")
    lo_ratio = ESP32_REF_LOOP_NS[0] / m["ref_loop_ns"]
    hi_ratio = ESP32_REF_LOOP_NS[1] / m["ref_loop_ns"]
    est = []
    for ratio, adc_us in ((lo_ratio, ESP32_ADC_READ_US[0]), (hi_ratio, ESP32_ADC_READ_US[1])):
        py = (python_us + frame_per_set_us) * ratio
        est.append(py + CHANNELS * adc_us)
    budget_us = 1e6 / RATE_HZ
    print("ESP32 @ 240 MHz estimate per sample set (sampling + packing + framing):")
    print(f"  {est[0]:.0f}-{est[1]:.0f} us = {100 * est[0] / budget_us:.0f}-{100 * est[1] / budget_us:.0f} %"
          f" of the {budget_us:.0f} us period at {RATE_HZ} Hz; at 1000 Hz "
          f"{100 * est[0] / 1000:.0f}-{100 * est[1] / 1000:.0f} %")
    print(f"  reasoning: the sampler's Python work ({python_us:.2f} us here, fake ADC and driver "
          f"loop subtracted) scaled by the ESP32/wasm ratio of the reference loop "
          f"({ESP32_REF_LOOP_NS[0]:.0f}-{ESP32_REF_LOOP_NS[1]:.0f} ns assumed on the ESP32 vs "
          f"{m['ref_loop_ns']:.1f} ns measured: x{lo_ratio:.2f}-{hi_ratio:.2f}), plus "
          f"{CHANNELS} calibrated ADC1 reads at {ESP32_ADC_READ_US[0]:.0f}-{ESP32_ADC_READ_US[1]:.0f} us"
          " each. Unverified on hardware: measure with `time.ticks_us()` around tick() on a board.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
