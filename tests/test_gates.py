"""Gates that can fail (issue 13, item 1): the importance check of an approximation
against the true density, the saddle check of a MAP, and the verdict.

Targets with closed forms, in two dimensions (no ODE: each test takes about a second
once compiled):

* a correlated Gaussian: the Laplace approximation at its mode *is* the density, so
  the importance ratios are constant and k-hat is far below 0.5;
* a banana (Haario et al. 2001): x0 ~ N(0, 3^2), x1 | x0 ~ N(0.5 x0^2, 1). The Laplace
  approximation at the mode (0, 0) is N(0, diag(9, 1)) and misses the curved ridge
  (E[x1] = 4.5 under the target): k-hat is far above 0.7;
* a double well, -log p = x0^2 / 2 - x1^2 / 4 + x1^4 / 100: the origin is a saddle
  (Hessian eigenvalue -0.5 along x1), between modes at x1 = +-3.54.
"""

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from il6rcc.inference import (
    DrawLayout,
    Gates,
    MapSettings,
    Posterior,
    SviSettings,
    build_datatree,
    diagnose,
    importance_check,
    laplace_approximation,
    map_multistart,
    run_svi,
)

DRAWS = 400  # PSIS needs at least 25 for its tail; 400 resolves k-hat to about +-0.1
COVARIANCE = np.array([[1.0, 0.6], [0.6, 2.0]])


def _gaussian(x):
    return -0.5 * x @ jnp.asarray(np.linalg.inv(COVARIANCE)) @ x


def _banana(x):
    return -0.5 * (x[0] / 3.0) ** 2 - 0.5 * (x[1] - 0.5 * x[0] ** 2) ** 2


def _double_well(x):
    return -(0.5 * x[0] ** 2 - 0.25 * x[1] ** 2 + 0.01 * x[1] ** 4)


@dataclass(frozen=True, eq=False)
class Analytic(Posterior):
    """A closed-form log density on R^2, as the pipeline sees a posterior."""

    fn: object

    @property
    def coordinate_names(self):
        return ("x0", "x1")

    @property
    def layout(self):
        return DrawLayout(
            posterior=("theta",),
            log_likelihood="loglik",
            dims={"theta": ("parameter",), "loglik": ("obs",)},
            coords={"parameter": ["x0", "x1"], "obs": ["all"]},
            observed={"loglik": np.zeros(1)},
        )

    @property
    def data(self):
        return {}

    def initial_point(self):
        return np.array([0.3, -0.2])

    def log_density(self, x, data):
        return self.fn(x)

    def log_likelihood(self, x, data):
        return self.fn(x)  # a flat prior

    def natural(self, x, data):
        return {"theta": x}

    def record(self, x, data):
        lp = self.fn(x)
        return {"theta": x, "loglik": lp[None], "n_failed": jnp.zeros((), int), "log_density": lp}

    def prior_sample(self, key, n, data):
        return np.asarray(jax.random.normal(key, (n, 2)))


def _check(posterior, x):
    """Laplace at ``x``, its draws checked against the true density, and the gates of
    method 'map' on the resampled draws."""
    lap = laplace_approximation(posterior, x)
    xs, log_q = lap.sample(jax.random.PRNGKey(0), DRAWS)
    records = posterior.compiled.record(xs, posterior.data)
    check = importance_check(records["log_density"], log_q)
    pick = check.resample(jax.random.PRNGKey(1)) if check.pareto_k < 0.7 else np.arange(DRAWS)
    tree = build_datatree(posterior.layout, {k: v[pick][None] for k, v in records.items()})
    diag = diagnose(
        tree,
        Gates(min_ess_bulk=100),
        "map",
        importance=check,
        map_min_eigenvalue=lap.min_eigenvalue,
    )
    return lap, check, diag


@pytest.fixture(scope="module")
def gaussian():
    return Analytic(_gaussian)


def test_laplace_of_a_gaussian_passes(gaussian):
    res = map_multistart(gaussian, jax.random.PRNGKey(0), MapSettings(n_starts=2, max_steps=50))
    np.testing.assert_allclose(res.x, 0.0, atol=1e-5)
    lap, check, diag = _check(gaussian, res.x)
    # the FD Hessian of a quadratic is exact up to rounding: the precision matrix
    np.testing.assert_allclose(lap.hessian, np.linalg.inv(COVARIANCE), rtol=1e-6, atol=1e-8)
    assert not lap.saddle
    assert check.pareto_k < 0.5
    assert check.ess > 0.99 * DRAWS
    assert diag["passed"], diag["verdict"]
    assert diag["gates_checked"] == ["map_is_mode", "pareto_k", "importance_ess"]
    # gates that do not apply are listed as such, never as passed
    for name in ("max_rhat", "min_ess_bulk", "min_ess_tail", "divergences", "min_ebfmi"):
        assert diag["gates"][name]["status"] == "not applicable"
        assert diag["gates"][name]["passed"] is None
    assert "not applicable: max_rhat" in diag["verdict"]
    assert "map_is_mode" in diag["verdict"] and "pareto_k" in diag["verdict"]


def test_banana_fails_the_importance_gate():
    banana = Analytic(_banana)
    res = map_multistart(banana, jax.random.PRNGKey(0), MapSettings(n_starts=2, max_steps=100))
    np.testing.assert_allclose(res.x, 0.0, atol=1e-4)  # the mode
    lap, check, diag = _check(banana, res.x)
    assert not lap.saddle  # a true mode: only the importance check can see the problem
    assert check.pareto_k > 0.7, check.pareto_k
    assert not diag["passed"]
    assert "pareto_k" in diag["failed_gates"]
    assert diag["gates"]["pareto_k"]["status"] == "failed"
    assert "FAILED" in diag["verdict"] and "pareto_k" in diag["verdict"]


def test_saddle_fails_the_mode_gate():
    well = Analytic(_double_well)
    lap, check, diag = _check(well, np.zeros(2))
    assert lap.saddle
    np.testing.assert_allclose(lap.min_eigenvalue, -0.5, rtol=1e-5)
    assert lap.n_floored == 1  # the floored matrix is still a valid covariance
    assert "map_is_mode" in diag["failed_gates"] and diag["map_saddle"]
    assert not diag["passed"]
    # the Gaussian at the saddle misses both modes: the importance check fails too
    assert check.pareto_k > 0.7, check.pareto_k


def test_an_unmeasured_gate_fails(gaussian):
    lap = laplace_approximation(gaussian, np.zeros(2))
    xs, log_q = lap.sample(jax.random.PRNGKey(0), 10)  # too few draws for a tail fit
    records = gaussian.compiled.record(xs, gaussian.data)
    check = importance_check(records["log_density"] + 0.01 * xs[:, 0] ** 2, log_q)
    assert np.isnan(check.pareto_k)
    tree = build_datatree(gaussian.layout, {k: v[None] for k, v in records.items()})
    diag = diagnose(tree, Gates(min_ess_bulk=5), "map", importance=check, map_min_eigenvalue=1.0)
    assert diag["gates"]["pareto_k"]["status"] == "failed" and not diag["passed"]


def test_map_with_fixed_coordinates_and_warm_starts(gaussian):
    """What a profile likelihood needs: all but the fixed coordinates re-optimised, from
    given starts. For a Gaussian the conditional mode is x1 = (S10 / S00) x0."""
    starts = np.array([[2.0, 3.0], [2.0, -1.0]])
    res = map_multistart(
        gaussian, jax.random.PRNGKey(0), MapSettings(max_steps=50), starts=starts, fixed={0: 2.0}
    )
    assert res.xs.shape == (2, 2) and np.all(res.xs[:, 0] == 2.0)
    np.testing.assert_allclose(res.x[1], COVARIANCE[1, 0] / COVARIANCE[0, 0] * 2.0, atol=1e-5)


@pytest.mark.parametrize("guide", ["normal", "lowrank"])
def test_svi_draws_are_checked_against_the_true_density(gaussian, guide):
    """SVI's draws come with their log density under the guide, so the same importance
    check applies. A low-rank guide can represent the correlated Gaussian (k-hat below
    0.5, covariance recovered); the mean-field guide cannot represent the correlation
    (k-hat still below 0.7 here, a mild case) but centres on the mode."""
    settings = SviSettings(guide=guide, steps=1000, learning_rate=0.05, num_samples=DRAWS)
    res = run_svi(jax.random.PRNGKey(2), gaussian, settings)
    assert res.draws.shape == (DRAWS, 2) and res.log_q.shape == (DRAWS,)
    np.testing.assert_allclose(res.draws.mean(axis=0), 0.0, atol=0.3)
    log_p = gaussian.compiled.record(res.draws, gaussian.data)["log_density"]
    check = importance_check(log_p, res.log_q)
    if guide == "lowrank":
        assert check.pareto_k < 0.5
        np.testing.assert_allclose(np.cov(res.draws.T), COVARIANCE, rtol=0.25, atol=0.15)
    else:
        assert check.pareto_k < 0.7
