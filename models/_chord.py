"""The chord root finder of the implicit Runge-Kutta stages, with one Jacobian per step.

diffrax's Kvaerno solvers compute the Jacobian of the stage equations once per step
(at the second stage) and pass it to the root finder of every stage as
``options["init_state"]``. :class:`optimistix.Chord` ignores it and linearises and
factorises again at each of the six implicit stages. :class:`StepChord` iterates every
stage with the step's Jacobian (all of an ESDIRK's stage matrices are ``I - h gamma J``
with one ``gamma``), as ESDIRK codes such as SUNDIALS' ARKODE do (it keeps one
Jacobian across stages and steps).

A failed stage solve returns its starting point. The value of a failed solve is never
used (diffrax rejects the step: its error estimate is set to infinity), but it is stored
in diffrax's stage buffer, and the reverse pass differentiates through rejected steps
too: it recomputes each stage against the *filled* buffer, where the forward pass read
zeros (the stage predictors and partial sums are products of zero coefficients with the
buffer's later stages), and takes the vector field's derivatives at those stages. A
chord iteration that diverged (on Robertson's problem with diffrax's automatic first
step the stale Jacobian drives a stage to 1e93, the next to 1e186 and an overflow) then
puts 0 * inf = NaN into every gradient although the forward solution is right. A
diverged iterate has no meaning; its starting point (a combination of the step's
converged stages) keeps every stored value of the step moderate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import optimistix as optx
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, PyTree


class StepChordState(eqx.Module):
    """The fields :meth:`optimistix.Chord.terminate` reads, the linear state of the
    step's Jacobian (lineax's LU factors, or the explicit inverse) and the starting
    point of the current root find."""

    f: PyTree
    linear_state: Any
    diff: PyTree
    diffsize: Array
    diffsize_prev: Array
    result: optx.RESULTS
    step: Array
    start: PyTree


def _with_start(state: Any, linear_state: Any, start: PyTree) -> StepChordState:
    return StepChordState(
        f=state.f,
        linear_state=linear_state,
        diff=state.diff,
        diffsize=state.diffsize,
        diffsize_prev=state.diffsize_prev,
        result=state.result,
        step=state.step,
        start=start,
    )


class StepChord(optx.AbstractRootFinder):
    """Chord iterations with the Jacobian diffrax forms once per step.

    The convergence test and the tolerances are :class:`optimistix.Chord`'s (to which
    the iterations are delegated); only where the Jacobian comes from and the value of
    a failed solve (its starting point, see the module docstring) differ. With
    ``inverse`` the step's Jacobian is inverted once and each iteration is a
    matrix-vector product instead of an LU solve (lineax's LU solve turns the pivots
    into a permutation with a loop over the rows in every iteration); the inverse only
    preconditions the iteration, the residual is exact.
    """

    rtol: float
    atol: float
    norm: Callable[[PyTree], Array] = optx.max_norm
    inverse: bool = False

    @property
    def _chord(self) -> optx.Chord:
        return optx.Chord(rtol=self.rtol, atol=self.atol, norm=self.norm)

    def init(self, fn, y, args, options, f_struct, aux_struct, tags):
        if "init_state" in options:  # the step's Jacobian, formed by diffrax
            given = options["init_state"]
            return _with_start(given, given.linear_state, y)
        state = self._chord.init(fn, y, args, {}, f_struct, aux_struct, tags)
        if not self.inverse:
            return _with_start(state, state.linear_state, y)
        flat, unravel = ravel_pytree(y)
        jac = jax.jacfwd(lambda z: ravel_pytree(fn(unravel(z), args)[0])[0])(flat)
        return _with_start(state, jax.lax.stop_gradient(jnp.linalg.inv(jac)), y)

    def step(self, fn, y, args, options, state, tags):
        if not self.inverse:
            new_y, new, aux = self._chord.step(fn, y, args, options, state, tags)
            return new_y, _with_start(new, state.linear_state, state.start), aux
        fx, aux = fn(y, args)
        flat_f, _ = ravel_pytree(fx)
        flat_y, unravel = ravel_pytree(y)
        flat_diff = jax.lax.stop_gradient(state.linear_state) @ flat_f
        new_flat = flat_y - flat_diff
        size = self.norm(unravel(flat_diff / (self.atol + self.rtol * jnp.abs(new_flat))))
        new = StepChordState(
            f=fx,
            linear_state=state.linear_state,
            diff=unravel(flat_diff),
            diffsize=jnp.asarray(size, dtype=state.diffsize.dtype),
            diffsize_prev=state.diffsize,
            result=state.result,
            step=state.step + 1,
            start=state.start,
        )
        return unravel(new_flat), new, aux

    def terminate(self, fn, y, args, options, state, tags):
        return self._chord.terminate(fn, y, args, options, state, tags)

    def postprocess(self, fn, y, aux, args, options, state, tags, result):
        ok = result == optx.RESULTS.successful
        y = jtu.tree_map(lambda a, b: jnp.where(ok, a, b), y, state.start)
        return y, aux, {}


__all__ = ["StepChord", "StepChordState"]
