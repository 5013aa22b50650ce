"""Every scenario is honest: its per-step truth sits on the intended side of each DESIGN.md flag
threshold, with a margin, for seeds 1-5 and both feet; and its gait is physiological."""

from __future__ import annotations

import numpy as np
import pytest

from insole.sim import SCENARIOS, simulate, truth_document

SEEDS = range(1, 6)
METS = ("met1", "met23", "met5")
VALR_LIMIT = 66.0  # Davis et al. 2016
MET_LIMIT = {"rearfoot": 0.60, "midfoot": 0.75, "forefoot": 0.75}
ARCH_LIMIT = 0.05

# (cadence spm, contact ms, peak force BW) ranges per scenario; running: Fukuchi et al. 2017
# (150-170 spm, 210-313 ms at 2.5 m/s) widened for faster paces; walking: double support.
GAIT_RANGES = {
    "easy-run": ((160, 180), (215, 275), (2.2, 2.8)),
    "heel-striker": ((155, 175), (225, 290), (2.2, 2.8)),
    "forefoot-overload": ((160, 180), (215, 275), (2.2, 2.8)),
    "arch-collapse": ((160, 180), (215, 285), (2.2, 2.8)),
    "forefoot-runner": ((168, 190), (195, 255), (2.3, 2.9)),
    "walk": ((100, 120), (560, 720), (0.95, 1.3)),
}


def _cases():
    return [(name, seed, side) for name in SCENARIOS for seed in SEEDS for side in ("left", "right")]


_cache: dict = {}


def steps_of(name, seed, side):
    key = (name, seed, side)
    if key not in _cache:
        # The truth does not depend on the sample rate; 100 Hz keeps the suite fast.
        _cache[key] = simulate(name, side, 180.0, rate_hz=100, seed=seed).truth["steps"]
    return _cache[key]


def arrays(steps):
    ic = np.array([s["ic_s"] for s in steps])
    valr = np.array([s["valr_bw_per_s"] for s in steps])
    met = np.array([sum(s["zone_impulse_share"][z] for z in METS) for s in steps])
    arch = np.array([s["zone_impulse_share"]["arch"] for s in steps])
    return ic, valr, met, arch


def rel_drift(values, ic, span_s=60.0):
    """Median of the last minute over the median of the first minute, minus 1."""
    first = values[ic < ic[0] + span_s]
    last = values[ic > ic[-1] - span_s]
    return float(np.median(last) / np.median(first) - 1)


def max_rolling_rise(values, ic, w=30, base_s=60.0):
    """Largest rolling-30-step median after the first minute, relative to that minute."""
    base = np.median(values[ic < ic[0] + base_s])
    roll = np.median(np.lib.stride_tricks.sliding_window_view(values, w), axis=1)
    after = ic[: len(roll)] >= ic[0] + base_s
    return float(roll[after].max() / base - 1)


@pytest.mark.parametrize("name,seed,side", _cases())
def test_gait_is_physiological(name, seed, side):
    steps = steps_of(name, seed, side)
    (cad_lo, cad_hi), (ct_lo, ct_hi), (pk_lo, pk_hi) = GAIT_RANGES[name]
    ic = np.array([s["ic_s"] for s in steps])
    assert len(steps) >= 0.9 * 180 * cad_lo / 120
    cadence = 120.0 / np.median(np.diff(ic))  # steps/min of both feet from one foot's strides
    assert cad_lo <= cadence <= cad_hi
    ct = np.array([s["contact_ms"] for s in steps])
    assert ct_lo <= ct.min() and ct.max() <= ct_hi
    pk = np.array([s["peak_force_bw"] for s in steps])
    assert pk_lo <= np.median(pk) <= pk_hi
    stride_s = np.median(np.diff(ic))
    duty = np.median(ct) / 1000 / stride_s
    if name == "walk":
        assert duty > 0.55  # double support
    else:
        assert 0.25 < duty < 0.42  # a flight phase
        assert np.all(np.array([s["ic_s"] for s in steps[1:]]) > np.array([s["to_s"] for s in steps[:-1]]))


@pytest.mark.parametrize("name,seed,side", _cases())
def test_truth_is_on_the_intended_side_of_every_threshold(name, seed, side):
    sc = SCENARIOS[name]
    steps = steps_of(name, seed, side)
    ic, valr, met, arch = arrays(steps)
    strikes = {s["strike"] for s in steps}
    assert len(strikes) == 1
    strike = strikes.pop()
    methods = {s["valr_method"] for s in steps}

    # heel_strike_force: over rearfoot steps, median VALR > 66 BW/s, or +20 % start to end
    if strike == "rearfoot":
        # walking's transient is the knee of weight acceptance (~0.95 BW, a shoulder below the
        # 1.1 BW peak); running's the impact peak or shoulder at 1.6-2.2 BW
        floor_bw = 0.8 if name == "walk" else 0.9
        assert methods == {"20-80"} and all(s["impact_peak_bw"] > floor_bw for s in steps)
        if "heel_strike_force" in sc.expected:
            assert 85 <= np.median(valr) <= 95
            assert valr.min() > VALR_LIMIT * 1.1
        elif name == "walk":
            assert 10 <= np.median(valr) <= 15 and valr.max() < 20
        else:
            assert 45 <= np.median(valr) <= 58
            assert valr.max() < VALR_LIMIT * 0.95
        if "heel_strike_force" not in sc.expected:
            assert abs(rel_drift(valr, ic)) < 0.08
    else:
        assert methods == {"3-12pct"} and all(s["impact_peak_bw"] is None for s in steps)

    # forefoot_overload: metatarsal share above 60 % (rearfoot) / 75 % (midfoot, forefoot)
    limit = MET_LIMIT[strike]
    if "forefoot_overload" in sc.expected:
        assert met.min() > limit * 1.04
    else:
        assert met.max() < limit * 0.95
        assert abs(rel_drift(met, ic)) < 0.04
        assert max_rolling_rise(met, ic) < 0.06
    if name == "easy-run":
        assert 0.45 <= np.median(met) <= 0.52
    if name == "forefoot-runner":
        assert 0.62 <= np.median(met) <= 0.68

    # arch_collapse: arch share above 5 %, or +20 % over the first minute, ending above 3 %
    if "arch_collapse" in sc.expected:
        early = arch[ic < ic[0] + 30]
        late = arch[ic > ic[-1] - 60]
        assert np.median(early) < 0.025  # starts healthy
        assert 0.08 <= np.median(late) <= 0.10 and late.min() > 0.06
        assert np.median(arch) > ARCH_LIMIT * 1.3
        assert rel_drift(arch, ic) > 2.0
    else:
        assert arch.max() < 0.03
        assert 0.017 < np.median(arch) < 0.023
        assert abs(rel_drift(arch, ic)) < 0.08
        assert max_rolling_rise(arch, ic) < 0.10


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_expected_and_absent_flags_cover_the_three_codes(name):
    foot = simulate(name, "left", 5.0, rate_hz=100)
    doc = truth_document({"left": foot})
    expected = {f["code"] for f in doc["expected_flags"]}
    assert expected.isdisjoint(doc["absent_flags"])
    assert expected | set(doc["absent_flags"]) == {"heel_strike_force", "forefoot_overload",
                                                     "arch_collapse"}


def test_forefoot_runner_lands_on_the_forefoot_and_heel_later():
    foot = simulate("forefoot-runner", "left", 10.0, rate_hz=1000, noise_mv=0)
    z = foot.info.zones
    t = (foot.t_us - foot.t_us[0]) / 1e6
    for s in foot.truth["steps"]:
        a = int(np.searchsorted(t, s["ic_s"]))
        first = np.argmax(foot.forces_n[a:a + 200] > 10.0, axis=0) / 1000.0
        onset = dict(zip(z, first))
        assert min(onset["met5"], onset["met23"]) + 0.015 < onset["heel"]
        assert s["zone_impulse_share"]["heel"] > 0.2  # the heel drops later in stance


def test_rearfoot_runner_loads_the_heel_first():
    foot = simulate("easy-run", "left", 10.0, rate_hz=1000, noise_mv=0)
    z = foot.info.zones
    t = (foot.t_us - foot.t_us[0]) / 1e6
    for s in foot.truth["steps"]:
        a = int(np.searchsorted(t, s["ic_s"]))
        first = np.argmax(foot.forces_n[a:a + 200] > 10.0, axis=0) / 1000.0
        onset = dict(zip(z, first))
        assert all(onset["heel"] + 0.010 < onset[m] for m in METS)


def test_a_custom_midfoot_scenario():
    from insole.sim import GaitParams, Scenario

    sc = Scenario("midfoot", "a midfoot striker", GaitParams(strike="midfoot", met_share=0.62,
                                                           cadence_spm=175, contact_ms=235))
    foot = simulate(sc, "right", 20.0, rate_hz=1000, noise_mv=0)
    doc = truth_document({"right": foot})
    assert doc["scenario"] == "midfoot" and doc["expected_flags"] == []
    z = foot.info.zones
    t = (foot.t_us - foot.t_us[0]) / 1e6
    steps = foot.truth["steps"]
    assert steps and all(s["strike"] == "midfoot" and s["valr_method"] == "3-12pct" for s in steps)
    for s in steps:
        a = int(np.searchsorted(t, s["ic_s"]))
        onset = dict(zip(z, np.argmax(foot.forces_n[a:a + 200] > 10.0, axis=0) / 1000.0))
        assert abs(onset["heel"] - min(onset[m] for m in METS)) < 0.010  # heel and forefoot together
        assert 0.58 < sum(s["zone_impulse_share"][m] for m in METS) < 0.66
