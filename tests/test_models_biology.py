"""The review's findings at the circuit's default parameters, each as its own test.

All conditions of a variant are simulated in one batched call (module fixture), with
IFN-a 1000 U/mL, tocilizumab 30 ug/mL and siRNAs / over-expression as indicators. A
"raises"/"lowers" statement is checked as a relative change of at least 5 %, so a test
fails when the model's effect vanishes, not only when it reverses.
"""

import numpy as np
import pytest

from il6rcc.jobs.simulate import run_simulate
from il6rcc.models import Condition, SolverSettings, load_model, simulate

IFN, TCZ = 1000.0, 30.0
TIMES = [2.0, 24.0, 72.0]
SOLVER = SolverSettings(rtol=1e-7, atol=1e-9)
TKI_DOSES = [0.0, 1.0, 5.0, 10.0]

CONDITIONS = {
    "786-O|ctrl": {},
    "786-O|ifn": {"ifn_alpha": IFN},
    "786-O|siSOCS3": {"si_socs3": 1.0},
    "786-O|ifn+siSOCS3": {"ifn_alpha": IFN, "si_socs3": 1.0},
    "786-O|tcz": {"tocilizumab": TCZ},
    "786-O|ifn+tcz": {"ifn_alpha": IFN, "tocilizumab": TCZ},
    "786-O|siIFNAR": {"si_ifnar": 1.0},
    "786-O|ifn+siIFNAR": {"ifn_alpha": IFN, "si_ifnar": 1.0},
    "ACHN|ctrl": {},
    "ACHN|ifn": {"ifn_alpha": IFN},
    "ACHN|oe": {"socs3_overexpression": 1.0},
    "ACHN|ifn+oe": {"ifn_alpha": IFN, "socs3_overexpression": 1.0},
}
for _d in TKI_DOSES[1:]:
    CONDITIONS[f"786-O|sor{_d:g}"] = {"sorafenib": _d}
    CONDITIONS[f"786-O|sor{_d:g}+tcz"] = {"sorafenib": _d, "tocilizumab": TCZ}


class Sim:
    def __init__(self, variant):
        model = load_model("rcc_circuit", variant)
        conds = [Condition(k, k.split("|")[0], v) for k, v in CONDITIONS.items()]
        self.sim = simulate(model, None, conds, TIMES, SOLVER)
        assert self.sim.success.all()
        self.ids = [c.id for c in conds]

    def __call__(self, cond, observable, t=24.0):
        return float(self.sim.observable(observable)[self.ids.index(cond), TIMES.index(t)])

    def inhibition(self, line, arm="", t=72.0):
        """IFN growth inhibition 1 - v(IFN + arm) / v(arm)."""
        base = f"{line}|{arm}" if arm else f"{line}|ctrl"
        treated = f"{line}|ifn+{arm}" if arm else f"{line}|ifn"
        return 1.0 - self(treated, "viability", t) / self(base, "viability", t)

    def tki(self, observable, dose, tcz=False, t=24.0):
        if dose == 0:
            return self("786-O|tcz" if tcz else "786-O|ctrl", observable, t)
        return self(f"786-O|sor{dose:g}" + ("+tcz" if tcz else ""), observable, t)


@pytest.fixture(scope="module")
def main():
    return Sim("main")


@pytest.fixture(scope="module")
def stat1_only():
    return Sim("socs3_stat1")


@pytest.fixture(scope="module")
def akt_direct():
    return Sim("tki_akt_direct")


def more(a, b, by=0.05):
    return a > b * (1 + by)


def test_socs3_knockdown_raises_ifn_pstat1_in_786o(main):
    assert more(main("786-O|ifn+siSOCS3", "pstat1"), main("786-O|ifn", "pstat1"))


def test_socs3_overexpression_in_achn_weakens_ifn_growth_inhibition(main):
    assert main.inhibition("ACHN", "oe") < 0.95 * main.inhibition("ACHN")


def test_tocilizumab_lowers_socs3_and_pstat3_under_ifn_in_786o(main):
    for obs in ("socs3_mrna", "pstat3"):
        assert more(main("786-O|ifn", obs), main("786-O|ifn+tcz", obs)), obs


def test_tocilizumab_restores_ifn_growth_inhibition_in_786o(main):
    assert more(main.inhibition("786-O", "tcz"), main.inhibition("786-O"))


def test_786o_resists_ifn_more_than_achn(main):
    assert main.inhibition("786-O") < main.inhibition("ACHN")


def test_ifnar_knockdown_lowers_ifn_induced_il6_and_socs3(main):
    for obs in ("il6_mrna", "socs3_mrna"):
        assert more(main("786-O|ifn", obs), main("786-O|ifn+siIFNAR", obs)), obs


def test_without_the_il6_loop_tocilizumab_does_not_change_the_ifn_response(stat1_only):
    for obs in ("pstat1", "socs3_mrna"):
        a, b = stat1_only("786-O|ifn", obs), stat1_only("786-O|ifn+tcz", obs)
        assert a == pytest.approx(b, rel=1e-3), obs


def test_tkis_raise_il6_secretion_and_pakt_dose_dependently(main):
    for obs in ("il6_secreted", "pakt"):
        values = [main.tki(obs, d) for d in TKI_DOSES]
        assert np.all(np.diff(values) > 0), (obs, values)
        assert more(values[-1], values[0], by=0.2), (obs, values)


def test_tocilizumab_abolishes_the_tki_pakt_rise_in_the_nfkb_il6_variant(main):
    """Tocilizumab at 30 ug/mL occupies most but not all IL-6 receptors, and the TKI
    more than doubles IL-6, so the rise is cut (by about two thirds at the defaults)
    rather than removed: the test asks for less than half of the rise to remain, and
    the next test for more than half to remain when TKIs act on AKT directly."""
    rise = main.tki("pakt", 10.0) - main.tki("pakt", 0.0)
    rise_tcz = main.tki("pakt", 10.0, tcz=True) - main.tki("pakt", 0.0, tcz=True)
    assert rise > 0 and abs(rise_tcz) < 0.5 * rise


def test_tocilizumab_does_not_abolish_the_pakt_rise_when_tkis_act_on_akt(akt_direct):
    rise = akt_direct.tki("pakt", 10.0) - akt_direct.tki("pakt", 0.0)
    rise_tcz = akt_direct.tki("pakt", 10.0, tcz=True) - akt_direct.tki("pakt", 0.0, tcz=True)
    assert rise > 0 and rise_tcz > 0.5 * rise


def test_cli_simulate_writes_table_and_figure(tmp_path):
    run_simulate(None, tmp_path)
    table = (tmp_path / "simulation.csv").read_text().splitlines()
    assert len(table) > 10 and "786-O" in "".join(table) and "ACHN" in "".join(table)
    assert (tmp_path / "simulation.png").stat().st_size > 10_000
