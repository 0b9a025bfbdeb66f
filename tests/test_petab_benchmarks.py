"""Published PEtab problems: reference log-likelihoods, simulated observables and
gradients (the problems shipped as il6rcc.petab_io package data, so a clean checkout
suffices).

Tolerances: the reference values are compared with rtol 1e-3 as in AMICI's benchmark
tests (solver rtol = atol = 1e-8); gradients with rel 1e-2 against central finite
differences.
"""

import jax
import numpy as np
import pandas as pd
import pytest

from il6rcc.petab_io import (
    BENCHMARK_PROBLEMS,
    load_problem,
    make_llh,
    problem_path,
    simulate_problem,
)

#: AMICI's benchmark values at the nominal parameters (shared/petab/README.md).
REFERENCE_LLH = {
    "Boehm_JProteomeRes2014": -138.22199693517703,
    "Bachmann_MSB2011": 418.40573341425295,
}
REFERENCE_RTOL = 1e-3

#: Gradient check: rel 1e-2 (AMICI's default for finite-difference checks); components
#: below 1e-5 of the largest one are within the finite differences' noise (solver
#: tolerance 1e-8 / step 1e-4) and are compared absolutely.
GRADIENT_RTOL = 1e-2
GRADIENT_ATOL_FRACTION = 1e-5
FD_STEP = 1e-4


@pytest.fixture(scope="module")
def simulated():
    """Simulation tables at the nominal parameters, computed once per problem."""
    cache = {}

    def get(name):
        if name not in cache:
            problem = load_problem(problem_path(name))
            cache[name] = (problem, simulate_problem(problem))
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


@pytest.mark.parametrize("name", sorted(REFERENCE_LLH))
def test_reference_log_likelihood(name, simulated):
    _, table = simulated(name)
    assert table["success"].all()
    llh = table["llh"].sum()
    assert llh == pytest.approx(REFERENCE_LLH[name], rel=REFERENCE_RTOL)
    # In practice the agreement is far closer than the benchmark tolerance.
    assert llh == pytest.approx(REFERENCE_LLH[name], rel=1e-6)


@pytest.mark.parametrize("name", BENCHMARK_PROBLEMS[:3])
def test_simulated_observables_match_simulated_data(name, simulated):
    _, table = simulated(name)
    ref = _reference_table(name)
    assert len(ref) == len(table)
    ours_ids = table["observableId"].str.removeprefix("observable_").to_numpy()
    ref_ids = ref["observableId"].str.removeprefix("observable_").to_numpy()
    np.testing.assert_array_equal(ours_ids, ref_ids)
    np.testing.assert_array_equal(
        table["simulationConditionId"].to_numpy(), ref["simulationConditionId"].to_numpy()
    )
    np.testing.assert_allclose(table["time"].to_numpy(), ref["time"].to_numpy())
    ours, theirs = table["simulation"].to_numpy(), ref["simulation"].to_numpy()
    # atol only matters where the reference is exactly 0 (Boehm at t = 0).
    np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-9 * np.abs(theirs).max())


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


@pytest.mark.parametrize("name", ["Boehm_JProteomeRes2014", "Raia_CancerResearch2011"])
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
