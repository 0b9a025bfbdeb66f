"""The BDF solver (il6rcc.models.BDF): order, accuracy against closed forms, reuse of
its Jacobian and LU on a stiff problem, gradients, failure flags, batching."""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
import scipy.optimize
from _robertson import radau_reference

from il6rcc.models import BDF, SolverSettings, bdf_statistics
from il6rcc.models import _bdf as bdf_module

# A stiff linear system (eigenvalues about -0.6, -2.9 and -1000) with a closed form.
A = np.array([[-1.0, 0.5, 0.0], [0.2, -3.0, 1.0], [0.0, 0.1, -1000.0]])
Y0 = np.array([1.0, 2.0, 3.0])


def linear(t, y, args):
    return args @ y


def exact_linear(ts):
    return np.stack([scipy.linalg.expm(A * t) @ Y0 for t in np.atleast_1d(ts)])


def robertson(t, y, args):
    k1, k2, k3 = args[0], args[1], args[2]
    return jnp.stack(
        [
            -k1 * y[0] + k3 * y[1] * y[2],
            k1 * y[0] - k3 * y[1] * y[2] - k2 * y[1] ** 2,
            k2 * y[1] ** 2,
        ]
    )


ROBERTSON_ARGS = np.array([0.04, 3e7, 1e4])


def solve(f, y0, args, t1, ts, rtol, atol, max_steps=20_000, **kwargs):
    return diffrax.diffeqsolve(
        diffrax.ODETerm(f),
        BDF(rtol=rtol, atol=atol, **kwargs),
        0.0,
        t1,
        None,
        jnp.asarray(y0),
        args,
        saveat=diffrax.SaveAt(ts=jnp.asarray(ts), solver_state=True),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        max_steps=max_steps,
        throw=False,
    )


# ------------------------------------------------------------------ order
@jax.jit
def _one_step(history, order, h, y_n):
    """One BDF step of order ``order`` from an exact history of ``linear``."""
    solver = BDF(rtol=1e-13, atol=1e-15)
    term = diffrax.ODETerm(linear)
    args = jnp.asarray(A)
    state = solver.init(term, 0.0, h, y_n, args)
    state = eqx.tree_at(lambda s: (s.history, s.order, s.h), state, (history, order, h))
    y1, *_ = solver.step(term, 0.0, h, y_n, args, state, False)
    return y1


def _exact_history(order, h):
    """Backward differences at spacing h of the exact solution through t = 0 (rows
    0..order), padded to the solver's history size."""
    ts = -h * np.arange(order + 1)
    values = exact_linear(ts + 1.0)  # solution shifted so that the state is not y0
    rows = [values[0]]
    diffs = values
    for _ in range(order):
        diffs = diffs[:-1] - diffs[1:]
        rows.append(diffs[0])
    history = np.zeros((bdf_module.MAX_ORDER + 3, 3))
    history[: order + 1] = rows
    return history


@pytest.mark.parametrize("order", [1, 2, 3, 4, 5])
def test_local_error_has_order_k_plus_one(order):
    """From an exact history, one step of order k errs by C h^(k+1): halving h
    divides the error by 2^(k+1) (log2 ratio within 0.35 of k + 1). The Newton
    iteration solves this linear problem exactly, so only the formula's error is left.
    """
    errors = []
    for h in (0.04, 0.02):
        history = _exact_history(order, h)
        y1 = _one_step(jnp.asarray(history), jnp.asarray(order), jnp.asarray(h), history[0])
        errors.append(np.max(np.abs(np.asarray(y1) - exact_linear(1.0 + h)[0])))
    slope = np.log2(errors[0] / errors[1])
    assert abs(slope - (order + 1)) < 0.35, (order, errors, slope)


# ------------------------------------------------------------------ accuracy
@pytest.fixture(scope="module")
def linear_solutions():
    ts = np.array([1e-3, 0.01, 0.1, 0.37, 1.0, 2.5, 5.0])
    out = {}
    for rtol in (1e-6, 1e-9):
        out[rtol, "bdf"] = solve(linear, Y0, jnp.asarray(A), 5.0, ts, rtol, rtol * 1e-3)
    return ts, out


def _check_against_expm(ts, sols):
    exact = exact_linear(ts)
    errors = {}
    for (rtol, method), sol in sols.items():
        assert sol.result == diffrax.RESULTS.successful
        errors[rtol, method] = np.max(np.abs(np.asarray(sol.ys) - exact) / np.abs(exact))
        assert errors[rtol, method] < 300 * rtol, (rtol, method, errors)
    return errors


def test_stiff_linear_system_matches_matrix_exponential(linear_solutions):
    """Dense output at arbitrary times (not step ends) against expm(A t) y0: the global
    error stays within 300 rtol (the global error of BDF codes is tens of times their
    local tolerance: 30 rtol measured here for BDF, 120 for NDF; scipy's BDF gives 32)
    and falls with the tolerance (tolerance proportionality: 1000x tighter, at least
    100x smaller error)."""
    errors = _check_against_expm(*linear_solutions)
    assert errors[1e-9, "bdf"] < errors[1e-6, "bdf"] / 100, errors


@pytest.mark.slow
def test_ndf_matches_matrix_exponential():
    """The numerical differentiation formulas (``method="ndf"``), as above."""
    ts = np.array([1e-3, 0.1, 1.0, 5.0])
    sols = {(1e-9, "ndf"): solve(linear, Y0, jnp.asarray(A), 5.0, ts, 1e-9, 1e-12, method="ndf")}
    _check_against_expm(ts, sols)


def test_solver_settings_build_the_bdf_solver():
    solver = SolverSettings(solver="bdf", rtol=1e-7, atol=1e-9).make_solver()
    assert isinstance(solver, BDF) and (solver.rtol, solver.atol) == (1e-7, 1e-9)
    assert SolverSettings(solver="ndf").make_solver().method == "ndf"


def test_bad_options_give_one_clear_error():
    with pytest.raises(ValueError) as err:
        BDF(rtol=-1.0, atol=1e-8, method="adams", linear_solver="qr", max_order=6)
    message = str(err.value)
    for needle in ("method must be", "linear_solver must be", "max_order must be", "rtol"):
        assert needle in message


# ------------------------------------------------------------------ reuse (Robertson)
@pytest.fixture(scope="module")
def robertson_counted():
    """Robertson's stiff kinetics (rtol 1e-8) to t = 1e6, with every right-hand-side
    evaluation, Jacobian and factorisation counted on the host, rejected steps
    included (the solver state's own counters keep only accepted steps)."""
    counts = {"calls": 0, "jacobians": 0, "factorisations": 0}

    def bump(name):
        def callback():
            counts[name] += 1

        return callback

    def counted_robertson(t, y, args):
        jax.debug.callback(bump("calls"))
        return robertson(t, y, args)

    class Counted(BDF):
        def _jacobian(self, rhs, t, y, args=None):
            jax.debug.callback(bump("jacobians"))
            return super()._jacobian(rhs, t, y, args)

        def _factorise(self, jac, c):
            jax.debug.callback(bump("factorisations"))
            return super()._factorise(jac, c)

    ts = np.array([0.4, 40.0, 4e3, 4e5, 1e6])
    rtol, atol = 1e-8, 1e-12
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(counted_robertson),
        Counted(rtol=rtol, atol=atol),
        0.0,
        1e6,
        None,
        jnp.array([1.0, 0.0, 0.0]),
        jnp.asarray(ROBERTSON_ARGS),
        saveat=diffrax.SaveAt(ts=jnp.asarray(ts), solver_state=True),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        max_steps=20_000,
    )
    jax.block_until_ready(sol.ys)
    return ts, sol, dict(counts)


def test_robertson_matches_a_tight_reference(robertson_counted):
    ts, sol, _ = robertson_counted
    ref = radau_reference(ROBERTSON_ARGS, ts, rtol=1e-12, atol=1e-16)
    ys = np.asarray(sol.ys)
    # y2 is tiny (1e-5 .. 1e-10): judged against atol; y1, y3 to 50 rtol
    np.testing.assert_allclose(ys[:, [0, 2]], ref[:, [0, 2]], rtol=5e-7, atol=1e-12)
    np.testing.assert_allclose(ys[:, 1], ref[:, 1], rtol=1e-5, atol=1e-12)
    # BDF conserves the linear invariant y1 + y2 + y3 = 1 up to the Newton error
    np.testing.assert_allclose(ys.sum(axis=1), 1.0, atol=1e-10)


def test_robertson_refactorises_far_less_often_than_it_steps(robertson_counted):
    """The point of the solver: on a stiff problem the LU of I - cJ is reused across
    steps. Measured here (2026-11): about 1 factorisation per 8 steps, 1 Jacobian per 60
    steps, 1.5 right-hand sides per step, all attempts counted."""
    _, sol, counts = robertson_counted
    steps = int(sol.stats["num_steps"])
    jacobians, factorisations = counts["jacobians"], counts["factorisations"]
    rhs = counts["calls"] - jacobians  # a Jacobian evaluates f once (primal) too
    assert steps > 500  # a stiff solve, not a trivial one
    assert factorisations <= steps / 4, (factorisations, steps)
    assert jacobians <= steps / 20, (jacobians, steps)
    assert rhs <= 2.0 * steps, (rhs, steps)
    # the solver state's counters (accepted steps only) agree with the host counts
    stats = bdf_statistics(sol)
    assert stats["num_factorisations"] <= factorisations
    assert stats["num_jacobians"] <= jacobians
    assert stats["num_rhs"] <= rhs


# ------------------------------------------------------------------ gradients
def _michaelis_menten_loss(theta, adjoint):
    """Log-concentrations of a stiff three-step enzymatic chain (fast binding, slow
    turnover), summed over five times; theta = log rates."""

    def f(t, y, args):
        k = jnp.exp(args)
        s, e, c, p = y
        bind = k[0] * s * e - k[1] * c
        return jnp.stack([-bind, -bind + k[2] * c, bind - k[2] * c, k[2] * c - k[3] * p])

    ts = jnp.array([0.1, 0.5, 2.0, 5.0, 10.0])
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(f),
        BDF(rtol=1e-10, atol=1e-12),
        0.0,
        10.0,
        None,
        jnp.array([1.0, 0.5, 0.0, 0.0]),
        theta,
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=diffrax.PIDController(rtol=1e-10, atol=1e-12),
        adjoint=adjoint,
        max_steps=20_000,
    )
    return jnp.sum(jnp.log(sol.ys[:, [0, 2, 3]]))


@pytest.mark.parametrize(
    "adjoint, mode",
    [
        (diffrax.RecursiveCheckpointAdjoint(), "reverse"),
        pytest.param(diffrax.ForwardMode(), "forward", marks=pytest.mark.slow),
    ],
)
def test_gradient_matches_central_finite_differences(adjoint, mode):
    """Reverse mode (checkpointed adjoint) and forward mode against a five-point
    central difference (h = 1e-3, truncation O(h^4)): relative error < 1e-5. The
    solver's tolerance (1e-10) leaves ~1e-10 of noise in the loss, ~1e-7 in the
    difference quotient."""
    theta = jnp.log(jnp.array([50.0, 5.0, 1.0, 0.1]))
    loss = jax.jit(lambda th: _michaelis_menten_loss(th, adjoint))
    grad = jax.jit(jax.grad(loss) if mode == "reverse" else jax.jacfwd(loss))(theta)
    h = 1e-3
    fd = []
    for i in range(theta.shape[0]):
        e = jnp.zeros_like(theta).at[i].set(h)
        v = [float(loss(theta + s * e)) for s in (2, 1, -1, -2)]
        fd.append((-v[0] + 8 * v[1] - 8 * v[2] + v[3]) / (12 * h))
    fd = np.array(fd)
    assert np.all(np.abs(fd) > 1e-2)  # every rate matters here
    np.testing.assert_allclose(np.asarray(grad), fd, rtol=1e-5)


# ------------------------------------------------------------------ failure, batching
def test_failed_solves_are_flagged_not_raised():
    """A finite-time blow-up (y' = y^2 from 1 blows up at t = 1) and a right-hand side
    that turns NaN (y' = -sqrt(y) - 1 reaches y = 0 at a finite time) both end with a
    failed result code under throw=False, before which the output is right."""

    def f(t, y, kind):
        return jnp.where(kind == 0, y**2, -jnp.sqrt(y) - 1.0)

    run = jax.jit(lambda kind: solve(f, jnp.array([1.0]), kind, 2.0, [0.5, 2.0], 1e-6, 1e-8, 2000))
    blow_up, nan = run(0), run(1)
    assert blow_up.result != diffrax.RESULTS.successful
    assert nan.result != diffrax.RESULTS.successful
    np.testing.assert_allclose(np.asarray(blow_up.ys)[0], 2.0, rtol=1e-4)  # y(0.5) = 2
    # for the second, sqrt(y) = u solves t = 2 (1 - u) - 2 log(2 / (1 + u)) (zero at
    # t = 0.614)
    u = scipy.optimize.brentq(lambda u: 2 * (1 - u) - 2 * np.log(2 / (1 + u)) - 0.5, 0, 1)
    np.testing.assert_allclose(np.asarray(nan.ys)[0], u**2, rtol=1e-4)


def test_vmap_gives_the_single_solves():
    """Batched solves (each element with its own steps and factorisations) agree with
    the solves one by one. Not bitwise: vectorised arithmetic rounds differently, which
    can flip a step's acceptance, so they agree to the tolerance (rtol 1e-7)."""
    rates = jnp.array([[0.04, 3e7, 1e4], [0.1, 1e7, 3e3]])
    ts = jnp.array([1.0, 100.0, 1e3])

    def one(args):
        return solve(robertson, jnp.array([1.0, 0.0, 0.0]), args, 1e3, ts, 1e-7, 1e-11).ys

    batched = jax.jit(jax.vmap(one))(rates)
    single = jax.jit(one)
    for i in range(rates.shape[0]):
        np.testing.assert_allclose(batched[i], single(rates[i]), rtol=1e-5, atol=1e-11)
    assert not np.allclose(batched[0], batched[1], rtol=1e-3)  # the rows differ


def test_gradient_of_a_batch_whose_members_finish_at_different_steps():
    """Under vmap diffrax keeps stepping every member until the last one is done; a
    finished member then takes zero-length steps whose results are discarded. Their
    gradient must be discarded too, not NaN (a division by the step size in a branch
    that is masked out still poisons a reverse-mode gradient). One member sits at its
    steady state (a few steps), the other decays with a fast and a slow rate; the
    batch's gradient equals the members' gradients one by one (rtol 1e-8)."""

    def f(t, y, k):
        return jnp.stack([-k[0] * (y[0] - 1.0), k[1] * (y[0] - y[1])])

    ts = jnp.array([0.5, 2.0, 8.0])
    y_rest = jnp.array([1.0, 1.0])  # the steady state of every member
    y_kick = jnp.array([3.0, 0.0])

    def loss_one(k, y0):
        ys = solve(f, y0, k, 8.0, ts, 1e-8, 1e-10).ys
        return jnp.sum(ys**2)

    k = jnp.array([[2.0, 0.3], [2.0, 0.3]])
    y0 = jnp.stack([y_rest, y_kick])
    batched = jax.jit(jax.grad(lambda k: jnp.sum(jax.vmap(loss_one)(k, y0))))(k)
    assert np.all(np.isfinite(np.asarray(batched)))
    single = jax.jit(jax.grad(loss_one))
    for i in range(2):
        np.testing.assert_allclose(batched[i], single(k[i], y0[i]), rtol=1e-8, atol=1e-12)
