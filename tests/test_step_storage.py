"""Where the per-step results live and what the live feed keeps (issue 8, bounded memory):
the step table on disk (StepFile) gives what the one in memory (StepTable) gives, the live
feed's step events are the ones the whole table makes and its flags the ones the batch rules
make over the whole table (tests/flag_reference.py), and the swing baseline's running medians
are exact."""

from __future__ import annotations

import numpy as np
import pytest
from flag_reference import BatchSteps

from insole.analysis.core import FootSteps, StepFile, StepTable, read_step_file
from insole.analysis.document import FootPipeline, LiveFeed
from insole.analysis.flags import FlagInput, FlagRules
from insole.analysis.forces import ValueCounts
from insole.analysis.metrics import VALR_METHODS
from insole.sim import simulate
from insole.sim.device import capture_bytes

CHUNK_BYTES = 2400  # about a second of one foot at 500 Hz


class _WholeTableFeed(LiveFeed):
    """The live feed as it was before the table went to disk and the flags became running
    state: every step's event made from the whole table, the flags by the batch rules over
    every step in memory (these runs are running, so the activity gate is left out)."""

    def on_steps(self, core, first, stop):
        side = core.info.side
        fs = FootSteps(core, self.body_weight_n(core))
        for st in fs.dicts(first, stop):
            self.on_event("step", side, st)
        zi = {z: i for i, z in enumerate(fs.zones)}
        fi = FlagInput(fs.t_s, fs.valr_bw, fs.strike.astype(str) if fs.k else np.zeros(0, str),
                       fs.met_share, fs.shares[:, zi["arch"]],
                       np.array(VALR_METHODS, dtype=object)[fs.valr_method])
        flags = FlagRules(self.config.flags).evaluate(BatchSteps(fi, self.config.flags), side,
                                                   core.rows * core.period_s).flags_
        key = sorted((f["code"], f["rule"], f["severity"]) for f in flags)
        if key != self._flag_keys.get(side, []):
            self._flag_keys[side] = key
            self.on_event("flags", side, flags)


def _events(data: bytes, feed_cls, step_table=None, body_mass_kg=None):
    events = []
    feed = feed_cls(lambda kind, side, payload: events.append((kind, side, payload)), body_mass_kg)
    pipe = FootPipeline("cap", on_steps=feed.on_steps, config=feed.config, step_table=step_table)
    for a in range(0, len(data), CHUNK_BYTES):
        pipe.feed(data[a:a + CHUNK_BYTES])
    run = pipe.finish()
    return events, run.core


@pytest.mark.parametrize("scenario, seconds, mass", [pytest.param("arch-collapse", 300, None, marks=pytest.mark.slow),
                                                      ("heel-striker", 150, 75.0)])
def test_live_events_from_the_table_on_disk_are_the_whole_table_ones(tmp_path, scenario, seconds, mass):
    data = capture_bytes(simulate(scenario, "left", seconds, seed=4))
    want, ref_core = _events(data, _WholeTableFeed, body_mass_kg=mass)
    got, core = _events(data, LiveFeed, lambda c: StepFile(c, tmp_path / "left.steps"), mass)
    assert isinstance(core.table, StepFile) and isinstance(ref_core.table, StepTable)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        if g[0] == "flags":  # a loading rate's median: a 1e-5 relative grid, rounded to 0.001
            assert [(f["code"], f["rule"], f["severity"], f["steps"], f["span_s"]) for f in g[2]] == \
                [(f["code"], f["rule"], f["severity"], f["steps"], f["span_s"]) for f in w[2]]
            for f, fw in zip(g[2], w[2]):
                assert f["value"] == pytest.approx(fw["value"], abs=1.01e-3)
        else:
            assert g == w
    flags = [e for e in got if e[0] == "flags"]
    assert flags and any(f["rule"] == "drift" or scenario == "heel-striker" for f in flags[-1][2])
    # before close, the last steps may be in the table's buffer (at most FLUSH_ROWS)
    on_disk = read_step_file(tmp_path / "left.steps")
    assert 0 <= len(core.table) - len(on_disk["ic_idx"]) <= StepFile.FLUSH_ROWS
    np.testing.assert_array_equal(core.table["ic_idx"], ref_core.table["ic_idx"])
    # closed, every step is in the files, as the table in memory has it
    core.table.close()
    on_disk = read_step_file(tmp_path / "left.steps")
    assert len(on_disk["ic_idx"]) == len(ref_core.table) > 100
    for name, col in on_disk.items():
        np.testing.assert_array_equal(col, ref_core.table[name], err_msg=name)
        np.testing.assert_array_equal(core.table[name], col, err_msg=name)
        np.testing.assert_array_equal(core.table.column(name, 7, 19), col[7:19], err_msg=name)
    with pytest.raises(ValueError, match="closed"):
        core.table.append({k: v[:1] for k, v in on_disk.items()})


def test_value_counts_give_the_exact_median():
    rng = np.random.default_rng(1)
    for n in (1, 2, 3, 10, 501, 1000):
        vals = np.round(rng.normal(3.0, 1.0, n), 1)  # few distinct values, many repeats
        vc = ValueCounts()
        for v in vals.tolist():
            vc.add(v)
        assert vc.median() == float(np.median(vals)) and len(vc) == n
        assert len(vc.keys) == len(set(vals.tolist()))
    assert ValueCounts().median() == 0.0
