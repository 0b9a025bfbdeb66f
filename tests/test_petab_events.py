"""SBML events through the whole PEtab path, against closed forms.

One small SBML model (written here with libsbml) holds seven species that decay as
dx/dt = -k x, each with its own events:

* ``a``: a bolus ``a += D`` at ``time >= tb`` and a redose ``a += D2`` each time
  ``a < thr`` becomes true (a state-triggered event that fires repeatedly); the
  closed form gives value and gradient (rtol 1e-6);
* ``b``: ``b += 1`` executed 0.5 after ``time >= 1`` (a delay, values at execution);
* ``c``: two events at ``time >= 2``: priority 2 doubles ``c``, priority 1 adds 1, so
  ``c = 2 c + 1`` (the reverse order would give ``2 (c + 1)``);
* ``d`` / ``e``: ``+= 1`` delayed by 0.5 after ``1 <= time < 1.2``: the trigger turns
  false before the execution, so the non-persistent event on ``d`` is cancelled and
  the persistent one on ``e`` executes;
* ``f``: ``f = f`` delayed by 0.5 after ``time >= 1`` with values from the trigger
  time: at 1.5, ``f`` is reset to its value at 1 (``e``'s ``e + 1`` is also valued
  at the trigger time);
* ``g``: ``g += 1`` at ``time >= 0`` with initial value false: fires at the start.

Cost: one compilation of the value and one of the gradient (about 40 s together on
two shared cores); the simulations themselves take milliseconds.
"""

import math
from dataclasses import replace

import jax
import jax.numpy as jnp
import libsbml
import numpy as np
import pandas as pd
import pytest

from il6rcc.petab_io import DEFAULT_SOLVER, load_problem, make_llh, simulation_table

K, D, TB, C, D2 = 0.5, 2.0, 0.8, 0.5, 1.0
TIMES = (0.5, 1.25, 1.75, 2.5, 3.5, 5.0, 7.0, 9.0, 9.5)
RTOL = 1e-6
#: The decays are not stiff: Tsit5 (explicit, so far cheaper to compile than the
#: default Kvaerno5) at 1e-12 keeps the solver's error below RTOL, value and gradient.
SOLVER = replace(DEFAULT_SOLVER, solver="tsit5", rtol=1e-12, atol=1e-12)


def _sbml() -> str:
    doc = libsbml.SBMLDocument(3, 1)
    m = doc.createModel()
    m.setId("events_fixture")
    comp = m.createCompartment()
    comp.setId("cell")
    comp.setSize(1.0)
    comp.setConstant(True)
    for pid, value in (("k", K), ("D", D), ("tb", TB), ("thr", C), ("D2", D2)):
        p = m.createParameter()
        p.setId(pid)
        p.setValue(value)
        p.setConstant(True)
    for sid in "abcdefg":
        s = m.createSpecies()
        s.setId(sid)
        s.setCompartment("cell")
        s.setInitialConcentration(1.0)
        s.setHasOnlySubstanceUnits(False)
        s.setBoundaryCondition(False)
        s.setConstant(False)
        r = m.createReaction()
        r.setId(f"decay_{sid}")
        r.setReversible(False)
        r.setFast(False)
        ref = r.createReactant()
        ref.setSpecies(sid)
        ref.setStoichiometry(1.0)
        ref.setConstant(True)
        law = r.createKineticLaw()
        law.setMath(libsbml.parseL3Formula(f"k * {sid} * cell"))

    def event(
        eid,
        trigger,
        assignments,
        *,
        delay=None,
        priority=None,
        persistent=True,
        from_trigger=True,
        initial=True,
    ):
        e = m.createEvent()
        e.setId(eid)
        e.setUseValuesFromTriggerTime(from_trigger)
        t = e.createTrigger()
        t.setMath(libsbml.parseL3Formula(trigger))
        t.setInitialValue(initial)
        t.setPersistent(persistent)
        if delay is not None:
            e.createDelay().setMath(libsbml.parseL3Formula(delay))
        if priority is not None:
            e.createPriority().setMath(libsbml.parseL3Formula(priority))
        for var, formula in assignments:
            a = e.createEventAssignment()
            a.setVariable(var)
            a.setMath(libsbml.parseL3Formula(formula))

    event("bolus", "time >= tb", [("a", "a + D")])
    event("redose", "a < thr", [("a", "a + D2")])
    event("delayed", "time >= 1", [("b", "b + 1")], delay="0.5", from_trigger=False)
    event("double", "time >= 2", [("c", "2 * c")], priority="2", from_trigger=False)
    event("add_one", "time >= 2", [("c", "c + 1")], priority="1", from_trigger=False)
    event("cancelled", "time >= 1 && time < 1.2", [("d", "d + 1")], delay="0.5", persistent=False)
    event("kept", "time >= 1 && time < 1.2", [("e", "e + 1")], delay="0.5")
    event("reset", "time >= 1", [("f", "f")], delay="0.5")
    event("at_start", "time >= 0", [("g", "g + 1")], initial=False)
    return libsbml.writeSBMLToString(doc)


@pytest.fixture(scope="module")
def problem(tmp_path_factory):
    folder = tmp_path_factory.mktemp("events")
    (folder / "model.xml").write_text(_sbml())
    pd.DataFrame({"conditionId": ["c0"], "conditionName": ["c0"]}).to_csv(
        folder / "conditions.tsv", sep="\t", index=False
    )
    pd.DataFrame(
        {
            "observableId": [f"obs_{s}" for s in "abcdefg"],
            "observableFormula": list("abcdefg"),
            "noiseFormula": ["1"] * 7,
        }
    ).to_csv(folder / "observables.tsv", sep="\t", index=False)
    rows = []
    for s in "abcdefg":
        for i, t in enumerate(TIMES):
            rows.append(
                {
                    "observableId": f"obs_{s}",
                    "simulationConditionId": "c0",
                    "time": t,
                    "measurement": 0.3 + 0.1 * ((i * 7 + ord(s)) % 11),
                }
            )
    pd.DataFrame(rows).to_csv(folder / "measurements.tsv", sep="\t", index=False)
    pd.DataFrame(
        {
            "parameterId": ["k", "D", "tb", "thr", "D2"],
            "parameterScale": ["lin"] * 5,
            "lowerBound": [0.01] * 5,
            "upperBound": [10.0] * 5,
            "nominalValue": [K, D, TB, C, D2],
            "estimate": [1] * 5,
        }
    ).to_csv(folder / "parameters.tsv", sep="\t", index=False)
    (folder / "problem.yaml").write_text(
        "format_version: 1\nparameter_file: parameters.tsv\nproblems:\n"
        "- condition_files: [conditions.tsv]\n  measurement_files: [measurements.tsv]\n"
        "  observable_files: [observables.tsv]\n  sbml_files: [model.xml]\n"
    )
    return load_problem(folder / "problem.yaml")


def closed_form_a(theta, t):
    """a(t): decay, bolus at tb, then a redose each time a falls to c."""
    k, d, tb, c, d2 = (theta[i] for i in range(5))
    after_bolus = jnp.exp(-k * tb) + d
    first = tb + jnp.log(after_bolus / c) / k
    period = jnp.log((c + d2) / c) / k
    last = first + jnp.floor(jnp.maximum(t - first, 0.0) / period) * period
    return jnp.where(
        t < tb,
        jnp.exp(-k * t),
        jnp.where(
            t < first, after_bolus * jnp.exp(-k * (t - tb)), (c + d2) * jnp.exp(-k * (t - last))
        ),
    )


def closed_forms(theta) -> dict:
    t = jnp.asarray(TIMES)
    k = theta[0]
    decay = jnp.exp(-k * t)
    return {
        "a": closed_form_a(theta, t),
        "b": jnp.where(t < 1.5, decay, (jnp.exp(-1.5 * k) + 1.0) * jnp.exp(-k * (t - 1.5))),
        "c": jnp.where(t < 2.0, decay, (2.0 * jnp.exp(-2.0 * k) + 1.0) * jnp.exp(-k * (t - 2.0))),
        "d": decay,
        "e": jnp.where(t < 1.5, decay, (jnp.exp(-k) + 1.0) * jnp.exp(-k * (t - 1.5))),
        "f": jnp.where(t < 1.5, decay, jnp.exp(-k) * jnp.exp(-k * (t - 1.5))),
        "g": 2.0 * decay,
    }


def test_trajectories_match_closed_forms(problem):
    table = simulation_table(problem, solver=SOLVER)
    assert table["success"].all(), table.attrs["failures"]
    expected = closed_forms(jnp.array([K, D, TB, C, D2]))
    for s in "abcdefg":
        ours = table.loc[table["observableId"] == f"obs_{s}", "simulation"].to_numpy()
        np.testing.assert_allclose(ours, np.asarray(expected[s]), rtol=RTOL, err_msg=s)


def _closed_llh(theta, measurements):
    sims = closed_forms(theta)
    total = 0.0
    for s in "abcdefg":
        r = measurements[s] - sims[s]
        total = total - 0.5 * jnp.sum(r**2) - 0.5 * len(TIMES) * math.log(2 * math.pi)
    return total


def test_log_likelihood_and_gradient_match_closed_form(problem):
    """The gradient runs through the event times: the bolus time, and the crossing
    times of the redose (which move with k, D, tb, thr and D2). (tb is away from the
    other events' times: where two crossings coincide the derivative is one-sided.)"""
    llh, table = make_llh(problem, SOLVER)
    theta = jnp.asarray(table.nominal_theta)
    meas = problem.measurement_table
    measurements = {
        s: jnp.asarray(meas.loc[meas["observableId"] == f"obs_{s}", "measurement"].to_numpy())
        for s in "abcdefg"
    }
    value, grad = jax.jit(jax.value_and_grad(llh))(theta)
    assert float(value) == pytest.approx(float(_closed_llh(theta, measurements)), rel=RTOL)
    grad = np.asarray(grad)
    expected = np.asarray(jax.grad(_closed_llh)(theta, measurements))
    np.testing.assert_allclose(grad, expected, rtol=RTOL, atol=RTOL * np.abs(expected).max())
