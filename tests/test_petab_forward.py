"""Gradients by forward sensitivities in the PEtab path (``adjoint: auto|forward``).

Problem: tests/fixtures/petab_tiny (x' = a (1 + u) - k x, two parameters; synthetic
data). The forward-sensitivity gradient must equal reverse mode through the
checkpointed adjoint (same solver, so to rounding: rtol 1e-7) and central finite
differences of the llh (rtol 1e-3: both modes differ from them by 5e-5 here), through
``make_llh``, through the posterior that fits use, and vmapped (as the Laplace
approximation's finite differences call it).
"""

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from il6rcc.errors import ModelSpecError
from il6rcc.models import SolverSettings
from il6rcc.petab_io import (
    DEFAULT_SOLVER,
    FORWARD_MAX_PARAMETERS,
    PetabPosterior,
    gradient_solver,
    load_problem,
    make_llh,
)

TINY = Path(__file__).parent / "fixtures" / "petab_tiny" / "tiny.yaml"
POINTS = np.array([[np.log10(2.0), np.log10(0.5)], [0.1, -0.5], [0.6, 0.2]])


@pytest.fixture(scope="module")
def problem():
    return load_problem(TINY)


def _solver(adjoint: str) -> SolverSettings:
    return dataclasses.replace(DEFAULT_SOLVER, adjoint=adjoint)


def test_auto_chooses_forward_sensitivities_for_few_parameters(problem):
    assert DEFAULT_SOLVER.adjoint == "auto"
    assert gradient_solver(problem, DEFAULT_SOLVER).adjoint == "forward"  # 2 parameters
    ids = tuple(f"p{i}" for i in range(FORWARD_MAX_PARAMETERS + 1))
    large = SimpleNamespace(parameters=SimpleNamespace(estimated_ids=ids))  # what it reads
    assert gradient_solver(large, DEFAULT_SOLVER).adjoint == "recursive_checkpoint"
    chosen = _solver("recursive_checkpoint")
    assert gradient_solver(problem, chosen) is chosen  # an explicit choice stays
    with pytest.raises(ModelSpecError, match="'auto'"):
        SolverSettings(adjoint="sideways")


def test_forward_sensitivities_equal_reverse_mode_and_finite_differences(problem):
    llh_f, _ = make_llh(problem, _solver("forward"))
    llh_r, _ = make_llh(problem, _solver("recursive_checkpoint"))
    grad_f = jax.jit(jax.vmap(jax.grad(llh_f)))(jnp.asarray(POINTS))
    grad_r = jax.jit(jax.vmap(jax.grad(llh_r)))(jnp.asarray(POINTS))
    np.testing.assert_allclose(grad_f, grad_r, rtol=1e-7, atol=1e-9)
    h = 1e-4
    for x, g in zip(POINTS, np.asarray(grad_f), strict=True):
        assert float(llh_f(jnp.asarray(x))) == pytest.approx(
            float(llh_r(jnp.asarray(x))), rel=1e-12
        )
        fd = [
            (float(llh_f(jnp.asarray(x + h * e))) - float(llh_f(jnp.asarray(x - h * e)))) / (2 * h)
            for e in np.eye(2)
        ]
        # both modes differentiate the discrete solve (the step sequence held fixed):
        # 5e-5 from the llh's own derivative here, the solver's error, in both modes
        np.testing.assert_allclose(g, fd, rtol=1e-3)


def test_the_fitted_posterior_uses_them(problem):
    forward = PetabPosterior(problem)  # the default: auto -> forward here
    reverse = PetabPosterior(problem, _solver("recursive_checkpoint"))
    z = jnp.asarray([0.3, -0.2])

    def value_and_grad(posterior):
        return jax.jit(jax.value_and_grad(lambda x: posterior.log_density(x, {})))(z)

    (v_f, g_f), (v_r, g_r) = value_and_grad(forward), value_and_grad(reverse)
    assert float(v_f) == pytest.approx(float(v_r), rel=1e-12)
    np.testing.assert_allclose(g_f, g_r, rtol=1e-7, atol=1e-9)
