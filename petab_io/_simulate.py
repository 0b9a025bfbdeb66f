"""Simulating a PEtab problem's conditions with il6rcc's batched diffrax machinery.

The main integration is :func:`il6rcc.models.simulate_arrays` itself: one parameter
row per PEtab condition (condition-specific parameters are just rows), and each
simulation's initial state passed through the model's ``x__initial`` inputs.
Pre-equilibration conditions are integrated to a steady state first
(:func:`steady_state`), then the simulation condition's parameters apply and the
states it sets are re-initialised (PEtab v1 semantics); all other states keep their
pre-equilibrated values.

Why not :func:`il6rcc.models.basal_state` for pre-equilibration: it polishes the
steady state with Newton's method on the full vector field, whose Jacobian is
singular for models with conserved moieties (most mass-action models, e.g. total
STAT5), and that model-specific structure is not known for an imported model. The
integration-based steady state (as in AMICI's simulation mode) works for both;
gradients flow through the integration.
"""

from __future__ import annotations

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from ..models import SolverSettings, simulate_arrays
from ._problem import PetabProblem

#: Upper bound (in the model's time unit) of the pre-equilibration integration; the
#: solve stops as soon as the steady-state criterion holds.
PREEQUILIBRATION_HORIZON = 1e9


def steady_state(model, solver: SolverSettings, params, y0):
    """Integrate ``model`` from ``y0`` [n_states] with ``params`` [n_params] until
    ``|dy/dt| <= atol + rtol * |y|`` (RMS norms, the solver's tolerances).

    Returns ``(y [n_states], ok)``; ``ok`` is False when the criterion was not reached
    within ``solver.max_steps`` steps or :data:`PREEQUILIBRATION_HORIZON`.
    """

    def f(t, y, args):
        return model.vector_field(t, y, args, None)

    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(f),
        solver.make_solver(),
        t0=0.0,
        t1=PREEQUILIBRATION_HORIZON,
        dt0=None,
        y0=y0,
        args=params,
        stepsize_controller=solver.make_controller(),
        event=diffrax.Event(diffrax.steady_state_event(rtol=solver.rtol, atol=solver.atol)),
        max_steps=solver.max_steps,
        throw=False,
        adjoint=solver.make_adjoint(),
    )
    y = sol.ys[-1]
    ok = (sol.result == diffrax.RESULTS.event_occurred) & jnp.all(jnp.isfinite(y))
    return jnp.where(ok, y, 1.0), ok


def _batched(fn, solver: SolverSettings):
    if solver.batching == "vmap":
        return jax.vmap(fn)
    return lambda *xs: jax.lax.map(lambda args: fn(*args), xs)


def condition_parameters(problem: PetabProblem, pool) -> jnp.ndarray:
    """[n_cond, n_params] model parameters of each condition, from the pool [n_pool]."""
    return pool[problem.condition_parameter_index]


def simulate_states(problem: PetabProblem, solver: SolverSettings, pool):
    """States of every simulation at ``problem.times``.

    Args:
        problem: the problem.
        solver: solver settings.
        pool: [n_pool] PEtab parameter values followed by the constants
            (:meth:`PetabProblem.pool`).

    Returns:
        ``(states [n_sim, n_times, n_states], ok [n_sim], rows [n_cond, n_params],
        num_steps [n_sim])``; states are NaN where ``ok`` is False.
    """
    model = problem.model
    rows = condition_parameters(problem, pool)
    values = pool[problem.condition_initial_index]
    flags = jnp.asarray(problem.condition_initial_set)
    sim = problem.simulation_condition_index
    pre = problem.preequilibration_index
    has_pre = pre >= 0
    y_values = values[sim]
    y_flags = flags[sim]
    ok_pre = jnp.ones(len(sim), dtype=bool)
    if has_pre.any():
        pre_ids, pre_of_sim = np.unique(pre[has_pre], return_inverse=True)
        pre_inputs = jnp.concatenate([values[pre_ids], flags[pre_ids]], axis=1)
        y_start = jax.vmap(model.initial_guess)(rows[pre_ids], pre_inputs)
        y_ss, ok_ss = _batched(lambda p, y: steady_state(model, solver, p, y), solver)(
            rows[pre_ids], y_start
        )
        where_pre = np.flatnonzero(has_pre)
        after = jnp.where(flags[sim[where_pre]] > 0.5, values[sim[where_pre]], y_ss[pre_of_sim])
        y_values = y_values.at[where_pre].set(after)
        y_flags = y_flags.at[where_pre].set(1.0)
        ok_pre = ok_pre.at[where_pre].set(ok_ss[pre_of_sim])
    inputs = jnp.concatenate([y_values, y_flags], axis=1)
    n_sim = len(sim)
    _, states, ok, num_steps = simulate_arrays(
        model,
        solver,
        rows,
        inputs,
        jnp.asarray(sim),
        jnp.arange(n_sim),
        jnp.asarray(sim),
        inputs,
        jnp.asarray(problem.times),
    )
    ok = ok & ok_pre
    return jnp.where(ok[:, None, None], states, jnp.nan), ok, rows, num_steps


__all__ = ["PREEQUILIBRATION_HORIZON", "condition_parameters", "simulate_states", "steady_state"]
