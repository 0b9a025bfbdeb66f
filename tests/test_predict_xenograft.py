"""Predictions at doses that differ between posterior draws, and the in-vivo panel.

In-vivo doses are unknown in every source; the fit draws them as dose nuisances, and a
prediction of a xenograft regimen must simulate each posterior draw at its own exposure.
"""

from types import SimpleNamespace

import numpy as np
import pytest

from il6rcc.configs import SHIPPED, load_config
from il6rcc.jobs import evidence_problem
from il6rcc.jobs.predict import (
    XENOGRAFT_QUANTITY,
    _xenograft_panel,
    simulate_draws,
    xenograft_regimens,
)
from il6rcc.models import Condition, SolverSettings
from il6rcc.models.examples import InducibleGene

TIGHT = SolverSettings(rtol=1e-10, atol=1e-12)


def test_each_draw_is_simulated_at_its_own_dose():
    """x' = a (1 + u) - k x from its basal state a / k (closed form in InducibleGene's
    docstring), three draws with their own (a, k) and inducer dose; a second condition
    keeps its fixed dose."""
    model = InducibleGene()
    a, k = np.array([2.0, 1.0, 3.0]), np.array([0.5, 0.2, 1.5])
    u = np.array([0.5, 4.0, 9.0])
    rows = {"default": np.stack([a, k], axis=1)}
    conds = [
        Condition("dosed", "default", {"inducer": 1.0}),
        Condition("fixed", "default", {"inducer": 2.0}),
    ]
    times = [1.0, 6.0]
    obs, ok, t = simulate_draws(
        model, TIGHT, rows, conds, times, doses_per_draw={(0, "inducer"): u}
    )
    assert ok.all() and t == times
    tt = np.asarray(times)[None, :]

    def closed(dose):
        high = (a * (1 + dose))[:, None] / k[:, None]
        return high + ((a / k)[:, None] - high) * np.exp(-k[:, None] * tt)

    np.testing.assert_allclose(obs[:, 0, :, 0], closed(u), rtol=1e-6)
    np.testing.assert_allclose(obs[:, 1, :, 0], closed(np.full(3, 2.0)), rtol=1e-6)


def test_the_in_vivo_regimens_are_read_from_the_nuisance_names():
    names = (
        "s1.ifn_alpha",  # an in-vitro unknown dose: not a regimen
        "s1.sorafenib.invivo",
        "s1.tocilizumab.invivo",
        "s2.tocilizumab.invivo",
        "s3.sunitinib.low",
    )
    assert xenograft_regimens(names) == {
        "s1": {"sorafenib": 1, "tocilizumab": 2},
        "s2": {"tocilizumab": 3},
    }


@pytest.mark.slow
def test_the_xenograft_panel_on_the_shipped_evidence():
    """Every in-vivo regimen of the evidence alone and combined, relative to vehicle;
    each draw's value equals that draw simulated alone with its exposure written into
    the condition (rtol 1e-8: the same solver, so only the batching differs)."""
    problem, _ = evidence_problem(load_config(SHIPPED / "default.yaml"))
    model, names = problem.model, problem.arrays.nuisance_names
    regimens = xenograft_regimens(names)
    assert regimens["ishibashi2017"].keys() == {"sorafenib", "tocilizumab"}
    assert regimens["oguro2013"].keys() == {"ifn_alpha", "tocilizumab"}
    line = model.cell_line("786-O").name
    rows = np.repeat(model.default_params(line)[None], 2, axis=0)
    doses = np.exp(np.asarray(problem.arrays.nuisance_log_median))[None].repeat(2, axis=0)
    doses[1] *= 10.0  # the second draw: every exposure ten times the prior median
    p = SimpleNamespace(xenograft_days=[3.0, 21.0])
    run = SimpleNamespace(model=model, problem=problem)
    out, ok = _xenograft_panel(run, p, {line: rows}, [line], doses)
    assert ok.all()
    arms = {q["intervention"] for q in out}
    combo = "sorafenib + tocilizumab (ishibashi2017 regimen)"
    assert combo in arms and "tocilizumab (ishibashi2017 regimen)" in arms
    assert len(out) == 2 * len(arms) and {q["quantity"] for q in out} == {XENOGRAFT_QUANTITY}
    got = next(q for q in out if q["intervention"] == combo and q["time_h"] == 504.0)["values"]
    reg = regimens["ishibashi2017"]
    for j in range(2):
        dosed = {n: float(doses[j, i]) for n, i in reg.items()}
        conds = [
            Condition("vehicle", line, {"xenograft": 1.0}),
            Condition("combo", line, {"xenograft": 1.0, **dosed}),
        ]
        obs, ok1, _ = simulate_draws(model, problem.solver, {line: rows[j : j + 1]}, conds, [504.0])
        k = model.index("observables", "tumour_volume")
        assert ok1.all()
        np.testing.assert_allclose(got[j], obs[0, 1, 0, k] / obs[0, 0, 0, k], rtol=1e-8)
    assert got[0] != pytest.approx(got[1], rel=1e-3)  # the exposure matters
