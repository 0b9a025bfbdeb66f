"""Work counts of the BDF solver, rejected steps included: right-hand-side
evaluations, Jacobians and factorisations counted on the host.

:class:`CountingSettings` is a :class:`il6rcc.models.SolverSettings` whose solver is
:class:`CountingBDF`, a BDF that calls back to the host whenever it evaluates the
right-hand side, a Jacobian or a factorisation (the solver state's own counters drop
the work of rejected steps, because diffrax discards the state of a rejected step).
Host callbacks slow a solve down and keep it out of the persistent compilation cache:
use these only to count, never to time.
"""

from __future__ import annotations

import dataclasses

import jax

from il6rcc.models import BDF, SolverSettings

COUNTS = {"rhs": 0, "jacobians": 0, "factorisations": 0}


def reset() -> None:
    for key in COUNTS:
        COUNTS[key] = 0


def _bump(key: str):
    def callback():
        COUNTS[key] += 1

    return callback


class CountingBDF(BDF):
    """BDF that counts its right-hand sides (a Jacobian evaluates one too, at its
    primal point: it is counted as a Jacobian, not as a right-hand side)."""

    @staticmethod
    def _rhs(terms, args, unravel):
        inner = BDF._rhs(terms, args, unravel)

        def rhs(t, y):
            jax.debug.callback(_bump("rhs"))
            return inner(t, y)

        return rhs

    def func(self, terms, t0, y0, args):
        jax.debug.callback(_bump("rhs"))
        return super().func(terms, t0, y0, args)

    def _jacobian(self, rhs, t, y, args=None):
        jax.debug.callback(_bump("jacobians"))
        return super()._jacobian(rhs, t, y, args)

    def _factorise(self, jac, c):
        jax.debug.callback(_bump("factorisations"))
        return super()._factorise(jac, c)


@dataclasses.dataclass(frozen=True)
class CountingSettings(SolverSettings):
    """SolverSettings whose ``bdf``/``ndf`` solver counts its work."""

    def make_solver(self, jacobian_pattern=None, jacobian_values=None):
        solver = super().make_solver(jacobian_pattern, jacobian_values)
        if isinstance(solver, BDF):
            return CountingBDF(
                rtol=solver.rtol,
                atol=solver.atol,
                method=solver.method,
                linear_solver=solver.linear_solver,
                max_order=solver.max_order,
                sparsity=solver.sparsity,
                jacobian_values=solver.jacobian_values,
            )
        return solver


def counts() -> dict[str, int]:
    """The counts since :func:`reset`; right-hand sides without the one each
    Jacobian evaluates at its primal point."""
    out = dict(COUNTS)
    out["rhs"] -= out["jacobians"]
    return out
