"""Robertson's stiff chemical kinetics (three states; rate constants 0.04, 3e7, 1e4 in
the classic setting) solved by scipy's Radau IIA with the exact Jacobian: the reference
of the solver tests that integrate it (tests/test_models_bdf.py,
tests/test_models_checkpoints.py, tests/test_models_chord.py); and the loss through
diffrax those last two differentiate."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import scipy.integrate

TIMES = np.array([0.1, 1.0, 10.0, 100.0, 1000.0])
LOG_K = np.log(np.array([0.04, 3e7, 1e4]))  # Robertson's rate constants (very stiff)


def radau_reference(k, times, rtol: float, atol: float) -> np.ndarray:
    """States [len(times), 3] from y(0) = (1, 0, 0) for rate constants ``k``."""
    k1, k2, k3 = np.asarray(k, dtype=float)

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

    times = np.asarray(times, dtype=float)
    sol = scipy.integrate.solve_ivp(
        f,
        (0.0, float(times[-1])),
        [1.0, 0.0, 0.0],
        "Radau",
        t_eval=times,
        jac=jac,
        rtol=rtol,
        atol=atol,
    )
    assert sol.success, sol.message
    return sol.y.T


def radau(log_k) -> np.ndarray:
    """Reference at :data:`TIMES`: scipy's Radau IIA at rtol 1e-10 with the exact
    Jacobian."""
    return radau_reference(np.exp(log_k), TIMES, rtol=1e-10, atol=1e-15)


def robertson(t, y, k):
    return jnp.stack(
        [
            -k[0] * y[0] + k[2] * y[1] * y[2],
            k[0] * y[0] - k[2] * y[1] * y[2] - k[1] * y[1] ** 2,
            k[1] * y[1] ** 2,
        ]
    )


def solve(settings, log_k):
    """States at :data:`TIMES` and success, with diffrax's automatic first step."""
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
    relative error counts alike), and the states and success."""
    ys, ok = solve(settings, log_k)
    return jnp.sum(jnp.log(ys)), (ys, ok)


def central_differences(value, x, h: float = 1e-3) -> np.ndarray:
    """Central differences of the scalar function ``value`` at ``x``."""
    x = np.asarray(x, dtype=float)
    return np.array([(value(x + h * e) - value(x - h * e)) / (2 * h) for e in np.eye(x.size)])


def compiled(settings):
    """The jitted value and gradient of :func:`loss` under ``settings``, and its value,
    states, success and gradient at LOG_K."""
    fn = jax.jit(jax.value_and_grad(lambda x: loss(settings, x), has_aux=True))
    (value, (ys, ok)), grad = fn(jnp.asarray(LOG_K))
    return fn, float(value), np.asarray(ys), bool(ok), np.asarray(grad)
