"""The chord root finder of the implicit stages (il6rcc.models._chord.InverseChord) and
the reverse pass's checkpoints: a closed-form root, Robertson's problem against a Radau
reference, its gradient against finite differences, and (slow) the same solution and
gradient as optimistix's Chord with diffrax's default checkpoints (the settings before)."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
import pytest
import scipy.integrate

from il6rcc.errors import ModelSpecError
from il6rcc.models import SolverSettings
from il6rcc.models._chord import InverseChord
from il6rcc.models._solvers import MAX_DEFAULT_CHECKPOINTS

TIMES = np.array([0.1, 1.0, 10.0, 100.0, 1000.0])
LOG_K = np.log(np.array([0.04, 3e7, 1e4]))  # Robertson's rate constants (very stiff)


def robertson(t, y, k):
    return jnp.stack(
        [
            -k[0] * y[0] + k[2] * y[1] * y[2],
            k[0] * y[0] - k[2] * y[1] * y[2] - k[1] * y[1] ** 2,
            k[1] * y[1] ** 2,
        ]
    )


def solve(settings: SolverSettings, log_k):
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(robertson),
        settings.make_solver(),
        t0=0.0,
        t1=float(TIMES[-1]),
        dt0=None,
        y0=jnp.array([1.0, 0.0, 0.0]),
        args=jnp.exp(log_k),
        saveat=diffrax.SaveAt(ts=jnp.asarray(TIMES)),
        stepsize_controller=settings.make_controller(),
        max_steps=settings.max_steps,
        adjoint=settings.make_adjoint(),
        throw=False,
    )
    return sol.ys, sol.result == diffrax.RESULTS.successful


def loss(settings, log_k):
    """Sum of the log states after the start (y2 is about 1e-5 .. 4e-5: every state's
    relative error counts alike), and the states."""
    ys, ok = solve(settings, log_k)
    return jnp.sum(jnp.log(ys)), (ys, ok)


def radau(log_k) -> np.ndarray:
    """Reference solution: scipy's Radau IIA at rtol 1e-10 with the exact Jacobian."""
    k1, k2, k3 = np.exp(log_k)

    def f(t, y):
        return [
            -k1 * y[0] + k3 * y[1] * y[2],
            k1 * y[0] - k3 * y[1] * y[2] - k2 * y[1] ** 2,
            k2 * y[1] ** 2,
        ]

    def jac(t, y):
        return [
            [-k1, k3 * y[2], k3 * y[1]],
            [k1, -k3 * y[2] - 2 * k2 * y[1], -k3 * y[1]],
            [0.0, 2 * k2 * y[1], 0.0],
        ]

    sol = scipy.integrate.solve_ivp(
        f, (0.0, TIMES[-1]), [1.0, 0.0, 0.0], "Radau", TIMES, jac=jac, rtol=1e-10, atol=1e-15
    )
    return sol.y.T


SHIPPED = SolverSettings(rtol=1e-6, atol=1e-10, max_steps=1000)
#: what the circuit used before: optimistix's Chord, which refactorises at every stage,
#: and few checkpoints, so the reverse pass recomputes forward steps
BEFORE = SolverSettings(
    rtol=1e-6, atol=1e-10, max_steps=1000, root_finder="stage_chord", checkpoints=5
)


def _compiled(settings):
    """The jitted value and gradient of :func:`loss`, and its value, states, success and
    gradient at LOG_K."""
    fn = jax.jit(jax.value_and_grad(lambda x: loss(settings, x), has_aux=True))
    (value, (ys, ok)), grad = fn(jnp.asarray(LOG_K))
    return fn, float(value), np.asarray(ys), bool(ok), np.asarray(grad)


@pytest.fixture(scope="module")
def shipped():
    return _compiled(SHIPPED)


def test_settings_make_the_inverse_chord_and_one_checkpoint_per_step():
    solver = SolverSettings().make_solver()
    assert isinstance(solver.root_finder, InverseChord)
    assert type(SolverSettings(root_finder="stage_chord").make_solver().root_finder) is optx.Chord
    assert SolverSettings(max_steps=300).make_adjoint().checkpoints == 300
    assert SolverSettings(max_steps=10**5).make_adjoint().checkpoints == MAX_DEFAULT_CHECKPOINTS
    assert SolverSettings(checkpoints=7).make_adjoint().checkpoints == 7
    with pytest.raises(ModelSpecError, match="checkpoints must be an integer > 0"):
        SolverSettings(checkpoints=0)


def test_inverse_chord_finds_a_closed_form_root():
    # x_i^3 = a_i, coupled through a term that vanishes at the root
    def fn(x, a):
        return x**3 - a + 0.1 * (x - jnp.cbrt(a)).sum()

    a = jnp.array([2.0, 5.0, 0.5])
    sol = optx.root_find(fn, InverseChord(rtol=1e-12, atol=1e-14), jnp.cbrt(a) * 1.2, a)
    np.testing.assert_allclose(sol.value, np.cbrt(a), rtol=1e-10)
    assert sol.stats["num_steps"] > 1  # iterated with one linearisation


def test_solution_within_the_tolerance(shipped):
    _, _, ys, ok, _ = shipped
    assert ok
    # Robertson's global error at rtol 1e-6 is about 1.2e-4 (relative), as with
    # optimistix's Chord (measured: the same to 3e-12)
    np.testing.assert_allclose(ys, radau(LOG_K), rtol=5e-4)


def test_gradient_matches_finite_differences(shipped):
    fn, _, _, _, grad = shipped
    assert np.all(np.isfinite(grad))
    h = 1e-3

    def value(x):
        return float(fn(jnp.asarray(x))[0][0])

    fd = np.array([(value(LOG_K + h * e) - value(LOG_K - h * e)) / (2 * h) for e in np.eye(3)])
    # central differences: O(h^2) truncation plus the solver's error over h
    np.testing.assert_allclose(grad, fd, rtol=1e-3, atol=1e-4 * np.abs(fd).max())


@pytest.mark.slow  # a second gradient compile (about 10 s)
def test_same_solution_value_and_gradient_as_before(shipped):
    _, value, ys, ok, grad = shipped
    _, value_old, ys_old, ok_old, grad_old = _compiled(BEFORE)
    assert ok and ok_old
    # the same step sequence: the stage values differ by the root tolerance (rtol 1e-8)
    np.testing.assert_allclose(ys, ys_old, rtol=1e-7)
    np.testing.assert_allclose(value, value_old, rtol=1e-9)
    np.testing.assert_allclose(grad, grad_old, rtol=1e-6, atol=1e-9 * np.abs(grad_old).max())
