"""Published PEtab problems: reference log-likelihoods, simulated observables and
gradients, for every problem shipped as il6rcc.petab_io package data (a clean
checkout suffices).

Tolerances: the reference values are compared with rtol 1e-3 as in AMICI's benchmark
tests (solver rtol = atol = 1e-8); gradients with rel 1e-2 against central finite
differences.

Costs (two shared cores; compilation dominates, one per problem and quantity):
Boehm, Raia, Zhao, Laske and Blasi take well under a minute each; Bachmann about a
minute; Smith (109 states, events) and Chen (500 states) many minutes, so they are
``slow``.
"""

import dataclasses

import jax
import numpy as np
import pandas as pd
import pytest

from il6rcc.models import sparse_solver_for
from il6rcc.petab_io import (
    BENCHMARK_PROBLEMS,
    DEFAULT_SOLVER,
    REFERENCE_LLH,
    load_problem,
    make_llh,
    problem_path,
    simulation_table,
)

REFERENCE_RTOL = 1e-3

#: Problems too slow for the default suite (compilation of a 109- and a 500-state
#: model), run with ``-m slow``.
SLOW = ("Smith_BMCSystBiol2013", "Chen_MSB2009")

#: Gradient check: rel 1e-2 (AMICI's default for finite-difference checks); components
#: below 1e-5 of the largest one are within the finite differences' noise (solver
#: tolerance 1e-8 / step 1e-4) and are compared absolutely.
GRADIENT_RTOL = 1e-2
GRADIENT_ATOL_FRACTION = 1e-5
FD_STEP = 1e-4


#: Gradient checks that take minutes each on 2 cores (a finite difference per
#: parameter plus the compiled gradient), also run with ``-m slow``; Boehm's stays in
#: the default suite.
SLOW_GRADIENT = (*SLOW, "Raia_CancerResearch2011", "Blasi_CellSystems2016")


def _params(names, slow=SLOW):
    return [pytest.param(n, marks=pytest.mark.slow) if n in slow else n for n in names]


@pytest.fixture(scope="module")
def simulated():
    """Simulation tables at the nominal parameters, computed once per problem."""
    cache = {}

    def get(name):
        if name not in cache:
            problem = load_problem(problem_path(name))
            cache[name] = (problem, simulation_table(problem))
        return cache[name]

    return get


def _reference_table(name: str) -> pd.DataFrame:
    path = problem_path(name).parent / f"simulatedData_{name}.tsv"
    ref = pd.read_csv(path, sep="\t")
    # Raia's file predates the PEtab column names and drops the 'observable_' prefix.
    return ref.rename(
        columns={
            "preequilibrationCondition": "preequilibrationConditionId",
            "simulationCondition": "simulationConditionId",
        }
    )


@pytest.mark.parametrize("name", _params(sorted(REFERENCE_LLH)))
def test_reference_log_likelihood(name, simulated):
    _, table = simulated(name)
    assert table["success"].all(), table.attrs["failures"]
    llh = table["llh"].sum()
    assert llh == pytest.approx(REFERENCE_LLH[name], rel=REFERENCE_RTOL)


@pytest.mark.parametrize(
    "name", ["Boehm_JProteomeRes2014", "Bachmann_MSB2011", "Zhao_QuantBiol2020"]
)
def test_reference_log_likelihood_closely(name, simulated):
    """Where the reference is AMICI's at the same tolerances (or its own simulated
    data), the agreement is far closer than the benchmark tolerance."""
    _, table = simulated(name)
    assert table["llh"].sum() == pytest.approx(REFERENCE_LLH[name], rel=1e-6)


@pytest.mark.parametrize("name", _params(BENCHMARK_PROBLEMS))
def test_simulated_observables_match_simulated_data(name, simulated):
    """Every simulated measurement against the problem's ``simulatedData`` table,
    matched by observable, condition and time (Zhao's table also covers its test
    data, in another order)."""
    _, table = simulated(name)
    keys = ["observableId", "simulationConditionId", "time"]
    ref = _reference_table(name)
    ours = table.assign(observableId=table["observableId"].str.removeprefix("observable_"))
    ref = ref.assign(observableId=ref["observableId"].str.removeprefix("observable_"))
    ref = ref[[*keys, "simulation"]].drop_duplicates(keys)
    merged = ours[[*keys, "simulation"]].merge(ref, on=keys, how="left", suffixes=("", "_ref"))
    assert len(merged) == len(table)
    assert merged["simulation_ref"].notna().all()
    mine, theirs = merged["simulation"].to_numpy(), merged["simulation_ref"].to_numpy()
    # atol only matters where the reference is (nearly) 0 (Boehm at t = 0, Chen's
    # observables before the stimulus).
    np.testing.assert_allclose(mine, theirs, rtol=1e-3, atol=1e-6 * np.abs(theirs).max())


def test_make_llh_agrees_with_the_simulation_table(simulated):
    problem, table = simulated("Boehm_JProteomeRes2014")
    llh, parameters = make_llh(problem)
    assert parameters.estimated_ids == (
        "Epo_degradation_BaF3",
        "k_exp_hetero",
        "k_exp_homo",
        "k_imp_hetero",
        "k_imp_homo",
        "k_phos",
        "sd_pSTAT5A_rel",
        "sd_pSTAT5B_rel",
        "sd_rSTAT5A_rel",
    )
    assert float(llh(parameters.nominal_theta)) == pytest.approx(table["llh"].sum(), rel=1e-12)


@pytest.mark.parametrize(
    "name",
    _params(
        [
            "Boehm_JProteomeRes2014",
            "Raia_CancerResearch2011",
            "Blasi_CellSystems2016",  # steady states: implicit-function gradients
            "Smith_BMCSystBiol2013",  # events
        ],
        slow=SLOW_GRADIENT,
    ),
)
def test_gradient_matches_central_finite_differences(name):
    problem = load_problem(problem_path(name))
    llh, parameters = make_llh(problem)
    theta0 = parameters.nominal_theta
    # Away from the optimum (nominal values are MLEs, where the gradient is ~0 and
    # finite differences would compare noise): +-0.1 on every PEtab scale.
    theta = theta0 + 0.1 * np.where(np.arange(theta0.size) % 2 == 0, 1.0, -1.0)
    grad = np.asarray(jax.jit(jax.grad(llh))(theta))
    assert np.all(np.isfinite(grad))
    eye = np.eye(theta.size)
    fd = np.array(
        [
            (float(llh(theta + FD_STEP * e)) - float(llh(theta - FD_STEP * e))) / (2 * FD_STEP)
            for e in eye
        ]
    )
    atol = GRADIENT_ATOL_FRACTION * np.abs(fd).max()
    np.testing.assert_allclose(grad, fd, rtol=GRADIENT_RTOL, atol=atol)


@pytest.mark.slow
def test_chen_with_the_sparse_bdf():
    """Chen_MSB2009 (500 states) by the BDF with its sparse LU (the Jacobian's pattern
    from the tape, its values through the reaction fluxes) reproduces the reference
    llh (rtol 1e-3). 6.6 min at nice 19 on 2 cores loaded 6-fold (2026-12-01); mostly
    compilation (benchmarks/RESULTS.md)."""
    problem = load_problem(problem_path("Chen_MSB2009"))
    assert sparse_solver_for(problem.model.jacobian_pattern) is not None
    assert problem.model.flux_jacobian.n_colours == 7  # df/dy's own sweep needs 144
    llh, parameters = make_llh(problem, dataclasses.replace(DEFAULT_SOLVER, solver="bdf"))
    value = float(llh(jax.numpy.asarray(parameters.nominal_theta)))
    assert value == pytest.approx(REFERENCE_LLH["Chen_MSB2009"], rel=REFERENCE_RTOL)
