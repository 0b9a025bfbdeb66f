"""Exporting the RCC circuit as PEtab: valid (petablint), equations equal to the
model's own, and the same log-likelihood when imported back (and, where AMICI is
installed, in AMICI)."""

import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import jax.numpy as jnp
import libsbml
import numpy as np
import pytest
import sympy

from il6rcc.models import RCCCircuit, SolverSettings, simulate
from il6rcc.petab_io import (
    ExportMeasurement,
    build_sbml,
    export_problem,
    load_problem,
    log_likelihood,
    model_expressions,
    synthetic_measurements,
)
from il6rcc.petab_io._cli import EXAMPLE_CONDITIONS, EXAMPLE_NOISE_PARAMETERS, EXAMPLE_TIMES
from il6rcc.petab_io._export import sympy_to_ast

SOLVER = SolverSettings(rtol=1e-8, atol=1e-8, max_steps=100_000, batching="map")
CONDITIONS = EXAMPLE_CONDITIONS[:3] + EXAMPLE_CONDITIONS[4:]  # 786-O x3, ACHN + IL-6
#: Round trip: the same equations and solver on both sides; the basal state differs
#: only in how it is found (Newton vs integration to |dy/dt| < 1e-8).
ROUND_TRIP_RTOL = 1e-6


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = RCCCircuit.variant("main")
    measurements = synthetic_measurements(model, CONDITIONS, EXAMPLE_TIMES, solver=SOLVER)
    out = tmp_path_factory.mktemp("rcc_petab")
    yaml_path = export_problem(
        model, CONDITIONS, measurements, out, noise_parameters=EXAMPLE_NOISE_PARAMETERS
    )
    return model, measurements, yaml_path


def _native_log_likelihood(model, measurements) -> float:
    sim = simulate(model, None, list(CONDITIONS), np.asarray(EXAMPLE_TIMES), SOLVER)
    assert sim.success.all()
    ids = [c.id for c in CONDITIONS]
    total = 0.0
    for m in measurements:
        value = sim.observable(m.observable)[ids.index(m.condition), EXAMPLE_TIMES.index(m.time)]
        if m.scale is not None:
            value *= EXAMPLE_NOISE_PARAMETERS.get(m.scale, m.scale)
        sigma = EXAMPLE_NOISE_PARAMETERS[m.noise] if isinstance(m.noise, str) else m.noise
        if m.transformation == "lin":
            r, jacobian = m.value - value, 0.0
        else:
            r, jacobian = math.log(m.value) - math.log(value), math.log(m.value)
        total += -0.5 * math.log(2 * math.pi * sigma**2) - 0.5 * (r / sigma) ** 2 - jacobian
    return total


def test_export_passes_petablint(exported):
    _, _, yaml_path = exported
    result = subprocess.run(
        [sys.executable, "-m", "petab.petablint", "-v", str(yaml_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PEtab format check completed successfully" in result.stdout + result.stderr


# compiles the exported circuit through the PEtab path (minutes)
@pytest.mark.slow
def test_round_trip_log_likelihood_equals_native(exported):
    model, measurements, yaml_path = exported
    problem = load_problem(yaml_path)
    assert problem.n_measurements == len(measurements)
    assert all(pre is not None for pre, _ in problem.simulations)  # pre-equilibrated
    imported = log_likelihood(problem, solver=SOLVER)
    native = _native_log_likelihood(model, measurements)
    assert imported == pytest.approx(native, rel=ROUND_TRIP_RTOL)


def test_amici_log_likelihood_agrees(exported, monkeypatch, tmp_path):
    pytest.importorskip("amici")
    import petab.v1 as petab
    from amici.importers.petab.v1 import import_petab_problem
    from amici.sim.sundials.petab.v1 import LLH, simulate_petab

    model, measurements, yaml_path = exported
    # AMICI's generated extension needs the venv's own swig first on PATH.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    problem = petab.Problem.from_yaml(yaml_path)
    if petab.measurement_table_has_timepoint_specific_mappings(problem.measurement_df):
        petab.flatten_timepoint_specific_output_overrides(problem)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # third-party deprecation notices
        amici_model = import_petab_problem(problem, output_dir=tmp_path / "amici", compile_=True)
        solver = amici_model.create_solver()
        solver.set_relative_tolerance(1e-8)
        solver.set_absolute_tolerance(1e-8)
        result = simulate_petab(problem, amici_model=amici_model, solver=solver)
    native = _native_log_likelihood(model, measurements)
    assert result[LLH] == pytest.approx(native, rel=1e-3)


def test_exported_equations_equal_the_model(rng):
    model = RCCCircuit.variant("socs3_both")
    rates, observables = model_expressions(model)
    y = rng.uniform(0.1, 1.0, model.n_states)
    p = model.default_params() * rng.uniform(0.5, 2.0, model.n_params)
    u = np.zeros(model.n_inputs)
    u[model.index("inputs", "ifn_alpha")] = 100.0
    u[model.index("inputs", "sorafenib")] = 2.0
    u[model.index("inputs", "treatment_phase")] = 1.0
    values = {sympy.Symbol(s): y[i] for i, s in enumerate(model.states)}
    values.update({sympy.Symbol(q.name): p[i] for i, q in enumerate(model.parameters)})
    values.update({sympy.Symbol(f"input_{v.name}"): u[i] for i, v in enumerate(model.inputs)})
    values[sympy.Symbol("time")] = 5.0
    expected_rates = np.asarray(model.vector_field(0.0, jnp.asarray(y), p, jnp.asarray(u)))
    got_rates = np.array([float(rates[s].evalf(subs=values)) for s in model.states])
    np.testing.assert_allclose(got_rates, expected_rates, rtol=1e-10, atol=1e-12)
    expected_obs = np.asarray(model.observe(5.0, jnp.asarray(y), p, jnp.asarray(u)))
    got_obs = np.array([float(observables[o].evalf(subs=values)) for o in model.observable_names])
    np.testing.assert_allclose(got_obs, expected_obs, rtol=1e-10, atol=1e-12)


def test_variants_export_different_sbml():
    main = build_sbml(RCCCircuit.variant("main"))
    stat1 = build_sbml(RCCCircuit.variant("socs3_stat1"))
    assert main != stat1
    document = libsbml.readSBMLFromString(main)
    assert document.getNumErrors(libsbml.LIBSBML_SEV_ERROR) == 0
    model = document.getModel()
    # every state and its copy in the untreated reference (growth_ref is anchored to it)
    assert model.getNumSpecies() == 2 * len(RCCCircuit.states)
    assert model.getNumRules() == 2 * len(RCCCircuit.states)


def test_max_becomes_piecewise_in_sbml():
    a, b = sympy.symbols("a b")
    ast = sympy_to_ast(sympy.Max(a, b) + 1)
    text = libsbml.formulaToL3String(ast)
    assert "piecewise" in text and "max" not in text


def test_export_rejects_bad_measurements(tmp_path):
    from il6rcc.errors import PetabError

    model = RCCCircuit.variant("main")
    bad = [
        ExportMeasurement("pstat9", CONDITIONS[0].id, 1.0, 0.5, 0.1),
        ExportMeasurement("pstat1", "nowhere", 1.0, 0.5, 0.1),
        ExportMeasurement("pstat1", CONDITIONS[0].id, 1.0, -0.5, 0.1, "log"),
        ExportMeasurement("pstat1", CONDITIONS[0].id, 1.0, 0.5, -0.1),
    ]
    with pytest.raises(PetabError) as info:
        export_problem(model, CONDITIONS, bad, tmp_path)
    message = str(info.value)
    assert "unknown observable" in message and "unknown condition" in message
    assert "> 0 under a log" in message and "noise -0.1 must be > 0" in message


@pytest.mark.slow
def test_gradient_through_preequilibration_matches_finite_differences(exported):
    import jax

    from il6rcc.petab_io import make_llh

    _, _, yaml_path = exported
    llh, table = make_llh(load_problem(yaml_path), SOLVER)
    theta = table.nominal_theta
    grad = np.asarray(jax.jit(jax.grad(llh))(theta))
    assert np.all(np.isfinite(grad))
    ids = table.estimated_ids
    # a parameter of each kind: kinetic, basal (pre-equilibration), cell line, noise, scale
    names = ["k_socs3_deg", "k_il6_clear", "kd_socs3", "il6_tx_basal__ACHN", "sd_pstat1"]
    names.append("scale_pstat3")
    step = 1e-4
    for name in names:
        e = np.zeros_like(theta)
        e[ids.index(name)] = step
        fd = (float(llh(theta + e)) - float(llh(theta - e))) / (2 * step)
        assert grad[ids.index(name)] == pytest.approx(fd, rel=1e-2), name
