"""Events: instantaneous changes of states and parameters at times or when a
condition on the state becomes true, solved with diffrax's event handling.

An :class:`EventSystem` declares *roots*, real functions ``g_k(t, y, p)`` whose sign
gives the truth of an atomic condition (``g > 0``, or ``g >= 0``), and *events*
whose triggers are boolean functions of those atoms. :func:`solve_with_events`
integrates piecewise: each segment is one ``diffrax.diffeqsolve`` that stops at the
first zero crossing of any root (or at a scheduled delayed execution), located by
Newton's method on the dense output, so that the crossing time is a differentiable
function of the parameters (implicit function theorem). Then the events whose
triggers changed from false to true fire, and the next segment starts from the
state after their assignments.

Semantics are those of SBML Level 3 (section 4.12): a trigger fires on a
false-to-true transition; ``initial_value`` is its value just before the start (an
event whose trigger is already true at the start fires then only when it is False);
a delayed event executes ``delay`` after firing, and a non-persistent one is
cancelled when its trigger turns false before that; simultaneous executions go by
descending priority (unprioritised last, then in declaration order); assignment
values are computed when the event fires (``use_trigger_time_values``) or when it
executes; executions that make other triggers true fire those at the same instant.
One pending execution per event: an event that fires again while its execution is
pending fails the solve (status :data:`EVENT_LIMIT`).

A measurement time equal to an event time sees the state after the event
(right-continuous trajectories).

The number of segments is static (``max_segments``): a root that can cross only once
(``time >= c`` with ``c`` fixed) needs one; a solve that needs more than given stops
with status :data:`EVENT_LIMIT`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import optimistix as optx

from ._solvers import SolverSettings

#: Solve status codes (one per simulation), see :data:`STATUS_TEXT`.
OK, MAX_STEPS, STEP_UNDERFLOW, NONFINITE, EVENT_LIMIT, NO_STEADY_STATE, SOLVER_ERROR = range(7)

#: What went wrong, by status code, and the setting that changes it.
STATUS_TEXT = {
    OK: ("success", ""),
    MAX_STEPS: ("the step limit was reached", "raise max_steps"),
    STEP_UNDERFLOW: (
        "the step size fell below its floor (step-size underflow; usually a stiff or "
        "discontinuous right-hand side)",
        "try another solver or looser rtol/atol",
    ),
    NONFINITE: ("the state became non-finite (NaN or inf)", "check the parameters and the model"),
    EVENT_LIMIT: (
        "more event crossings than the static limit (or an event fired again while its "
        "delayed execution was pending)",
        "raise max_event_segments",
    ),
    NO_STEADY_STATE: (
        "no steady state: Newton's method failed and integration did not reach "
        "|dy/dt| <= atol + rtol*|y| in time",
        "raise max_steps, or check that the condition has a stable steady state",
    ),
    SOLVER_ERROR: ("the solver failed", "try another solver or other tolerances"),
}

#: Step-size floor, relative to the length of the integration interval: a proposed
#: step below it ends the solve with :data:`STEP_UNDERFLOW` instead of spending the
#: remaining step budget on steps that cannot advance time.
DT_FLOOR = 1e-14


def controller(solver: SolverSettings, span) -> diffrax.AbstractStepSizeController:
    """The solver's step-size controller, with a floor ``DT_FLOOR * span`` whose breach
    is reported (``RESULTS.dt_min_reached``) when it is a PID controller."""
    ctrl = solver.make_controller()
    if not isinstance(ctrl, diffrax.PIDController):
        return ctrl
    floor = DT_FLOOR * jnp.maximum(jnp.abs(span), 1.0)
    ctrl = eqx.tree_at(lambda c: c.dtmin, ctrl, floor, is_leaf=lambda x: x is None)
    return eqx.tree_at(lambda c: c.force_dtmin, ctrl, False)


def status_of(result, y, f_y) -> jax.Array:
    """Status code of a solve from its diffrax result, final state and derivative."""
    finite = jnp.all(jnp.isfinite(y)) & jnp.all(jnp.isfinite(f_y))
    code = jnp.where(
        result == diffrax.RESULTS.max_steps_reached,
        MAX_STEPS,
        jnp.where(result == diffrax.RESULTS.dt_min_reached, STEP_UNDERFLOW, SOLVER_ERROR),
    )
    code = jnp.where(finite, code, NONFINITE)
    good = (result == diffrax.RESULTS.successful) | (result == diffrax.RESULTS.event_occurred)
    return jnp.where(good & finite, OK, code).astype(jnp.int32)


class EventSystem(abc.ABC):
    """The events of a model, as :func:`solve_with_events` needs them.

    ``y`` [n_states] is the state and ``p`` [n_p] the vector of quantities events may
    change (parameters, doses); both may be assigned. Subclasses are frozen and
    hashable (they are static arguments of compiled functions) and implement the
    abstract properties (static facts: counts, per-event flags, assignment targets,
    which roots cross at most once, e.g. ``t - c`` with ``c`` unchanged by events)
    and methods (traced values: roots, triggers, assignment values).
    """

    @property
    @abc.abstractmethod
    def n_roots(self) -> int:
        """Number of roots (atomic conditions)."""

    @property
    @abc.abstractmethod
    def n_events(self) -> int:
        """Number of events."""

    @property
    @abc.abstractmethod
    def initial_value(self) -> tuple[bool, ...]:
        """Per event: its trigger's value just before the start."""

    @property
    @abc.abstractmethod
    def persistent(self) -> tuple[bool, ...]:
        """Per event: whether a pending execution survives its trigger turning false."""

    @property
    @abc.abstractmethod
    def use_trigger_time_values(self) -> tuple[bool, ...]:
        """Per event: assignment values computed at firing (True) or execution."""

    @property
    @abc.abstractmethod
    def has_delay(self) -> tuple[bool, ...]:
        """Per event: whether it executes after a delay."""

    @property
    @abc.abstractmethod
    def targets(self) -> tuple[tuple[tuple[str, int], ...], ...]:
        """Per event: its assignment targets, ``("state" | "param", index)``."""

    @property
    @abc.abstractmethod
    def once(self) -> tuple[bool, ...]:
        """Per root: True when it can cross zero at most once in a solve."""

    @abc.abstractmethod
    def roots(self, t, y, p) -> tuple[jax.Array, jax.Array]:
        """``(g [n_roots], scale [n_roots])``: root values and their magnitude scale
        (e.g. ``|a| + |b|`` for ``a > b``), used to recognise simultaneous crossings."""

    @abc.abstractmethod
    def root_truth(self, t, y, p) -> jax.Array:
        """[n_roots] bool: each atomic condition evaluated exactly (``>`` vs ``>=``)."""

    @abc.abstractmethod
    def triggers(self, atoms, t, y, p) -> jax.Array:
        """[n_events] bool: each trigger, given the atoms' truth values [n_roots]."""

    @abc.abstractmethod
    def assignment_values(self, t, y, p) -> jax.Array:
        """[n_events, max_targets] values of every event's assignments (padded)."""

    def delays(self, t, y, p) -> jax.Array:
        """[n_events] delays (events without one: 0)."""
        return jnp.zeros(self.n_events)

    def priorities(self, t, y, p) -> jax.Array:
        """[n_events] priorities; NaN where an event has none."""
        return jnp.full(self.n_events, jnp.nan)

    # ------------------------------------------------------------------ derived
    @property
    def max_targets(self) -> int:
        return max([len(t) for t in self.targets] + [1])

    def default_segments(self, crossings_per_root: int = 8) -> int:
        """Segments enough for every once-only root and delayed event to cross once and
        every other root ``crossings_per_root`` times."""
        once = sum(1 for o in self.once if o)
        other = (self.n_roots - once) * crossings_per_root
        delayed = sum(1 for d in self.has_delay if d) * (1 + crossings_per_root * (other > 0))
        return 1 + once + other + delayed

    def apply(self, e, values, y, p):
        """State and parameters after executing event ``e`` (traced index) with
        assignment values [max_targets]."""

        def branch(k):
            def run(y, p, values):
                for j, (kind, index) in enumerate(self.targets[k]):
                    if kind == "state":
                        y = y.at[index].set(values[j].astype(y.dtype))
                    else:
                        p = p.at[index].set(values[j].astype(p.dtype))
                return y, p

            return run

        return jax.lax.switch(e, [branch(k) for k in range(self.n_events)], y, p, values)


@dataclass(frozen=True)
class EventSolution:
    """Result of :func:`solve_with_events` for one simulation.

    Attributes:
        ys: [n_times, n_states] states at the requested times (right-continuous).
        ps: [n_times, n_p] the event-changeable quantities at those times.
        status: solve status (:data:`STATUS_TEXT`).
        t_reached: the time the solve reached (the end time when it succeeded).
        num_steps: solver steps over all segments.
        y_end, p_end: state and quantities at the end.
    """

    ys: jax.Array
    ps: jax.Array
    status: jax.Array
    t_reached: jax.Array
    num_steps: jax.Array
    y_end: jax.Array
    p_end: jax.Array


jax.tree_util.register_dataclass(
    EventSolution,
    data_fields=["ys", "ps", "status", "t_reached", "num_steps", "y_end", "p_end"],
    meta_fields=[],
)


class _Field(eqx.Module):
    """diffrax's ``f(t, y, args)``; ``args = (p, flips, pending)``."""

    vector_field: object = eqx.field(static=True)

    def __call__(self, t, y, args):
        return self.vector_field(t, y, args[0])


class _OfFirstArg(eqx.Module):
    """``g(t, y, args)`` as ``g(t, y, args[0])`` (``args = (p, flips, pending)``)."""

    fn: object = eqx.field(static=True)

    def __call__(self, t, y, args):
        return self.fn(t, y, args[0])


class _Crossing(eqx.Module):
    """The event condition of one segment: the largest of the roots signed so that
    each is <= 0 until its atom flips, and of ``t - pending`` for scheduled
    executions; it crosses zero upwards at the first of those."""

    events: EventSystem = eqx.field(static=True)

    def __call__(self, t, y, args, **kwargs):
        p, flips, pending = args
        g, _ = self.events.roots(t, y, p)
        return jnp.max(jnp.concatenate([flips * g, t - pending]))


def _instant(events: EventSystem, t, y, p, atoms, trig, queue, queued_values, pending, pvals):
    """Execute the queued events at time ``t`` (and those their assignments trigger).

    Returns ``(y, p, atoms, trig, pending, pending_values, ok)``; ``ok`` is False when
    an execution could not be scheduled or the cascade did not finish.
    """
    n_e = events.n_events
    has_delay = jnp.asarray(events.has_delay)
    persistent = jnp.asarray(events.persistent)
    use_trigger = jnp.asarray(events.use_trigger_time_values)

    def body(_, carry):
        y, p, atoms, trig, queue, qvals, pending, pvals, ok = carry
        busy = jnp.any(queue)
        prio = events.priorities(t, y, p)
        score = jnp.where(jnp.isnan(prio), -1e300, prio)  # ties: declaration order
        e = jnp.argmax(jnp.where(queue, score, -jnp.inf))
        now = events.assignment_values(t, y, p)
        values = jnp.where(use_trigger[e], qvals[e], now[e])
        g_before, _ = events.roots(t, y, p)
        y_new, p_new = events.apply(e, values, y, p)
        y = jnp.where(busy, y_new, y)
        p = jnp.where(busy, p_new, p)
        queue = queue.at[e].set(queue[e] & ~busy)
        # Atoms whose root value an assignment changed are re-evaluated exactly; the
        # others keep their (possibly just flipped) values.
        g_after, _ = events.roots(t, y, p)
        atoms = jnp.where(g_after != g_before, events.root_truth(t, y, p), atoms)
        trig_new = events.triggers(atoms, t, y, p)
        fired = trig_new & ~trig
        dropped = trig & ~trig_new & ~persistent
        queue = queue & ~dropped
        pending = jnp.where(dropped, jnp.inf, pending)
        now = events.assignment_values(t, y, p)
        delay = events.delays(t, y, p)
        clash = fired & has_delay & jnp.isfinite(pending)
        pending = jnp.where(fired & has_delay, t + delay, pending)
        pvals = jnp.where((fired & has_delay)[:, None], now, pvals)
        queue = queue | (fired & ~has_delay)
        qvals = jnp.where((fired & ~has_delay)[:, None], now, qvals)
        return y, p, atoms, trig_new, queue, qvals, pending, pvals, ok & ~jnp.any(clash)

    init = (y, p, atoms, trig, queue, queued_values, pending, pvals, jnp.array(True))
    y, p, atoms, trig, queue, _, pending, pvals, ok = jax.lax.fori_loop(0, 2 * n_e + 2, body, init)
    return y, p, atoms, trig, pending, pvals, ok & ~jnp.any(queue)


def _fire(events: EventSystem, t, y, p, fired, due, pending, pvals):
    """Queue (or schedule) newly fired events and due delayed executions at ``t``."""
    has_delay = jnp.asarray(events.has_delay)
    now = events.assignment_values(t, y, p)
    delay = events.delays(t, y, p)
    clash = fired & has_delay & jnp.isfinite(pending) & ~due
    queue = (fired & ~has_delay) | due
    qvals = jnp.where(due[:, None], pvals, now)
    pending = jnp.where(due, jnp.inf, pending)
    pending = jnp.where(fired & has_delay, t + delay, pending)
    pvals = jnp.where((fired & has_delay)[:, None], now, pvals)
    return queue, qvals, pending, pvals, ~jnp.any(clash)


def solve_with_events(
    vector_field,
    events: EventSystem,
    solver: SolverSettings,
    y0,
    p0,
    times,
    t_end,
    *,
    max_segments: int,
    t0=0.0,
    jacobian=(None, None),
) -> EventSolution:
    """Integrate ``dy/dt = vector_field(t, y, p)`` from ``t0`` to ``t_end`` with events.

    Args:
        vector_field: ``f(t, y, p) -> dy/dt``.
        events: the :class:`EventSystem`.
        solver: solver settings (solver, tolerances, step budget per segment, adjoint).
        y0: [n_states] initial state; p0: [n_p] initial event-changeable quantities.
        times: [n_times] output times, sorted, within ``[t0, t_end]`` (later ones are
            clipped to ``t_end``).
        t_end: end of the integration.
        max_segments: static number of segments (see the module docstring).
        jacobian: ``(pattern, values)``: the structural nonzeros of df/dy [n_states,
            n_states] and ``values(t, y, p)``, df/dy at them, or None for either (see
            :meth:`SolverSettings.make_solver`).

    Returns:
        :class:`EventSolution`; outputs of a failed solve are NaN from the failure on.
    """
    times = jnp.asarray(times)
    t_end = jnp.asarray(t_end, dtype=times.dtype)
    t0 = jnp.asarray(t0, dtype=times.dtype)
    n_e, n_t = events.n_events, times.shape[0]
    term = diffrax.ODETerm(_Field(vector_field))
    pattern, values_of_p = jacobian
    values = None if values_of_p is None else _OfFirstArg(values_of_p)
    crossing = diffrax.Event(
        _Crossing(events),
        root_finder=optx.Newton(rtol=1e-12, atol=1e-12 * jnp.maximum(jnp.abs(t_end), 1.0)),
        direction=True,
    )
    ctrl = controller(solver, t_end - t0)
    pending = jnp.full(n_e, jnp.inf)
    pvals = jnp.zeros((n_e, events.max_targets))

    # The start: triggers already true fire unless their initial value is true.
    atoms = events.root_truth(t0, y0, p0)
    trig = events.triggers(atoms, t0, y0, p0)
    fired = trig & ~jnp.asarray(events.initial_value)
    queue, qvals, pending, pvals, ok0 = _fire(
        events, t0, y0, p0, fired, jnp.zeros(n_e, bool), pending, pvals
    )
    y, p, atoms, trig, pending, pvals, ok1 = _instant(
        events, t0, y0, p0, atoms, trig, queue, qvals, pending, pvals
    )
    status = jnp.where(ok0 & ok1, OK, EVENT_LIMIT).astype(jnp.int32)
    ys = jnp.full((n_t, y0.shape[0]), jnp.nan, dtype=y0.dtype)
    ps = jnp.broadcast_to(p, (n_t, p.shape[0])).astype(p.dtype)

    def segment(carry, _):
        t, y, p, atoms, trig, pending, pvals, ys, ps, status, steps = carry
        active = (status == OK) & (t < t_end)
        t_stop = jnp.where(active, t_end, t)
        flips = jnp.where(atoms, -1.0, 1.0)
        sol = diffrax.diffeqsolve(
            term,
            solver.make_solver(pattern, values),
            t0=t,
            t1=t_stop,
            dt0=None,
            y0=y,
            args=(p, flips, pending),
            saveat=diffrax.SaveAt(
                subs=(diffrax.SubSaveAt(ts=jnp.clip(times, t, t_stop)), diffrax.SubSaveAt(t1=True))
            ),
            stepsize_controller=ctrl,
            event=crossing,
            max_steps=solver.max_steps,
            throw=False,
            adjoint=solver.make_adjoint(),
        )
        t_new, y_new = sol.ts[1][-1], sol.ys[1][-1]
        seg_status = status_of(sol.result, y_new, vector_field(t_new, y_new, p))
        status = jnp.where(active, seg_status, status)
        inside = active & (times >= t) & (times <= t_new)
        ys = jnp.where(inside[:, None], sol.ys[0], ys)
        ps = jnp.where(inside[:, None], p[None, :], ps)
        steps = steps + jnp.where(active, sol.stats["num_steps"], 0).astype(jnp.int32)

        # Which roots crossed, which delayed executions are due.
        hit = active & (status == OK) & (sol.result == diffrax.RESULTS.event_occurred)
        g, scale = events.roots(t_new, y_new, p)
        signed = jnp.concatenate([flips * g, t_new - pending])
        first = jnp.arange(signed.shape[0]) == jnp.argmax(signed)
        n_r = events.n_roots
        crossed = hit & (first[:n_r] | (flips * g >= -1e-9 * (scale + 1e-300)))
        due = hit & (first[n_r:] | (t_new - pending >= -1e-10 * (1.0 + jnp.abs(t_new))))
        atoms_new = jnp.where(crossed, ~atoms, atoms)
        trig_new = events.triggers(atoms_new, t_new, y_new, p)
        fired = trig_new & ~trig
        dropped = trig & ~trig_new & ~jnp.asarray(events.persistent)
        pending_kept = jnp.where(dropped, jnp.inf, pending)
        queue, qvals, pending_new, pvals_new, ok_fire = _fire(
            events, t_new, y_new, p, fired, due & ~dropped, pending_kept, pvals
        )
        y_ev, p_ev, atoms_ev, trig_ev, pending_ev, pvals_ev, ok_exec = _instant(
            events, t_new, y_new, p, atoms_new, trig_new, queue, qvals, pending_new, pvals_new
        )
        status = jnp.where(hit & ~(ok_fire & ok_exec), EVENT_LIMIT, status)
        at_event = hit & (times == t_new)  # right-continuous, also at the end time
        ys = jnp.where(at_event[:, None], y_ev[None, :], ys)
        ps = jnp.where(at_event[:, None], p_ev[None, :], ps)

        def pick(a, b):
            return jnp.where(hit, a, b)

        return (
            jnp.where(active, t_new, t),
            pick(y_ev, jnp.where(active, y_new, y)),
            pick(p_ev, p),
            pick(atoms_ev, atoms),
            pick(trig_ev, trig),
            pick(pending_ev, pending),
            pick(pvals_ev, pvals),
            ys,
            ps,
            status,
            steps,
        ), None

    carry = (t0, y, p, atoms, trig, pending, pvals, ys, ps, status, jnp.zeros((), jnp.int32))
    carry, _ = jax.lax.scan(segment, carry, None, length=max_segments)
    t, y, p, _, _, _, _, ys, ps, status, steps = carry
    status = jnp.where((status == OK) & (t < t_end), EVENT_LIMIT, status).astype(jnp.int32)
    ys = jnp.where(status == OK, ys, jnp.where(times[:, None] <= t, ys, jnp.nan))
    return EventSolution(
        ys=ys, ps=ps, status=status, t_reached=t, num_steps=steps, y_end=y, p_end=p
    )


__all__ = [
    "DT_FLOOR",
    "EVENT_LIMIT",
    "MAX_STEPS",
    "NONFINITE",
    "NO_STEADY_STATE",
    "OK",
    "SOLVER_ERROR",
    "STATUS_TEXT",
    "STEP_UNDERFLOW",
    "EventSolution",
    "EventSystem",
    "controller",
    "solve_with_events",
    "status_of",
]
