"""The one Laplace approximation: a Gaussian at a mode, from the Hessian there.

The rule, for every problem:

* **Hessian**: central differences of the exact (reverse-mode) gradient,
  ``H e_i = (g(x + h e_i) - g(x - h e_i)) / 2h``, symmetrised (forward-over-reverse
  differentiation is not available through the solvers' checkpointed adjoint);
* **floor**: eigenvalues of ``H`` below ``floor`` are raised to it before inverting.
  Coordinates are standardised (the prior alone gives curvature of order one, see
  :mod:`il6rcc.inference.Posterior`), so eigenvalues below the floor come from
  negative or vanishing likelihood curvature (sloppy directions, or a point short of a
  mode) and would make the approximation wider than the prior; the default 0.5 keeps
  every direction within about 1.4 prior SDs. Other coordinates give their own floor
  (a PEtab derivation on bounded parameter scales uses the curvature of a uniform
  distribution over the bounds).
* **saddle**: a point whose *unfloored* Hessian has an eigenvalue below
  ``-SADDLE_TOLERANCE`` is not a mode. It is reported as a saddle: the floored
  Gaussian there is a proposal at best, and its draws must pass the importance check
  (:func:`il6rcc.inference.importance_check`) before they are trusted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import jax
import numpy as np

from ._posterior import Posterior

#: Step of the central differences (standardised coordinates).
HESSIAN_STEP = 1e-4
#: Eigenvalue floor in standardised coordinates (see the module docstring).
FLOOR = 0.5
#: An unfloored eigenvalue below minus this is negative curvature, not noise of the
#: finite differences (whose error is orders of magnitude smaller at this step).
SADDLE_TOLERANCE = 1e-3


def fd_hessian(
    gradients: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    step: float = HESSIAN_STEP,
    free: np.ndarray | None = None,
    scheme: str = "central",
) -> tuple[np.ndarray, np.ndarray]:
    """Hessian [m, m] of the function whose gradient ``gradients(points [k, n]) ->
    [k, n]`` evaluates, at ``x`` [n], over the coordinates ``free`` (default all), and
    the gradient there [m].

    ``scheme``: ``central`` (the rule; two gradients per coordinate, error O(h^2); the
    gradient is their mean) or ``forward`` (one gradient per coordinate plus one at
    ``x``, error O(h); for problems where a gradient costs seconds)."""
    x = np.asarray(x, dtype=np.float64)
    free = np.arange(x.size) if free is None else np.asarray(free)
    steps = step * np.eye(x.size)[free]
    m = free.size
    if scheme == "central":
        grads = np.asarray(gradients(np.concatenate([x + steps, x - steps])))[:, free]
        hessian = (grads[:m] - grads[m:]).T / (2.0 * step)
        gradient = 0.5 * (grads[:m] + grads[m:]).mean(axis=0)
    elif scheme == "forward":
        grads = np.asarray(gradients(np.concatenate([x[None, :], x + steps])))[:, free]
        hessian = (grads[1:] - grads[0]).T / step
        gradient = grads[0]
    else:
        raise ValueError(
            f"unknown finite-difference scheme {scheme!r}; valid: 'central', 'forward'"
        )
    return 0.5 * (hessian + hessian.T), gradient


@dataclass(frozen=True)
class FlooredInverse:
    """A symmetric matrix's eigen-decomposition and its floored inverse.

    ``eigenvalues`` (ascending) and ``eigenvectors`` of the matrix as given;
    ``covariance``: the inverse with eigenvalues below ``floor`` raised to it;
    ``n_floored``: how many were raised; ``condition_number``: of the floored matrix.
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    covariance: np.ndarray
    floor: float
    n_floored: int
    condition_number: float

    @property
    def saddle(self) -> bool:
        """Negative curvature: the point is not a mode (see the module docstring)."""
        return bool(self.eigenvalues.size and self.eigenvalues[0] < -SADDLE_TOLERANCE)


def floored_inverse(hessian: np.ndarray, floor: float = FLOOR) -> FlooredInverse:
    """The floored inverse of a Hessian (see the module docstring)."""
    h = 0.5 * (np.asarray(hessian) + np.asarray(hessian).T)
    w, v = np.linalg.eigh(h)
    used = np.maximum(w, floor)
    cov = (v / used) @ v.T
    return FlooredInverse(
        eigenvalues=w,
        eigenvectors=v,
        covariance=0.5 * (cov + cov.T),
        floor=float(floor),
        n_floored=int(np.sum(w < floor)),
        condition_number=float(used.max() / used.min()) if used.size else 1.0,
    )


@dataclass(frozen=True)
class Laplace:
    """A Gaussian approximation ``N(mean, covariance)`` of a posterior at a point.

    ``hessian``: the unfloored Hessian of the negative log density there;
    ``inverse``: its eigen-decomposition and floored inverse (:class:`FlooredInverse`);
    ``gradient``: the gradient of the negative log density there (near zero at a mode).
    """

    mean: np.ndarray
    hessian: np.ndarray
    inverse: FlooredInverse
    gradient: np.ndarray

    @property
    def covariance(self) -> np.ndarray:
        return self.inverse.covariance

    @property
    def saddle(self) -> bool:
        return self.inverse.saddle

    @property
    def condition_number(self) -> float:
        return self.inverse.condition_number

    @property
    def n_floored(self) -> int:
        return self.inverse.n_floored

    @property
    def min_eigenvalue(self) -> float:
        return float(self.inverse.eigenvalues[0])

    def sample(self, key: jax.Array, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` draws [n, dim] and their log density under the approximation [n]."""
        return sample_gaussian(key, self.mean, self.covariance, n)


def sample_gaussian(
    key: jax.Array, mean: np.ndarray, covariance: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` draws [n, dim] of ``N(mean, covariance)`` and their log density [n]."""
    mean = np.asarray(mean, dtype=np.float64)
    dim = mean.size
    chol = np.linalg.cholesky(covariance)
    z = np.asarray(jax.random.normal(key, (n, dim)))
    x = mean[None, :] + z @ chol.T
    log_det = 2.0 * np.sum(np.log(np.diag(chol)))
    log_q = -0.5 * np.sum(z**2, axis=1) - 0.5 * log_det - 0.5 * dim * math.log(2 * math.pi)
    return x, log_q


def laplace_approximation(
    posterior: Posterior,
    x: np.ndarray,
    data=None,
    floor: float = FLOOR,
    step: float = HESSIAN_STEP,
) -> Laplace:
    """The Laplace approximation of ``posterior`` at ``x`` (its MAP), by the rule of
    the module docstring; gradients come from the posterior's compiled function."""
    data = posterior.data if data is None else data
    compiled = posterior.compiled

    def gradients(points):
        return np.stack([compiled.value_and_grad(p, data)[1] for p in points])

    hessian, gradient = fd_hessian(gradients, x, step)
    return Laplace(
        mean=np.asarray(x, dtype=np.float64),
        hessian=hessian,
        inverse=floored_inverse(hessian, floor),
        gradient=gradient,
    )


def hessian_directions(
    hessian: np.ndarray, names: Sequence[str], k: int = 3, top: int = 4
) -> list[dict]:
    """The ``k`` stiffest and ``k`` sloppiest eigen-directions of a Hessian (standardised
    coordinates): each with its eigenvalue, the implied posterior SD along it
    (1 / sqrt(eigenvalue), NaN when not positive) and the ``top`` coordinates that load
    most on it (name and component of the unit eigenvector). Stiff directions are what
    the data pin down (and what limits a sampler's step size); sloppy ones are left to
    the prior; a negative eigenvalue is a direction of negative curvature (a saddle)."""
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


__all__ = [
    "FLOOR",
    "HESSIAN_STEP",
    "SADDLE_TOLERANCE",
    "FlooredInverse",
    "Laplace",
    "fd_hessian",
    "floored_inverse",
    "hessian_directions",
    "laplace_approximation",
    "sample_gaussian",
]
