"""'il6rcc petab fit' on Boehm_JProteomeRes2014 with a smoke budget: MAP (2 starts,
30 BFGS steps) and NUTS (2 chains x (10 warmup + 10 draws), tree depth <= 3); and the
one pipeline on a tiny exported problem: 'il6rcc petab fit' is 'il6rcc fit' of a PEtab
model (same draws), '--method map' runs no NUTS, unusable sections are refused."""

import json
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

from il6rcc.jobs import run_petab_fit
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


# ----------------------------------------------------- one pipeline for PEtab problems
#: Budget of the tiny problem's runs (MAP + 100 importance-checked Laplace draws).
TINY_BUDGET = {
    "inference": {
        "seed": 5,
        "map": {"n_starts": 2, "max_steps": 40, "num_draws": 100},
        "nuts": {"num_warmup": 20, "num_samples": 20},
        "prior_draws": 30,
    },
    "diagnostics": {"min_ess_bulk": 10, "min_ess_tail": 10},
}


#: x' = a (1 + u) - k x with synthetic measurements (tests/fixtures/petab_tiny/README.md):
#: a PEtab problem with two parameters that compiles in seconds.
TINY_PETAB = Path(__file__).parent / "fixtures" / "petab_tiny" / "tiny.yaml"


@pytest.fixture(scope="module")
def tiny_petab():
    return TINY_PETAB.resolve()


@pytest.fixture(scope="module")
def both_routes(tiny_petab, tmp_path_factory):
    """The problem through 'il6rcc petab fit --method map' (a budget config, no model
    section) and through 'il6rcc fit' of a config with model: {petab: ...}."""
    import yaml

    from il6rcc.cli import main

    root = tmp_path_factory.mktemp("routes")
    (root / "budget.yaml").write_text(yaml.safe_dump({"extends": "il6rcc:petab", **TINY_BUDGET}))
    short = root / "short"
    args = ["petab", "fit", str(tiny_petab), "--out", str(short), "--config"]
    assert main([*args, str(root / "budget.yaml"), "--method", "map", "--quiet"]) == 0
    job = {"extends": "budget.yaml", "model": {"petab": str(tiny_petab)}}
    (root / "job.yaml").write_text(yaml.safe_dump({**job, "inference": {"method": "map"}}))
    long = root / "long"
    assert main(["fit", str(root / "job.yaml"), "--out", str(long), "--quiet"]) == 0
    return short, long


def _arrays(run):
    tree = xr.open_datatree(run / "posterior.nc", engine="h5netcdf")
    out = {
        f"{g}/{k}": np.asarray(v)
        for g in ("posterior", "sample_stats", "log_likelihood", "prior")
        for k, v in tree[g].data_vars.items()
    }
    tree.close()
    return out


def test_petab_fit_is_il6rcc_fit_of_a_petab_model(both_routes, tiny_petab, tmp_path):
    """The same run config through both routes, hence the same draws for the same seed,
    and both folders are ordinary runs (report and predict read them)."""
    from il6rcc.cli import main

    short, long = both_routes
    first, second = _arrays(short), _arrays(long)
    assert first.keys() == second.keys() and "posterior/theta" in first
    for k in first:
        np.testing.assert_array_equal(first[k], second[k], err_msg=k)
    m1, m2 = (json.loads((r / "manifest.json").read_text()) for r in (short, long))
    assert m1["config"]["run_sha256"] == m2["config"]["run_sha256"]
    assert m1["kind"] == "petab" and m1["model"]["petab"] == str(tiny_petab.resolve())
    # PEtab-scale values are named for what they are
    summary = (short / "summary.csv").read_text()
    assert "theta[log10(a)]" in summary and "theta[log10(k)]" in summary
    assert main(["report", str(short)]) == 0
    assert main(["predict", str(short), "--out", str(tmp_path / "pred")]) == 0
    pred = (tmp_path / "pred" / "predictions.csv").read_text().splitlines()
    assert len(pred) == 1 + 6  # one row per measurement


def test_petab_fit_method_map_runs_no_nuts(both_routes):
    short, _ = both_routes
    diag = json.loads((short / "diagnostics.json").read_text())
    man = json.loads((short / "manifest.json").read_text())
    assert man["inference"]["method"] == diag["method"] == "map"
    assert diag["n_chains"] == 1 and "divergences" not in diag
    assert diag["gates"]["divergences"]["status"] == "not applicable"
    assert diag["importance_draws"] == 100
    tree = xr.open_datatree(short / "posterior.nc", engine="h5netcdf")
    assert "energy" not in tree["sample_stats"] and "log_weight" in tree["sample_stats"]
    tree.close()


def test_petab_config_refuses_sections_it_cannot_use(tiny_petab, tmp_path):
    import yaml

    from il6rcc.configs import load_config
    from il6rcc.errors import ConfigError

    config = tmp_path / "bad.yaml"
    config.write_text(
        yaml.safe_dump(
            {"model": {"petab": str(tiny_petab)}, "priors": {"estimate": ["a"]}, "data": {}}
        )
    )
    with pytest.raises(ConfigError) as err:
        load_config(config)
    text = str(err.value)
    assert "key priors" in text and "key data" in text and "model.petab" in text
