"""The reverse pass's checkpoints (SolverSettings.checkpoints): Robertson's problem
through Kvaerno5 against a Radau reference, its gradient against finite differences,
and (slow) the same solution and gradient as with diffrax's default checkpoints (the
setting before 2026-12-01)."""

import diffrax
import jax.numpy as jnp
import numpy as np
import pytest
from _robertson import LOG_K, central_differences, compiled, radau

from il6rcc.errors import ModelSpecError
from il6rcc.models import SolverSettings
from il6rcc.models._solvers import MAX_DEFAULT_CHECKPOINTS

#: the shipped solver settings (root finder ``step_chord``, one checkpoint per step):
#: the default root finder's Robertson tests are these (tests/test_models_chord.py
#: runs the other root finders)
SHIPPED = SolverSettings(rtol=1e-6, atol=1e-10, max_steps=1000)
#: few checkpoints, as diffrax's default: the reverse pass recomputes forward steps
BEFORE = SolverSettings(rtol=1e-6, atol=1e-10, max_steps=1000, checkpoints=5)


@pytest.fixture(scope="module")
def shipped():
    return compiled(SHIPPED)


def test_one_checkpoint_per_step_by_default():
    assert SolverSettings(max_steps=300).make_adjoint().checkpoints == 300
    assert SolverSettings(max_steps=10**5).make_adjoint().checkpoints == MAX_DEFAULT_CHECKPOINTS
    assert SolverSettings(checkpoints=7).make_adjoint().checkpoints == 7
    assert isinstance(SolverSettings(adjoint="direct").make_adjoint(), diffrax.DirectAdjoint)
    with pytest.raises(ModelSpecError, match="checkpoints must be an integer > 0"):
        SolverSettings(checkpoints=0)


def test_solution_within_the_tolerance(shipped):
    _, _, ys, ok, _ = shipped
    assert ok
    # Robertson's global error at rtol 1e-6 is about 1.2e-4 (relative)
    np.testing.assert_allclose(ys, radau(LOG_K), rtol=5e-4)


def test_gradient_matches_finite_differences(shipped):
    fn, _, _, _, grad = shipped
    # NaN in every component with step_chord before a failed stage solve returned its
    # starting point (models/_chord.py)
    assert np.all(np.isfinite(grad))
    fd = central_differences(lambda x: float(fn(jnp.asarray(x))[0][0]), LOG_K)
    # central differences: O(h^2) truncation plus the solver's error over h
    np.testing.assert_allclose(grad, fd, rtol=1e-3, atol=1e-4 * np.abs(fd).max())


@pytest.mark.slow  # a second gradient compile (about 10 s)
def test_same_solution_value_and_gradient_as_before(shipped):
    _, value, ys, ok, grad = shipped
    _, value_old, ys_old, ok_old, grad_old = compiled(BEFORE)
    assert ok and ok_old
    # the same forward solve; the reverse pass recomputes steps from checkpoints with
    # the same operations, so the gradients agree to rounding
    np.testing.assert_array_equal(ys, ys_old)
    assert value == value_old
    np.testing.assert_allclose(grad, grad_old, rtol=1e-12, atol=1e-14 * np.abs(grad_old).max())
