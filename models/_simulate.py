"""Batched, differentiable simulation of a model over experimental conditions.

One jitted call solves every condition (``vmap``, or ``lax.map`` when configured) and
is compiled once per (model, variant, solver settings, array shapes). Each condition

1. starts from the basal state of its parameter row under its pre-treatment inputs
   (siRNA, over-expression): the steady state of the vector field, found by
   integrating towards it and polishing with Newton's method (implicit
   differentiation gives its gradient); basal states are computed once per unique
   (parameter row, pre-treatment inputs) group and shared;
2. receives its treatment (``model.perturb``, e.g. a bolus of exogenous IL-6);
3. is integrated with an adaptive solver, ``throw=False``: a failed solve sets that
   condition's ``success`` flag to False and its outputs to NaN, it never raises.
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
from ._model import Condition, ODEModel, condition_inputs
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
    """

    ids: tuple[str, ...]
    cell_lines: tuple[str, ...]
    inputs: np.ndarray
    row_names: tuple[str, ...]
    param_index: np.ndarray
    basal_index: np.ndarray
    basal_param_index: np.ndarray
    basal_inputs: np.ndarray

    @property
    def n_conditions(self) -> int:
        return len(self.ids)


def make_batch(
    model: ODEModel,
    conditions: Sequence[Condition],
    row_names: Sequence[str] | None = None,
) -> ConditionBatch:
    """Validate conditions and index them by parameter row and basal group.

    ``row_names`` fixes the parameter rows (default: the cell lines in order of first
    appearance). Unknown cell lines or perturbations and negative doses raise one
    :class:`ModelSpecError` that lists every problem.
    """
    conditions = list(conditions)
    if not conditions:
        raise ModelSpecError("no conditions to simulate")
    ids = [c.id for c in conditions]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise ModelSpecError(f"duplicate condition ids: {dup}")
    inputs = condition_inputs(model, conditions)
    canonical = [model.cell_line(c.cell_line).name for c in conditions]
    if row_names is None:
        row_names = list(dict.fromkeys(canonical))
    else:
        row_names = [model.cell_line(r).name for r in row_names]
        missing = sorted(set(canonical) - set(row_names))
        if missing:
            raise ModelSpecError(f"conditions use cell lines {missing} not among rows {row_names}")
    param_index = np.array([row_names.index(c) for c in canonical], dtype=np.int32)
    pre = inputs * model.pretreatment_mask()[None, :]
    groups: dict[tuple, int] = {}
    basal_index = np.empty(len(conditions), dtype=np.int32)
    for c in range(len(conditions)):
        key = (int(param_index[c]), tuple(pre[c]))
        basal_index[c] = groups.setdefault(key, len(groups))
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
def _vector_field(model: ODEModel):
    def f(t, y, args):
        params, inputs = args
        return model.vector_field(t, y, params, inputs)

    return f


def basal_state(
    model: ODEModel, solver: SolverSettings, params: jax.Array, inputs: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Steady state of ``model`` under ``inputs`` and whether it was found.

    The integration towards the steady state carries no gradient (it only supplies a
    starting point); Newton's method then solves f(y) = 0 and its gradient comes from
    the implicit function theorem. Accumulator states keep their ``initial_guess``.
    """
    guess = model.initial_guess(params, inputs)
    if not model.equilibrate:
        return guess, jnp.array(True)
    acc = np.array([s in model.accumulator_states for s in model.states])
    term = diffrax.ODETerm(_vector_field(model))
    frozen = (jax.lax.stop_gradient(params), jax.lax.stop_gradient(inputs))
    approach = diffrax.diffeqsolve(
        term,
        solver.make_solver(),
        t0=0.0,
        t1=solver.equilibration_time,
        dt0=None,
        y0=jax.lax.stop_gradient(guess),
        args=frozen,
        stepsize_controller=solver.make_controller(),
        event=diffrax.Event(diffrax.steady_state_event(rtol=1e-8, atol=1e-10)),
        max_steps=solver.max_steps,
        throw=False,
        adjoint=diffrax.RecursiveCheckpointAdjoint(),
    )
    y_start = jnp.where(jnp.isfinite(approach.ys[-1]), approach.ys[-1], guess)

    def residual(y, args):
        p, u, anchor = args
        return jnp.where(acc, y - anchor, model.vector_field(0.0, y, p, u))

    newton = optx.root_find(
        residual,
        optx.Newton(rtol=1e-11, atol=1e-13),
        y_start,
        args=(params, inputs, guess),
        max_steps=64,
        throw=False,
    )
    y = newton.value
    rate = model.vector_field(0.0, y, params, inputs)
    ok = (
        jnp.all(jnp.isfinite(y))
        & (jnp.max(jnp.abs(jnp.where(acc, 0.0, rate))) < solver.steady_state_tol)
        & (newton.result == optx.RESULTS.successful)
    )
    return y, ok


def _solve_one(model, solver, params, inputs, y0, times):
    term = diffrax.ODETerm(_vector_field(model))
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


def _batched(fn, solver: SolverSettings):
    if solver.batching == "vmap":
        return jax.vmap(fn)
    return lambda *xs: jax.lax.map(lambda a: fn(*a), xs)


@partial(jax.jit, static_argnums=(0, 1))
def simulate_arrays(
    model: ODEModel,
    solver: SolverSettings,
    params: jax.Array,
    inputs: jax.Array,
    param_index: jax.Array,
    basal_index: jax.Array,
    basal_param_index: jax.Array,
    basal_inputs: jax.Array,
    times: jax.Array,
):
    """The jitted core. Array-level (traced doses and parameters welcome).

    Args:
        params: [n_rows, n_params]; inputs: [n_conditions, n_inputs];
        param_index: [n_conditions]; basal_index: [n_conditions];
        basal_param_index: [n_basal]; basal_inputs: [n_basal, n_inputs];
        times: [n_times], increasing, >= 0 (hours after treatment starts).

    Returns:
        (observables [n_c, n_t, n_obs], states [n_c, n_t, n_states],
        success [n_c], num_steps [n_c]); failed conditions hold NaN.
    """
    y_basal, ok_basal = _batched(partial(basal_state, model, solver), solver)(
        params[basal_param_index], basal_inputs
    )
    p_c = params[param_index]
    y0 = jax.vmap(model.perturb)(y_basal[basal_index], p_c, inputs)

    def one(p, u, y_start):
        ys, ok, n = _solve_one(model, solver, p, u, y_start, times)
        safe = jnp.where(ok, ys, 1.0)  # keeps NaN out of gradients of failed solves
        obs = jax.vmap(lambda t, y: model.observe(t, y, p, u))(times, safe)
        return safe, obs, ok, n

    ys, obs, ok, n_steps = _batched(one, solver)(p_c, inputs, y0)
    ok = ok & ok_basal[basal_index]
    nan = jnp.nan
    return (
        jnp.where(ok[:, None, None], obs, nan),
        jnp.where(ok[:, None, None], ys, nan),
        ok,
        n_steps,
    )


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
        jnp.asarray(batch.inputs),
        jnp.asarray(batch.param_index),
        jnp.asarray(batch.basal_index),
        jnp.asarray(batch.basal_param_index),
        jnp.asarray(batch.basal_inputs),
        jnp.asarray(t),
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
    "Simulation",
    "basal_state",
    "check_times",
    "make_batch",
    "simulate",
    "simulate_arrays",
]
