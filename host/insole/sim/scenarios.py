"""Named simulator scenarios: a runner (gait parameters) and the flags the analysis must raise.

Every healthy value sits clearly inside the DESIGN.md thresholds and every flagged one clearly
beyond, including step-to-step variability (truncated at ±2.5 σ) and for any seed; the tests in
``tests/test_sim_scenarios.py`` check each scenario's per-step truth against the thresholds for
seeds 1–5. Sources of the figures are in ``docs/simulator.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

from insole.sim.gait import GaitParams

FLAG_CODES = ("heel_strike_force", "forefoot_overload", "arch_collapse")


@dataclass(frozen=True)
class Scenario:
    """A simulated runner and run: ``gait`` parameters, ``expected`` flag codes (on every
    simulated side) and a one-line description."""

    name: str
    description: str
    gait: GaitParams
    expected: tuple[str, ...] = ()

    @property
    def absent(self) -> tuple[str, ...]:
        return tuple(c for c in FLAG_CODES if c not in self.expected)


_EASY = GaitParams(
    gait="run", strike="rearfoot", body_mass_kg=70.0,
    cadence_spm=170.0, contact_ms=250.0,  # ~3 m/s easy pace (Fukuchi 2017: 150–170 spm, 210–313 ms)
    impact_peak_bw=1.8, valr_bw_per_s=54.0,  # Davis 2016 uninjured rearfoot runners ~40–70 BW/s
    met_share=0.48, arch_share=0.02,  # Hennig-group shod running table: 51.6 % metatarsals, 2 % arch
    drift_cadence=-0.01, drift_contact=0.02, drift_valr=0.03, drift_met=0.02, drift_arch=0.04,
)

SCENARIOS: dict[str, Scenario] = {
    "easy-run": Scenario(
        "easy-run", "healthy rearfoot runner at an easy pace: no flags", _EASY),
    "heel-striker": Scenario(
        "heel-striker", "rearfoot runner with hard, fast heel impacts (median VALR ~90 BW/s)",
        GaitParams(gait="run", strike="rearfoot", body_mass_kg=75.0, cadence_spm=162.0,
                   contact_ms=260.0, impact_peak_bw=1.95, valr_bw_per_s=90.0, met_share=0.46,
                   arch_share=0.02, drift_contact=0.02, drift_valr=0.03, drift_met=0.01,
                   drift_arch=0.03),
        ("heel_strike_force",)),
    "forefoot-overload": Scenario(
        "forefoot-overload", "rearfoot runner whose metatarsal heads carry ~68 % of stance impulse",
        GaitParams(gait="run", strike="rearfoot", body_mass_kg=68.0, cadence_spm=170.0,
                   contact_ms=250.0, impact_peak_bw=1.8, valr_bw_per_s=52.0, met_share=0.68,
                   arch_share=0.02, drift_valr=0.02, drift_met=0.02, drift_arch=0.03),
        ("forefoot_overload",)),
    "arch-collapse": Scenario(
        "arch-collapse", "healthy start, then the medial arch gives way with fatigue (2 % → ~9.5 %)",
        GaitParams(gait="run", strike="rearfoot", body_mass_kg=72.0, cadence_spm=168.0,
                   contact_ms=255.0, impact_peak_bw=1.8, valr_bw_per_s=52.0, met_share=0.47,
                   arch_share=0.02, drift_start=0.2, drift_end=0.55, drift_contact=0.03,
                   drift_valr=0.02, drift_met=0.0, drift_arch=3.75),
        ("arch_collapse",)),
    "forefoot-runner": Scenario(
        "forefoot-runner", "healthy forefoot striker: no impact transient, heel loads late, no flags",
        GaitParams(gait="run", strike="forefoot", body_mass_kg=62.0, cadence_spm=178.0,
                   contact_ms=228.0, active_peak_at=0.42, met_share=0.65, arch_share=0.02,
                   drift_contact=0.02, drift_met=0.02, drift_arch=0.04),
        ()),
    "walk": Scenario(
        "walk", "walking at ~1.3 m/s (110 steps/min, ~640 ms contact, double support): no flags",
        GaitParams(gait="walk", strike="rearfoot", body_mass_kg=70.0, cadence_spm=110.0,
                   contact_ms=650.0, walk_c=0.30, walk_gamma=0.8, met_share=0.50,
                   arch_share=0.02, asym_valr=0.0, drift_met=0.01, drift_arch=0.02),
        ()),
}
