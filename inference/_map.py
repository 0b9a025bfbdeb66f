"""MAP multi-start and the Laplace approximation at the best optimum.

All starts run a batched L-BFGS on numpyro's potential energy (the negative log
posterior on the unconstrained scale), evaluated in one compiled, vmapped call per
iteration. Starts: the prior median and draws from a narrowed prior. A start whose
solves fail gets an infinite potential and is reported, never an exception. The
Hessian at the best optimum (central differences of gradients: forward-over-reverse
differentiation is not available through the solver's checkpointed adjoint), with its
small and negative eigenvalues floored, gives the dense mass matrix for NUTS.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from numpyro.infer.util import initialize_model

from ..errors import Il6rccError
from ._lbfgs import BatchedObjective, fd_hessian_batched, minimise_batched


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
    objective: BatchedObjective | None = None
    xs: np.ndarray | None = None  # every start's end point [n_starts, n]


def potential_and_unravel(key, model_fn, data):
    """numpyro's potential energy as a function ``potential(x, data)`` of a flat
    unconstrained vector and the model's data (an argument, not a baked-in constant),
    the unravel map, the flat starting point, and ``postprocess(x, data)`` (constrained
    and deterministic sites)."""
    from numpyro.infer.initialization import init_to_median

    try:
        info = initialize_model(
            key,
            model_fn,
            model_args=(data,),
            dynamic_args=True,
            validate_grad=False,
            init_strategy=init_to_median(num_samples=15),
        )
    except RuntimeError as err:
        raise Il6rccError(
            f"the model could not be initialised: {err}. Every trial point had a failed "
            f"ODE solve or a non-finite log density; check the priors and solver settings."
        ) from None
    flat0, unravel = ravel_pytree(info.param_info.z)

    def potential(x, data):
        return info.potential_fn(data)(unravel(x))

    def postprocess(x, data):
        return info.postprocess_fn(data)(unravel(x))

    return potential, unravel, flat0, postprocess


def laplace_inverse_mass(hessian: np.ndarray, floor: float = 0.5):
    """Inverse of a Hessian with eigenvalues floored; returns (inverse, cond, n_floored).

    The coordinates are standardised (every sampled site has a unit-scale prior), so
    the prior alone gives curvature about 1 in every direction; eigenvalues below
    ``floor`` come from negative or vanishing likelihood curvature (sloppy directions,
    or a point short of the optimum) and would make the mass matrix wider than the
    prior. Flooring them at 0.5 keeps every direction's scale within ~1.4 prior SDs."""
    h = 0.5 * (hessian + hessian.T)
    w, v = np.linalg.eigh(h)
    n_floored = int(np.sum(w < floor))
    w_used = np.maximum(w, floor)
    inverse = (v / w_used) @ v.T
    cond = float(w_used.max() / w_used.min())
    return 0.5 * (inverse + inverse.T), cond, n_floored


def hessian_directions(hessian: np.ndarray, names, k: int = 3, top: int = 4) -> list[dict]:
    """The ``k`` stiffest and ``k`` sloppiest eigen-directions of a Hessian (standardised
    coordinates): each with its eigenvalue, the implied posterior SD along it
    (1 / sqrt(eigenvalue), NaN when not positive) and the ``top`` coordinates that load
    most on it (name and component of the unit eigenvector). Stiff directions are what
    the data pin down (and what limits a sampler's step size); sloppy ones are left to
    the prior."""
    h = 0.5 * (np.asarray(hessian) + np.asarray(hessian).T)
    w, v = np.linalg.eigh(h)
    n = len(w)
    picks = [("stiff", i) for i in range(n - 1, max(n - 1 - k, -1), -1)]
    picks += [("sloppy", i) for i in range(min(k, n))]
    out = []
    for kind, i in picks:
        order = np.argsort(-np.abs(v[:, i]))[:top]
        out.append(
            {
                "kind": kind,
                "eigenvalue": float(w[i]),
                "sd": float(1.0 / np.sqrt(w[i])) if w[i] > 0 else float("nan"),
                "loadings": {str(names[j]): round(float(v[j, i]), 3) for j in order},
            }
        )
    return out


def map_multistart(
    key,
    model_fn,
    n_starts: int = 8,
    max_steps: int = 300,
    tol: float = 1e-6,
    start_scale: float = 0.5,
    objective: BatchedObjective | None = None,
    data=None,
    progress=None,
) -> MapResult:
    """Optimise the posterior from ``n_starts`` points (batched L-BFGS).

    The first start is the prior median (all standardised sites at 0); the others are
    standard-normal draws scaled by ``start_scale``. The Hessian at the best optimum
    comes from central differences of gradients. Raises :class:`Il6rccError` when
    every start fails (the message says how many and suggests what to check).
    """
    import time

    start_time = time.perf_counter()
    key_init, key_starts = jax.random.split(key)
    potential, unravel, flat0, _ = potential_and_unravel(key_init, model_fn, data)
    n = flat0.shape[0]
    # batch 1: points are mapped one after the other anyway (see BatchedObjective), so a
    # larger batch would only add padding evaluations
    objective = objective or BatchedObjective(potential, data, batch=1)
    starts = start_scale * np.asarray(jax.random.normal(key_starts, (n_starts, n)))
    starts[0] = 0.0
    xs, values, steps = minimise_batched(
        objective, starts, max_steps=max_steps, gtol=tol, progress=progress
    )
    if not np.isfinite(values).any():
        raise Il6rccError(
            f"MAP: all {n_starts} starts failed (every ODE solve or log density was "
            f"non-finite). Check the priors (do they put mass where solves fail?) and the "
            f"solver settings (max_steps, tolerances)."
        )
    best = int(np.argmin(values))
    x = np.asarray(xs[best])
    hessian = fd_hessian_batched(objective, x)
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
        objective=objective,
        xs=np.asarray(xs),
    )


__all__ = [
    "MapResult",
    "hessian_directions",
    "laplace_inverse_mass",
    "map_multistart",
    "potential_and_unravel",
]
