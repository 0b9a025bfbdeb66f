"""'il6rcc petab fit' on Boehm_JProteomeRes2014 with a smoke budget: MAP (2 starts,
30 L-BFGS steps) and NUTS (2 chains x (10 warmup + 10 draws), tree depth <= 3)."""

import json

import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

from il6rcc.jobs.petab_fit import run_petab_fit
from il6rcc.petab_io import DEFAULT_SOLVER, load_problem, make_llh, problem_path

BUDGET = {
    "inference.map.n_starts": 2,
    "inference.map.max_steps": 30,
    "inference.nuts.num_warmup": 10,
    "inference.nuts.num_samples": 10,
    "inference.nuts.max_tree_depth": 3,
    "inference.prior_draws": 20,
}


@pytest.fixture(scope="module")
def boehm_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("petab_fit") / "boehm"
    path = problem_path("Boehm_JProteomeRes2014")
    assert run_petab_fit(path, out, None, BUDGET) == 0
    return path, out


def test_run_folder_contract(boehm_run):
    path, out = boehm_run
    problem = load_problem(path)
    for name in (
        "posterior.nc",
        "summary.csv",
        "diagnostics.json",
        "manifest.json",
        "map.csv",
        "figures/ranks.png",
        "figures/prior_posterior.png",
    ):
        assert (out / name).is_file(), name
    tree = xr.open_datatree(out / "posterior.nc", engine="h5netcdf")
    for group in ("posterior", "sample_stats", "log_likelihood", "observed_data", "prior"):
        assert group in tree.children, group
    n_est = len(problem.parameters.estimated_ids)
    assert tree["posterior"]["theta"].shape == (2, 10, n_est)
    assert tree["log_likelihood"]["y"].shape == (2, 10, problem.n_measurements)
    lower, upper = problem.parameters.bounds_theta
    prior = np.asarray(tree["prior"]["theta"])[0]
    assert np.all((prior >= lower) & (prior <= upper))
    tree.close()
    man = json.loads((out / "manifest.json").read_text())
    assert man["status"] == "complete" and man["data"]["n_measurements"] == problem.n_measurements
    diag = json.loads((out / "diagnostics.json").read_text())
    assert "max_rhat" in diag["gates"]


def test_pointwise_log_likelihood_sums_to_the_petab_llh(boehm_run):
    """The recorded per-measurement log-likelihoods of a draw add up to make_llh's value
    at that draw (rtol 1e-9: the same solver settings)."""
    path, out = boehm_run
    problem = load_problem(path)
    llh, _ = make_llh(problem, DEFAULT_SOLVER)
    tree = xr.open_datatree(out / "posterior.nc", engine="h5netcdf")
    theta = np.asarray(tree["posterior"]["theta"])
    ll = np.asarray(tree["log_likelihood"]["y"])
    tree.close()
    for chain, draw in ((0, 0), (1, 9)):
        expected = float(llh(jnp.asarray(theta[chain, draw])))
        assert ll[chain, draw].sum() == pytest.approx(expected, rel=1e-9)
