"""Dosing schedules: boluses and timed exposures of a condition, simulated as events.

A :class:`Condition` may carry a :class:`DosingSchedule`, a tuple of

* :class:`Bolus`: an amount added to a state at a time (an injection, a medium spike),
  optionally repeated ``count`` times every ``every`` hours;
* :class:`Exposure`: an input held at a level from ``start`` until its wash-out
  ``duration`` hours later (or to the end), optionally repeated: drug added to the
  medium and washed out, or an in-vivo exposure window of a xenograft schedule.

Times are hours after treatment starts (the time axis of :func:`simulate`). Each dose
becomes a time-triggered event of the shared event machinery
(:func:`il6rcc.models.solve_with_events`): the simulator stops at the dose time
(located on the dense output, so outputs are differentiable in dose times as well
as amounts and parameters), applies it and continues. A measurement at a dose time
sees the state after the dose (right-continuous). At one instant, wash-outs act
before boluses and boluses before new exposures, so a wash-out and the next
exposure may touch. Doses after the last simulated time have no effect.

How a batch's schedules become events: :mod:`il6rcc.models._schedule_events`.
Conditions without a schedule are integrated as before, without events.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ModelSpecError


def _problems_of_repeat(every, count) -> list[str]:
    out = []
    if not (isinstance(count, int) and not isinstance(count, bool) and count >= 1):
        out.append(f"count must be an integer >= 1, got {count!r}")
    elif count > 1 and every is None:
        out.append(f"count is {count} but every is not set; expected an interval in hours > 0")
    if every is not None and not (_is_number(every) and math.isfinite(every) and every > 0):
        out.append(f"every must be a finite number of hours > 0, got {every!r}")
    return out


def _is_number(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _nonnegative(name: str, value, unit: str) -> list[str]:
    if _is_number(value) and math.isfinite(value) and value >= 0:
        return []
    return [f"{name} must be a finite number >= 0 ({unit}), got {value!r}"]


@dataclass(frozen=True)
class Bolus:
    """An amount added to a state at ``time`` (hours after treatment starts).

    Attributes:
        state: name of the state that receives the dose.
        amount: added amount, in the state's unit (>= 0).
        time: time of the first dose (h, >= 0).
        every: interval between repeated doses (h); None for a single dose.
        count: number of doses (>= 1).
    """

    state: str
    amount: float
    time: float = 0.0
    every: float | None = None
    count: int = 1

    def __post_init__(self) -> None:
        problems = _nonnegative("amount", self.amount, "the state's unit")
        problems += _nonnegative("time", self.time, "hours after treatment starts")
        problems += _problems_of_repeat(self.every, self.count)
        if problems:
            raise ModelSpecError(f"Bolus into {self.state!r}: " + "; ".join(problems))

    @property
    def times(self) -> tuple[float, ...]:
        """The dose times (h)."""
        return tuple(self.time + i * (self.every or 0.0) for i in range(self.count))


@dataclass(frozen=True)
class Exposure:
    """An input held at ``level`` from ``start`` and washed out (set to 0)
    ``duration`` hours later.

    Attributes:
        input: name of the condition input (a treatment, not a pre-treatment).
        level: the input's value during the exposure, in its unit (>= 0).
        start: start of the first exposure (h after treatment starts, >= 0).
        duration: hours until wash-out; None: never washed out.
        every: interval between the starts of repeated exposures (h); None: once.
        count: number of exposures (>= 1). Repeated exposures must not overlap
            (``duration <= every``).
    """

    input: str
    level: float
    start: float = 0.0
    duration: float | None = None
    every: float | None = None
    count: int = 1

    def __post_init__(self) -> None:
        problems = _nonnegative("level", self.level, "the input's unit")
        problems += _nonnegative("start", self.start, "hours after treatment starts")
        if self.duration is not None and not (
            _is_number(self.duration) and math.isfinite(self.duration) and self.duration > 0
        ):
            problems.append(
                f"duration must be a finite number of hours > 0 (or None: no wash-out), "
                f"got {self.duration!r}"
            )
        problems += _problems_of_repeat(self.every, self.count)
        if not problems and self.count > 1:
            if self.duration is None:
                problems.append(
                    f"count is {self.count} but duration is None: an exposure that is never "
                    f"washed out cannot be repeated; set duration <= every ({self.every!r} h)"
                )
            elif self.duration > self.every:
                problems.append(
                    f"duration {self.duration!r} h is longer than every {self.every!r} h: the "
                    f"next exposure starts before the wash-out; expected duration <= every"
                )
        if problems:
            raise ModelSpecError(f"Exposure to {self.input!r}: " + "; ".join(problems))

    @property
    def windows(self) -> tuple[tuple[float, float], ...]:
        """(start, wash-out) of each exposure; wash-out ``inf`` when there is none."""
        every = self.every or 0.0
        length = math.inf if self.duration is None else self.duration
        return tuple(
            (self.start + i * every, self.start + i * every + length) for i in range(self.count)
        )


@dataclass(frozen=True)
class DosingSchedule:
    """The timed doses of one condition (see the module docstring)."""

    doses: tuple[Bolus | Exposure, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "doses", tuple(self.doses))
        bad = [d for d in self.doses if not isinstance(d, Bolus | Exposure)]
        if bad:
            raise ModelSpecError(
                f"a DosingSchedule holds Bolus and Exposure entries, got {bad[0]!r}"
            )


__all__ = ["Bolus", "DosingSchedule", "Exposure"]
