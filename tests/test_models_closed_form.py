"""Simulation against closed-form solutions (rtol 1e-6, solver rtol 1e-10)."""

import numpy as np
import pytest

from il6rcc.models import Condition, SolverSettings, load_model, simulate

TIGHT = SolverSettings(rtol=1e-10, atol=1e-12, max_steps=20000)
TIMES = np.array([0.1, 0.5, 1.0, 2.0, 5.0, 10.0])


@pytest.mark.parametrize("solver", ["kvaerno5", "kvaerno3", "tsit5", "dopri8", "bdf"])
def test_linear_decay(solver):
    model = load_model("linear_decay")
    settings = SolverSettings(solver=solver, rtol=1e-10, atol=1e-12, max_steps=20000)
    sim = simulate(model, None, [Condition("c", "default")], TIMES, settings)
    k, x0 = model.default_params()
    np.testing.assert_allclose(sim.observable("x")[0], x0 * np.exp(-k * TIMES), rtol=1e-6)
    assert sim.success.all()


def test_linear_two_state():
    model = load_model("linear_two_state")
    params = np.array([[1.3, 0.4, 5.0], [0.2, 2.5, 1.0]])
    conds = [Condition("a", "default"), Condition("b", "default")]
    # two parameter rows: one per condition (both conditions use cell line "default",
    # so pass a batch with explicit rows)
    from il6rcc.models import make_batch

    batch = make_batch(model, conds)
    for row in params:
        sim = simulate(model, row, batch, TIMES, TIGHT)
        k1, k2, a0 = row
        a = a0 * np.exp(-k1 * TIMES)
        b = a0 * k1 / (k2 - k1) * (np.exp(-k1 * TIMES) - np.exp(-k2 * TIMES))
        np.testing.assert_allclose(sim.observable("a")[0], a, rtol=1e-6)
        np.testing.assert_allclose(sim.observable("b")[0], b, rtol=1e-6)
        np.testing.assert_allclose(sim.observable("total")[1], a + b, rtol=1e-6)


def test_pre_equilibration_then_step_input():
    """Basal state a/k comes from pre-equilibration, then the inducer steps it up."""
    model = load_model("inducible_gene")
    a, k = model.default_params()
    u = 3.0
    sim = simulate(
        model,
        None,
        [Condition("off", "default"), Condition("on", "default", {"inducer": u})],
        TIMES,
        TIGHT,
    )
    basal = a / k
    target = a * (1 + u) / k
    np.testing.assert_allclose(sim.observable("x")[0], basal, rtol=1e-8)
    np.testing.assert_allclose(
        sim.observable("x")[1], target + (basal - target) * np.exp(-k * TIMES), rtol=1e-6
    )


def test_horizon_groups_match_one_batch():
    """Conditions grouped by horizon give the values of one lock-step batch."""
    from il6rcc.models import RCCCircuit, make_batch

    model = RCCCircuit.variant("main")
    conds = [
        Condition("a", "786-O", {"ifn_alpha": 1000.0}),
        Condition("b", "ACHN", {"sorafenib": 5.0}),
        Condition("c", "786-O", {"xenograft": 1.0, "sorafenib": 1.0}),
    ]
    times = np.array([1.0, 24.0, 72.0, 240.0, 500.0])
    grouped = make_batch(model, conds, t_end=[24.0, 72.0, 500.0])
    assert grouped.horizon_groups(times) == (((0, 1), 3), ((2,), 5))
    one = simulate(model, None, make_batch(model, conds), times)
    two = simulate(model, None, grouped, times)
    # the two runs take different steps: they agree to the solver tolerance (rtol 1e-6)
    np.testing.assert_allclose(two.observables[0, :2], one.observables[0, :2], rtol=1e-5)
    np.testing.assert_allclose(two.observables[1, :3], one.observables[1, :3], rtol=1e-5)
    np.testing.assert_allclose(two.observables[2], one.observables[2], rtol=1e-5)
    assert np.isnan(two.observables[0, 3:]).all() and two.success.all()
