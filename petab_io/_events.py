"""SBML events as an :class:`~il6rcc.models.EventSystem`.

Each trigger is split into its *atoms*, the relations (``a > b``, ``time >= t_ins``)
reachable through its boolean operators; each atom is a root ``g = a - b`` (``b - a``
for ``<`` and ``<=``) that the solver locates. The trigger is then evaluated with the
atoms' truth values, so ``and``/``or``/``not``/``piecewise`` of relations work, and
an atom exactly at its threshold is never misread. Relations inside arithmetic (a
``piecewise`` value in an assignment, say) are evaluated as they are. Equality
relations (``==``, ``!=``) in a trigger have no sign change to locate and are refused.

Event targets are states or entries of the model's parameter vector
(:class:`~il6rcc.petab_io.SbmlModel`), so the event-changeable vector ``p`` of the
solver is the model's parameter row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import jax.numpy as jnp

from ..errors import PetabError
from ..models import EventSystem
from ._math import Expr, JaxBackend, evaluate, free_symbols, uses_time
from ._model import SbmlModel


def _atoms(expr: Expr, out: list[Expr], where: str) -> Expr:
    """``expr`` with each relation reachable through boolean operators replaced by a
    symbol ``__atom_<k>``; the relations are appended to ``out``."""
    tag = expr[0]
    if tag == "rel":
        op = expr[1]
        if op in ("eq", "ne"):
            raise PetabError(
                f"{where}: a trigger with an (in)equality ('==' / '!=') cannot be located in "
                f"time; rewrite it with '<', '<=', '>' or '>='"
            )
        out.append(expr)
        return ("sym", f"__atom_{len(out) - 1}")
    if tag in ("and", "or", "xor", "not"):
        return (tag, *(_atoms(e, out, where) for e in expr[1:]))
    if tag == "piecewise":
        pieces = list(expr[1:])
        return ("piecewise", *(_atoms(e, out, where) for e in pieces))
    return expr


@dataclass(frozen=True)
class SbmlEvents(EventSystem):
    """The events of an :class:`SbmlModel` (compares and hashes with the model)."""

    model: SbmlModel
    relations: tuple[Expr, ...] = field(init=False, compare=False, repr=False)
    trigger_exprs: tuple[Expr, ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        relations: list[Expr] = []
        triggers = []
        for event in self.model.spec.events:
            where = f"{self.model.spec.model_id}: trigger of event {event.id!r}"
            triggers.append(_atoms(event.trigger, relations, where))
        object.__setattr__(self, "relations", tuple(relations))
        object.__setattr__(self, "trigger_exprs", tuple(triggers))

    # ------------------------------------------------------------------ declarations
    @property
    def _events(self):
        return self.model.spec.events

    @property
    def n_roots(self) -> int:
        return len(self.relations)

    @property
    def n_events(self) -> int:
        return len(self._events)

    @property
    def initial_value(self) -> tuple[bool, ...]:
        return tuple(e.initial_value for e in self._events)

    @property
    def persistent(self) -> tuple[bool, ...]:
        return tuple(e.persistent for e in self._events)

    @property
    def use_trigger_time_values(self) -> tuple[bool, ...]:
        return tuple(e.use_values_from_trigger_time for e in self._events)

    @property
    def has_delay(self) -> tuple[bool, ...]:
        return tuple(e.delay is not None for e in self._events)

    @cached_property
    def targets(self) -> tuple[tuple[tuple[str, int], ...], ...]:
        spec = self.model.spec
        states = {s: i for i, s in enumerate(spec.state_ids)}
        params = {p: i for i, p in enumerate(spec.parameter_ids)}
        return tuple(
            tuple(
                ("state", states[v]) if v in states else ("param", params[v])
                for v, _ in event.assignments
            )
            for event in self._events
        )

    @cached_property
    def once(self) -> tuple[bool, ...]:
        """A relation ``time <op> c`` (either side) where ``c`` depends only on
        parameters that no event changes crosses at most once."""
        spec = self.model.spec
        assigned = {v for e in self._events for v, _ in e.assignments}
        constant = set(spec.parameter_ids) - assigned
        constant |= {
            d
            for d, expr in spec.definitions
            if free_symbols(expr) <= constant and d not in spec.state_ids
        }
        out = []
        for _, _, a, b in self.relations:
            other = b if a == ("time",) else a if b == ("time",) else None
            out.append(
                other is not None
                and other != ("time",)
                and free_symbols(other) <= constant
                and not uses_time(other)
            )
        return tuple(out)

    # ------------------------------------------------------------------ evaluation
    def _env(self, t, y, p):
        return self.model.expression_env(t, y, p)

    def _sides(self, t, y, p):
        env = self._env(t, y, p)
        out = []
        for _, op, a, b in self.relations:
            va = jnp.asarray(evaluate(a, env, t, JaxBackend), dtype=y.dtype)
            vb = jnp.asarray(evaluate(b, env, t, JaxBackend), dtype=y.dtype)
            out.append((op, va, vb))
        return out

    def roots(self, t, y, p):
        g, scale = [], []
        for op, va, vb in self._sides(t, y, p):
            g.append(va - vb if op in ("gt", "ge") else vb - va)
            scale.append(jnp.abs(va) + jnp.abs(vb))
        if not g:
            return jnp.zeros(0, dtype=y.dtype), jnp.zeros(0, dtype=y.dtype)
        return jnp.stack(g), jnp.stack(scale)

    def root_truth(self, t, y, p):
        out = [JaxBackend.rel(op, va, vb) for op, va, vb in self._sides(t, y, p)]
        if not out:
            return jnp.zeros(0, dtype=bool)
        return jnp.stack(out)

    def triggers(self, atoms, t, y, p):
        env = self._env(t, y, p)
        for k in range(self.n_roots):
            env.set(f"__atom_{k}", atoms[k])
        values = [
            jnp.asarray(evaluate(expr, env, t, JaxBackend), dtype=bool)
            for expr in self.trigger_exprs
        ]
        return jnp.stack(values) if values else jnp.zeros(0, dtype=bool)

    def assignment_values(self, t, y, p):
        env = self._env(t, y, p)
        width = self.max_targets
        rows = []
        for event in self._events:
            values = [
                jnp.asarray(evaluate(expr, env, t, JaxBackend), dtype=y.dtype)
                for _, expr in event.assignments
            ]
            values += [jnp.zeros((), dtype=y.dtype)] * (width - len(values))
            rows.append(jnp.stack(values))
        return jnp.stack(rows)

    def delays(self, t, y, p):
        env = self._env(t, y, p)
        return jnp.stack(
            [
                jnp.asarray(0.0 if e.delay is None else evaluate(e.delay, env, t, JaxBackend))
                for e in self._events
            ]
        ).astype(y.dtype)

    def priorities(self, t, y, p):
        env = self._env(t, y, p)
        return jnp.stack(
            [
                jnp.asarray(
                    jnp.nan if e.priority is None else evaluate(e.priority, env, t, JaxBackend)
                )
                for e in self._events
            ]
        ).astype(y.dtype)


__all__ = ["SbmlEvents"]
