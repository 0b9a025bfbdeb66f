"""Is an approximation good enough? Pareto-smoothed importance sampling (PSIS) of its
draws against the true log density.

For draws ``x_s`` from an approximation ``q`` (Laplace, variational) with the true
log density ``log p(x_s)`` (up to a constant), the importance ratios ``p / q`` are
Pareto-smoothed (Vehtari et al. 2024, arviz's implementation) and the shape ``k`` of
their tail is the diagnostic of Yao et al. 2018 ("Yes, but did it work?"):

* ``k < 0.7``: the approximation is usable after the correction; the draws are
  resampled with the smoothed weights, and the effective sample size is that of the
  weights, ``1 / sum(w^2)`` (normalised weights);
* ``k >= 0.7``: the importance weights have too heavy a tail; the approximation failed
  and its draws do not stand for the posterior.

A draw whose true log density is -inf (an ODE solve failed there) gets zero weight;
the share of such draws is reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

#: Fewest draws with a finite density whose weights' tail can be fitted (arviz needs
#: a tail of at least 5 draws, min(0.2 S, 3 sqrt(S)) >= 5); with fewer, k-hat is NaN
#: (not measured, so the gate fails).
PSIS_MIN_DRAWS = 25


@dataclass(frozen=True)
class ImportanceCheck:
    """PSIS of an approximation's draws (see the module docstring).

    ``pareto_k``: the tail shape (NaN when fewer than :data:`PSIS_MIN_DRAWS` draws have
    a finite density, -inf when the ratios are constant: the approximation is the
    density itself);
    ``log_weights`` [S]: normalised smoothed log weights (-inf for failed draws);
    ``ess``: effective sample size of the weights; ``n_failed``: draws with a
    non-finite log density.
    """

    pareto_k: float
    log_weights: np.ndarray
    ess: float
    n_failed: int

    @property
    def n_draws(self) -> int:
        return int(self.log_weights.size)

    def resample(self, key: jax.Array, n: int | None = None) -> np.ndarray:
        """Indices of ``n`` (default: all) draws resampled with the smoothed weights
        (systematic resampling: each draw appears about ``n * w`` times)."""
        n = self.n_draws if n is None else n
        w = np.exp(self.log_weights - np.max(self.log_weights))
        w = np.where(np.isfinite(w), w, 0.0)
        cumulative = np.cumsum(w / w.sum())
        u = (float(jax.random.uniform(key)) + np.arange(n)) / n
        return np.minimum(np.searchsorted(cumulative, u), self.n_draws - 1)


def importance_check(log_p: np.ndarray, log_q: np.ndarray) -> ImportanceCheck:
    """PSIS of draws with true log density ``log_p`` [S] and approximate log density
    ``log_q`` [S] (both up to constants)."""
    from arviz_stats.base import array_stats

    log_p = np.asarray(log_p, dtype=np.float64)
    log_q = np.asarray(log_q, dtype=np.float64)
    ratio = log_p - log_q
    finite = np.isfinite(ratio)
    log_w = np.full(ratio.shape, -np.inf)
    k = float("nan")
    n_finite = int(finite.sum())
    if n_finite and np.ptp(ratio[finite]) <= 1e-12 * max(1.0, np.abs(ratio[finite]).max()):
        log_w[finite] = 0.0  # constant ratios: q is p itself, the weights have no tail
        k = -np.inf
    elif n_finite < PSIS_MIN_DRAWS:
        log_w[finite] = ratio[finite]  # plain importance weights, no tail fit
    else:
        # arviz smooths the weights exp(-a) of its argument a (its LOO convention)
        smoothed, k = array_stats.psislw(-ratio[finite])
        log_w[finite] = np.asarray(smoothed)
        k = float(k)
    top = np.max(log_w)
    if np.isfinite(top):
        log_w = log_w - (top + np.log(np.sum(np.exp(log_w - top))))
        ess = float(1.0 / np.sum(np.exp(2.0 * log_w)))
    else:
        ess = 0.0
    return ImportanceCheck(pareto_k=k, log_weights=log_w, ess=ess, n_failed=int((~finite).sum()))


__all__ = ["PSIS_MIN_DRAWS", "ImportanceCheck", "importance_check"]
