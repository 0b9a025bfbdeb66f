"""Stochastic variational inference from the same numpyro model.

Guides: ``normal`` (AutoNormal, mean-field) and ``lowrank``
(AutoLowRankMultivariateNormal, captures the main correlated, sloppy directions).
The guide starts at the MAP when one is given. Draws from the fitted guide are pushed
through the model to get the deterministic sites (log-likelihood per row, theta).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jax
import numpy as np
import optax
from numpyro.infer import SVI, Predictive, Trace_ELBO
from numpyro.infer.autoguide import AutoLowRankMultivariateNormal, AutoNormal
from numpyro.infer.initialization import init_to_median, init_to_value


@dataclass(frozen=True)
class SviResult:
    draws: dict
    losses: np.ndarray
    seconds: float
    guide: str


def run_svi(
    key,
    model_fn,
    data,
    guide: str = "normal",
    steps: int = 2000,
    learning_rate: float = 0.01,
    num_samples: int = 1000,
    init_values: dict | None = None,
) -> SviResult:
    """Fit a guide and draw ``num_samples`` from it (with deterministic sites)."""
    start = time.perf_counter()
    init = init_to_value(values=init_values) if init_values else init_to_median
    cls = {"normal": AutoNormal, "lowrank": AutoLowRankMultivariateNormal}[guide]
    g = cls(model_fn, init_loc_fn=init)
    svi = SVI(model_fn, g, optax.adam(learning_rate), Trace_ELBO())
    key_fit, key_draw = jax.random.split(key)
    result = svi.run(key_fit, steps, data, progress_bar=False)
    # one draw per key (numpyro's sample_shape path broadcasts implicitly)
    keys = jax.random.split(key_draw, num_samples)
    posterior = jax.vmap(lambda k: g.sample_posterior(k, result.params, data))(keys)
    # parallel=False (the default): draws go through the model one after the other, so
    # a failed solve of one draw cannot touch the others (as it can under vmap)
    predictive = Predictive(model_fn, posterior_samples=posterior)
    deterministic = predictive(jax.random.PRNGKey(0), data)
    draws = {
        **{k: np.asarray(v) for k, v in posterior.items()},
        **{k: np.asarray(v) for k, v in deterministic.items()},
    }
    return SviResult(
        draws=draws,
        losses=np.asarray(result.losses),
        seconds=time.perf_counter() - start,
        guide=guide,
    )


__all__ = ["SviResult", "run_svi"]
