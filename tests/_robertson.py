"""Robertson's stiff chemical kinetics (three states; rate constants 0.04, 3e7, 1e4 in
the classic setting) solved by scipy's Radau IIA with the exact Jacobian: the reference
of the solver tests that integrate it (tests/test_models_bdf.py,
tests/test_models_checkpoints.py)."""

import numpy as np
import scipy.integrate


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
