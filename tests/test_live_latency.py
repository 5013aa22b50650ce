"""The live path's cheap way (FootCore._can_wait): packet-sized blocks in which nothing can be
decided wait for the next one, yet every step is still decided by the very block that completes
its look-ahead, and the results are those of the blocks fed one by one without waiting.

Counts, not clocks: the latency and CPU figures are bench/live_latency.py's (BENCHMARKS.md).
"""

from __future__ import annotations

import numpy as np
import pytest

from insole import sim
from insole.analysis import FootPipeline, core


@pytest.fixture(scope="module")
def frames():
    foot = sim.simulate("easy-run", "left", 40.0, seed=5)
    return [fr for _, fr in foot.frames()]


def _feed(frames, on_steps):
    pipe = FootPipeline("left", on_steps=on_steps)
    for fr in frames:
        pipe.feed(fr)
    return pipe


def test_steps_are_decided_by_the_block_that_completes_their_look_ahead(frames):
    decided = []  # (to_idx, rows fed before the block, rows fed with it)
    state = {"before": 0}
    pipe = FootPipeline("left", on_steps=lambda c, a, b: decided.extend(
        (int(t), state["before"], c.rows) for t in c.table["to_idx"][a:b]))
    waited = blocks = 0
    for fr in frames:
        state["before"] = pipe.core.rows if pipe.core is not None else 0
        pipe.feed(fr)
        c = pipe.core
        if c is not None and c.rows > state["before"]:
            blocks += 1
            waited += bool(c._waiting) and c._waiting[-1].row0 == state["before"]
    c = pipe.core
    assert not c.swing.current.any(), "a foot with no pre-load to remove: no window holds steps"
    quiet = c._quiet
    w = c.swing.w
    steady = [(t, a, b) for t, a, b in decided if t > w]  # after the first swing window (held)
    assert len(steady) >= 40
    for t, a, b in steady:
        # the look-ahead ends at row t + quiet (the quiet-th sample below the threshold)
        assert a <= t + quiet < b, (t, a, b)
    # most packets only wait: stance (no quiet stretch) and swing after the decision
    assert waited > 0.6 * blocks, (waited, blocks)


def test_waiting_blocks_change_nothing(frames, monkeypatch):
    def table(pipe):
        pipe.finish()
        t = pipe.core.table
        return {k: t[k].copy() for k in ("ic_idx", "to_idx", "peak_n", "valr_n_per_s", "shares")}

    got = table(_feed(frames, None))
    monkeypatch.setattr(core.FootCore, "_can_wait", lambda self, block: False)
    want = table(_feed(frames, None))
    assert len(want["ic_idx"]) >= 40
    for k in want:
        assert np.array_equal(got[k], want[k], equal_nan=True), k
