"""The log density of a tiny case against a hand computation, and its gradient."""

import jax
import jax.numpy as jnp
import numpy as np
from _tiny import TIMES, closed_form, tiny_arrays
from scipy.stats import norm

from il6rcc.inference import (
    EvidencePosterior,
    LikelihoodSettings,
    build_priors,
    hessian_directions,
    make_problem,
)
from il6rcc.models import SolverSettings

TIGHT = SolverSettings(rtol=1e-10, atol=1e-12)
SETTINGS = LikelihoodSettings(
    probit_scale=0.3, not_significant_effect=0.7, not_significant_floor=0.2
)


def _hand_log_density(z, model, priors, log_fold=0.9, log_sd=0.2):
    """Prior of z (standard normal) + the four rows, from the closed form."""
    theta = np.exp(priors.loc + priors.sd * z)
    a, k = theta
    x = {u: closed_form(a, k, u, TIMES) for u in (0.0, 1.0, 3.0, 0.05)}
    lp = norm.logpdf(z).sum()
    d_value = np.log(x[3.0][1] / x[0.0][1])
    lp += norm.logpdf(log_fold, loc=d_value, scale=log_sd)
    d_sign = np.log(x[1.0][0] / x[0.0][0])
    lp += norm.logcdf(d_sign / 0.3)
    d_unknown = np.log(x[1.0] / x[0.0])  # at both candidate times
    lp += np.log(0.5 * norm.cdf(d_unknown[0] / 0.3) + 0.5 * norm.cdf(d_unknown[1] / 0.3))
    d_ns = np.log(x[0.05][0] / x[0.0][0])
    inside = norm.cdf((0.7 - d_ns) / 0.3) - norm.cdf((-0.7 - d_ns) / 0.3)
    lp += np.log(0.2 + 0.8 * inside)
    return lp


def _potential(problem):
    posterior = EvidencePosterior(problem)
    assert posterior.dim == 2  # only z: no hierarchy, doses, noise or blots
    data = jax.tree.map(jnp.asarray, posterior.data)
    fn = jax.jit(lambda x, d: -posterior.log_density(x, d))
    return lambda x: fn(x, data)


def test_log_density_equals_hand_computation():
    model, arrays = tiny_arrays()
    priors = build_priors(model, ["a", "k"])
    problem = make_problem(model, TIGHT, arrays, priors, SETTINGS)
    potential = _potential(problem)
    for z in (np.zeros(2), np.array([0.3, -0.4]), np.array([-1.1, 0.8])):
        expected = _hand_log_density(z, model, priors)
        np.testing.assert_allclose(-float(potential(jnp.asarray(z))), expected, rtol=1e-8)


def test_log_density_gradient_matches_finite_differences():
    model, arrays = tiny_arrays()
    problem = make_problem(model, TIGHT, arrays, build_priors(model, ["a", "k"]), SETTINGS)
    potential = _potential(problem)
    z = jnp.array([0.25, -0.35])
    grad = np.asarray(jax.grad(potential)(z))
    h = 1e-5
    fd = np.array(
        [(float(potential(z + h * e)) - float(potential(z - h * e))) / (2 * h) for e in np.eye(2)]
    )
    np.testing.assert_allclose(grad, fd, rtol=1e-6)


def test_hessian_directions_and_coordinate_names():
    names = ["stiff_one", "middle", "sloppy_one"]
    dirs = hessian_directions(np.diag([1e4, 1.0, 0.01]), names, k=1, top=1)
    assert [d["kind"] for d in dirs] == ["stiff", "sloppy"]
    assert dirs[0]["loadings"].keys() == {"stiff_one"} and dirs[0]["eigenvalue"] == 1e4
    np.testing.assert_allclose([dirs[0]["sd"], dirs[1]["sd"]], [0.01, 10.0])
    assert dirs[1]["loadings"].keys() == {"sloppy_one"}
    # a rotated pair: both coordinates load equally on the stiff direction
    r = np.array([[1.0, 1.0], [1.0, -1.0]]) / np.sqrt(2)
    (stiff,) = hessian_directions(r @ np.diag([100.0, 1.0]) @ r.T, ["x", "y"], k=1)[:1]
    # loadings are rounded to 3 decimals for the diagnostics file
    np.testing.assert_allclose(np.abs(list(stiff["loadings"].values())), 2**-0.5, atol=5e-4)
    assert np.isnan(hessian_directions(-np.eye(1), ["neg"], k=1)[0]["sd"])

    model, arrays = tiny_arrays()
    problem = make_problem(model, TIGHT, arrays, build_priors(model, ["a", "k"]), SETTINGS)
    assert EvidencePosterior(problem).coordinate_names == ("a", "k")


def test_mass_matrix_settings_reach_the_kernel():
    from il6rcc.inference._nuts import NutsSettings, make_kernel

    inverse = np.array([[2.0, 0.5], [0.5, 1.0]])
    for kind, given, adapt, dense in (
        ("laplace", True, False, True),
        ("laplace_adapt", True, True, True),
        ("dense", False, True, True),
        ("diag", False, True, False),
    ):
        model, arrays = tiny_arrays()
        problem = make_problem(model, TIGHT, arrays, build_priors(model, ["a", "k"]), SETTINGS)
        kernel = make_kernel(EvidencePosterior(problem), NutsSettings(mass_matrix=kind), inverse)
        assert (kernel._inverse_mass_matrix is not None) == given, kind
        assert kernel._adapt_mass_matrix == adapt and kernel._dense_mass == dense, kind
