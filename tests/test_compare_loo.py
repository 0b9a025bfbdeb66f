"""PSIS-LOO of a run as `il6rcc compare` computes it (il6rcc.jobs.compare._loo), against
the closed-form leave-one-out densities of a conjugate normal model.

Model: theta ~ N(0, 1), y_i ~ N(theta, 1), five observations. Then
p(y_i | y_-i) = N(y_i; mean_-i, 1 / n + 1) with mean_-i = sum_{j != i} y_j / n.
"""

from types import SimpleNamespace

import numpy as np
import xarray as xr
from scipy.stats import norm

from il6rcc.jobs.compare import _loo

Y = np.array([0.3, -1.1, 0.8, 2.0, 0.4])
N = len(Y)
S = 4000


def _closed_form() -> np.ndarray:
    means = (Y.sum() - Y) / N
    return norm.logpdf(Y, means, np.sqrt(1.0 / N + 1.0))


def _run(theta: np.ndarray, log_q: np.ndarray | None) -> SimpleNamespace:
    ll = norm.logpdf(Y[None, :], theta[:, None], 1.0)
    groups = {
        "posterior": xr.Dataset({"theta": (("chain", "draw"), theta[None, :])}),
        "log_likelihood": xr.Dataset({"y": (("chain", "draw", "obs"), ll[None])}),
    }
    if log_q is not None:  # draws of an approximation q: the run records lp and log q
        lp = norm.logpdf(theta, 0.0, 1.0) + ll.sum(axis=1)
        groups["sample_stats"] = xr.Dataset(
            {"lp": (("chain", "draw"), lp[None]), "log_q": (("chain", "draw"), log_q[None])}
        )
    return SimpleNamespace(tree=xr.DataTree.from_dict(groups), log_likelihood_name="y")


def test_loo_of_posterior_draws_matches_the_closed_form():
    v = 1.0 / (1.0 + N)
    theta = np.random.default_rng(0).normal(v * Y.sum(), np.sqrt(v), S)
    loo, approximate = _loo(_run(theta, None))
    assert not approximate
    np.testing.assert_allclose(np.asarray(loo.elpd_i), _closed_form(), atol=0.03)


def test_draws_of_an_approximation_are_importance_corrected():
    """Draws of a shifted, wider Gaussian q: with their lp and log q the LOO equals the
    closed form; treated as posterior draws (the former behaviour) it does not."""
    v = 1.0 / (1.0 + N)
    mean_q, sd_q = v * Y.sum() + 0.4, 1.5 * np.sqrt(v)
    theta = np.random.default_rng(1).normal(mean_q, sd_q, S)
    log_q = norm.logpdf(theta, mean_q, sd_q)
    loo, approximate = _loo(_run(theta, log_q))
    assert approximate
    np.testing.assert_allclose(np.asarray(loo.elpd_i), _closed_form(), atol=0.03)
    assert np.all(np.asarray(loo.pareto_k) < 0.7)
    naive, _ = _loo(_run(theta, None))
    assert np.max(np.abs(np.asarray(naive.elpd_i) - _closed_form())) > 0.1


def test_a_row_the_draws_do_not_change_enters_with_its_value():
    """A row with the same log-likelihood in every draw (a finding reproduced with
    certainty) made arviz's Pareto smoothing raise; it enters exactly, with k 0."""
    v = 1.0 / (1.0 + N)
    theta = np.random.default_rng(2).normal(v * Y.sum(), np.sqrt(v), S)
    run = _run(theta, None)
    ll = run.tree["log_likelihood"]["y"].copy()
    ll[{"obs": 2}] = -1.9e-6
    run.tree["log_likelihood"] = xr.Dataset({"y": ll})
    loo, _ = _loo(run)
    elpd_i, k = np.asarray(loo.elpd_i), np.asarray(loo.pareto_k)
    assert elpd_i.shape == (N,) and k[2] == 0.0 and elpd_i[2] == -1.9e-6
    keep = [0, 1, 3, 4]
    np.testing.assert_allclose(elpd_i[keep], _closed_form()[keep], atol=0.03)
    np.testing.assert_allclose(loo.elpd, elpd_i.sum())
