"""Batched, differentiable simulation of a model over experimental conditions.

One jitted call solves every condition (``vmap``, or ``lax.map`` when configured) and
is compiled once per (model program, solver settings, array shapes): variants whose
switches are parameters share one program (:attr:`ODEModel.program`). Each condition

1. starts from the basal state of its parameter row under its pre-treatment inputs
   (siRNA, over-expression): the steady state of the vector field, found by
   integrating towards it and polishing with Newton's method (implicit
   differentiation gives its gradient); basal states are computed once per unique
   (parameter row, pre-treatment inputs) group and shared; for a model with reference
   inputs (:attr:`ODEModel.reference_inputs`) the untreated reference of each group is
   a basal group too (usually one the conditions already have), and
   :meth:`ODEModel.anchor` completes each basal state from it (e.g. the growth
   reference);
2. receives its treatment (``model.perturb``, e.g. a bolus of exogenous IL-6);
3. is integrated with an adaptive solver, ``throw=False``: a failed solve sets that
   condition's ``success`` flag to False and its outputs to NaN, it never raises.
   A condition with a :class:`~il6rcc.models.DosingSchedule` is integrated piecewise
   between its doses (:func:`~il6rcc.models.solve_with_events`); the others take the
   plain path above, whatever their neighbours in the batch do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

from ..errors import ModelSpecError
from ..runtime import require_x64
from ._batching import batched
from ._events import OK, solve_with_events
from ._model import Condition, ODEModel, condition_inputs
from ._schedule_events import ScheduleLayout, schedule_slots
from ._solvers import SolverSettings


@dataclass(frozen=True)
class ConditionBatch:
    """Conditions as index arrays (host side, numpy).

    Attributes:
        ids, cell_lines: one entry per condition.
        inputs: [n_conditions, n_inputs] doses.
        row_names: the parameter rows (cell lines) the conditions refer to.
        param_index: [n_conditions] row of each condition's parameters.
        basal_index: [n_conditions] basal group of each condition.
        basal_param_index: [n_basal] parameter row of each basal group.
        basal_inputs: [n_basal, n_inputs] pre-treatment inputs of each basal group.
        basal_reference_index: [n_basal] the basal group holding each group's reference
            state (:attr:`ODEModel.reference_inputs`: the same parameter row under the
            reference inputs alone); the group itself when the model has no reference or
            the group is its own reference. Reference states missing among the
            conditions' groups are added as groups of their own.
        t_end: [n_conditions] last time each condition is needed at (hours), or None.
        schedule: the slot layout of the conditions' dosing schedules (None: none has
            one); dose_values, dose_times: [n_scheduled, n_slots] amounts or levels and
            times (h) of the slots, rows in the order of ``schedule.conditions``.
    """

    ids: tuple[str, ...]
    cell_lines: tuple[str, ...]
    inputs: np.ndarray
    row_names: tuple[str, ...]
    param_index: np.ndarray
    basal_index: np.ndarray
    basal_param_index: np.ndarray
    basal_inputs: np.ndarray
    basal_reference_index: np.ndarray
    t_end: np.ndarray | None = None
    schedule: ScheduleLayout | None = None
    dose_values: np.ndarray | None = None
    dose_times: np.ndarray | None = None

    @property
    def arrays(self) -> tuple[np.ndarray, ...]:
        """(inputs, param_index, basal_index, basal_param_index, basal_inputs,
        basal_reference_index): the batch's arguments of :func:`simulate_arrays`."""
        return (
            self.inputs,
            self.param_index,
            self.basal_index,
            self.basal_param_index,
            self.basal_inputs,
            self.basal_reference_index,
        )

    @property
    def n_conditions(self) -> int:
        return len(self.ids)

    def horizon_groups(self, times: np.ndarray, merge_ratio: float = 4.0) -> Groups | None:
        """Conditions grouped by how far they must be integrated (see :data:`Groups`).

        Conditions needed only up to 96 h are not integrated in lock-step with
        xenografts followed for weeks: horizons within ``merge_ratio`` of the group's
        shortest share a group. None when ``t_end`` is unknown (one group, all times).
        """
        if self.t_end is None:
            return None
        times = np.asarray(times)
        n_used = np.searchsorted(times, self.t_end, side="left") + 1
        n_used = np.minimum(n_used, len(times))
        horizons = times[n_used - 1]
        groups: list[tuple[tuple[int, ...], int]] = []
        start = None
        for h in np.unique(horizons):
            if start is None or h > merge_ratio * start:
                groups.append(((), 0))
                start = h
            members = tuple(int(c) for c in np.flatnonzero(horizons == h))
            old, _ = groups[-1]
            groups[-1] = (old + members, int(np.searchsorted(times, h) + 1))
        return tuple((tuple(sorted(m)), n) for m, n in groups)


#: Static partition of conditions for :func:`simulate_arrays`: a tuple of
#: (condition indices, number of leading time points they need) pairs.
Groups = tuple[tuple[tuple[int, ...], int], ...]


def make_batch(
    model: ODEModel,
    conditions: Sequence[Condition],
    row_names: Sequence[str] | None = None,
    t_end: Sequence[float] | None = None,
    condition_rows: Sequence[str] | None = None,
) -> ConditionBatch:
    """Validate conditions and index them by parameter row and basal group.

    ``row_names`` fixes the parameter rows (default: the cell lines in order of first
    appearance). ``condition_rows`` names each condition's parameter row when rows are
    not plain cell lines (e.g. a counterfactual variant of a line); then ``row_names``
    are taken as given. ``t_end`` (hours, one per condition) lets the simulator group
    conditions by horizon. Unknown cell lines or perturbations, negative doses and
    invalid dosing schedules raise one :class:`ModelSpecError` that lists every problem.
    """
    conditions = list(conditions)
    if not conditions:
        raise ModelSpecError("no conditions to simulate")
    ids = [c.id for c in conditions]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise ModelSpecError(f"duplicate condition ids: {dup}")
    inputs = condition_inputs(model, conditions)
    slots = schedule_slots(model, conditions)
    schedule, dose_values, dose_times = slots if slots is not None else (None, None, None)
    canonical = [model.cell_line(c.cell_line).name for c in conditions]
    if condition_rows is not None and len(condition_rows) != len(conditions):
        raise ModelSpecError(
            f"condition_rows has {len(condition_rows)} entries for {len(conditions)} conditions"
        )
    keys = canonical if condition_rows is None else list(condition_rows)
    if row_names is None:
        row_names = list(dict.fromkeys(keys))
    else:
        if condition_rows is None:
            row_names = [model.cell_line(r).name for r in row_names]
        missing = sorted(set(keys) - set(row_names))
        if missing:
            raise ModelSpecError(f"conditions use rows {missing} not among rows {row_names}")
    param_index = np.array([row_names.index(k) for k in keys], dtype=np.int32)
    pre = inputs * model.pretreatment_mask()[None, :]
    groups: dict[tuple, int] = {}
    basal_index = np.empty(len(conditions), dtype=np.int32)
    for c in range(len(conditions)):
        key = (int(param_index[c]), tuple(pre[c]))
        basal_index[c] = groups.setdefault(key, len(groups))
    mask = reference_mask(model)
    reference: list[int] = []
    for row, pre_inputs in list(groups):
        if mask is None:
            reference.append(groups[(row, pre_inputs)])
        else:
            ref_key = (row, tuple(np.asarray(pre_inputs) * mask))
            reference.append(groups.setdefault(ref_key, len(groups)))
    # groups added as references are their own reference (mask * mask = mask)
    reference.extend(range(len(reference), len(groups)))
    basal_param_index = np.array([k[0] for k in groups], dtype=np.int32)
    basal_inputs = np.array([k[1] for k in groups], dtype=np.float64).reshape(
        len(groups), model.n_inputs
    )
    return ConditionBatch(
        ids=tuple(ids),
        cell_lines=tuple(canonical),
        inputs=inputs,
        row_names=tuple(row_names),
        param_index=param_index,
        basal_index=basal_index,
        basal_param_index=basal_param_index,
        basal_inputs=basal_inputs,
        basal_reference_index=np.array(reference, dtype=np.int32),
        t_end=None if t_end is None else np.asarray(t_end, dtype=np.float64),
        schedule=schedule,
        dose_values=dose_values,
        dose_times=dose_times,
    )


@dataclass(frozen=True)
class Simulation:
    """Result of :func:`simulate`.

    ``observables`` [n_conditions, n_times, n_observables] and ``states``
    [n_conditions, n_times, n_states] are NaN where a solve failed; ``success``
    [n_conditions] says which; ``num_steps`` counts the accepted and rejected steps.
    """

    model: ODEModel
    batch: ConditionBatch
    times: np.ndarray
    observables: np.ndarray
    states: np.ndarray
    success: np.ndarray
    num_steps: np.ndarray

    def observable(self, name: str) -> np.ndarray:
        """[n_conditions, n_times] values of one observable."""
        return self.observables[:, :, self.model.index("observables", name)]

    def to_frame(self):
        """Long table: condition_id, cell_line, time_h, observable_id, value, success."""
        import pandas as pd

        n_c, n_t, n_o = self.observables.shape
        return pd.DataFrame(
            {
                "condition_id": np.repeat(self.batch.ids, n_t * n_o),
                "cell_line": np.repeat(self.batch.cell_lines, n_t * n_o),
                "time_h": np.tile(np.repeat(self.times, n_o), n_c),
                "observable_id": np.tile(self.model.observable_names, n_c * n_t),
                "value": self.observables.reshape(-1),
                "success": np.repeat(self.success, n_t * n_o),
            }
        )


# ---------------------------------------------------------------------------- core
@dataclass(frozen=True)
class _VectorField:
    """diffrax's ``f(t, y, args)`` for a model; hashable by value, so that diffrax's
    internal compilation cache is hit for equal models."""

    model: ODEModel

    def __call__(self, t, y, args):
        params, inputs = args
        return self.model.vector_field(t, y, params, inputs)


def _residual(model: ODEModel, acc: np.ndarray):
    """f(y) with accumulator states pinned to their anchor values."""

    def residual(y, args):
        p, u, anchor = args
        return jnp.where(acc, y - anchor, model.vector_field(0.0, y, p, u))

    return residual


def _approach_by_integration(model, solver, params, inputs, guess):
    """Integrate towards the steady state until |dy/dt| is small (or the horizon)."""
    term = diffrax.ODETerm(_VectorField(model))
    approach = diffrax.diffeqsolve(
        term,
        solver.make_solver(),
        t0=0.0,
        t1=solver.equilibration_time,
        dt0=None,
        y0=guess,
        args=(params, inputs),
        stepsize_controller=solver.make_controller(),
        event=diffrax.Event(diffrax.steady_state_event(rtol=1e-8, atol=1e-10)),
        max_steps=solver.max_steps,
        throw=False,
        adjoint=diffrax.RecursiveCheckpointAdjoint(),
    )
    return approach.ys[-1]


#: Pseudo-transient continuation stops when the largest rate, relative to its state's
#: size, falls below this (Newton's method polishes from there) ...
PTC_TOL = 1e-7
#: ... or after this many iterations (a failure is then flagged by the polish step).
PTC_MAX_ITER = 600


def _approach_by_ptc(
    model, solver, params, inputs, guess, acc, max_iter: int = PTC_MAX_ITER, tol: float = PTC_TOL
):
    """Pseudo-transient continuation: implicit-Euler steps y <- y + (I/dt - J)^-1 r(y)
    with dt growing as the residual falls (switched evolution relaxation), so it moves
    like the dynamics far from the steady state and like Newton near it. Cheap
    iterations (one Jacobian and one small LU each) replace a long, error-controlled
    integration; they stop once the relative residual is below ``tol``.

    A step that gives non-finite values or makes a non-negative state negative is
    refused and dt shrinks tenfold; an accepted step never shrinks dt. (With the
    textbook rule, dt also shrinks when the residual grows, as it does while the
    circuit's autocrine IL-6 loop climbs to a high basal state: over 40 prior draws of
    the default job, 60 such iterations left 9 draws short of Newton's basin. Keeping
    dt on accepted steps brings every one of them there within 500.)"""
    residual = _residual(model, acc)
    args = (params, inputs, guess)
    eye = jnp.eye(guess.shape[0])
    nonneg = np.array([s in model.nonnegative_states for s in model.states])

    def norm(r):
        return jnp.sqrt(jnp.mean(r**2))

    def relative(y):
        return jnp.max(jnp.abs(residual(y, args)) / jnp.maximum(jnp.abs(y), 1.0))

    def cond(carry):
        i, y, _, _ = carry
        return (i < max_iter) & ~(relative(y) < tol)

    def body(carry):
        i, y, dt, r_norm = carry
        r = residual(y, args)
        jac = jax.jacfwd(residual)(y, args)
        y_new = y + jnp.linalg.solve(eye / dt - jac, r)
        r_new = norm(residual(y_new, args))
        good = (
            jnp.all(jnp.isfinite(y_new))
            & jnp.isfinite(r_new)
            & jnp.all(jnp.where(nonneg, y_new >= 0.0, True))
        )
        grow = jnp.clip(r_norm / jnp.where(good, r_new, jnp.inf), 1.0, 10.0)
        y = jnp.where(good, y_new, y)
        dt = jnp.where(good, jnp.minimum(dt * grow, 1e12), dt * 0.1)
        r_norm = jnp.where(good, r_new, r_norm)
        return i + 1, y, dt, r_norm

    r0 = norm(residual(guess, args))
    _, y, _, _ = jax.lax.while_loop(cond, body, (0, guess, jnp.asarray(0.1), r0))
    return y


def _polish(model, solver, params, inputs, guess, y_start, acc):
    """Newton's method on f(y) = 0 from ``y_start`` (implicit-function gradients), and
    whether the result is a steady state in the model's domain."""
    y_start = jnp.where(jnp.isfinite(y_start), y_start, guess)
    newton = optx.root_find(
        _residual(model, acc),
        optx.Newton(rtol=1e-11, atol=1e-13),
        y_start,
        args=(params, inputs, guess),
        max_steps=64,
        throw=False,
    )
    y = newton.value
    # Judged by the residual, relative to each state's size (VEGF is in the thousands
    # of pg/mL): Newton's own flag can be unsuccessful after it has already converged
    # to rounding level.
    rate = model.vector_field(0.0, y, params, inputs)
    scaled = jnp.abs(jnp.where(acc, 0.0, rate)) / jnp.maximum(jnp.abs(y), 1.0)
    nonneg = np.array([s in model.nonnegative_states for s in model.states])
    in_domain = jnp.all(jnp.where(nonneg, y >= -1e-9 * jnp.maximum(jnp.abs(y), 1.0), True))
    ok = jnp.all(jnp.isfinite(y)) & (jnp.max(scaled) < solver.steady_state_tol) & in_domain
    return y, ok


def reference_mask(model: ODEModel) -> np.ndarray | None:
    """1.0 for the inputs kept in the reference state (see
    :attr:`ODEModel.reference_inputs`), None when the model has no reference."""
    if model.reference_inputs is None:
        return None
    return np.array([1.0 if u.name in model.reference_inputs else 0.0 for u in model.inputs])


def basal_state(
    model: ODEModel, solver: SolverSettings, params: jax.Array, inputs: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Steady state of ``model`` under ``inputs`` and whether it was found; for models
    with a reference (:attr:`ODEModel.reference_inputs`), completed by
    :meth:`ODEModel.anchor` from the steady state under the reference inputs alone
    (solved only when the inputs differ from them).
    """
    y, ok = _steady_state(model, solver, params, inputs)
    mask = reference_mask(model)
    if mask is None:
        return y, ok
    ref_inputs = inputs * mask
    y_ref, ok_ref = jax.lax.cond(
        jnp.all(ref_inputs == inputs),
        lambda: (y, ok),
        lambda: _steady_state(model, solver, params, ref_inputs),
    )
    return model.anchor(y, y_ref, params, inputs), ok & ok_ref


def _steady_state(
    model: ODEModel, solver: SolverSettings, params: jax.Array, inputs: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Steady state of ``model`` under ``inputs`` and whether it was found.

    A gradient-free approach supplies the starting point and Newton's method solves
    f(y) = 0; the gradient comes from the implicit function theorem. The approach
    (``solver.equilibration``): ``ptc``, pseudo-transient continuation (a failure is
    flagged like a failed solve); ``ptc_integrate``, the same but integrating the ODE
    towards a steady-state event when it fails or lands outside the model's domain
    (e.g. at a negative concentration); ``integrate``, always integrating.
    Accumulator states keep their ``initial_guess`` values.
    """
    guess = model.initial_guess(params, inputs)
    if not model.equilibrate:
        return guess, jnp.array(True)
    acc = np.array([s in model.accumulator_states for s in model.states])
    frozen = [jax.lax.stop_gradient(x) for x in (params, inputs, guess)]

    def by_integration():
        y0 = _approach_by_integration(model, solver, *frozen)
        return _polish(model, solver, params, inputs, guess, y0, acc)

    if solver.equilibration == "integrate":
        return by_integration()
    y, ok = _polish(
        model, solver, params, inputs, guess, _approach_by_ptc(model, solver, *frozen, acc), acc
    )
    if solver.equilibration == "ptc":
        return y, ok
    return jax.lax.cond(ok, lambda: (y, ok), by_integration)


def _solve_one(model, solver, params, inputs, y0, times):
    term = diffrax.ODETerm(_VectorField(model))
    sol = diffrax.diffeqsolve(
        term,
        solver.make_solver(),
        t0=0.0,
        t1=times[-1],
        dt0=None,
        y0=y0,
        args=(params, inputs),
        saveat=diffrax.SaveAt(ts=times),
        stepsize_controller=solver.make_controller(),
        max_steps=solver.max_steps,
        throw=False,
        adjoint=solver.make_adjoint(),
    )
    ok = (sol.result == diffrax.RESULTS.successful) & jnp.all(jnp.isfinite(sol.ys))
    return sol.ys, ok, sol.stats["num_steps"]


def _solve_scheduled(model, solver, events, params, inputs, y0, times, values, dose_times):
    """:func:`_solve_one` with dose events; also returns the inputs at each time."""
    n_p, n_u = params.shape[0], inputs.shape[0]

    def field(t, y, p):
        return model.vector_field(t, y, p[:n_p], p[n_p : n_p + n_u])

    # A hair past the last time: a dose at exactly that time lies inside the solve
    # (diffrax does not report an event at t1), so the output there sees it.
    t_end = times[-1] * (1.0 + 1e-12) + 1e-12
    out = solve_with_events(
        field,
        events,
        solver,
        y0,
        jnp.concatenate([params, inputs, values, dose_times]),
        times,
        t_end,
        max_segments=events.default_segments(),
    )
    ok = (out.status == OK) & jnp.all(jnp.isfinite(out.ys))
    return out.ys, out.ps[:, n_p : n_p + n_u], ok, out.num_steps


def basal_states(
    model: ODEModel,
    solver: SolverSettings,
    params: jax.Array,
    basal_param_index: jax.Array,
    basal_inputs: jax.Array,
    basal_reference_index: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """The basal state of every basal group of a batch (see :class:`ConditionBatch`) and
    whether it was found: [n_basal, n_states], [n_basal]."""
    # Basal states one group after another: few groups, and the fallback integration
    # then runs only for the groups whose pseudo-transient continuation failed.
    # A reference state (the growth reference) is one of the groups: no second steady
    # state per group, no conditional whose branches a batch would both evaluate.
    p_basal = params[basal_param_index]
    y_basal, ok_basal = jax.lax.map(
        lambda a: _steady_state(model, solver, *a), (p_basal, basal_inputs)
    )
    if model.reference_inputs is not None:
        y_ref = y_basal[basal_reference_index]
        y_basal = jax.vmap(model.anchor)(y_basal, y_ref, p_basal, basal_inputs)
        ok_basal = ok_basal & ok_basal[basal_reference_index]
    return y_basal, ok_basal


_basal_state_jit = jax.jit(basal_state, static_argnums=(0, 1))


def basal_state_jit(model: ODEModel, solver: SolverSettings, params, inputs):
    """:func:`basal_state`, jitted (compiled once per model program and solver settings)."""
    return _basal_state_jit(model.program, solver, params, inputs)


def simulate_arrays(
    model: ODEModel,
    solver: SolverSettings,
    params: jax.Array,
    inputs: jax.Array,
    param_index: jax.Array,
    basal_index: jax.Array,
    basal_param_index: jax.Array,
    basal_inputs: jax.Array,
    basal_reference_index: jax.Array,
    times: jax.Array,
    groups: Groups | None = None,
    *,
    schedule: ScheduleLayout | None = None,
    dose_values: jax.Array | None = None,
    dose_times: jax.Array | None = None,
):
    """The jitted core (see :func:`_simulate_arrays`), compiled once per model
    *program*: variants that differ only in parameter values share it."""
    return _simulate_arrays(
        model.program,
        solver,
        params,
        inputs,
        param_index,
        basal_index,
        basal_param_index,
        basal_inputs,
        basal_reference_index,
        times,
        groups=groups,
        schedule=schedule,
        dose_values=dose_values,
        dose_times=dose_times,
    )


@partial(jax.jit, static_argnames=("model", "solver", "groups", "schedule"))
def _simulate_arrays(
    model: ODEModel,
    solver: SolverSettings,
    params: jax.Array,
    inputs: jax.Array,
    param_index: jax.Array,
    basal_index: jax.Array,
    basal_param_index: jax.Array,
    basal_inputs: jax.Array,
    basal_reference_index: jax.Array,
    times: jax.Array,
    groups: Groups | None = None,
    *,
    schedule: ScheduleLayout | None = None,
    dose_values: jax.Array | None = None,
    dose_times: jax.Array | None = None,
):
    """The jitted core. Array-level (traced doses and parameters welcome).

    Args:
        params: [n_rows, n_params]; inputs: [n_conditions, n_inputs];
        param_index: [n_conditions]; basal_index: [n_conditions];
        basal_param_index: [n_basal]; basal_inputs: [n_basal, n_inputs];
        basal_reference_index: [n_basal] (see :class:`ConditionBatch`);
        times: [n_times], increasing, >= 0 (hours after treatment starts).
        groups: optional static partition of the conditions by horizon (see
            :meth:`ConditionBatch.horizon_groups`); each group is solved in its own
            batched loop up to its last needed time. Outputs at later times are NaN.
        schedule: static slot layout of the dosing schedules
            (:attr:`ConditionBatch.schedule`), with ``dose_values`` and ``dose_times``
            [n_scheduled, n_slots] (traced: outputs are differentiable in them).

    Returns:
        (observables [n_c, n_t, n_obs], states [n_c, n_t, n_states],
        success [n_c], num_steps [n_c]); failed conditions hold NaN.
    """
    y_basal, ok_basal = basal_states(
        model, solver, params, basal_param_index, basal_inputs, basal_reference_index
    )
    p_c = params[param_index]
    y0 = jax.vmap(model.perturb)(y_basal[basal_index], p_c, inputs)
    n_c, n_t = inputs.shape[0], times.shape[0]
    if groups is None:
        groups = ((tuple(range(n_c)), n_t),)

    def solve_group(p, u, y_start, ts):
        def one(p1, u1, y1):
            ys, ok, n = _solve_one(model, solver, p1, u1, y1, ts)
            safe = jnp.where(ok, ys, 1.0)  # keeps NaN out of gradients of failed solves
            obs = jax.vmap(lambda t, y: model.observe(t, y, p1, u1))(ts, safe)
            return safe, obs, ok, n

        return batched(one, solver.batching)(p, u, y_start)

    def solve_scheduled(p, u, y_start, ts, values, dose_t):
        def one(p1, u1, y1, v1, t1):
            ys, us, ok, n = _solve_scheduled(model, solver, schedule.events, p1, u1, y1, ts, v1, t1)
            safe = jnp.where(ok, ys, 1.0)
            obs = jax.vmap(lambda t, y, ut: model.observe(t, y, p1, ut))(ts, safe, us)
            return safe, obs, ok, n

        return batched(one, solver.batching)(p, u, y_start, values, dose_t)

    row_of = {} if schedule is None else {c: r for r, c in enumerate(schedule.conditions)}

    obs_all = jnp.full((n_c, n_t, model.n_observables), jnp.nan)
    ys_all = jnp.full((n_c, n_t, model.n_states), jnp.nan)
    ok_all = jnp.zeros(n_c, dtype=bool)
    steps_all = jnp.zeros(n_c, dtype=jnp.int32)
    parts = [
        (part, n_used)
        for members, n_used in groups
        for part in (
            tuple(c for c in members if c not in row_of),
            tuple(c for c in members if c in row_of),
        )
        if part
    ]
    for members, n_used in parts:
        idx = np.asarray(members, dtype=np.int32)
        if members[0] in row_of:
            rows = np.asarray([row_of[c] for c in members], dtype=np.int32)
            ys, obs, ok, n_steps = solve_scheduled(
                p_c[idx],
                inputs[idx],
                y0[idx],
                times[:n_used],
                dose_values[rows],
                dose_times[rows],
            )
        else:
            ys, obs, ok, n_steps = solve_group(p_c[idx], inputs[idx], y0[idx], times[:n_used])
        ok = ok & ok_basal[basal_index[idx]]
        obs_all = obs_all.at[idx, :n_used].set(jnp.where(ok[:, None, None], obs, jnp.nan))
        ys_all = ys_all.at[idx, :n_used].set(jnp.where(ok[:, None, None], ys, jnp.nan))
        ok_all = ok_all.at[idx].set(ok)
        steps_all = steps_all.at[idx].set(n_steps.astype(jnp.int32))
    return obs_all, ys_all, ok_all, steps_all


def _param_rows(model: ODEModel, params, batch: ConditionBatch) -> np.ndarray | jax.Array:
    if params is None:
        return np.stack([model.default_params(r) for r in batch.row_names])
    if isinstance(params, Mapping):
        missing = [r for r in batch.row_names if r not in params]
        if missing:
            raise ModelSpecError(f"params given for {sorted(params)}, missing rows {missing}")
        return jnp.stack([jnp.asarray(params[r]) for r in batch.row_names])
    params = jnp.asarray(params)
    if params.ndim == 1:
        params = jnp.broadcast_to(params, (len(batch.row_names), params.shape[0]))
    if params.shape != (len(batch.row_names), model.n_params):
        raise ModelSpecError(
            f"params must have shape ({model.n_params},) or "
            f"({len(batch.row_names)}, {model.n_params}), got {tuple(params.shape)}"
        )
    return params


def check_times(times) -> np.ndarray:
    """Validated time grid (hours): 1-D, finite, >= 0, strictly increasing, > 0 at end."""
    t = np.asarray(times, dtype=np.float64)
    if t.ndim != 1 or t.size == 0:
        raise ModelSpecError(f"times must be a non-empty 1-D sequence, got shape {t.shape}")
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ModelSpecError(f"times must be finite and >= 0 hours, got {t.tolist()}")
    if np.any(np.diff(t) <= 0) or t[-1] <= 0:
        raise ModelSpecError(f"times must be strictly increasing and end > 0, got {t.tolist()}")
    return t


def simulate(
    model: ODEModel,
    params,
    conditions: Sequence[Condition] | ConditionBatch,
    times,
    solver: SolverSettings | None = None,
) -> Simulation:
    """Simulate every condition at ``times`` (hours after treatment starts).

    Args:
        model: the model (its variant is part of it).
        params: ``None`` (the defaults of each condition's cell line), one vector
            [n_params] used for every condition, an array [n_rows, n_params] in the
            order of the batch's ``row_names``, or a mapping cell line -> vector.
        conditions: :class:`Condition` objects or a prepared :class:`ConditionBatch`.
        times: increasing time points in hours.
        solver: :class:`SolverSettings` (default: Kvaerno5, rtol 1e-6, atol 1e-8).

    Returns:
        A :class:`Simulation` with observables, states and per-condition success flags.
    """
    require_x64()
    solver = solver or SolverSettings()
    batch = conditions if isinstance(conditions, ConditionBatch) else make_batch(model, conditions)
    t = check_times(times)
    rows = _param_rows(model, params, batch)
    obs, ys, ok, n = simulate_arrays(
        model,
        solver,
        jnp.asarray(rows, dtype=jnp.float64),
        *(jnp.asarray(a) for a in batch.arrays),
        jnp.asarray(t),
        groups=batch.horizon_groups(t),
        schedule=batch.schedule,
        dose_values=None if batch.schedule is None else jnp.asarray(batch.dose_values),
        dose_times=None if batch.schedule is None else jnp.asarray(batch.dose_times),
    )
    return Simulation(
        model=model,
        batch=batch,
        times=t,
        observables=np.asarray(obs),
        states=np.asarray(ys),
        success=np.asarray(ok),
        num_steps=np.asarray(n),
    )


__all__ = [
    "ConditionBatch",
    "Groups",
    "Simulation",
    "basal_state",
    "basal_states",
    "basal_state_jit",
    "check_times",
    "make_batch",
    "reference_mask",
    "simulate",
    "simulate_arrays",
]
