"""Stochastic variational inference on a :class:`~il6rcc.inference.Posterior`.

A Gaussian ``q`` on the posterior's unconstrained coordinates, fitted by maximising
the evidence lower bound ``E_q[log p(x)] + H[q]`` with reparameterised draws (one per
step) and Adam (optax):

* ``normal``: mean-field, ``x = m + exp(s) * e``;
* ``lowrank``: ``x = m + exp(s) * e + W f`` with ``W`` [n, rank] (the main correlated,
  sloppy directions).

The guide starts at a given point (the MAP when the run has one) with scale 0.1. Its
draws come back with their log density under ``q``, so that they are checked against
the true density like every approximation (:func:`il6rcc.inference.importance_check`).
A step whose ELBO gradient is not finite (a draw where an ODE solve failed) is skipped.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Annotated, Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax
from pydantic import ConfigDict, Field

from ._posterior import Posterior

#: Rank of the low-rank guide's factor (at most the dimension).
LOWRANK_RANK = 4
#: Initial scale of every guide coordinate.
INIT_SCALE = 0.1


@dataclass(frozen=True)
class SviSettings:
    """SVI settings: the ``inference.svi`` section of a job config. ``guide``:
    ``normal`` (mean-field) or ``lowrank`` (low-rank multivariate normal)."""

    __pydantic_config__ = ConfigDict(extra="forbid")

    guide: Literal["normal", "lowrank"] = "normal"
    steps: Annotated[int, Field(gt=0)] = 2000
    learning_rate: Annotated[float, Field(gt=0)] = 0.01
    num_samples: Annotated[int, Field(gt=0)] = 1000


@dataclass(frozen=True)
class SviResult:
    """``draws`` [num_samples, dim] from the fitted guide and ``log_q`` [num_samples]
    their log density under it; ``losses`` [steps] the negative ELBO estimates."""

    draws: np.ndarray
    log_q: np.ndarray
    losses: np.ndarray
    seconds: float
    guide: str


def _guide_sample(params, eps, rank: int):
    """One draw of the guide from standard normal ``eps`` [n + rank], and its log q."""
    n = params["loc"].shape[0]
    e, f = eps[:n], eps[n:]
    scale = jnp.exp(params["log_scale"])
    x = params["loc"] + scale * e
    if rank:
        x = x + f @ params["factor"].T
        cov = jnp.diag(scale**2) + params["factor"] @ params["factor"].T
        chol = jnp.linalg.cholesky(cov)
        r = jax.scipy.linalg.solve_triangular(chol, (x - params["loc"]).T, lower=True).T
        log_det = 2.0 * jnp.sum(jnp.log(jnp.diag(chol)))
    else:
        r = e
        log_det = 2.0 * jnp.sum(params["log_scale"])
    log_q = -0.5 * jnp.sum(r**2, axis=-1) - 0.5 * log_det - 0.5 * n * math.log(2 * math.pi)
    return x, log_q


def run_svi(
    key: jax.Array,
    posterior: Posterior,
    settings: SviSettings | None = None,
    data=None,
    init: np.ndarray | None = None,
) -> SviResult:
    """Fit the guide and draw ``settings.num_samples`` from it (see the module docstring)."""
    settings = settings or SviSettings()
    data = posterior.data if data is None else data
    start = time.perf_counter()
    n = posterior.dim
    rank = min(LOWRANK_RANK, n) if settings.guide == "lowrank" else 0
    loc = np.asarray(posterior.initial_point() if init is None else init, dtype=np.float64)
    params = {"loc": jnp.asarray(loc), "log_scale": jnp.full(n, math.log(INIT_SCALE))}
    if rank:
        params["factor"] = jnp.zeros((n, rank))
    optimiser = optax.apply_if_finite(optax.adam(settings.learning_rate), max_consecutive_errors=50)

    def loss(params, eps, data):
        x, log_q = _guide_sample(params, eps, rank)
        return log_q - posterior.log_density(x, data)

    @jax.jit
    def step(params, opt_state, key, data):
        eps = jax.random.normal(key, (n + rank,))
        value, grad = jax.value_and_grad(loss)(params, eps, data)
        updates, opt_state = optimiser.update(grad, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    key_fit, key_draw = jax.random.split(key)
    opt_state = optimiser.init(params)
    losses = np.empty(settings.steps)
    for i, k in enumerate(jax.random.split(key_fit, settings.steps)):
        params, opt_state, value = step(params, opt_state, k, data)
        losses[i] = float(value)
    eps = jax.random.normal(key_draw, (settings.num_samples, n + rank))
    draws, log_q = jax.jit(jax.vmap(lambda p, e: _guide_sample(p, e, rank), in_axes=(None, 0)))(
        params, eps
    )
    return SviResult(
        draws=np.asarray(draws),
        log_q=np.asarray(log_q),
        losses=losses,
        seconds=time.perf_counter() - start,
        guide=settings.guide,
    )


__all__ = ["SviResult", "SviSettings", "run_svi"]
