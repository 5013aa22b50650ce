"""A shorted sensor reads at the ADC's clip (3.1 V on the original ESP32), not at the supply: it
is reported as shorted, left out of the total, and the steps are found from the other zones."""

from __future__ import annotations

import numpy as np

from insole import protocol as P
from insole.analysis import analyse
from insole.analysis.stream import stream_from_source
from insole.io.session import Chunk, SourceData
from insole.model import hardware
from insole.sim import simulate


def _stream(foot):
    raw = b"".join(fr for _, fr in foot.frames())
    return stream_from_source(SourceData("cap", "serial", [Chunk(None, raw)]))


def test_a_channel_pinned_at_the_adc_clip_is_shorted_left_out_and_steps_still_found():
    clean = simulate("easy-run", "left", 40.0, seed=2)
    shorted = simulate("easy-run", "left", 40.0, seed=2)
    arch = shorted.info.zones.index("arch")
    clip_units = int(round(hardware.adc_full_scale_mv() / 1000.0 / P.SAMPLE_UNIT_V))
    shorted.units[:, arch] = clip_units  # shorted from the first sample on
    doc_clean = analyse({"left": _stream(clean)})
    doc = analyse({"left": _stream(shorted)})
    q = doc["feet"]["left"]["quality"]
    assert "arch" in q["sensor_faults"]
    assert "shorted" in q["sensor_fault_reasons"]["arch"]
    n_clean = len(doc_clean["feet"]["left"]["steps"])
    n = len(doc["feet"]["left"]["steps"])
    assert n_clean >= 50 and abs(n - n_clean) <= 1
    # the shorted channel adds no force: the shares are of the other zones
    shares = doc["feet"]["left"]["summary"]["zone_impulse_share_median"]
    assert not shares.get("arch")


def test_a_channel_that_clips_briefly_is_saturated_not_shorted():
    foot = simulate("easy-run", "left", 20.0, seed=2)
    heel = foot.info.zones.index("heel")
    clip_units = int(round(hardware.adc_full_scale_mv() / 1000.0 / P.SAMPLE_UNIT_V))
    foot.units[1000:1100, heel] = clip_units  # 0.2 s at the clip
    fs = _stream(foot)
    doc = analyse({"left": fs})
    q = doc["feet"]["left"]["quality"]
    assert q["saturated_samples"] == 100
    assert "heel" not in q["sensor_faults"]
    assert np.isfinite(fs.volts[:, heel]).all()
