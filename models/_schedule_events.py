"""The dosing schedules of a batch of conditions as one :class:`EventSystem`.

The doses of every scheduled condition are laid out in *slots*, one per (target,
operation) and repetition; conditions with fewer doses get slots that never fire.
Slot values and times are entries of the event-changeable vector, so outputs are
differentiable in them (see :mod:`il6rcc.models._dosing` for the user's side).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from ..errors import ModelSpecError, choices
from ._dosing import Bolus, DosingSchedule
from ._events import EventSystem
from ._model import Condition, ODEModel

#: Dose time of an unused slot (hours): beyond any simulated horizon, so it never fires.
UNUSED_DOSE_TIME = 1e30


#: Operations of a slot, in the order they act at one instant (their priorities
#: descend): wash-out, bolus, exposure start.
OPS = ("off", "add", "on")


@dataclass(frozen=True)
class ScheduleEvents(EventSystem):
    """Time-triggered dose events over a model's state and its vector
    ``p = [params, inputs, slot values, slot times]`` (hashable, a static argument).

    Attributes:
        n_params, n_inputs: the model's sizes.
        slots: per event, ``(target kind "state" | "input", index, op)`` with op in
            :data:`OPS`: ``add`` adds the slot value to a state, ``on`` sets an input to
            it, ``off`` sets an input to 0 (the slot value, which is 0).
    """

    n_params: int
    n_inputs: int
    slots: tuple[tuple[str, int, str], ...]

    @property
    def n_slots(self) -> int:
        return len(self.slots)

    @property
    def values_at(self) -> int:
        """Offset of the slot values in ``p``."""
        return self.n_params + self.n_inputs

    @property
    def times_at(self) -> int:
        """Offset of the slot times in ``p``."""
        return self.values_at + self.n_slots

    @property
    def n_roots(self) -> int:
        return self.n_slots

    @property
    def n_events(self) -> int:
        return self.n_slots

    @property
    def initial_value(self) -> tuple[bool, ...]:
        return (False,) * self.n_slots  # a dose at time 0 acts at the start

    @property
    def persistent(self) -> tuple[bool, ...]:
        return (True,) * self.n_slots

    @property
    def use_trigger_time_values(self) -> tuple[bool, ...]:
        # Valued at execution: two boluses into one state at one instant both add.
        return (False,) * self.n_slots

    @property
    def has_delay(self) -> tuple[bool, ...]:
        return (False,) * self.n_slots

    @property
    def targets(self) -> tuple[tuple[tuple[str, int], ...], ...]:
        return tuple(
            (("state", i),) if kind == "state" else (("param", self.n_params + i),)
            for kind, i, _ in self.slots
        )

    @property
    def once(self) -> tuple[bool, ...]:
        return (True,) * self.n_slots  # t - t_k with t_k never assigned

    def _times(self, p):
        return p[self.times_at : self.times_at + self.n_slots]

    def roots(self, t, y, p):
        tk = self._times(p)
        return t - tk, jnp.abs(t) + jnp.abs(tk)

    def root_truth(self, t, y, p):
        return t >= self._times(p)

    def triggers(self, atoms, t, y, p):
        return atoms

    def assignment_values(self, t, y, p):
        values = p[self.values_at : self.values_at + self.n_slots]
        add = np.array([op == "add" for _, _, op in self.slots])
        state = np.array([i if kind == "state" else 0 for kind, i, _ in self.slots], dtype=int)
        current = y[state].astype(values.dtype) if self.n_slots else values
        return jnp.where(add, current + values, values)[:, None]

    def priorities(self, t, y, p):
        return jnp.asarray([float(len(OPS) - OPS.index(op)) for _, _, op in self.slots])


@dataclass(frozen=True)
class ScheduleLayout:
    """Static facts of a batch's schedules: the events, and which conditions
    (indices into the batch) have a schedule, in the order of the slot arrays' rows."""

    events: ScheduleEvents
    conditions: tuple[int, ...]


def _actions(model: ODEModel, schedule: DosingSchedule, where: str, problems: list[str]):
    """``(kind, index, op) -> [(time, value), ...]`` of one condition's schedule."""
    out: dict[tuple[str, int, str], list[tuple[float, float]]] = {}
    exposures: dict[str, list[tuple[float, float]]] = {}
    treatments = {u.name: (i, u) for i, u in enumerate(model.inputs)}
    for dose in schedule.doses:
        if isinstance(dose, Bolus):
            if dose.state not in model.states:
                problems.append(
                    f"{where}: Bolus into unknown state {dose.state!r}; valid: "
                    f"{choices(model.states)}"
                )
                continue
            key = ("state", model.states.index(dose.state), "add")
            out.setdefault(key, []).extend((t, float(dose.amount)) for t in dose.times)
            continue
        if dose.input not in treatments:
            problems.append(
                f"{where}: Exposure to unknown input {dose.input!r}; valid: {choices(treatments)}"
            )
            continue
        i, spec = treatments[dose.input]
        if spec.phase or spec.pretreatment:
            kind = "the treatment-phase input" if spec.phase else "a pre-treatment input"
            problems.append(
                f"{where}: Exposure to {dose.input!r}, {kind}, which is set before "
                f"treatment starts and cannot be scheduled; expected a treatment input"
            )
            continue
        exposures.setdefault(dose.input, []).extend(dose.windows)
        for start, stop in dose.windows:
            out.setdefault(("input", i, "on"), []).append((start, float(dose.level)))
            if math.isfinite(stop):
                out.setdefault(("input", i, "off"), []).append((stop, 0.0))
    for name, windows in exposures.items():
        windows.sort()
        for (s0, e0), (s1, _) in zip(windows, windows[1:], strict=False):
            if s1 < e0:
                problems.append(
                    f"{where}: exposures to {name!r} overlap: one from {s0!r} h to its "
                    f"wash-out at {e0!r} h, the next from {s1!r} h; expected each to start "
                    f"at or after the previous wash-out"
                )
    return out


def _condition_actions(model: ODEModel, cond: Condition, where: str, problems: list[str]):
    """The actions of ``cond``'s schedule (see :func:`_actions`), its problems
    appended to ``problems`` (None when the schedule is not a DosingSchedule)."""
    if not isinstance(cond.schedule, DosingSchedule):
        problems.append(
            f"{where}: schedule must be a DosingSchedule, got {type(cond.schedule).__name__}"
        )
        return None
    actions = _actions(model, cond.schedule, where, problems)
    constant = {model.inputs[i].name for kind, i, _ in actions if kind == "input"} & set(
        cond.perturbations
    )
    for name in sorted(constant):
        problems.append(
            f"{where}: input {name!r} is both a constant perturbation "
            f"({cond.perturbations[name]!r}) and scheduled; expected one of the two"
        )
    return actions


def schedule_problems(model: ODEModel, condition: Condition, where: str | None = None) -> list[str]:
    """What is wrong with ``condition``'s schedule for ``model`` (unknown states or
    inputs, pre-treatment inputs, overlapping exposures, an input both constant and
    scheduled), one message per problem, each starting with ``where`` (default: the
    condition's id); empty when it has no schedule or a valid one. The checks of
    :func:`schedule_slots`, for callers that report with their own context (a
    config file's key)."""
    problems: list[str] = []
    if condition.schedule is not None:
        _condition_actions(model, condition, where or f"condition {condition.id!r}", problems)
    return problems


def schedule_slots(
    model: ODEModel, conditions: Sequence[Condition]
) -> tuple[ScheduleLayout, np.ndarray, np.ndarray] | None:
    """The slot layout of the conditions' schedules and their values and times
    ``[n_scheduled, n_slots]``; None when no condition has a schedule. Every problem
    is reported in one :class:`ModelSpecError`."""
    problems: list[str] = []
    per_condition: list[tuple[int, dict]] = []
    for c, cond in enumerate(conditions):
        if cond.schedule is not None:
            actions = _condition_actions(model, cond, f"condition {cond.id!r}", problems)
            if actions is not None:
                per_condition.append((c, actions))
    if problems:
        raise ModelSpecError("invalid dosing schedules:\n  " + "\n  ".join(problems))
    if not per_condition:
        return None
    widths: dict[tuple[str, int, str], int] = {}
    for _, actions in per_condition:
        for key, items in actions.items():
            widths[key] = max(widths.get(key, 0), len(items))
    keys = sorted(widths, key=lambda k: (OPS.index(k[2]), k[0], k[1]))
    slots = tuple(key for key in keys for _ in range(widths[key]))
    values = np.zeros((len(per_condition), len(slots)))
    times = np.full((len(per_condition), len(slots)), UNUSED_DOSE_TIME)
    for row, (_, actions) in enumerate(per_condition):
        at = 0
        for key in keys:
            items = sorted(actions.get(key, []))
            for j, (t, v) in enumerate(items):
                times[row, at + j], values[row, at + j] = t, v
            at += widths[key]
    events = ScheduleEvents(n_params=model.n_params, n_inputs=model.n_inputs, slots=slots)
    layout = ScheduleLayout(events=events, conditions=tuple(c for c, _ in per_condition))
    return layout, values, times


__all__ = [
    "OPS",
    "UNUSED_DOSE_TIME",
    "ScheduleEvents",
    "ScheduleLayout",
    "schedule_problems",
    "schedule_slots",
]
