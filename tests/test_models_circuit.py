"""The RCC circuit: steady states, gradients, failures, determinism and bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from il6rcc.errors import ModelSpecError
from il6rcc.models import (
    VARIANTS,
    Condition,
    RCCCircuit,
    SolverSettings,
    basal_state_jit,
    load_model,
    make_batch,
    simulate,
    simulate_arrays,
)

MAIN = RCCCircuit.variant("main")
#: Parameters without influence in the main variant under ``_all_inputs_conditions``.
MAIN_INERT = {
    "w_stat1_socs3",
    "w_tki_akt",
    "w_tki_il6",
    "w_il6r_nfkb",
    "socs1_k_ifnar",
    "usp18_k_ifnar",
    "w_stat1_usp18",
    "k_usp18",
    "w_escape",
    "k_escape",
    "anti_il6_kd",
    "sgp130_ic50",
    "hyper_il6_ec50",
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_basal_state_is_steady_for_every_cell_line(variant):
    """max |f(y0)| < 1e-8 at the basal state, every cell line, with and without the
    pre-treatment perturbations (siRNA, over-expression, xenograft). Growth is counted
    against untreated cells of the line, so under a knock-down or over-expression alone
    ``log_growth`` moves (by mu x the change of the proliferative drive) and only it."""
    model = RCCCircuit.variant(variant)
    settings = SolverSettings()
    pre = np.zeros(model.n_inputs)
    pre_si = pre.copy()
    for name in ("si_socs3", "socs3_overexpression", "xenograft"):
        pre_si[model.index("inputs", name)] = 1.0
    growth = model.index("states", "log_growth")
    ref = model.index("states", "growth_ref")
    worst = 0.0
    for line in model.cell_line_names:
        p = jnp.asarray(model.default_params(line))
        for u in (pre, pre_si):
            y, ok = basal_state_jit(model, settings, p, jnp.asarray(u))
            assert bool(ok), (variant, line)
            # after treatment starts with no treatment, the state must stay at rest
            u_treat = jnp.asarray(u + model.phase_mask())
            y0 = model.perturb(y, p, u_treat)
            rates = np.asarray(model.vector_field(0.0, y0, p, u_treat))
            worst = max(worst, np.abs(np.delete(rates, growth)).max())
            if u is pre:
                assert abs(rates[growth]) < 1e-8, (variant, line)
            else:  # the xenograft alone is the reference
                u_ref = np.zeros(model.n_inputs)
                u_ref[model.index("inputs", "xenograft")] = 1.0
                y_ref, _ = basal_state_jit(model, settings, p, jnp.asarray(u_ref))
                assert float(y0[ref]) == pytest.approx(float(y_ref[ref]), abs=1e-10)
    assert worst < 1e-8


def test_a_knockdown_alone_changes_growth_at_the_rate_its_drive_implies():
    """IL-6 siRNA in 786-O: d log_growth/dt at treatment start equals mu_vitro x (drive
    under the knock-down - drive of untreated cells), and it is negative (less autocrine
    IL-6 signalling)."""
    model = MAIN
    settings = SolverSettings()
    p = jnp.asarray(model.default_params("786-O"))
    u = np.zeros(model.n_inputs)
    u_si = u.copy()
    u_si[model.index("inputs", "si_il6")] = 1.0
    y_ctrl, _ = basal_state_jit(model, settings, p, jnp.asarray(u))
    y_si, ok = basal_state_jit(model, settings, p, jnp.asarray(u_si))
    assert bool(ok)
    u_treat = jnp.asarray(u_si + model.phase_mask())
    rate = float(model.vector_field(0.0, y_si, p, u_treat)[model.index("states", "log_growth")])
    named = model.unpack(p)
    drive = {
        name: float(
            named["w_akt_growth"] * y[model.index("states", "akt")]
            + named["w_stat3_growth"] * y[model.index("states", "pstat3")]
            - named["w_stat1_growth"] * y[model.index("states", "pstat1")]
        )
        for name, y in (("si", y_si), ("ctrl", y_ctrl))
    }
    expected = float(named["mu_vitro"]) * (drive["si"] - drive["ctrl"])
    assert rate == pytest.approx(expected, rel=1e-6)
    assert rate < -1e-4


def _all_inputs_conditions():
    """Conditions that together exercise every input (so every parameter matters)."""
    return [
        Condition("ifn", "786-O", {"ifn_alpha": 800.0, "si_socs3": 1.0}),
        Condition("ifn_tcz", "786-O", {"ifn_alpha": 800.0, "tocilizumab": 20.0, "si_il6r": 1}),
        Condition("il6", "ACHN", {"il6": 5.0, "ifn_alpha": 300.0, "socs3_overexpression": 1}),
        Condition(
            "tki",
            "786-O",
            {
                "sorafenib": 2.0,
                "sunitinib": 1.0,
                "pazopanib": 6.0,
                "si_il6": 1,
                "si_ifnar": 1,
                "trail": 30.0,
            },
        ),
        Condition("vivo", "786-O", {"sorafenib": 1.0, "xenograft": 1.0, "tocilizumab": 10.0}),
    ]


def _check_gradient(every: int):
    """d/d log(theta) of sum(log observables) vs finite differences for every
    ``every``-th estimable parameter: relative error < 1e-4 (floor 1e-3 on small
    derivatives).

    The scalar sums about 3500 log-observables, so the solver's relative error (1e-11)
    leaves about 1e-8 of noise in it; a central difference with h = 1e-4 turns that into
    ~5e-5 of noise in the derivative, more than 1e-4 of the smallest derivatives (0.02).
    The five-point stencil has O(h^4) truncation error, which allows h = 1e-2 and cuts
    the noise a hundredfold."""
    model = MAIN
    batch = make_batch(model, _all_inputs_conditions())
    settings = SolverSettings(rtol=1e-11, atol=1e-13, max_steps=20000)
    times = jnp.array([0.5, 2.0, 8.0, 30.0, 96.0])
    base = np.stack([model.default_params(r) for r in batch.row_names])
    args = [jnp.asarray(x) for x in batch.arrays]
    est = np.array([i for i, p in enumerate(model.parameters) if p.estimable])
    logit = np.array([model.parameters[i].scale == "logit" for i in est])
    fixed = base.copy()  # mechanism switches and other non-estimable parameters stay put
    ratios = base[:, est] / base[0, est]  # cell-line factors kept fixed
    x0 = base[0, est]
    z0 = np.where(logit, np.log(x0 / np.where(logit, 1 - x0, 1.0)), np.log(x0))

    def rows(z):
        natural = jnp.where(logit, jax.nn.sigmoid(z), jnp.exp(z))
        return jnp.asarray(fixed).at[:, est].set(natural[None, :] * ratios)

    def scalar(z):
        obs, _, ok, _ = simulate_arrays(model, settings, rows(z), *args, times)
        return jnp.sum(jnp.log(jnp.abs(obs) + 1e-3))

    grad = np.asarray(jax.jit(jax.grad(scalar))(jnp.asarray(z0)))
    f = jax.jit(scalar)
    h = 1e-2
    fd = np.zeros_like(grad)
    # every ``every``-th parameter, plus the ones with the smallest derivatives (the TKI
    # toxicity IC50s), where a noisy difference shows first
    small = [i for i, j in enumerate(est) if "tox_ic50" in model.parameter_names[j]]
    checked = sorted(set(range(0, len(est), every)) | set(small))
    for i in checked:
        e = np.zeros_like(z0)
        e[i] = h
        vals = [float(f(jnp.asarray(z0 + k * e))) for k in (2, 1, -1, -2)]
        fd[i] = (-vals[0] + 8 * vals[1] - 8 * vals[2] + vals[3]) / (12 * h)
    grad, fd = grad[checked], fd[checked]
    names = [model.parameter_names[est[i]] for i in checked]
    err = np.abs(grad - fd) / np.maximum(np.abs(fd), 1e-3)
    worst = np.argsort(err)[::-1][:3]
    assert err.max() < 1e-4, [(names[i], grad[i], fd[i]) for i in worst]
    # every checked parameter influences this scalar (otherwise the check would be
    # vacuous), except those of edges the main variant switches off (SOCS3 induction
    # via STAT1, TKIs on AKT or IL-6 directly, IL-6R on NF-kB, SOCS1/USP18 on IFNAR,
    # the angiogenic escape) and of inputs these conditions do not use
    inert = {names[i] for i in np.flatnonzero(np.abs(fd) < 1e-9)}
    assert inert <= MAIN_INERT, inert


@pytest.mark.slow  # compiles the circuit gradient (minutes); the full check is slow too
def test_gradients_match_central_finite_differences_sample():
    """Every 24th estimable parameter and the TKI toxicity IC50s (the whole set is the
    slow test below)."""
    _check_gradient(every=24)


@pytest.mark.slow
def test_gradients_match_central_finite_differences_all():
    _check_gradient(every=1)


# compiles the circuit for its own step limit; the next test covers a flagged failure
@pytest.mark.slow
def test_failed_solve_is_flagged_not_raised():
    settings = SolverSettings(max_steps=4)
    sim = simulate(
        MAIN, None, [Condition("ifn", "786-O", {"ifn_alpha": 1000.0})], [1.0, 24.0], settings
    )
    assert not sim.success[0]
    assert np.isnan(sim.observables).all()


def test_failed_solve_of_one_condition_keeps_the_others():
    """A parameter row that makes a solve fail flags only its own conditions."""
    batch = make_batch(
        MAIN,
        [
            Condition("a", "786-O", {"ifn_alpha": 1000.0}),
            Condition("b", "ACHN", {"ifn_alpha": 1000.0}),
        ],
    )
    rows = np.stack([MAIN.default_params(r) for r in batch.row_names])
    rows[0, MAIN.index("parameters", "k_stat1_p")] = np.nan
    sim = simulate(MAIN, rows, batch, [1.0, 24.0])
    assert sim.success.tolist() == [False, True]
    assert np.isfinite(sim.observables[1]).all()


# compiles the circuit for its own condition set (~2 min); fits are checked bit for bit
# in the default suite (test_fit_job.py)
@pytest.mark.slow
def test_two_runs_identical():
    conds = _all_inputs_conditions()
    a = simulate(MAIN, None, conds, [1.0, 10.0, 50.0])
    b = simulate(MAIN, None, conds, [1.0, 10.0, 50.0])
    np.testing.assert_array_equal(a.observables, b.observables)


@pytest.mark.parametrize(
    "build, needle",
    [
        (lambda: load_model("rcc_circuit", "socs3_via_magic"), "valid: 'ifn_socs1'"),
        (lambda: RCCCircuit(socs3_induction="stat2"), "valid: 'both', 'il6_loop'"),
        (lambda: make_batch(MAIN, [Condition("x", "HEK293")]), "valid: '769-P', '786-O'"),
        (lambda: SolverSettings(solver="rk45"), "solver 'rk45' is unknown; valid: 'bdf', 'dopri5'"),
        (
            lambda: make_batch(MAIN, [Condition("x", "786-O", {"interferon": 1.0})]),
            "valid: 'anti_il6', 'hyper_il6', 'ifn_alpha', 'il6'",
        ),
        (
            lambda: make_batch(MAIN, [Condition("x", "786-O", {"ifn_alpha": -5.0})]),
            "must be a finite number >= 0",
        ),
        (lambda: make_batch(MAIN, [Condition("x", "786-O", {"si_socs3": 0.5})]), "expected 0 or 1"),
        (
            lambda: make_batch(MAIN, [Condition("x", "786-O", {"treatment_phase": 1.0})]),
            "unknown perturbation 'treatment_phase'",
        ),
        (lambda: load_model("no_such_model"), "valid: 'inducible_gene'"),
    ],
)
def test_bad_input_gives_one_clear_error(build, needle):
    with pytest.raises(ModelSpecError) as info:
        build()
    assert needle in str(info.value)


def test_all_problems_reported_together():
    with pytest.raises(ModelSpecError) as info:
        make_batch(MAIN, [Condition("x", "HEK293", {"ifn_alpha": -1.0, "foo": 1.0})])
    text = str(info.value)
    assert "HEK293" in text and "'foo'" in text and "-1.0" in text


def test_user_model_from_file(tmp_path):
    path = tmp_path / "my_model.py"
    path.write_text(
        "from dataclasses import dataclass\n"
        "from typing import ClassVar\n"
        "import jax.numpy as jnp\n"
        "from il6rcc.models import ODEModel, ParameterSpec, ObservableSpec\n\n"
        "@dataclass(frozen=True)\n"
        "class Growth(ODEModel):\n"
        "    name: ClassVar[str] = 'growth'\n"
        "    states: ClassVar[tuple] = ('x',)\n"
        "    parameters: ClassVar[tuple] = (ParameterSpec('r', 0.3, '1/h', 'rate'),)\n"
        "    observables: ClassVar[tuple] = (ObservableSpec('x', 'a.u.', 'x'),)\n"
        "    equilibrate: ClassVar[bool] = False\n"
        "    def vector_field(self, t, y, params, inputs):\n"
        "        return params[0] * y\n"
        "    def observe(self, t, y, params, inputs):\n"
        "        return y\n"
    )
    model = load_model(f"{path.name}:Growth", base_dir=tmp_path)
    sim = simulate(
        model, None, [Condition("c", "default")], [1.0, 2.0], SolverSettings(rtol=1e-10, atol=1e-12)
    )
    np.testing.assert_allclose(
        sim.observable("x")[0], np.exp(0.3 * np.array([1.0, 2.0])), rtol=1e-7
    )
    with pytest.raises(ModelSpecError, match="no ODEModel subclass 'Nope'; found: 'Growth'"):
        load_model(f"{path.name}:Nope", base_dir=tmp_path)
