"""The analysis pieces on signals whose answer is known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from insole import sim
from insole.analysis import FlagConfig, FlagRules, StepDetector, analyse
from insole.analysis.stream import stream_from_source
from insole.io.session import Chunk, SourceData

PERIOD_S = 0.002


def half_sines(n_steps=40, contact_s=0.25, stride_s=0.7, peak_n=1500.0, start_s=0.3):
    """Total force of a foot: half-sine stances; returns (force, true IC, true TO at 20 N)."""
    t = np.arange(int((start_s + n_steps * stride_s + 0.5) / PERIOD_S)) * PERIOD_S
    f = np.zeros_like(t)
    ic, to = [], []
    for k in range(n_steps):
        t0 = start_s + k * stride_s
        u = (t - t0) / contact_s
        on = (u > 0) & (u < 1)
        f[on] += peak_n * np.sin(np.pi * u[on])
        d = np.arcsin(20.0 / peak_n) / np.pi * contact_s
        ic.append(t0 + d)
        to.append(t0 + contact_s - d)
    return f, np.array(ic), np.array(to)


def test_contacts_interpolated_to_a_fraction_of_a_sample():
    f, ic, to = half_sines()
    det = StepDetector().detect(f, PERIOD_S)
    assert len(det.ic_s_) == len(ic)
    assert np.max(np.abs(det.ic_s_ - ic)) < 0.0002
    assert np.max(np.abs(det.to_s_ - to)) < 0.0002
    assert det.complete_.all()


def test_noise_dips_are_merged_and_short_blips_are_not_steps():
    f, ic, _ = half_sines(n_steps=10)
    f[int(0.45 / PERIOD_S):int(0.46 / PERIOD_S)] = 0.0  # a 10 ms dropout mid-stance
    f[int(0.70 / PERIOD_S):int(0.73 / PERIOD_S)] = 300.0  # a 30 ms knock in swing
    det = StepDetector().detect(f, PERIOD_S)
    assert len(det.ic_s_) == 10
    assert det.rejected_ == 1


def test_steps_cut_by_the_recording_ends_are_partial():
    f, ic, _ = half_sines(n_steps=10)
    cut = f[int(0.4 / PERIOD_S):int((0.3 + 9 * 0.7 + 0.2) / PERIOD_S)]
    det = StepDetector().detect(cut, PERIOD_S)
    assert len(det.ic_s_) == 8 and det.partial_ == 2


def test_events_inside_gaps_are_estimated_and_steps_marked_incomplete():
    f, ic, to = half_sines(n_steps=30)
    g = f.copy()
    k_ic = int(round(ic[10] / PERIOD_S))
    g[k_ic - 10:k_ic + 13] = np.nan  # a 46 ms lost packet over IC 10
    k_to = int(round(to[20] / PERIOD_S))
    g[k_to - 12:k_to + 11] = np.nan  # and one over TO 20
    k_mid = int(round((ic[5] + 0.1) / PERIOD_S))
    g[k_mid:k_mid + 23] = np.nan  # and one in the middle of stance 5
    det = StepDetector().detect(g, PERIOD_S)
    assert len(det.ic_s_) == 30
    assert np.max(np.abs(det.ic_s_ - ic)) < 0.005  # estimated from TO - median contact
    assert np.max(np.abs(det.to_s_ - to)) < 0.005
    assert set(np.flatnonzero(~det.complete_)) == {5, 10, 20}
    assert det.ic_estimated_[10] and det.to_estimated_[20] and not det.ic_estimated_[5]


def steps(n, valr, strike="rearfoot", met=0.45, arch=0.02, dt=0.35, drift=None):
    out = []
    for i in range(n):
        a = arch if drift is None else arch * (1 + drift * i / n)
        out.append({"ic_s": i * dt, "valr_bw_per_s": valr, "strike": strike,
                    "metatarsal_share": met, "zone_impulse_share": {"heel": 0.5, "arch": a}})
    return out


def codes(rules):
    return sorted((f["code"], f["rule"]) for f in rules.flags_)


def test_flag_thresholds_are_strict_and_cited():
    assert codes(FlagRules().evaluate(steps(100, 65.0), "left")) == []
    r = FlagRules().evaluate(steps(100, 67.0), "left")
    assert codes(r) == [("heel_strike_force", "absolute")]
    (fl,) = r.flags_
    assert fl["threshold"] == 66.0 and "Davis" in fl["source"] and "not a diagnosis" in fl["message"]
    assert codes(FlagRules().evaluate(steps(100, 40, met=0.61), "left")) == [("forefoot_overload", "absolute")]
    assert codes(FlagRules().evaluate(steps(100, 40, strike="forefoot", met=0.70), "left")) == []
    assert codes(FlagRules().evaluate(steps(100, 40, strike="forefoot", met=0.76), "left")) == [
        ("forefoot_overload", "absolute")]
    assert codes(FlagRules().evaluate(steps(100, 40, arch=0.051), "left")) == [("arch_collapse", "absolute")]


def test_heel_strike_force_is_about_heel_strikes_only():
    r = FlagRules().evaluate(steps(200, 120.0, strike="forefoot", met=0.6), "right")
    assert codes(r) == []
    assert any("rearfoot" in n for n in r.notes_)


def test_too_few_steps_and_short_trials_say_so():
    r = FlagRules().evaluate(steps(10, 120.0), "left")
    assert r.flags_ == [] and "only 10 clean steps" in r.notes_[0]
    r = FlagRules().evaluate(steps(100, 120.0), "left")  # 35 s: absolute rules only
    assert any("too short for the drift rules" in n for n in r.notes_)


def test_a_two_minute_run_gets_the_drift_rules():
    # 120 s recorded: a 60 s baseline and 60 s more, though the first step lands at 0.3 s and
    # the last one before 120 s (this used to say "too short" for every 120 s run)
    st = [dict(s, ic_s=s["ic_s"] + 0.3) for s in steps(340, 60.0)]
    assert st[-1]["ic_s"] < 119.0
    r = FlagRules().evaluate(st, "left", duration_s=120.0)
    assert not any("too short" in n for n in r.notes_)
    r = FlagRules().evaluate(st, "left", duration_s=110.0)
    assert any("too short" in n for n in r.notes_)
    # and the heel rule's first-minute / last-minute comparison can fire on one
    rising = [dict(s, valr_bw_per_s=50.0 * (1.3 if s["ic_s"] > 60 else 1.0)) for s in st]
    assert ("heel_strike_force", "drift") in codes(FlagRules().evaluate(rising, "left", 120.0))


def test_arch_drift_needs_a_sustained_rise_that_ends_above_3_percent():
    long = 600  # 210 s of steps
    assert ("arch_collapse", "drift") in codes(FlagRules().evaluate(steps(long, 40, arch=0.025, drift=0.6), "left"))
    # the same relative rise from a tiny share that never reaches 3 %: no drift flag
    assert codes(FlagRules().evaluate(steps(long, 40, arch=0.01, drift=0.6), "left")) == []
    # a rise under 20 %: no flag
    assert codes(FlagRules().evaluate(steps(long, 40, arch=0.025, drift=0.15), "left")) == []


def test_thresholds_are_configurable():
    r = FlagRules(FlagConfig(valr_bw_per_s=80.0)).evaluate(steps(100, 70.0), "left")
    assert codes(r) == []


def _foot(scenario, side="left", seconds=60, **faults):
    foot = sim.simulate(scenario, side, seconds, seed=5, **faults)
    data = b"".join(fr for _, fr in foot.frames())
    return stream_from_source(SourceData(side, "serial", [Chunk(None, data)])), foot


def test_disconnected_sensor_is_reported_and_steps_still_found():
    fs, foot = _foot("easy-run", disconnect_sensor="met23")
    doc = analyse({"left": fs})
    q = doc["feet"]["left"]["quality"]
    assert "met23" in q["sensor_faults"]
    n_true = len(foot.truth["steps"])
    assert abs(doc["feet"]["left"]["summary"]["steps"] - n_true) <= 1


def test_walking_gets_no_running_flags_and_a_note():
    fs, _ = _foot("walk", seconds=90)
    doc = analyse({"left": fs})
    assert doc["feet"]["left"]["summary"]["activity"] == "walking"
    assert doc["flags"] == []
    assert any("walking" in n for n in doc["notes"])


def test_body_weight_from_the_stride_average_identity():
    fs, foot = _foot("easy-run", seconds=60)
    doc = analyse({"left": fs})
    mass = foot.body_mass_kg  # the simulated runner's mass (the truth has no such field)
    est = doc["body"]["stride_average_estimate_n"]
    assert est == pytest.approx(mass * 9.80665, rel=0.05)
    given = analyse({"left": fs}, body_mass_kg=mass)
    assert given["body"]["source"] == "given"
    assert given["body"]["force_coverage"] == pytest.approx(1.0, abs=0.05)
