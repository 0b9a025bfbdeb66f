"""Chord iterations for the implicit stages of ESDIRK solvers with the inverse of the
iteration matrix.

:class:`optimistix.Chord` factorises the stage equations' Jacobian (LU) when a stage's
root find starts, and every iteration's LU solve rebuilds the row permutation from the
pivots in a loop over the rows: on the circuit that loop was about 40 % of the forward
run time (benchmarks/_prototypes.py). :class:`InverseChord` inverts the Jacobian once
per root find instead, so that an iteration is one residual evaluation and one
matrix-vector product.

The inverse only preconditions the iteration: the residual is evaluated exactly and the
convergence test is :class:`optimistix.Chord`'s, so the converged stage values are the
same to the root finder's tolerance (and the step sequence with them). The gradient of a
stage's root comes from the implicit function theorem at the root (optimistix's
``ImplicitAdjoint``), independent of how the root was found.

Not done: reusing the linearisation diffrax computes once per step and passes to every
stage as ``options["init_state"]`` (optimistix's Chord ignores it too). It was faster
still, but its reverse pass gave NaN gradients on Robertson's problem (with diffrax's
automatic first step), whether the reused state held an inverse or an LU factorisation;
:class:`InverseChord` ignores that option (tests/test_models_chord.py).
"""

from __future__ import annotations

from typing import Any, final

import equinox as eqx
import jax
import jax.numpy as jnp
import optimistix as optx
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, PyTree


class _InverseChordState(eqx.Module):
    """What :meth:`optimistix.Chord.terminate` reads, plus the inverse iteration matrix
    (on the flattened unknowns)."""

    f: PyTree[Array]
    inverse: Array
    diff: PyTree[Array]
    diffsize: Array
    diffsize_prev: Array
    result: optx.RESULTS
    step: Array


@final
class InverseChord(optx.Chord):
    """:class:`optimistix.Chord` iterating with the explicit inverse of the Jacobian at
    the root find's starting point (see the module).

    Same fields (``rtol``, ``atol``, ``norm``, ``kappa``, ``cauchy_termination``) and
    termination test as :class:`optimistix.Chord`; ``linear_solver`` is not used. The
    ``init_state`` option is ignored (see the module); ``lower``/``upper`` are not
    supported (diffrax passes neither).
    """

    def init(
        self,
        fn,
        y,
        args,
        options: dict[str, Any],
        f_struct,
        aux_struct,
        tags,
    ) -> _InverseChordState:
        del options, aux_struct, tags
        flat, unravel = ravel_pytree(y)

        def flat_fn(z):
            out, _ = fn(unravel(z), args)
            return ravel_pytree(out)[0]

        jac = jax.jacfwd(flat_fn)(flat)
        dtype = flat.dtype
        return _InverseChordState(
            f=jax.tree.map(lambda s: jnp.full(s.shape, jnp.inf, s.dtype), f_struct),
            inverse=jax.lax.stop_gradient(jnp.linalg.inv(jac)),
            diff=jax.tree.map(lambda a: jnp.full_like(a, jnp.inf), y),
            diffsize=jnp.array(jnp.inf, dtype=dtype),
            diffsize_prev=jnp.array(1.0, dtype=dtype),
            result=optx.RESULTS.successful,
            step=jnp.array(0),
        )

    def step(self, fn, y, args, options, state: _InverseChordState, tags):
        if options.get("lower") is not None or options.get("upper") is not None:
            raise ValueError("InverseChord does not support the 'lower'/'upper' options")
        fx, aux = fn(y, args)
        flat_f, _ = ravel_pytree(fx)
        flat_y, unravel = ravel_pytree(y)
        flat_diff = jax.lax.stop_gradient(state.inverse) @ flat_f
        new_flat = flat_y - flat_diff
        scale = self.atol + self.rtol * jnp.abs(new_flat)
        size = self.norm(flat_diff / scale)
        new_state = _InverseChordState(
            f=fx,
            inverse=state.inverse,
            diff=unravel(flat_diff),
            diffsize=jnp.asarray(size, dtype=state.diffsize.dtype),
            diffsize_prev=state.diffsize,
            result=state.result,
            step=state.step + 1,
        )
        return unravel(new_flat), new_state, aux


__all__ = ["InverseChord"]
