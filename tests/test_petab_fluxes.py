"""df/dy through the reaction fluxes (petab_io/_fluxes.py) against jax.jacfwd of the
derivatives evaluated node by node, on a hub network large enough (65 states) for the
tape: compartments of two sizes, an amount species, a catalyst (reactant and product
of one reaction), a rate-rule parameter fed back into a rate, an assignment rule."""

import jax
import jax.numpy as jnp
import libsbml
import numpy as np
import pytest

from il6rcc.petab_io import SbmlModel
from il6rcc.petab_io._fluxes import flux_jacobian
from il6rcc.petab_io._math import JaxBackend, evaluate
from il6rcc.petab_io._model import TAPE_MIN_STATES
from il6rcc.petab_io._sbml import compile_sbml

N_PARTNERS = 30


def _hub_network() -> str:
    """H binds N_PARTNERS partners P_i into complexes C_i (the hub); C_0 moves to the
    nucleus as N; H makes the amount A (Michaelis-Menten); P_1 catalyses P_4 -> X;
    g' = k_g N - g (a rate rule) drives P_2's synthesis (fading in time); s = H + C_0 (an assignment
    rule) speeds P_3's decay."""
    doc = libsbml.SBMLDocument(3, 1)
    m = doc.createModel()
    m.setId("hub")
    for cid, size in (("cyt", 2.0), ("nuc", 0.5)):
        c = m.createCompartment()
        c.setId(cid)
        c.setSize(size)
        c.setConstant(True)

    def species(sid, comp="cyt", hosu=False):
        s = m.createSpecies()
        s.setId(sid)
        s.setCompartment(comp)
        s.setInitialConcentration(1.0)
        s.setHasOnlySubstanceUnits(hosu)
        s.setBoundaryCondition(False)
        s.setConstant(False)

    def parameter(pid, value, constant=True):
        p = m.createParameter()
        p.setId(pid)
        p.setValue(value)
        p.setConstant(constant)

    def reaction(rid, reactants, products, law):
        r = m.createReaction()
        r.setId(rid)
        r.setReversible(False)
        r.setFast(False)
        for sid in reactants:
            ref = r.createReactant()
            ref.setSpecies(sid)
            ref.setStoichiometry(1.0)
            ref.setConstant(True)
        for sid in products:
            ref = r.createProduct()
            ref.setSpecies(sid)
            ref.setStoichiometry(1.0)
            ref.setConstant(True)
        r.createKineticLaw().setMath(libsbml.parseL3Formula(law))

    species("H")
    for i in range(N_PARTNERS):
        species(f"P{i}")
        species(f"C{i}")
        parameter(f"koff{i}", 0.1 + 0.01 * i)
    species("N", "nuc")
    species("A", hosu=True)
    species("X")
    for pid, value in (("kon", 1.3), ("kt", 0.7), ("ka", 2.0), ("Km", 0.4), ("kcat", 0.9)):
        parameter(pid, value)
    parameter("kg", 0.5)
    parameter("kd", 0.2)
    parameter("g", 1.0, constant=False)
    parameter("s", 0.0, constant=False)
    rate = m.createRateRule()
    rate.setVariable("g")
    rate.setMath(libsbml.parseL3Formula("kg * N - g"))
    rule = m.createAssignmentRule()
    rule.setVariable("s")
    rule.setMath(libsbml.parseL3Formula("H + C0"))
    for i in range(N_PARTNERS):
        reaction(f"bind{i}", ["H", f"P{i}"], [f"C{i}"], f"kon * H * P{i} * cyt")
        reaction(f"unbind{i}", [f"C{i}"], ["H", f"P{i}"], f"koff{i} * C{i} * cyt")
    reaction("transport", ["C0"], ["N"], "kt * C0 * cyt")
    reaction("make_A", [], ["A"], "ka * H / (Km + H)")
    reaction("catalysis", ["P1", "P4"], ["P1", "X"], "kcat * P1 * P4 * cyt")
    reaction("feed", [], ["P2"], "g * cyt * exp(-0.1 * time)")
    reaction("decay", ["P3"], [], "kd * P3 * s * cyt")
    return libsbml.writeSBMLToString(doc)


@pytest.fixture(scope="module")
def hub():
    model = SbmlModel.from_spec(compile_sbml(_hub_network()))
    assert model.n_states >= TAPE_MIN_STATES  # evaluated by a tape, as large models are
    return model


def _node_by_node(model):
    """The derivatives evaluated expression by expression (no tape, no fluxes)."""

    def f(t, y, p):
        env = model.expression_env(t, y, p)
        rates = [evaluate(d, env, t, JaxBackend) for d in model.spec.derivatives]
        return jnp.stack([jnp.asarray(r, dtype=y.dtype) for r in rates])

    return f


def _random_points(model, rng):
    n = model.n_states
    for t in (0.0, 2.5):
        y = jnp.asarray(rng.uniform(0.0, 3.0, n) * 10.0 ** rng.uniform(-2, 1, n))
        scale = rng.uniform(0.5, 2.0, model.n_params)
        yield t, y, jnp.asarray(np.asarray(model.default_params()) * scale)


def test_flux_jacobian_equals_the_jacobian_with_fewer_colours(hub):
    """What the BDF reads (df/dy at the sparse LU's entries) and what the vector
    field's JVP multiplies by (df/d(y, p, t), dense; forward and reverse mode)."""
    flux = hub.flux_jacobian
    assert flux is not None
    # the hub's row depends on every partner: df/dy needs a colour per partner, the
    # rates (each of at most two species) need a handful
    assert hub.tape.n_state_colours > N_PARTNERS
    assert flux.n_colours <= 3
    n = hub.n_states
    pattern = hub.jacobian_pattern
    rows, cols = np.nonzero(pattern | np.eye(n, dtype=bool))
    reference = jax.jit(jax.jacfwd(_node_by_node(hub), argnums=(0, 1, 2)))
    weights = jnp.asarray(np.random.default_rng(5).normal(size=n))

    @jax.jit
    def ours(t, y, p):
        def f(t, y, p):
            return hub.vector_field(t, y, p, None)

        grads = jax.grad(lambda *a: jnp.dot(weights, f(*a)), argnums=(0, 1, 2))(t, y, p)
        return hub.jacobian_values(t, y, p), jax.jacfwd(f, argnums=(0, 1, 2))(t, y, p), grads

    for t, y, p in _random_points(hub, np.random.default_rng(3)):
        ref = [np.asarray(a) for a in reference(t, y, p)]
        values, jacs, grads = ours(t, y, p)
        assert np.all(ref[1][~(pattern | np.eye(n, dtype=bool))] == 0.0)
        np.testing.assert_allclose(np.asarray(values), ref[1][rows, cols], rtol=1e-12, atol=1e-14)
        # atol: 1e-12 of the largest entry (the reference's cancellations, e.g. the
        # catalyst's, leave rounding-sized entries where ours are exactly 0)
        for got, want in zip(jacs, ref, strict=True):
            atol = 1e-12 * np.abs(want).max()
            np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12, atol=atol)
        for got, want in zip(grads, ref, strict=True):
            want = np.asarray(weights) @ want
            atol = 1e-12 * np.abs(want).max()
            np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12, atol=atol)


def test_flux_jacobian_refuses_a_pattern_that_misses_a_term(hub):
    pattern = hub.jacobian_pattern.copy()
    i, j = np.argwhere(pattern)[0]
    pattern[i, j] = False
    assert flux_jacobian(hub.spec, pattern) is None
