"""MAP multi-start and the Laplace approximation at the best optimum.

All starts run in one vmapped BFGS (optimistix) on numpyro's potential energy (the
negative log posterior on the unconstrained scale). Starts: the prior median and
draws from a narrowed prior. A start whose solves fail gets an infinite potential and
is reported, never an exception. The Hessian at the best optimum, with its small and
negative eigenvalues floored, gives the dense mass matrix for NUTS.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
from jax.flatten_util import ravel_pytree
from numpyro.infer.util import initialize_model

from ..errors import Il6rccError


@dataclass(frozen=True)
class MapResult:
    """Result of :func:`map_multistart`.

    ``x``: best point, flat unconstrained vector; ``params``: the same as numpyro's
    unconstrained site dict; ``potential``: its negative log posterior; ``potentials``
    and ``steps``: per start (inf for failed starts); ``hessian``: at ``x``;
    ``inverse_mass_matrix``: the floored inverse Hessian; ``condition_number`` of the
    Hessian; ``n_floored`` eigenvalues raised to the floor (sloppy directions).
    """

    x: np.ndarray
    params: dict
    potential: float
    potentials: np.ndarray
    steps: np.ndarray
    hessian: np.ndarray
    inverse_mass_matrix: np.ndarray
    condition_number: float
    n_floored: int
    seconds: float


def potential_and_unravel(key, model_fn):
    """numpyro's potential energy as a function of a flat vector, and the unravel map."""
    info = initialize_model(key, model_fn, validate_grad=False)
    init = info.param_info.z
    flat0, unravel = ravel_pytree(init)

    def potential(x):
        return info.potential_fn(unravel(x))

    return potential, unravel, flat0, info.postprocess_fn


def laplace_inverse_mass(hessian: np.ndarray, floor: float = 1e-2):
    """Inverse of a Hessian with eigenvalues floored; returns (inverse, cond, n_floored)."""
    h = 0.5 * (hessian + hessian.T)
    w, v = np.linalg.eigh(h)
    n_floored = int(np.sum(w < floor))
    w_used = np.maximum(w, floor)
    inverse = (v / w_used) @ v.T
    cond = float(w_used.max() / w_used.min())
    return 0.5 * (inverse + inverse.T), cond, n_floored


def map_multistart(
    key,
    model_fn,
    n_starts: int = 8,
    max_steps: int = 300,
    tol: float = 1e-6,
    start_scale: float = 0.5,
) -> MapResult:
    """Optimise the posterior from ``n_starts`` points in one vmapped BFGS.

    The first start is the prior median (all standardised sites at 0); the others are
    standard-normal draws scaled by ``start_scale``. Raises :class:`Il6rccError` when
    every start fails (the message says how many and suggests what to check).
    """
    import time

    start_time = time.perf_counter()
    key_init, key_starts = jax.random.split(key)
    potential, unravel, flat0, _ = potential_and_unravel(key_init, model_fn)
    n = flat0.shape[0]
    starts = start_scale * jax.random.normal(key_starts, (n_starts, n))
    starts = starts.at[0].set(0.0)
    solver = optx.BFGS(rtol=tol, atol=tol)

    def safe_potential(x, _):
        value = potential(x)
        return jnp.where(jnp.isfinite(value), value, 1e30)

    def run(x0):
        sol = optx.minimise(safe_potential, solver, x0, max_steps=max_steps, throw=False)
        return sol.value, potential(sol.value), sol.stats["num_steps"]

    xs, values, steps = jax.jit(jax.vmap(run))(starts)
    values = np.asarray(values)
    values = np.where(np.isfinite(values), values, np.inf)
    if not np.isfinite(values).any():
        raise Il6rccError(
            f"MAP: all {n_starts} starts failed (every ODE solve or log density was "
            f"non-finite). Check the priors (do they put mass where solves fail?) and the "
            f"solver settings (max_steps, tolerances)."
        )
    best = int(np.argmin(values))
    x = np.asarray(xs[best])
    hessian = np.asarray(jax.jit(jax.hessian(potential))(jnp.asarray(x)))
    if not np.all(np.isfinite(hessian)):
        hessian = _fd_hessian(potential, x)
    inverse, cond, n_floored = laplace_inverse_mass(hessian)
    return MapResult(
        x=x,
        params=jax.tree.map(np.asarray, unravel(jnp.asarray(x))),
        potential=float(values[best]),
        potentials=values,
        steps=np.asarray(steps),
        hessian=hessian,
        inverse_mass_matrix=inverse,
        condition_number=cond,
        n_floored=n_floored,
        seconds=time.perf_counter() - start_time,
    )


def _fd_hessian(potential, x: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """Hessian by central differences of the gradient (fallback when forward-over-
    reverse differentiation through the solver gives non-finite values)."""
    grad = jax.jit(jax.grad(potential))
    n = x.shape[0]
    out = np.empty((n, n))
    for i in range(n):
        e = np.zeros(n)
        e[i] = h
        out[i] = (np.asarray(grad(jnp.asarray(x + e))) - np.asarray(grad(jnp.asarray(x - e)))) / (
            2 * h
        )
    out = 0.5 * (out + out.T)
    return np.where(np.isfinite(out), out, 0.0)


__all__ = ["MapResult", "laplace_inverse_mass", "map_multistart", "potential_and_unravel"]
