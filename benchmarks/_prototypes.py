"""Prototypes of changes to ``models/_solvers.py``, measured by the benchmarks.

They are subclasses of :class:`il6rcc.models.SolverSettings` (frozen dataclasses, so
``simulate_arrays`` compiles once per setting), used exactly where a
``SolverSettings`` is: nothing in ``models/`` is changed.

Why :class:`InverseChord`: a profile of the default (Kvaerno5 + ``optx.Chord``) on the
24 circuit conditions showed that about 40% of the forward run time is one
19-iteration ``while`` loop per implicit stage: ``jax.scipy.linalg.lu_solve``, which
lineax's LU solver calls in every chord iteration, turns the LU pivots into a
permutation with a loop over the rows (vmapped over the conditions). And
``optx.Chord.init`` linearises and factorises again at every stage although diffrax
passes it the Jacobian it computed once per step (``options["init_state"]``).

Measured 2026-12-01 (benchmarks/RESULTS.md, "Default job's log density"): with the
reuse of ``options["init_state"]`` (both :class:`InverseChord` and
:class:`StepJacobianChord` here) the default job's value and gradient took 0.64x the
time, but the gradient of Robertson's problem through Kvaerno5 with diffrax's automatic
first step is NaN (the problem of tests/test_models_checkpoints.py); the inverse
without the reuse gained nothing (1.03x on the circuit set). Not adopted.
"""

from __future__ import annotations

import dataclasses

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import optimistix as optx
from jaxtyping import Array

from il6rcc.models import SolverSettings
from il6rcc.models._solvers import IMPLICIT_SOLVERS, SOLVERS


class _InverseChordState(eqx.Module):
    """The fields ``optx.Chord.terminate`` reads, plus the inverse iteration matrix."""

    f: Array
    inverse: Array
    diff: Array
    diffsize: Array
    diffsize_prev: Array
    result: optx.RESULTS
    step: Array


class InverseChord(optx.Chord):
    """Chord iterations with one explicit inverse per step.

    ``init`` (which diffrax calls once per step and passes to every stage) forms the
    Jacobian of the stage equations with ``jax.jacfwd`` and inverts it; each iteration
    is then one matrix-vector product instead of an LU solve. The inverse only
    preconditions the iteration (the residual is exact), so it changes the number of
    iterations at most, not the converged stage values; the convergence test is
    ``optx.Chord``'s. For states that are one flat array (as il6rcc's models).
    """

    def init(self, fn, y, args, options, f_struct, aux_struct, tags):
        if "init_state" in options:
            return options["init_state"]
        jac = jax.jacfwd(lambda z: fn(z, args)[0])(y)
        inf = jnp.full_like(y, jnp.inf)
        return _InverseChordState(
            f=inf,
            inverse=jax.lax.stop_gradient(jnp.linalg.inv(jac)),
            diff=inf,
            diffsize=jnp.array(jnp.inf, dtype=y.dtype),
            diffsize_prev=jnp.array(1.0, dtype=y.dtype),
            result=optx.RESULTS.successful,
            step=jnp.array(0),
        )

    def step(self, fn, y, args, options, state, tags):
        fx, aux = fn(y, args)
        diff = jax.lax.stop_gradient(state.inverse) @ fx
        new_y = y - diff
        size = self.norm(diff / (self.atol + self.rtol * jnp.abs(new_y)))
        new_state = _InverseChordState(
            f=fx,
            inverse=state.inverse,
            diff=diff,
            diffsize=jnp.asarray(size, dtype=state.diffsize.dtype),
            diffsize_prev=state.diffsize,
            result=state.result,
            step=state.step + 1,
        )
        return new_y, new_state, aux


class StepJacobianChord(optx.Chord):
    """``optx.Chord`` that uses the Jacobian diffrax computes once per step
    (``options["init_state"]``) instead of linearising and factorising at every
    stage; still an LU solve per iteration."""

    def init(self, fn, y, args, options, f_struct, aux_struct, tags):
        if "init_state" in options:
            return options["init_state"]
        return super().init(fn, y, args, options, f_struct, aux_struct, tags)


def _implicit(settings: SolverSettings, root_finder_cls):
    if settings.solver not in IMPLICIT_SOLVERS or settings.root_finder != "chord":
        return SolverSettings.make_solver(settings)
    root = root_finder_cls(rtol=settings.rtol * 1e-2, atol=settings.atol * 1e-2)
    return SOLVERS[settings.solver](root_finder=root)


@dataclasses.dataclass(frozen=True)
class InverseChordSettings(SolverSettings):
    """SolverSettings whose implicit solvers use :class:`InverseChord` (same
    tolerances as the default chord root finder)."""

    def make_solver(self):
        return _implicit(self, InverseChord)


@dataclasses.dataclass(frozen=True)
class StepJacobianSettings(SolverSettings):
    """SolverSettings whose implicit solvers use :class:`StepJacobianChord`."""

    def make_solver(self):
        return _implicit(self, StepJacobianChord)


@dataclasses.dataclass(frozen=True)
class MoreCheckpointsSettings(SolverSettings):
    """SolverSettings with ``RecursiveCheckpointAdjoint(checkpoints=512)``: no
    recomputation in the backward pass for solves of up to 512 steps (diffrax's
    default is about sqrt(2 max_steps) = 90 checkpoints for max_steps 4096)."""

    checkpoints: int = 512

    def make_adjoint(self):
        return diffrax.RecursiveCheckpointAdjoint(checkpoints=self.checkpoints)
