"""Simulating a PEtab problem's simulations (pairs of pre-equilibration and
simulation condition) with diffrax.

Each simulation

1. (with a pre-equilibration condition) starts at that condition's steady state
   (:func:`._steady.steady_state`: Newton with conservation laws, integration as the
   fallback, implicit-function gradients; computed once per pre-equilibration
   condition); then the simulation condition's parameters apply and the states it
   sets are re-initialised (PEtab v1 semantics); all other states keep their
   pre-equilibrated values;
2. is integrated from 0 to its own last finite measurement time, with SBML events
   when the model has them (:func:`il6rcc.models.solve_with_events`);
3. (with steady-state measurements, ``time = inf``) continues to the steady state
   under its condition, from its last integrated state.

Nothing raises: each simulation gets a status code (:data:`il6rcc.models.STATUS_TEXT`),
the stage that failed, the time it reached and its step count, and its outputs are
NaN after a failure. Events act during the integration (stage 2) only, not while
(pre- or post-)equilibrating.
"""

from __future__ import annotations

from dataclasses import dataclass

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from ..models import (
    OK,
    STATUS_TEXT,
    SolverSettings,
    batched,
    controller,
    solve_with_events,
    status_of,
)
from ._events import SbmlEvents
from ._problem import PetabProblem
from ._steady import conservation_laws, steady_state

#: Stages of a simulation, as reported in failure messages.
STAGES = ("pre-equilibration", "integration", "steady state (time = inf)")


@dataclass(frozen=True)
class Trajectories:
    """Simulated states of every simulation (JAX arrays).

    Attributes:
        states: [n_sim, n_times + 1, n_states]: at each finite measurement time, then
            the steady state (the last slot; NaN where a simulation has no
            steady-state measurement); NaN after a failure.
        params: [n_sim, n_times + 1, n_params] model parameters in effect at those
            times (events may change them).
        status: [n_sim] status code (``0``: success).
        stage: [n_sim] index into :data:`STAGES` of the failed stage.
        t_reached: [n_sim] time the failing stage reached.
        num_steps: [n_sim] solver steps over all stages.
    """

    states: jax.Array
    params: jax.Array
    status: jax.Array
    stage: jax.Array
    t_reached: jax.Array
    num_steps: jax.Array

    @property
    def ok(self) -> jax.Array:
        return self.status == OK


jax.tree_util.register_dataclass(
    Trajectories,
    data_fields=["states", "params", "status", "stage", "t_reached", "num_steps"],
    meta_fields=[],
)


def condition_parameters(problem: PetabProblem, pool) -> jnp.ndarray:
    """[n_cond, n_params] model parameters of each condition, from the pool [n_pool]."""
    return pool[problem.condition_parameter_index]


def initial_states(problem: PetabProblem, pool, conditions) -> jnp.ndarray:
    """[len(conditions), n_states] initial states of conditions (SBML initial values
    with the condition table's overrides)."""
    rows = condition_parameters(problem, pool)[conditions]
    values = pool[problem.condition_initial_index][conditions]
    flags = jnp.asarray(problem.condition_initial_set)[conditions]
    return jax.vmap(problem.model.initial_guess)(rows, jnp.concatenate([values, flags], axis=1))


def _integrate(model, solver: SolverSettings, params, y0, times, t_end):
    """One simulation without events; (ys [n_t, n_st], status, t_reached, steps, y_end)."""

    def f(t, y, args):
        return model.vector_field(t, y, args, None)

    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(f),
        solver.make_solver(*model.sparse_jacobian),
        t0=0.0,
        t1=t_end,
        dt0=None,
        y0=y0,
        args=params,
        saveat=diffrax.SaveAt(
            subs=(diffrax.SubSaveAt(ts=jnp.clip(times, 0.0, t_end)), diffrax.SubSaveAt(t1=True))
        ),
        stepsize_controller=controller(solver, t_end),
        max_steps=solver.max_steps,
        throw=False,
        adjoint=solver.make_adjoint(),
    )
    t_reached, y_end = sol.ts[1][-1], sol.ys[1][-1]
    status = status_of(sol.result, y_end, f(t_reached, y_end, params))
    ys = jnp.where((times <= t_reached)[:, None] | (status == OK), sol.ys[0], jnp.nan)
    return ys, status, t_reached, sol.stats["num_steps"].astype(jnp.int32), y_end


def simulate_states(
    problem: PetabProblem, solver: SolverSettings, pool, max_event_segments: int | None = None
) -> Trajectories:
    """Simulate every simulation of ``problem`` (see the module docstring).

    Args:
        problem: the problem.
        solver: solver settings.
        pool: [n_pool] PEtab parameter values followed by the constants
            (:meth:`PetabProblem.pool`).
        max_event_segments: how many times a simulation may stop at an event (static;
            default: once per trigger relation ``time >= c`` with ``c`` fixed, eight
            times per other relation, see :meth:`il6rcc.models.EventSystem.default_segments`).
    """
    model = problem.model
    rows = condition_parameters(problem, pool)
    sim = np.asarray(problem.simulation_condition_index)
    pre = np.asarray(problem.preequilibration_index)
    n_sim, n_t = len(sim), len(problem.times)
    times = jnp.asarray(problem.times)
    needs_cons = (pre >= 0).any() or len(problem.steady_state_simulations) > 0
    cons = conservation_laws(model) if needs_cons else None

    # 1. pre-equilibration, once per pre-equilibration condition
    y0 = initial_states(problem, pool, sim)
    status = jnp.zeros(n_sim, dtype=jnp.int32)
    stage = jnp.zeros(n_sim, dtype=jnp.int32)
    t_reached = jnp.zeros(n_sim)
    steps = jnp.zeros(n_sim, dtype=jnp.int32)
    if (pre >= 0).any():
        pre_ids, pre_of = np.unique(pre[pre >= 0], return_inverse=True)
        start = initial_states(problem, pool, pre_ids)
        y_ss, st_ss, n_ss = batched(
            lambda p, y: steady_state(model, cons, solver, p, y), solver.batching
        )(rows[pre_ids], start)
        where = np.flatnonzero(pre >= 0)
        flags = jnp.asarray(problem.condition_initial_set)[sim[where]] > 0.5
        values = pool[problem.condition_initial_index][sim[where]]
        y0 = y0.at[where].set(jnp.where(flags, values, y_ss[pre_of]))
        status = status.at[where].set(st_ss[pre_of])
        steps = steps.at[where].add(n_ss[pre_of])
        t_reached = t_reached.at[where].set(jnp.where(st_ss[pre_of] == OK, 0.0, jnp.inf))

    # 2. integration to each simulation's last finite time
    t_end = jnp.asarray(problem.simulation_t_end)
    if model.spec.events:
        events = SbmlEvents(model)
        segments = max_event_segments or events.default_segments()

        def one(p, y, t1):
            out = solve_with_events(
                lambda t, y, p: model.vector_field(t, y, p, None),
                events,
                solver,
                y,
                p,
                times,
                t1,
                max_segments=segments,
                jacobian=model.sparse_jacobian,
            )
            return out.ys, out.ps, out.status, out.t_reached, out.num_steps, out.y_end, out.p_end

        ys, ps, st_int, t_int, n_int, y_end, p_end = batched(one, solver.batching)(
            rows[sim], y0, t_end
        )
    else:

        def one(p, y, t1):
            return _integrate(model, solver, p, y, times, t1)

        ys, st_int, t_int, n_int, y_end = batched(one, solver.batching)(rows[sim], y0, t_end)
        ps = jnp.broadcast_to(rows[sim][:, None, :], (n_sim, n_t, model.n_params))
        p_end = rows[sim]
    failed_before = status != OK
    stage = jnp.where(failed_before, stage, 1)
    t_reached = jnp.where(failed_before, t_reached, t_int)
    status = jnp.where(failed_before, status, st_int)
    steps = steps + n_int

    # 3. steady states of the simulations measured at time = inf
    y_inf = jnp.full((n_sim, model.n_states), jnp.nan)
    post = np.asarray(problem.steady_state_simulations, dtype=int)
    if post.size:
        y_post, st_post, n_post = batched(
            lambda p, y: steady_state(model, cons, solver, p, y), solver.batching
        )(p_end[post], jnp.where(jnp.isfinite(y_end[post]), y_end[post], y0[post]))
        y_inf = y_inf.at[post].set(y_post)
        fresh = status[post] == OK
        stage = stage.at[post].set(jnp.where(fresh, 2, stage[post]))
        t_reached = t_reached.at[post].set(jnp.where(fresh, jnp.inf, t_reached[post]))
        status = status.at[post].set(jnp.where(fresh, st_post, status[post]))
        steps = steps.at[post].add(n_post)
    stage = jnp.where(status == OK, -1, stage)

    states = jnp.concatenate([ys, y_inf[:, None, :]], axis=1)
    params = jnp.concatenate([ps, p_end[:, None, :]], axis=1)
    states = jnp.where((status == OK)[:, None, None], states, jnp.nan)
    return Trajectories(
        states=states,
        params=params,
        status=status,
        stage=stage,
        t_reached=t_reached,
        num_steps=steps,
    )


#: Where each solver setting is changed, for failure messages.
SETTING_HINT = {
    "raise max_steps": "raise max_steps (now {max_steps}; `--max-steps` of "
    "`il6rcc petab llh`, `SolverSettings.max_steps` in Python)",
    "raise max_event_segments": "raise the event limit (`max_event_segments` of "
    "make_llh/simulation_table)",
}


def describe_failures(problem: PetabProblem, traj: Trajectories, solver: SolverSettings):
    """One message per failed simulation: the conditions, the stage, the time reached,
    the reason and the setting to change (host side)."""
    status = np.asarray(traj.status)
    stage = np.asarray(traj.stage)
    t_reached = np.asarray(traj.t_reached)
    steps = np.asarray(traj.num_steps)
    out = []
    for i in np.flatnonzero(status != OK):
        pre, cond = problem.simulations[i]
        what = f"condition {cond!r}" + (f" (pre-equilibrated in {pre!r})" if pre else "")
        reason, hint = STATUS_TEXT[int(status[i])]
        hint = SETTING_HINT.get(hint, hint).format(max_steps=solver.max_steps)
        where = STAGES[int(stage[i])]
        if int(stage[i]) == 1:
            where += f" at t = {t_reached[i]:.6g} of {problem.simulation_t_end[i]:.6g}"
        out.append(
            f"simulation of {what} failed in the {where} after {int(steps[i])} steps: "
            f"{reason}; {hint}"
        )
    return out


__all__ = [
    "SETTING_HINT",
    "STAGES",
    "Trajectories",
    "condition_parameters",
    "describe_failures",
    "initial_states",
    "simulate_states",
]
