"""The one MAP optimiser: multi-start BFGS (optimistix) on a negative log density.

:func:`minimise` runs optimistix's BFGS from every start, one start after the other,
stepped from the host in compiled chunks of iterations: one compiled program serves
every start (and every later fit of a posterior with the same shapes), progress is
reported between chunks, and a failed ODE solve of one start cannot touch the others.
The objective is wrapped so that a non-finite value or gradient (a failed solve) is a
wall (a large finite value, zero slope) that the line search backs away from, never a
NaN in the optimiser's state.

:func:`map_multistart` optimises a :class:`~il6rcc.inference.Posterior`: the first
start is the prior's centre, the others are jittered around it; ``starts`` replaces
them (warm starts) and ``fixed`` holds some coordinates at given values while the
others are re-optimised (what a profile likelihood needs).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
from pydantic import ConfigDict, Field

from ..errors import Il6rccError
from ._posterior import BIG, Posterior


@dataclass(frozen=True)
class MapSettings:
    """MAP multi-start: the ``inference.map`` section of a job config. ``n_starts``
    points (the prior's centre and jittered draws around it, ``start_scale`` prior SDs)
    optimised for at most ``max_steps`` BFGS steps each, to the relative and absolute
    tolerance ``tol`` (on the changes of the objective and of the point between steps);
    ``num_draws``: draws of the Laplace approximation (method ``map``)."""

    __pydantic_config__ = ConfigDict(extra="forbid")

    n_starts: Annotated[int, Field(gt=0)] = 8
    max_steps: Annotated[int, Field(gt=0)] = 300
    tol: Annotated[float, Field(gt=0)] = 1e-6
    start_scale: Annotated[float, Field(gt=0)] = 0.5
    num_draws: Annotated[int, Field(gt=0)] = 400


@dataclass(frozen=True)
class Minimum:
    """Result of :func:`minimise` (and of :func:`map_multistart`).

    ``x``: the best end point; ``value``: the objective there; ``xs``, ``values``,
    ``steps``, ``converged``, ``seconds``: per start (``values`` is inf for a start
    whose objective was never finite); ``starts``: the start points.
    """

    x: np.ndarray
    value: float
    xs: np.ndarray
    values: np.ndarray
    steps: np.ndarray
    converged: np.ndarray
    seconds: np.ndarray
    starts: np.ndarray

    @property
    def best(self) -> int:
        return int(np.argmin(self.values))

    @property
    def n_finite(self) -> int:
        return int(np.isfinite(self.values).sum())


#: ``value_and_grad(x, args) -> (value, gradient)``: a compiled objective called from
#: the host, with non-finite values already replaced by (BIG, 0).
HostValueAndGrad = Callable[[np.ndarray, object], tuple[float, np.ndarray]]


def walled_value_and_grad(objective: Callable) -> HostValueAndGrad:
    """The compiled value and gradient of ``objective(x, args)`` (pure JAX), with a
    non-finite value or gradient (a failed solve) replaced by (BIG, 0): a wall that a
    line search backs away from, never a NaN in the optimiser's state."""

    def safe(x, args):
        value, grad = jax.value_and_grad(objective)(x, args)
        ok = jnp.isfinite(value) & jnp.all(jnp.isfinite(grad))
        return jnp.where(ok, value, BIG), jnp.where(ok, grad, 0.0)

    compiled = jax.jit(safe)

    def value_and_grad(x, args):
        value, grad = compiled(jnp.asarray(x, dtype=jnp.float64), args)
        return float(value), np.asarray(grad)

    return value_and_grad


class BfgsStepper:
    """optimistix's BFGS, compiled once per dimension and stepped from the host.

    The objective's value and gradient come from ``value_and_grad`` (a compiled
    function, see :data:`HostValueAndGrad`) through a host callback: the optimiser's own
    program holds only BFGS's linear algebra (it compiles in a moment), and the
    expensive gradient (an ODE solve and its adjoint) is compiled once and shared with
    everything else that needs it (the Laplace Hessian, chain starts).
    """

    def __init__(self, value_and_grad: HostValueAndGrad, rtol: float, atol: float | None = None):
        self.solver = optx.BFGS(rtol=rtol, atol=rtol if atol is None else atol)
        self.value_and_grad = value_and_grad

        def host(y, args):
            value, grad = value_and_grad(np.asarray(y), args)
            return np.float64(value), np.asarray(grad, dtype=np.float64)

        def evaluate(y, args):
            shapes = (jax.ShapeDtypeStruct((), jnp.float64), jax.ShapeDtypeStruct(y.shape, y.dtype))
            return jax.pure_callback(host, shapes, y, args)

        @jax.custom_jvp
        def objective(y, args):
            return evaluate(y, args)[0]

        @objective.defjvp
        def _jvp(primals, tangents):
            y, args = primals
            value, grad = evaluate(y, args)
            return value, jnp.dot(grad, tangents[0])

        def fn(y, args):  # the solvers take functions returning (value, aux)
            return objective(y, args), None

        self.fn = fn
        tags = frozenset()

        @eqx.filter_jit
        def init(y0, args):
            f_struct = jax.ShapeDtypeStruct((), y0.dtype)
            state = self.solver.init(self.fn, y0, args, {}, f_struct, None, tags)
            done, _ = self.solver.terminate(self.fn, y0, args, {}, state, tags)
            return state, done

        @eqx.filter_jit
        def advance(y, state, args, budget):
            dynamic, static = eqx.partition(state, eqx.is_array)

            def cond(carry):
                _, _, k, done = carry
                return (k < budget) & ~done

            def body(carry):
                y, dyn, k, _ = carry
                st = eqx.combine(dyn, static)
                new_y, new_state, _ = self.solver.step(self.fn, y, args, {}, st, tags)
                # as optimistix's own loop: the new state decides about the old point
                done, result = self.solver.terminate(self.fn, y, args, {}, new_state, tags)
                done = done | (result != optx.RESULTS.successful)
                new_dyn, _ = eqx.partition(new_state, eqx.is_array)
                return new_y, new_dyn, k + 1, done

            carry = (y, dynamic, jnp.asarray(0), jnp.asarray(False))
            y, dynamic, k, done = jax.lax.while_loop(cond, body, carry)
            return y, eqx.combine(dynamic, static), k, done

        self.init = init
        self.advance = advance

    def value(self, y, args) -> float:
        return self.value_and_grad(np.asarray(y), args)[0]


def minimise(
    value_and_grad: HostValueAndGrad,
    starts: np.ndarray,
    args=None,
    max_steps: int = 300,
    tol: float = 1e-6,
    progress: Callable[[str], None] | None = None,
    every: int = 10,
    stepper: BfgsStepper | None = None,
    label: str = "MAP",
    finished: Minimum | None = None,
    on_start: Callable[[Minimum], None] | None = None,
) -> Minimum:
    """Minimise an objective from every row of ``starts``, given its compiled
    ``value_and_grad(x, args)`` (:data:`HostValueAndGrad`; from a JAX function:
    :func:`walled_value_and_grad`).

    ``stepper``: a :class:`BfgsStepper` built earlier for ``value_and_grad`` (its
    compiled programs are reused; default: a new one). ``progress(line)`` gets a line
    every ``every`` steps and one per finished start (``label`` first).
    ``finished``: the first starts' results from an earlier, interrupted call (a resumed
    run); only the rows of ``starts`` after them are minimised. ``on_start(partial)``
    gets the results of all starts finished so far after each one (to checkpoint them).
    """
    starts = np.atleast_2d(np.asarray(starts, dtype=np.float64))
    stepper = stepper or BfgsStepper(value_and_grad, tol)
    xs, values, steps, converged, seconds = [], [], [], [], []
    if finished is not None:
        if len(finished.values) > len(starts):
            raise ValueError(
                f"{len(finished.values)} finished starts given for {len(starts)} starts"
            )
        xs = [np.asarray(x, dtype=np.float64) for x in finished.xs]
        values = [float(v) for v in finished.values]
        steps = [int(v) for v in finished.steps]
        converged = [bool(v) for v in finished.converged]
        seconds = [float(v) for v in finished.seconds]
    for i, start in enumerate(starts):
        if i < len(values):
            continue
        t0 = time.perf_counter()
        y = jnp.asarray(start)
        state, done = stepper.init(y, args)
        n = 0
        if stepper.value(y, args) >= BIG:  # the start does not solve: skip it
            done = True
        while not bool(done) and n < max_steps:
            budget = jnp.asarray(min(every, max_steps - n))
            y, state, k, done = stepper.advance(y, state, args, budget)
            n += int(k)
            if progress is not None and not bool(done) and n < max_steps:
                progress(
                    f"{label}  start {i + 1}/{len(starts)}  step {n:4d}/{max_steps} | "
                    f"-log posterior {stepper.value(y, args):.6g}"
                )
        value = stepper.value(y, args)
        xs.append(np.asarray(y))
        values.append(value if value < BIG else np.inf)
        steps.append(n)
        converged.append(bool(done) and value < BIG)
        seconds.append(time.perf_counter() - t0)
        if progress is not None:
            status = "converged" if converged[-1] else "stopped"
            progress(
                f"{label}  start {i + 1}/{len(starts)} done: -log posterior {values[-1]:.6g} "
                f"after {n} steps ({status}, {seconds[-1]:.0f} s)"
            )
        if on_start is not None:
            on_start(_minimum(xs, values, steps, converged, seconds, starts[: i + 1]))
    return _minimum(xs, values, steps, converged, seconds, starts)


def _minimum(xs, values, steps, converged, seconds, starts) -> Minimum:
    values_arr = np.array(values, dtype=np.float64)
    best = int(np.argmin(values_arr))
    return Minimum(
        x=np.asarray(xs[best]),
        value=float(values_arr[best]),
        xs=np.array(xs),
        values=values_arr,
        steps=np.array(steps),
        converged=np.array(converged),
        seconds=np.array(seconds),
        starts=starts,
    )


def map_multistart(
    posterior: Posterior,
    key: jax.Array,
    settings: MapSettings | None = None,
    data=None,
    starts: np.ndarray | None = None,
    fixed: dict[int, float] | None = None,
    progress: Callable[[str], None] | None = None,
    objective: str = "posterior",
    finished: Minimum | None = None,
    on_start: Callable[[Minimum], None] | None = None,
) -> Minimum:
    """The MAP of a posterior from several starts.

    Args:
        key: PRNG key of the jittered starts.
        settings: :class:`MapSettings` (number of starts, steps, tolerance, jitter).
        data: the posterior's data argument (default: its own).
        starts: [k, n] start points (warm starts); replaces the jittered ones.
        fixed: coordinate index -> value: those coordinates are held there and only the
            others are optimised (the result's points are full [n] vectors).
        objective: ``posterior`` (the MAP) or ``likelihood`` (the maximum-likelihood
            point, :meth:`Posterior.log_likelihood`; values are then -log likelihoods).
        finished: the first starts' results (full points) of an interrupted call with
            the same key and settings; only the remaining starts are minimised, so the
            result equals that of an uninterrupted call.
        on_start: called with the results (full points) of the starts finished so far
            after each start (a run checkpoints them; see :func:`starts_table`).

    Raises :class:`Il6rccError` when no start has a finite log density.
    """
    settings = settings or MapSettings()
    data = posterior.data if data is None else data
    n = posterior.dim
    center = posterior.initial_point()
    if starts is None:
        jitter = settings.start_scale * np.asarray(jax.random.normal(key, (settings.n_starts, n)))
        jitter[0] = 0.0
        starts = center[None, :] + jitter
    starts = np.atleast_2d(np.asarray(starts, dtype=np.float64))
    fixed = dict(fixed or {})
    base = np.array(center, dtype=np.float64)
    for i, v in fixed.items():
        base[int(i)] = float(v)
    free = np.array([i for i in range(n) if i not in fixed], dtype=np.int32)
    compiled = posterior.compiled
    if objective not in ("posterior", "likelihood"):
        raise ValueError(f"objective must be 'posterior' or 'likelihood', got {objective!r}")
    full_value_and_grad = (
        compiled.value_and_grad if objective == "posterior" else compiled.likelihood_value_and_grad
    )

    def value_and_grad(y, args):
        """The posterior's own compiled gradient, on the free coordinates (``args``:
        the data, the full point holding the fixed values, the free positions)."""
        data, base, free = args
        full = np.array(base, dtype=np.float64)
        full[np.asarray(free)] = y
        value, grad = full_value_and_grad(full, data)
        return value, grad[np.asarray(free)]

    # one stepper per posterior, objective and tolerance (the number of free coordinates
    # is a shape: jit keys its programs on it); its BFGS program holds no ODE solve
    key_cache = ("map", float(settings.tol)) + (() if objective == "posterior" else (objective,))
    if key_cache not in compiled.cache:
        compiled.cache[key_cache] = BfgsStepper(value_and_grad, settings.tol)

    def full(y):
        out = base.copy()
        out[free] = y
        return out

    def to_full(m: Minimum) -> Minimum:
        xs = np.array([full(y) for y in m.xs])
        return dataclasses.replace(m, x=xs[m.best], xs=xs, starts=starts[: len(xs)])

    def to_free(m: Minimum) -> Minimum:
        xs = np.asarray(m.xs, dtype=np.float64)[:, free]
        return dataclasses.replace(m, x=xs[m.best], xs=xs)

    result = minimise(
        value_and_grad,
        starts[:, free],
        args=(data, jnp.asarray(base), jnp.asarray(free)),
        max_steps=settings.max_steps,
        tol=settings.tol,
        progress=progress,
        stepper=compiled.cache[key_cache],
        finished=None if finished is None else to_free(finished),
        on_start=None if on_start is None else (lambda m: on_start(to_full(m))),
    )
    if not np.isfinite(result.values).any():
        raise Il6rccError(
            f"MAP: all {len(starts)} starts failed (every ODE solve or log density was "
            f"non-finite). Check the priors (do they put mass where solves fail?) and the "
            f"solver settings (max_steps, tolerances)."
        )
    return dataclasses.replace(to_full(result), starts=starts)


def starts_table(result: Minimum, names: Sequence[str]):
    """One row per start: its end point, value, steps, convergence and time."""
    import pandas as pd

    table = pd.DataFrame(result.xs, columns=list(names))
    table.insert(0, "seconds", result.seconds)
    table.insert(0, "converged", result.converged)
    table.insert(0, "steps", result.steps)
    table.insert(0, "neg_log_posterior", result.values)
    table.insert(0, "start", np.arange(len(result.values)))
    return table


#: the columns of :func:`starts_table` before the coordinates
STARTS_COLUMNS = ("start", "neg_log_posterior", "steps", "converged", "seconds")


def read_starts_table(path, names: Sequence[str], n_starts: int) -> Minimum:
    """The finished starts of a :func:`starts_table` CSV (``map.csv`` of a run folder),
    to resume a multi-start (``finished`` of :func:`map_multistart`). Values round-trip
    exactly (the CSV holds every float64 digit). Raises :class:`Il6rccError` naming the
    file and what differs when the table is not one of these starts."""
    import pandas as pd

    table = pd.read_csv(path)
    expected = [*STARTS_COLUMNS, *names]
    problems = []
    if list(table.columns) != expected:
        missing = [c for c in expected if c not in table.columns]
        extra = [c for c in table.columns if c not in expected]
        problems.append(
            f"columns differ from the posterior's (missing {missing}, unexpected {extra}; "
            f"expected {len(expected)} columns in the order of starts_table)"
        )
    elif not 1 <= len(table) <= n_starts:
        problems.append(f"{len(table)} rows, expected 1 to {n_starts} (the config's n_starts)")
    elif list(table["start"]) != list(range(len(table))):
        problems.append(f"start column {list(table['start'])}, expected 0..{len(table) - 1}")
    if problems:
        raise Il6rccError(
            f"{path}: not the MAP starts of this run's posterior: {'; '.join(problems)}. "
            f"Move the file away to recompute every start."
        )
    xs = table[list(names)].to_numpy(dtype=np.float64)
    values = table["neg_log_posterior"].to_numpy(dtype=np.float64)
    best = int(np.argmin(values))
    return Minimum(
        x=xs[best],
        value=float(values[best]),
        xs=xs,
        values=values,
        steps=table["steps"].to_numpy(dtype=np.int64),
        converged=table["converged"].to_numpy(dtype=bool),
        seconds=table["seconds"].to_numpy(dtype=np.float64),
        starts=np.full_like(xs, np.nan),
    )


__all__ = [
    "BfgsStepper",
    "HostValueAndGrad",
    "MapSettings",
    "Minimum",
    "map_multistart",
    "minimise",
    "read_starts_table",
    "starts_table",
    "walled_value_and_grad",
]
