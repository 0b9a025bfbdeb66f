"""SBML import semantics against closed-form solutions: compartments of different
sizes, concentration vs amount species, assignment and rate rules, initial
assignments, function definitions and local parameters."""

import math

import libsbml
import numpy as np
import pytest

from il6rcc.errors import PetabError
from il6rcc.models import Condition, SolverSettings, simulate
from il6rcc.petab_io import SbmlModel
from il6rcc.petab_io._math import evaluate
from il6rcc.petab_io._sbml import compile_sbml

K = 0.3  # 1/time, rate constant of A -> B + C
V1, V2 = 2.0, 0.5  # compartment sizes
SOLVER = SolverSettings(rtol=1e-10, atol=1e-12)


def _model_text(extra=None) -> str:
    doc = libsbml.SBMLDocument(3, 1)
    m = doc.createModel()
    m.setId("closed_form")
    for cid, size in (("c1", V1), ("c2", V2)):
        c = m.createCompartment()
        c.setId(cid)
        c.setSize(size)
        c.setConstant(True)

    def species(sid, comp, *, conc=None, amount=None, hosu=False, constant=False):
        s = m.createSpecies()
        s.setId(sid)
        s.setCompartment(comp)
        if conc is not None:
            s.setInitialConcentration(conc)
        if amount is not None:
            s.setInitialAmount(amount)
        s.setHasOnlySubstanceUnits(hosu)
        s.setBoundaryCondition(False)
        s.setConstant(constant)

    species("A", "c1", conc=3.0)
    species("B", "c2", amount=1.0)  # concentration 1 / V2 = 2
    species("C", "c1", amount=0.5, hosu=True)  # an amount
    species("D", "c2", constant=True)  # set by an initial assignment
    species("E", "c1", conc=0.0)
    for pid, value, constant in (("k", K, True), ("p_rr", 2.0, False), ("double_A", 0.0, False)):
        p = m.createParameter()
        p.setId(pid)
        p.setValue(value)
        p.setConstant(constant)
    f = m.createFunctionDefinition()
    f.setId("twice")
    f.setMath(libsbml.parseL3Formula("lambda(x, 2 * x)"))
    rule = m.createAssignmentRule()
    rule.setVariable("double_A")
    rule.setMath(libsbml.parseL3Formula("twice(A)"))
    rate = m.createRateRule()
    rate.setVariable("p_rr")
    rate.setMath(libsbml.parseL3Formula("-0.5 * p_rr"))
    ia = m.createInitialAssignment()
    ia.setSymbol("D")
    ia.setMath(libsbml.parseL3Formula("2 * k"))

    r = m.createReaction()
    r.setId("R1")
    r.setReversible(False)
    r.setFast(False)
    for sid, product in (("A", False), ("B", True), ("C", True)):
        ref = r.createProduct() if product else r.createReactant()
        ref.setSpecies(sid)
        ref.setStoichiometry(1.0)
        ref.setConstant(True)
    r.createKineticLaw().setMath(libsbml.parseL3Formula("k * A * c1"))
    r2 = m.createReaction()
    r2.setId("R2")
    r2.setReversible(False)
    r2.setFast(False)
    ref = r2.createProduct()
    ref.setSpecies("E")
    ref.setStoichiometry(1.0)
    ref.setConstant(True)
    law = r2.createKineticLaw()
    local = law.createLocalParameter()
    local.setId("v")
    local.setValue(0.1)
    law.setMath(libsbml.parseL3Formula("v * c1"))
    if extra is not None:
        extra(m)
    return libsbml.writeSBMLToString(doc)


def test_compartments_amounts_rules_and_assignments_follow_sbml_semantics():
    model = SbmlModel.from_spec(compile_sbml(_model_text()))
    assert model.states == ("p_rr", "A", "B", "C", "D", "E")
    times = np.array([0.0, 0.5, 2.0, 7.0])
    sim = simulate(model, None, [Condition("c", "default")], times, SOLVER)
    assert sim.success.all()
    y = sim.states[0]
    decay = np.exp(-K * times)
    expected = {
        "A": 3.0 * decay,
        "B": 2.0 + (V1 / V2) * 3.0 * (1 - decay),  # amount moves between compartments
        "C": 0.5 + V1 * 3.0 * (1 - decay),  # an amount: no division by the volume
        "D": np.full_like(times, 2 * K),
        "E": 0.1 * times,  # local parameter v = 0.1, rate v * c1 in c1
        "p_rr": 2.0 * np.exp(-0.5 * times),
    }
    for name, values in expected.items():
        # rtol 1e-6: global error of a solve at rtol 1e-10 (semantic slips are O(1) factors)
        np.testing.assert_allclose(y[:, model.index("states", name)], values, rtol=1e-6)
    params = np.asarray(model.default_params())
    env = model.expression_env(2.0, y[2], params)
    assert float(evaluate(("sym", "double_A"), env)) == pytest.approx(2 * expected["A"][2])
    assert float(evaluate(("sym", "R1"), env)) == pytest.approx(K * expected["A"][2] * V1)


def test_models_hash_by_sbml_text_so_jit_compiles_once():
    text = _model_text()
    a = SbmlModel.from_spec(compile_sbml(text))
    b = SbmlModel.from_spec(compile_sbml(text))
    assert a == b and hash(a) == hash(b)
    assert a != SbmlModel.from_spec(compile_sbml(text.replace('value="0.3"', 'value="0.4"')))


def test_initial_value_inputs_override_the_sbml():
    model = SbmlModel.from_spec(compile_sbml(_model_text()))
    params = np.asarray(model.default_params())
    inputs = np.zeros(model.n_inputs)
    inputs[model.index("inputs", "A__initial")] = 5.0
    inputs[model.index("inputs", "A__initial_set")] = 1.0
    y0 = np.asarray(model.initial_guess(params, inputs))
    assert y0[model.index("states", "A")] == 5.0
    assert y0[model.index("states", "B")] == pytest.approx(2.0)


def _with_algebraic_rule(m):
    rule = m.createAlgebraicRule()
    rule.setMath(libsbml.parseL3Formula("A + B - 5"))


def _with_delay(m):
    rule = m.getAssignmentRuleByVariable("double_A")
    rule.setMath(libsbml.parseL3Formula("delay(A, 1)"))


def _with_fast_reaction(m):
    m.getReaction("R1").setFast(True)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_with_algebraic_rule, "1 algebraic rule(s)"),
        (_with_delay, "unsupported math construct 'delay'"),
        (_with_fast_reaction, "fast reaction 'R1'"),
    ],
)
def test_unsupported_features_are_named(edit, message):
    with pytest.raises(PetabError) as info:
        compile_sbml(_model_text(edit), where="model.xml")
    assert message in str(info.value)
    assert "model.xml" in str(info.value)


def test_unreadable_sbml_is_reported():
    with pytest.raises(PetabError, match="not a readable SBML document"):
        compile_sbml("<sbml>not really</sbml>", where="model.xml")


def test_closed_form_reference_is_consistent():
    # the expected solution above solves the ODEs it claims to (guards the test itself)
    t, h = 1.3, 1e-6

    def b(tt):
        return 2.0 + (V1 / V2) * 3.0 * (1 - math.exp(-K * tt))

    derivative = (b(t + h) - b(t - h)) / (2 * h)
    assert derivative == pytest.approx(K * 3.0 * math.exp(-K * t) * V1 / V2, rel=1e-8)
