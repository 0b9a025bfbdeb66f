"""The step-Jacobian chord root finder (models/_chord.py): Robertson's problem through
Kvaerno5 with diffrax's automatic first step, whose first step is rejected after a
stage's chord iteration diverged. Before a failed stage solve returned its starting
point, the forward solution was right and every component of the gradient was NaN."""

import jax.numpy as jnp
import numpy as np
import optimistix as optx
import pytest
from _robertson import LOG_K, central_differences, compiled, radau

from il6rcc.models import SolverSettings, StepChord


def _settings(root_finder: str) -> SolverSettings:
    return SolverSettings(rtol=1e-6, atol=1e-10, max_steps=1000, root_finder=root_finder)


#: The default root finder (``step_chord``) on Robertson is tests/test_models_checkpoints.py's
#: ``shipped`` fixture (the same settings: one compile, not two); here optimistix's chord
#: and the LU variant, which differ only in the linear algebra of each iteration (one
#: more gradient compile each, about 10 s), outside the default run.
ROOT_FINDERS = [
    pytest.param("step_chord_lu", marks=pytest.mark.slow),
    pytest.param("chord", marks=pytest.mark.slow),
]


@pytest.fixture(scope="module", params=ROOT_FINDERS)
def other_root_finder(request):
    """The jitted value and gradient of the Robertson loss, and its value, states,
    success and gradient at LOG_K."""
    return compiled(_settings(request.param))


def test_solution_within_the_tolerance(other_root_finder):
    _, _, ys, ok, _ = other_root_finder
    assert ok
    # Robertson's global error at rtol 1e-6 is about 1.2e-4 (relative)
    np.testing.assert_allclose(ys, radau(LOG_K), rtol=5e-4)


def test_gradient_is_finite_and_matches_finite_differences(other_root_finder):
    fn, _, _, _, grad = other_root_finder
    assert np.all(np.isfinite(grad)), grad
    fd = central_differences(lambda x: float(fn(jnp.asarray(x))[0][0]), LOG_K)
    # central differences: O(h^2) truncation plus the solver's error over h
    np.testing.assert_allclose(grad, fd, rtol=1e-3, atol=1e-4 * np.abs(fd).max())


@pytest.mark.parametrize("inverse", [False, True])
def test_a_failed_solve_returns_its_starting_point(inverse):
    """y^2 + 1 = 0 has no real root: the chord iteration fails, and its value is the
    starting point, not the last (diverging) iterate."""
    root = StepChord(rtol=1e-8, atol=1e-10, inverse=inverse)
    start = jnp.array([0.5, -2.0])
    sol = optx.root_find(lambda y, _: y**2 + 1.0, root, start, throw=False, max_steps=20)
    assert sol.result != optx.RESULTS.successful
    np.testing.assert_array_equal(np.asarray(sol.value), np.asarray(start))


@pytest.mark.parametrize("inverse", [False, True])
def test_a_converged_solve_is_the_root(inverse):
    root = StepChord(rtol=1e-10, atol=1e-12, inverse=inverse)
    sol = optx.root_find(
        lambda y, _: y**2 - jnp.array([4.0, 9.0]), root, jnp.array([1.8, 3.1]), throw=False
    )
    assert sol.result == optx.RESULTS.successful
    np.testing.assert_allclose(np.asarray(sol.value), [2.0, 3.0], rtol=1e-9)
