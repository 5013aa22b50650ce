"""A heel sensor disconnected mid-run (issue 8, item 7), in process (fast; the same fault
through the real pty path is in tests/test_faults.py).

Without the heel, a heel striker's contact is seen only when the arch and the metatarsals load,
about 60 ms late, and the step looks like a forefoot strike. From the heel's last good reading
on, the analysis must give no initial contact, contact time, strike or loading rate (``lost``,
with the reason), keep the toe-off and the other zones' impulses, leave the steps before the
fault as they were, fire no flag from the dead channel, say in the summary how many steps lost
what, and score F1 >= 0.98 at the 20 ms tolerance (a step without a contact matched on its
toe-off).
"""

from __future__ import annotations

import numpy as np
import pytest

from insole import sim
from insole.analysis import Analysis, FootPipeline
from insole.analysis.metrics import HEEL_DEAD
from insole.sim import truth_document
from insole.validation.score import score

DURATION_S = 70.0
AT_S = 35.0


def _doc(foot, cut=None) -> dict:
    raw = b"".join(fr for _, fr in foot.frames())
    pipe = FootPipeline("left.bin")
    for chunk in (cut(raw) if cut else [raw]):
        pipe.feed(chunk)
    return Analysis([pipe.finish()]).document()


@pytest.fixture(scope="module")
def runs():
    clean = sim.simulate("easy-run", "left", DURATION_S, seed=5)
    dead = sim.simulate("easy-run", "left", DURATION_S, seed=5, disconnect_sensor="heel",
                        disconnect_at_s=AT_S)
    return clean, dead, _doc(clean), _doc(dead)


def test_steps_after_a_dead_heel_lose_their_contact_and_score_on_the_toe_off(runs):
    _, foot, _, doc = runs
    sc = score(doc, truth_document({"left": foot}))["feet"]["left"]
    assert sc["f1"] >= 0.98, sc  # 0.50 before: contacts 60 ms late
    assert sc["matched_on_toe_off"] >= 20
    assert sc["ic_error_ms"]["p95"] < 5  # only steps with a contact: none of the late ones
    steps = doc["feet"]["left"]["steps"]
    lost = [s for s in steps if s["ic_s"] is None]
    assert len(lost) == sc["matched_on_toe_off"]
    for s in lost:
        assert s["to_s"] > AT_S and s["contact_ms"] is None and s["strike"] is None
        assert s["valr_bw_per_s"] is None and s["metatarsal_share"] is None
        assert s["lost"]["ic_s"] == s["lost"]["strike"] == s["lost"]["valr_bw_per_s"] == HEEL_DEAD
        assert s["zone_impulse_bw_s"]["heel"] is None and s["zone_impulse_bw_s"]["met23"] > 0
    # every step from the first lost one on lost its contact: no forefoot strike made up
    first = steps.index(lost[0])
    assert all(s["ic_s"] is None for s in steps[first:])
    assert not any(s["strike"] == "forefoot" for s in steps)
    summary = doc["feet"]["left"]["summary"]
    assert summary["steps_lost"]["ic_s"] == {HEEL_DEAD: len(lost)}
    assert summary["strike_counts"]["forefoot"] == 0
    q = doc["feet"]["left"]["quality"]
    assert q["sensor_faults"] == ["heel"]
    onset_s = float(q["sensor_fault_reasons"]["heel"].split(" from ")[1].split(" s")[0])
    assert AT_S - 0.6 < onset_s <= AT_S  # the heel's last good reading: the heel-off before


def test_the_steps_before_the_fault_and_the_flags_are_as_without_it(runs):
    _, _, clean, dead = runs
    a, b = clean["feet"]["left"]["steps"], dead["feet"]["left"]["steps"]
    before = [s for s in b if s["ic_s"] is not None and s["to_s"] < AT_S - 1.0]
    assert len(before) > 40
    for s, c in zip(before, a):
        for key in ("ic_s", "to_s", "contact_ms", "strike", "first_zones", "valr_method"):
            assert s[key] == c[key], key
        # body weight comes from the steps before the fault (the total lacks the heel after it)
        assert s["valr_bw_per_s"] == pytest.approx(c["valr_bw_per_s"], rel=0.01)
    bw = clean["body"]["body_weight_n"], dead["body"]["body_weight_n"]
    assert bw[1] == pytest.approx(bw[0], rel=0.01)
    # before: heel_strike_force (BW low) and forefoot_overload (late contacts as forefoot strikes)
    assert clean["flags"] == dead["flags"] == []


def test_a_dead_heel_gives_one_answer_whatever_the_blocks(runs):
    _, foot, _, whole = runs
    decided = []

    def per_second(raw):
        return [raw[i:i + 5440] for i in range(0, len(raw), 5440)]

    by_second = _doc(foot, per_second)
    assert by_second == whole
    raw = b"".join(fr for _, fr in foot.frames())
    pipe = FootPipeline("left.bin", on_steps=lambda core, i, j: decided.extend(range(i, j)))
    for part in raw.split(b"\x00"):
        pipe.feed(part + b"\x00")
    doc = Analysis([pipe.finish()]).document()
    assert doc["feet"]["left"]["steps"] == whole["feet"]["left"]["steps"]
    assert decided == list(range(len(whole["feet"]["left"]["steps"])))


def test_a_heel_lost_in_the_first_steps_leaves_no_body_weight_estimate_and_no_crash():
    foot = sim.simulate("easy-run", "left", 12.0, seed=3, disconnect_sensor="heel",
                        disconnect_at_s=0.8)
    doc = _doc(foot)
    steps = doc["feet"]["left"]["steps"]
    assert len(steps) >= 12 and sum(s["ic_s"] is None for s in steps) >= len(steps) - 2
    assert doc["body"]["source"].startswith("assumed")  # no stride before the fault to use


def test_a_healthy_heel_striker_never_waits_for_the_heel_watch(runs):
    clean = runs[0]
    raw = b"".join(fr for _, fr in clean.frames())
    pipe = FootPipeline("left.bin")
    waited = 0
    for i in range(0, len(raw), 5440):
        pipe.feed(raw[i:i + 5440])
        waited += bool(pipe.core is not None and pipe.core._pending)
    assert waited == 0 and len(pipe.finish().core.table) > 90


def test_a_heel_that_comes_back_is_dead_only_while_it_was_away():
    from insole.analysis.heel import HeelWatch

    w = HeelWatch(0, 20.0, 500.0)
    f0 = np.zeros((3000, 2))
    f0[:, 1] = 100.0  # the other zone loaded throughout
    f0[:100, 0] = 50.0  # the heel reads, then 0 V for 4 s, then reads again
    f0[2100:, 0] = 50.0
    w.feed(0, f0[:1000], f0[:1000].sum(axis=1))
    assert w.status(150) == 1  # 900 loaded rows at 0 N: dead from the first of them
    w.feed(1000, f0[1000:], f0[1000:].sum(axis=1))
    assert w.status(99) == 0 and w.status(100) == 1 and w.status(2099) == 1 and w.status(2100) == 0
    # a heel at 0 V while nothing is loaded (swing, standing on the other foot) is not dead
    w2 = HeelWatch(0, 20.0, 500.0)
    g = np.zeros((3000, 2))
    g[:100, 0] = 50.0
    w2.feed(0, g, g.sum(axis=1))
    assert w2.status(500, final=True) == 0 and w2.first_dead_row is None


def test_the_document_written_in_pieces_of_steps_is_the_whole_one(runs, monkeypatch):
    """`insole analyse` writes the steps 2000 at a time; a piece must not end before a lost
    contact's neighbour is looked at (a 2-hour run crashed there: IndexError in FootSteps.dicts)."""
    import io
    import json

    from insole.analysis import document

    _, foot, _, whole = runs
    monkeypatch.setattr(document, "_STEPS_PER_PIECE", 7)
    raw = b"".join(fr for _, fr in foot.frames())
    pipe = FootPipeline("left.bin")
    pipe.feed(raw)
    buf = io.BytesIO()
    Analysis([pipe.finish()]).write_json(buf)
    steps = json.loads(buf.getvalue())["feet"]["left"]["steps"]
    assert steps == whole["feet"]["left"]["steps"]
    assert any(s["ic_s"] is None for s in steps) and len(steps) > 7
