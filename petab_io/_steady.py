"""Steady states of imported models: Newton's method with conservation laws, implicit
function gradients, and integration as the fallback.

Mass-action models conserve moieties (total STAT5, receptor, ...): their Jacobian is
singular, so Newton's method on ``f(y) = 0`` alone has no unique answer. The
conservation laws follow from the stoichiometry (:func:`conservation_laws`): every
``u`` with ``u^T S = 0`` gives a conserved total ``sum_i u_i V_i y_i`` (``V_i`` the
compartment size of a concentration, 1 for an amount), and so do constant states.
One state per law (the pivots of a reduced echelon basis) has its equation
``f_i(y) = 0`` replaced by ``total(y) = total(y_start)``; the reduced system has an
invertible Jacobian whenever the steady state is isolated in its compatibility
class.

:func:`steady_state` then (as AMICI does) tries damped Newton from the start, falls
back to integrating the ODE until ``|dy/dt| <= atol + rtol*|y|`` (RMS norms, the
solver's tolerances) followed by Newton, and returns the state with its gradient
from the implicit function theorem on the reduced system; where that system is
singular anyway, the gradient flows through the integration. A state with a
negative species (beyond tolerance) is not accepted from Newton (it would be a
steady state outside the model's domain); the integration decides then.
"""

from __future__ import annotations

from dataclasses import dataclass

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
import scipy.linalg

from ..models import NO_STEADY_STATE, OK, SolverSettings, controller, status_of
from ._model import SbmlModel

#: Horizon (model time units) of the fallback integration; it stops as soon as the
#: steady-state criterion holds.
STEADY_STATE_HORIZON = 1e9

#: Damped-Newton iterations tried before the integration fallback.
NEWTON_ITERATIONS = 40


@dataclass(frozen=True)
class Conservation:
    """Conservation laws of a model (host-side, static).

    Attributes:
        weights: [n_laws, n_states] ``u``: ``sum_i u_i V_i y_i`` is conserved.
        dependent: [n_laws] state replaced by each law in the Newton system.
        volume_ids: [n_states] compartment whose size multiplies a concentration
            state (``""`` for amounts, parameters, compartments).
    """

    weights: np.ndarray
    dependent: np.ndarray
    volume_ids: tuple[str, ...]

    @property
    def n_laws(self) -> int:
        return int(self.weights.shape[0])

    def __hash__(self) -> int:
        return hash((self.weights.tobytes(), self.dependent.tobytes(), self.volume_ids))

    def __eq__(self, other) -> bool:
        return isinstance(other, Conservation) and hash(self) == hash(other)


def conservation_laws(model: SbmlModel) -> Conservation:
    """The conservation laws implied by the stoichiometry (see the module docstring).

    States driven by rate rules take no part; constant states (boundary species,
    species in no reaction) are conserved each on their own.
    """
    spec = model.spec
    n = model.n_states
    matrix = np.zeros((n, max(len(spec.reaction_ids), 1)))
    for i, j, c in spec.stoichiometry:
        matrix[i, j] += c
    free = np.array([i for i in range(n) if i not in set(spec.rate_rule_states)], dtype=int)
    volume_of = {sid: ("" if hosu else comp) for sid, comp, hosu in spec.species_compartment}
    volume_ids = tuple(volume_of.get(s, "") for s in spec.state_ids)
    if free.size == 0:
        return Conservation(np.zeros((0, n)), np.zeros(0, dtype=int), volume_ids)
    basis = scipy.linalg.null_space(matrix[free].T, rcond=1e-10)  # [n_free, n_laws]
    if basis.shape[1] == 0:
        return Conservation(np.zeros((0, n)), np.zeros(0, dtype=int), volume_ids)
    _, _, pivots = scipy.linalg.qr(basis.T, pivoting=True)
    pivots = np.sort(pivots[: basis.shape[1]])
    reduced = np.linalg.solve(basis.T[:, pivots], basis.T)  # identity on the pivots
    reduced[np.abs(reduced) < 1e-12] = 0.0
    weights = np.zeros((basis.shape[1], n))
    weights[:, free] = reduced
    return Conservation(weights, free[pivots].astype(int), volume_ids)


def _volumes(model: SbmlModel, cons: Conservation, params, y):
    env = model.expression_env(0.0, y, params)
    return jnp.stack(
        [jnp.asarray(1.0 if v == "" else env(v), dtype=y.dtype) for v in cons.volume_ids]
    )


def _reduced(model: SbmlModel, cons: Conservation):
    """F(y; params, totals): f(y) with the dependent states' rows replaced by the
    conservation laws."""
    weights = jnp.asarray(cons.weights)
    dependent = np.asarray(cons.dependent)

    def residual(y, args):
        params, totals = args
        f = model.vector_field(0.0, y, params, None)
        if cons.n_laws == 0:
            return f
        laws = weights @ (_volumes(model, cons, params, y) * y) - totals
        return f.at[dependent].set(laws)

    return residual


def _totals(model: SbmlModel, cons: Conservation, params, y):
    if cons.n_laws == 0:
        return jnp.zeros(0, dtype=y.dtype)
    return jnp.asarray(cons.weights) @ (_volumes(model, cons, params, y) * y)


def _converged(model, solver, params, y, nonneg):
    f = model.vector_field(0.0, y, params, None)
    scale = solver.atol + solver.rtol * jnp.abs(y)
    small = jnp.sqrt(jnp.mean((f / scale) ** 2)) < 1.0
    floor = -100.0 * (solver.atol + solver.rtol * jnp.max(jnp.abs(y)))
    domain = jnp.all(jnp.where(nonneg, y >= floor, True))
    return jnp.all(jnp.isfinite(y)) & small & domain


def _newton(residual, args, y, n_iter: int, tol):
    """Damped Newton (backtracking on the residual's RMS norm), gradient-free: stops
    when the norm is below ``tol`` [n_states] (weighted) or after ``n_iter`` steps."""

    def norm(r):
        return jnp.sqrt(jnp.mean(r**2))

    def small(y, r_vec):
        return jnp.sqrt(jnp.mean((r_vec / tol(y)) ** 2)) < 1e-3

    def cond(carry):
        k, y, r, done = carry
        return (k < n_iter) & ~done

    def body(carry):
        k, y, r, _ = carry
        jac = jax.jacfwd(residual)(y, args)
        step = jnp.linalg.solve(jac, -residual(y, args))
        step = jnp.where(jnp.all(jnp.isfinite(step)), step, 0.0)

        def trial_cond(c):
            j, _, _, better = c
            return (j < 8) & ~better

        def trial(c):
            j, y_best, r_best, _ = c
            y_j = y + (0.5**j) * step
            r_j = norm(residual(y_j, args))
            better = jnp.isfinite(r_j) & (r_j < r)
            return j + 1, jnp.where(better, y_j, y_best), jnp.where(better, r_j, r_best), better

        _, y_new, r_new, moved = jax.lax.while_loop(trial_cond, trial, (0, y, r, False))
        done = ~moved | small(y_new, residual(y_new, args))
        return k + 1, y_new, r_new, done

    r0 = residual(y, args)
    init = (0, y, norm(r0), small(y, r0))
    _, y, _, _ = jax.lax.while_loop(cond, body, init)
    return y


def _integrate(model: SbmlModel, solver: SolverSettings, params, y0):
    """Integrate towards a steady state; returns (y, status, steps)."""

    def f(t, y, args):
        return model.vector_field(t, y, args, None)

    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(f),
        solver.make_solver(*model.sparse_jacobian),
        t0=0.0,
        t1=STEADY_STATE_HORIZON,
        dt0=None,
        y0=y0,
        args=params,
        stepsize_controller=controller(solver, 1.0),
        event=diffrax.Event(diffrax.steady_state_event(rtol=solver.rtol, atol=solver.atol)),
        max_steps=solver.max_steps,
        throw=False,
        adjoint=solver.make_adjoint(),
    )
    y = sol.ys[-1]
    status = status_of(sol.result, y, f(0.0, y, params))
    reached = sol.result == diffrax.RESULTS.event_occurred
    status = jnp.where((status == OK) & ~reached, NO_STEADY_STATE, status)
    return y, status, sol.stats["num_steps"]


def _regular(residual, y, args):
    """Whether the reduced Jacobian at ``y`` is invertible (by its LU pivots)."""
    jac = jax.jacfwd(residual)(y, args)
    pivots = jnp.abs(jnp.diag(jax.scipy.linalg.lu_factor(jac)[0]))
    big = jnp.maximum(jnp.max(pivots), 1e-300)
    return jnp.all(jnp.isfinite(pivots)) & (jnp.min(pivots) > 1e-12 * big)


def steady_state(model: SbmlModel, cons: Conservation, solver: SolverSettings, params, y_start):
    """Steady state of ``model`` with parameters ``params`` [n_params] in the
    compatibility class of ``y_start`` [n_states] (see the module docstring).

    Returns ``(y [n_states], status, num_steps)``: ``status`` is ``OK`` or
    ``NO_STEADY_STATE`` (or the integration's failure), ``num_steps`` the fallback
    integration's steps (0 when Newton sufficed).
    """
    residual = _reduced(model, cons)
    nonneg = jnp.asarray([k == "species" for k in model.spec.state_kinds])
    frozen_p, frozen_y = jax.lax.stop_gradient(params), jax.lax.stop_gradient(y_start)
    frozen_args = (frozen_p, _totals(model, cons, frozen_p, frozen_y))

    def tol(y):
        return solver.atol + solver.rtol * jnp.abs(y)

    y_newton = _newton(residual, frozen_args, frozen_y, NEWTON_ITERATIONS, tol)
    newton_ok = _converged(model, solver, frozen_p, y_newton, nonneg) & _regular(
        residual, y_newton, frozen_args
    )

    def by_newton(_):
        ok = jnp.asarray(OK, dtype=jnp.int32)
        return y_newton, y_newton, ok, jnp.zeros((), jnp.int32)

    def by_integration(_):
        # differentiable: its gradient is used where the implicit one is not available
        y_int, status, steps = _integrate(model, solver, params, y_start)
        y_fix = _newton(residual, frozen_args, jax.lax.stop_gradient(y_int), 8, tol)
        return y_int, y_fix, status, steps.astype(jnp.int32)

    y_int, y_fix, status, steps = jax.lax.cond(newton_ok, by_newton, by_integration, None)

    # Gradients: the implicit function theorem on the reduced system, with the totals
    # as functions of the start; Newton's step from the solution leaves the value
    # unchanged and carries the implicit adjoint. Where the reduced Jacobian is
    # singular, the state and its gradient are the integration's.
    use_implicit = _converged(model, solver, frozen_p, y_fix, nonneg) & _regular(
        residual, y_fix, frozen_args
    )
    args = (params, _totals(model, cons, params, y_start))

    def implicit(_):
        return optx.root_find(
            residual,
            optx.Newton(rtol=1e-14, atol=1e-14 * jnp.maximum(jnp.max(jnp.abs(y_fix)), 1.0)),
            y_fix,
            args=args,
            max_steps=2,
            throw=False,
        ).value

    # (a cond, not a where: the implicit adjoint of a singular system is NaN)
    y = jax.lax.cond(use_implicit, implicit, lambda _: y_int, None)
    status = jnp.where(use_implicit, OK, status).astype(jnp.int32)
    return y, status, steps


__all__ = [
    "NEWTON_ITERATIONS",
    "STEADY_STATE_HORIZON",
    "Conservation",
    "conservation_laws",
    "steady_state",
]
