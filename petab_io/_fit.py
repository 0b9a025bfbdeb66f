"""PEtab problems on the one fitting path: the posterior adapter, and the MAP +
Laplace fits that derive transfer priors.

:class:`PetabPosterior` is the :class:`~il6rcc.inference.Posterior` of a PEtab problem:
the PEtab likelihood times the problem's objective priors, restricted to the parameter
bounds (parameters without a prior are flat within their bounds on their estimation
scale, the PEtab convention). Its coordinates are ``z`` with ``theta = lower + (upper -
lower) * sigmoid(z)`` on the PEtab scales; the flat prior within the bounds is a unit
Logistic on ``z``. ``il6rcc fit`` (``model: {petab: problem.yaml}``) and ``il6rcc petab
fit`` run it through the same pipeline as every other problem.

:func:`fit_map` is the MAP of the same objective *without* the Jacobian of the bounds
transform (the mode of the posterior on the PEtab scales, as PEtab tools report it),
found by the one optimiser (:func:`il6rcc.inference.minimise`, BFGS, one compiled
program for all starts). :func:`laplace_approximation` is the Gaussian there, on the
PEtab scales, with the Hessian ``H`` of the negative log-posterior with respect to the
parameters that are not at a bound (parameters at a bound are conditioned on: a
Gaussian there would be meaningless). ``H`` is either

* ``"hessian"``: the one finite-difference rule (:func:`il6rcc.inference.fd_hessian`)
  on the exact gradient of the log-likelihood, plus the exact Hessian of the log-prior;
* ``"fisher"``: the expected Fisher information of the measurements, from forward
  sensitivities of the simulated observables and noise parameters (cheaper for large
  problems; equal to the Hessian in expectation at the true parameters), plus the
  log-prior's Hessian.

It is inverted by the one floor rule (:func:`il6rcc.inference.floored_inverse`), with
the floor these coordinates call for: ``1 / sigma_box^2`` (``sigma_box``: the standard
deviation ``width / sqrt(12)`` of a uniform distribution over the median bounds' width
of the free parameters): directions below it are *not identifiable* (the data
constrain them less than typical bounds do). A parameter is identifiable when it is
not at a bound and its marginal standard deviation is below ``sd_identifiable``
(default one unit of its scale: a decade for ``log10`` parameters).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from ..errors import PetabError
from ..inference import (
    BfgsStepper,
    DrawLayout,
    Posterior,
    fd_hessian,
    floored_inverse,
    minimise,
    walled_value_and_grad,
)
from ..models import SolverSettings
from ..runtime import require_x64
from ._likelihood import (
    DEFAULT_SOLVER,
    _evaluate,
    evaluate_for_gradients,
    gradient_solver,
    make_llh,
    make_log_prior,
    measurement_log_likelihoods,
)
from ._problem import PetabProblem

#: Margin (fraction of the bounds' width) of a start placed on a bound: the sigmoid
#: transform needs a start strictly inside.
START_MARGIN = 1e-6
#: A parameter within this fraction of its bounds' width from a bound is "at the bound".
BOUND_TOLERANCE = 1e-3
#: Step (on the PEtab scale) of the finite differences of the gradient.
HESSIAN_STEP = 1e-3


@dataclass(frozen=True)
class LaplaceResult:
    """Gaussian approximation of the posterior at the MAP, on the PEtab scales.

    Arrays indexed ``[n]`` follow :attr:`MapResult.parameter_ids`; entries of parameters
    at a bound are NaN (they are conditioned on, not approximated).

    Attributes:
        method: ``"hessian"`` or ``"fisher"`` (see the module docstring).
        parameter_ids, scales: the estimated parameters and their PEtab scales.
        theta: [n] the point of the approximation (PEtab scales).
        at_bound: [n] True where the MAP lies at a bound.
        hessian: [n, n] Hessian of the negative log-posterior (free parameters).
        covariance: [n, n] floored pseudo-inverse of ``hessian``.
        sd: [n] marginal standard deviations.
        identifiable: [n] not at a bound and ``sd < sd_identifiable``.
        eigenvalues: [n_free] eigenvalues of the free block of ``hessian``, ascending.
        eigenvectors: [n_free, n_free] columns = eigenvectors.
        floor: the eigenvalue floor ``1 / sigma_box^2``.
        sd_identifiable: the threshold on ``sd``.
        gradient: [n] gradient of the log-posterior at ``theta`` from the finite
            differences (``hessian`` method; NaN otherwise and at bounds): near zero at
            an optimum.
        seconds: wall time of the computation.
    """

    method: str
    parameter_ids: tuple[str, ...]
    scales: tuple[str, ...]
    theta: np.ndarray
    at_bound: np.ndarray
    hessian: np.ndarray
    covariance: np.ndarray
    sd: np.ndarray
    identifiable: np.ndarray
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    floor: float
    sd_identifiable: float
    gradient: np.ndarray
    seconds: float

    @property
    def free(self) -> np.ndarray:
        return ~self.at_bound

    @property
    def max_abs_gradient(self) -> float:
        """Largest |gradient| of the log-posterior over the free parameters."""
        g = np.abs(self.gradient[np.isfinite(self.gradient)])
        return float(g.max()) if g.size else math.nan

    @property
    def n_non_identifiable_directions(self) -> int:
        return int(np.sum(self.eigenvalues < self.floor))

    def non_identifiable_directions(self, top: int = 3) -> list[dict]:
        """The floored eigen-directions, each with its eigenvalue and the ``top``
        parameters with the largest loadings (``(id, loading)``)."""
        free_ids = [p for p, f in zip(self.parameter_ids, self.free, strict=True) if f]
        out = []
        for k in np.flatnonzero(self.eigenvalues < self.floor):
            v = self.eigenvectors[:, k]
            order = np.argsort(-np.abs(v))[:top]
            out.append(
                {
                    "eigenvalue": float(self.eigenvalues[k]),
                    "loadings": [(free_ids[i], float(v[i])) for i in order],
                }
            )
        return out


@dataclass(frozen=True)
class MapResult:
    """Result of :func:`fit_map`.

    Attributes:
        problem_name: the problem's name.
        parameter_ids, scales: the estimated parameters and their PEtab scales.
        lower, upper: [n] bounds on the PEtab scales.
        nominal: [n] nominal values (PEtab scales).
        nominal_log_likelihood, nominal_log_posterior: at ``nominal``.
        start_kinds: [n_starts] ``nominal``, ``uniform`` or ``jitter``.
        starts, thetas: [n_starts, n] start and end points.
        start_log_posterior: [n_starts] at the start points.
        log_likelihood, log_posterior: [n_starts] at the end points.
        n_steps: [n_starts] optimiser steps (objective evaluations).
        converged: [n_starts] True when the optimiser met its tolerance.
        seconds: [n_starts] wall time of each start.
        compile_seconds: compilation of the optimiser (once per fit).
        best: index of the best start (highest log-posterior).
        laplace: the Laplace approximation at the best optimum (or None).
    """

    problem_name: str
    parameter_ids: tuple[str, ...]
    scales: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    nominal: np.ndarray
    nominal_log_likelihood: float
    nominal_log_posterior: float
    start_kinds: tuple[str, ...]
    starts: np.ndarray
    start_log_posterior: np.ndarray
    thetas: np.ndarray
    log_likelihood: np.ndarray
    log_posterior: np.ndarray
    n_steps: np.ndarray
    converged: np.ndarray
    seconds: np.ndarray
    compile_seconds: float
    best: int
    laplace: LaplaceResult | None

    @property
    def theta(self) -> np.ndarray:
        """[n] the best optimum on the PEtab scales."""
        return self.thetas[self.best]

    @property
    def best_log_likelihood(self) -> float:
        return float(self.log_likelihood[self.best])

    @property
    def best_log_posterior(self) -> float:
        return float(self.log_posterior[self.best])

    def value(self, parameter_id: str, *, linear: bool = True) -> float:
        """The MAP value of one parameter (linear scale unless ``linear=False``)."""
        i = self.parameter_ids.index(parameter_id)
        return float(_to_linear(self.theta[i], self.scales[i])) if linear else float(self.theta[i])

    def starts_table(self) -> pd.DataFrame:
        """One row per start: kind, log-likelihood and log-posterior at its end,
        steps, convergence and wall time."""
        return pd.DataFrame(
            {
                "problem": self.problem_name,
                "start": np.arange(len(self.start_kinds)),
                "kind": self.start_kinds,
                "start_log_posterior": self.start_log_posterior,
                "log_likelihood": self.log_likelihood,
                "log_posterior": self.log_posterior,
                "n_steps": self.n_steps,
                "converged": self.converged,
                "seconds": self.seconds,
            }
        )

    def parameters_table(self) -> pd.DataFrame:
        """One row per parameter: nominal and MAP values (PEtab scale), bounds, and the
        Laplace standard deviation and identifiability where computed."""
        df = pd.DataFrame(
            {
                "parameterId": self.parameter_ids,
                "scale": self.scales,
                "lower": self.lower,
                "upper": self.upper,
                "nominal": self.nominal,
                "map": self.theta,
            }
        )
        if self.laplace is not None:
            df["at_bound"] = self.laplace.at_bound
            df["gradient"] = self.laplace.gradient
            df["laplace_sd"] = self.laplace.sd
            df["identifiable"] = self.laplace.identifiable
        return df


@dataclass(frozen=True)
class Propagated:
    """A derived quantity ``q(theta)`` at the MAP and its Laplace (delta-method)
    standard deviation ``sqrt(a^T Sigma a)``, ``a = dq/dtheta``.

    ``sd`` is NaN when ``q`` depends on a parameter at a bound. ``sources``: the
    parameters ``q`` depends on; ``n_identifiable``: how many of them are identifiable.
    """

    value: float
    sd: float
    sources: tuple[str, ...]
    n_identifiable: int
    not_identifiable: tuple[str, ...]


# --------------------------------------------------------------------- helpers
def _to_linear(theta, scale):
    if scale == "log10":
        return 10.0**theta
    if scale == "log":
        return math.exp(theta) if isinstance(theta, float) else np.exp(theta)
    return theta


def _bounds(problem: PetabProblem) -> tuple[np.ndarray, np.ndarray]:
    lower, upper = problem.parameters.bounds_theta
    ids = problem.parameters.estimated_ids
    bad = [
        ids[i]
        for i in range(len(ids))
        if not (np.isfinite(lower[i]) and np.isfinite(upper[i]) and lower[i] < upper[i])
    ]
    if bad:
        raise PetabError(
            f"{problem.name}: estimated parameter(s) {bad} need finite bounds with "
            f"lowerBound < upperBound (on their scales) for fit_map"
        )
    return lower, upper


def _to_z(theta: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    u = np.clip((theta - lower) / (upper - lower), START_MARGIN, 1.0 - START_MARGIN)
    return np.log(u) - np.log1p(-u)


def negative_log_posterior(
    problem: PetabProblem, solver: SolverSettings | None = None
) -> Callable[[jax.Array], jax.Array]:
    """``theta -> -(llh + log_prior)`` (jitted); ``+inf`` where the simulation fails."""
    return _negative_log_posterior(make_llh(problem, solver)[0], make_log_prior(problem))


def _negative_log_posterior(llh, log_prior):
    @jax.jit
    def f(theta):
        v = -(llh(theta) + log_prior(theta))
        return jnp.where(jnp.isnan(v), jnp.inf, v)

    return f


def _starts(
    problem, log_posterior, n_starts, seed, include_nominal, jitter, lower, upper, max_resample
):
    rng = np.random.default_rng(seed)
    nominal = problem.parameters.nominal_theta
    kinds, points = [], []
    if include_nominal and n_starts > 0:
        if not np.all(np.isfinite(nominal)):
            raise PetabError(f"{problem.name}: nominal values are not all finite; no nominal start")
        kinds.append("nominal")
        points.append(np.clip(nominal, lower, upper))
    tries = 0
    while len(points) < n_starts:
        if jitter is None:
            candidate, kind = rng.uniform(lower, upper), "uniform"
        else:
            candidate = np.clip(nominal + jitter * rng.standard_normal(nominal.size), lower, upper)
            kind = "jitter"
        tries += 1
        if np.isfinite(log_posterior(candidate)):
            kinds.append(kind)
            points.append(candidate)
        elif tries >= max_resample * n_starts:
            raise PetabError(
                f"{problem.name}: found only {len(points)} of {n_starts} starts with a finite "
                f"objective in {tries} draws (seed {seed})"
            )
    return tuple(kinds), np.array(points, dtype=np.float64).reshape(len(points), nominal.size)


# ------------------------------------------------------------------------- fit
def fit_map(
    problem: PetabProblem,
    n_starts: int = 10,
    seed: int = 0,
    max_steps: int = 500,
    *,
    include_nominal: bool = True,
    jitter: float | None = None,
    laplace: str | None = "hessian",
    laplace_options: dict | None = None,
    solver: SolverSettings | None = None,
    rtol: float = 1e-7,
    atol: float = 1e-7,
    sd_identifiable: float = 1.0,
    max_resample: int = 20,
    verbose: bool = False,
) -> MapResult:
    """MAP multi-start fit of a PEtab problem, then a Laplace approximation.

    Args:
        problem: the problem (:func:`load_problem`).
        n_starts: number of starts, the nominal one included.
        seed: seed of the random starts (deterministic).
        max_steps: BFGS step budget per start (one objective evaluation per step).
        include_nominal: start 0 is the nominal parameter vector (clipped into the
            bounds).
        jitter: ``None``: random starts are uniform within the bounds (PEtab scales);
            a number: they are the nominal vector plus Gaussian noise of that standard
            deviation (PEtab scales), clipped into the bounds. Random starts whose
            objective is not finite are redrawn.
        laplace: ``"hessian"``, ``"fisher"`` or None (see the module docstring).
        laplace_options: keyword arguments of :func:`laplace_approximation`
            (``scheme``, ``batch``).
        solver: ODE solver settings (default: :data:`DEFAULT_SOLVER`).
        rtol, atol: BFGS termination (changes of the objective and of ``z`` between
            accepted steps).
        sd_identifiable: identifiability threshold on the Laplace standard deviation.
        verbose: print one line per start.
    """
    require_x64()
    if not (isinstance(n_starts, int) and n_starts >= 1):
        raise PetabError(f"fit_map: n_starts must be an integer >= 1, got {n_starts!r}")
    if not (isinstance(max_steps, int) and max_steps >= 1):
        raise PetabError(f"fit_map: max_steps must be an integer >= 1, got {max_steps!r}")
    solver = solver or DEFAULT_SOLVER
    table = problem.parameters
    lower, upper = _bounds(problem)
    llh, _ = make_llh(problem, solver)
    log_prior = make_log_prior(problem)
    objective = _negative_log_posterior(llh, log_prior)
    lo, width = jnp.asarray(lower), jnp.asarray(upper - lower)

    def objective_z(z, args):
        return objective(lo + width * jax.nn.sigmoid(z))

    def log_posterior(theta) -> float:  # host side, reusing the compiled llh and prior
        theta = jnp.asarray(theta)
        value = float(llh(theta)) + float(log_prior(theta))
        return value if not math.isnan(value) else -math.inf

    nominal = table.nominal_theta
    nominal_llh = float(llh(jnp.asarray(nominal))) if np.all(np.isfinite(nominal)) else math.nan
    nominal_lp = nominal_llh + float(log_prior(jnp.asarray(nominal)))
    kinds, starts = _starts(
        problem, log_posterior, n_starts, seed, include_nominal, jitter, lower, upper, max_resample
    )
    value_and_grad = walled_value_and_grad(objective_z)
    stepper = BfgsStepper(value_and_grad, rtol, atol)
    t0 = time.perf_counter()
    value_and_grad(_to_z(starts[0], lower, upper), None)  # compiles the gradient (one call)
    compile_seconds = time.perf_counter() - t0
    start_lps = [log_posterior(start) for start in starts]

    def say(line: str) -> None:
        if verbose and " done:" in line:
            print(f"{problem.name} {line}", flush=True)

    found = minimise(
        value_and_grad,
        np.array([_to_z(start, lower, upper) for start in starts]),
        max_steps=max_steps,
        progress=say,
        stepper=stepper,
        label="MAP",
    )
    thetas, lls, lps = [], [], []
    for z in found.xs:
        theta = np.asarray(lo + width * jax.nn.sigmoid(jnp.asarray(z)))
        ll = float(llh(jnp.asarray(theta)))
        thetas.append(theta)
        lls.append(ll)
        lps.append(ll + float(log_prior(jnp.asarray(theta))))
    steps, conv, secs = list(found.steps), list(found.converged), list(found.seconds)
    lps_arr = np.array(lps)
    best = int(np.nanargmax(np.where(np.isfinite(lps_arr), lps_arr, -np.inf)))
    lap = None
    if laplace is not None:
        lap = laplace_approximation(
            problem,
            thetas[best],
            laplace,
            solver=solver,
            sd_identifiable=sd_identifiable,
            **(laplace_options or {}),
        )
    return MapResult(
        problem_name=problem.name,
        parameter_ids=table.estimated_ids,
        scales=tuple(table.scales[i] for i in table.estimated_index),
        lower=lower,
        upper=upper,
        nominal=nominal,
        nominal_log_likelihood=nominal_llh,
        nominal_log_posterior=nominal_lp,
        start_kinds=kinds,
        starts=starts,
        start_log_posterior=np.array(start_lps),
        thetas=np.array(thetas),
        log_likelihood=np.array(lls),
        log_posterior=lps_arr,
        n_steps=np.array(steps),
        converged=np.array(conv),
        seconds=np.array(secs),
        compile_seconds=compile_seconds,
        best=best,
        laplace=lap,
    )


# --------------------------------------------------------------------- Laplace
def _fisher_information(problem: PetabProblem, solver: SolverSettings, theta, free):
    """Expected Fisher information [n_free, n_free] of the measurements."""
    forward = dataclasses.replace(solver, adjoint="forward")
    theta = jnp.asarray(theta)
    free_idx = np.flatnonzero(free)

    def outputs(theta_free):
        full = theta.at[free_idx].set(theta_free)
        simulated, sigma, _, _ = _evaluate(problem, forward, full)
        return simulated, sigma

    simulated, sigma = outputs(theta[free_idx])
    d_sim, d_sigma = jax.jit(jax.jacfwd(outputs))(theta[free_idx])
    simulated, sigma = np.asarray(simulated), np.asarray(sigma)
    d_sim, d_sigma = np.asarray(d_sim), np.asarray(d_sigma)
    if not (np.all(np.isfinite(d_sim)) and np.all(np.isfinite(d_sigma))):
        raise PetabError(f"{problem.name}: non-finite sensitivities at the MAP")
    derivative = np.ones_like(simulated)  # dh(m)/dm of the observable transformation
    laplace_noise = np.zeros(problem.n_measurements, dtype=bool)
    for k, obs in enumerate(problem.observables):
        idx = problem.measurement_observable_index == k
        if obs.transformation == "log":
            derivative[idx] = 1.0 / simulated[idx]
        elif obs.transformation == "log10":
            derivative[idx] = 1.0 / (simulated[idx] * math.log(10.0))
        laplace_noise[idx] = obs.noise_distribution == "laplace"
    dh = d_sim * derivative[:, None] / sigma[:, None]
    ds = d_sigma / sigma[:, None] * np.where(laplace_noise, 1.0, math.sqrt(2.0))[:, None]
    return dh.T @ dh + ds.T @ ds


def _likelihood_hessian_fd(
    problem: PetabProblem, solver: SolverSettings, theta, free, scheme: str, batch: int
):
    """The one finite-difference rule on the exact gradient of the log-likelihood:
    ``(-d2 llh [n_free, n_free], d llh [n_free])``; ``batch`` gradients are evaluated
    together (vmapped)."""
    llh, _ = make_llh(problem, solver)
    grad = jax.jit(jax.vmap(jax.grad(llh)))

    def gradients(points):
        pad = (-len(points)) % batch
        padded = np.concatenate([points, np.repeat(points[-1:], pad, axis=0)])
        chunks = np.split(padded, len(padded) // batch)
        return np.concatenate([np.asarray(grad(jnp.asarray(c))) for c in chunks])[: len(points)]

    try:
        h, gradient = fd_hessian(gradients, theta, HESSIAN_STEP, np.flatnonzero(free), scheme)
    except ValueError as err:
        raise PetabError(str(err)) from None
    if not np.all(np.isfinite(h)):
        raise PetabError(f"{problem.name}: non-finite gradient near the MAP")
    return -h, gradient


def laplace_approximation(
    problem: PetabProblem,
    theta,
    method: str = "hessian",
    *,
    solver: SolverSettings | None = None,
    sd_identifiable: float = 1.0,
    scheme: str = "central",
    batch: int = 1,
) -> LaplaceResult:
    """The Laplace approximation of the posterior at ``theta`` (the MAP, PEtab scales);
    see the module docstring. ``scheme`` and ``batch``: finite differences of the
    ``hessian`` method (:func:`_likelihood_hessian_fd`)."""
    require_x64()
    if method not in ("hessian", "fisher"):
        raise PetabError(f"unknown Laplace method {method!r}; valid: 'fisher', 'hessian'")
    solver = solver or DEFAULT_SOLVER
    t0 = time.perf_counter()
    theta = np.asarray(theta, dtype=np.float64)
    lower, upper = _bounds(problem)
    width = upper - lower
    at_bound = (theta - lower < BOUND_TOLERANCE * width) | (upper - theta < BOUND_TOLERANCE * width)
    free = ~at_bound
    n = theta.size
    free_idx = np.flatnonzero(free)
    prior_hessian = np.asarray(jax.hessian(make_log_prior(problem))(jnp.asarray(theta)))
    prior_block = -prior_hessian[np.ix_(free_idx, free_idx)]
    if not np.all(np.isfinite(prior_block)):
        raise PetabError(f"{problem.name}: the log-prior's Hessian is not finite at theta")
    prior_gradient = np.asarray(jax.grad(make_log_prior(problem))(jnp.asarray(theta)))
    gradient = np.full(theta.size, np.nan)
    if method == "fisher":
        h_free = _fisher_information(problem, solver, theta, free)
    else:
        h_free, llh_gradient = _likelihood_hessian_fd(problem, solver, theta, free, scheme, batch)
        gradient[free_idx] = llh_gradient + prior_gradient[free_idx]
    h_free = h_free + prior_block
    sigma_box = float(np.median(width[free_idx])) / math.sqrt(12.0) if free_idx.size else 1.0
    floor = 1.0 / sigma_box**2
    inverse = floored_inverse(h_free, floor)
    eigenvalues, eigenvectors, cov_free = (
        inverse.eigenvalues,
        inverse.eigenvectors,
        inverse.covariance,
    )
    hessian = np.full((n, n), np.nan)
    covariance = np.full((n, n), np.nan)
    hessian[np.ix_(free_idx, free_idx)] = h_free
    covariance[np.ix_(free_idx, free_idx)] = cov_free
    sd = np.sqrt(np.diag(covariance))
    identifiable = free & (np.nan_to_num(sd, nan=np.inf) < sd_identifiable)
    table = problem.parameters
    return LaplaceResult(
        method=method,
        parameter_ids=table.estimated_ids,
        scales=tuple(table.scales[i] for i in table.estimated_index),
        theta=theta,
        at_bound=at_bound,
        hessian=hessian,
        covariance=covariance,
        sd=sd,
        identifiable=identifiable,
        eigenvalues=eigenvalues,
        eigenvectors=eigenvectors,
        floor=floor,
        sd_identifiable=sd_identifiable,
        gradient=gradient,
        seconds=time.perf_counter() - t0,
    )


def propagate(
    result: MapResult | LaplaceResult, quantity: Callable[[dict], jax.Array]
) -> Propagated:
    """A derived quantity and its Laplace standard deviation (delta method).

    ``quantity`` maps a dict of the estimated parameters' *linear* values (by id, JAX
    scalars) to a scalar, written with ``jax.numpy``; its gradient with respect to the
    PEtab-scale parameters at the Laplace point gives ``a``. Parameters with a zero
    derivative are not sources.
    """
    lap = result.laplace if isinstance(result, MapResult) else result
    if lap is None:
        raise PetabError(f"{result.problem_name}: fit_map ran without a Laplace approximation")
    ids, scales = lap.parameter_ids, lap.scales

    def q(theta):
        values = {}
        for i, (pid, scale) in enumerate(zip(ids, scales, strict=True)):
            if scale == "log10":
                values[pid] = jnp.power(10.0, theta[i])
            elif scale == "log":
                values[pid] = jnp.exp(theta[i])
            else:
                values[pid] = theta[i]
        return jnp.asarray(quantity(values), dtype=jnp.float64)

    theta = jnp.asarray(lap.theta)
    value = float(q(theta))
    a = np.asarray(jax.grad(q)(theta))
    used = np.flatnonzero(a != 0.0)
    sources = tuple(ids[i] for i in used)
    not_identifiable = tuple(ids[i] for i in used if not lap.identifiable[i])
    n_identifiable = len(sources) - len(not_identifiable)
    if np.any(lap.at_bound[used]):
        sd = math.nan
    else:
        sub = lap.covariance[np.ix_(used, used)]
        sd = float(np.sqrt(a[used] @ sub @ a[used]))
    return Propagated(value, sd, sources, n_identifiable, not_identifiable)


# --------------------------------------------------------------- the adapter
def scale_label(parameter_id: str, scale: str) -> str:
    """How a PEtab-scale value is named in run outputs: ``log10(k)``, ``ln(k)`` or ``k``."""
    return {"log10": f"log10({parameter_id})", "log": f"ln({parameter_id})"}.get(
        scale, parameter_id
    )


@dataclass(frozen=True, eq=False)
class PetabPosterior(Posterior):
    """The :class:`~il6rcc.inference.Posterior` of a PEtab problem (see the module
    docstring): coordinates ``z`` [n_estimated], ``theta`` on the PEtab scales (named
    ``log10(id)`` / ``ln(id)`` / ``id`` in the outputs), the pointwise log-likelihood of
    every measurement (``y``)."""

    problem: PetabProblem
    solver: SolverSettings = DEFAULT_SOLVER

    def __post_init__(self) -> None:
        _bounds(self.problem)  # finite bounds, lower < upper: a clear error otherwise

    @cached_property
    def _theta_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self.problem.parameters.bounds_theta

    @cached_property
    def _log_prior(self):
        return make_log_prior(self.problem)

    def theta(self, z):
        lower, upper = self._theta_bounds
        return jnp.asarray(lower) + jnp.asarray(upper - lower) * jax.nn.sigmoid(z)

    def z_of(self, theta) -> np.ndarray:
        """PEtab-scale values -> coordinates (host side)."""
        lower, upper = self._theta_bounds
        return _to_z(np.asarray(theta, dtype=np.float64), lower, upper)

    @property
    def data(self) -> dict:
        return {}  # the problem's numbers are constants of its compiled simulation

    def initial_point(self) -> np.ndarray:
        return np.zeros(len(self.problem.parameters.estimated_ids))

    @cached_property
    def _solver(self) -> SolverSettings:
        """The solver with ``adjoint="auto"`` resolved for this problem."""
        return gradient_solver(self.problem, self.solver)

    def _evaluate(self, z):
        theta = self.theta(z)
        simulated, sigma, ok, _ = evaluate_for_gradients(self.problem, self._solver, theta)
        ll = measurement_log_likelihoods(
            self.problem, jnp.where(ok, simulated, 1.0), jnp.where(ok, sigma, 1.0)
        )
        ll = jnp.where(ok, ll, -jnp.inf)
        # z ~ Logistic(0, 1) is the flat prior within the bounds (theta uniform)
        log_flat = jnp.sum(jax.nn.log_sigmoid(z) + jax.nn.log_sigmoid(-z))
        lp = log_flat + self._log_prior(theta) + jnp.sum(ll)
        return theta, ll, ok, jnp.where(jnp.isnan(lp), -jnp.inf, lp)

    def log_density(self, x, data):
        return self._evaluate(x)[-1]

    def log_likelihood(self, x, data):
        """The measurements' log-likelihood (PEtab's objective without its priors)."""
        ll = self._evaluate(x)[1]
        total = jnp.sum(ll)
        return jnp.where(jnp.isnan(total), -jnp.inf, total)

    def natural(self, x, data) -> dict:
        return {"theta": self.theta(x)}

    def simulated_observables(self, theta):
        """[n_measurements] simulated observable of every measurement at ``theta``
        (PEtab scales); NaN where the simulation failed."""
        simulated, _, ok, _ = _evaluate(self.problem, self._solver, theta)
        return jnp.where(ok, simulated, jnp.nan)

    def record(self, x, data) -> dict:
        theta, ll, ok, lp = self._evaluate(x)
        return {"theta": theta, "y": ll, "n_failed": jnp.sum(~ok), "log_density": lp}

    def prior_sample(self, key, n: int, data) -> np.ndarray:
        """The bounded prior with the objective priors: uniform proposals within the
        bounds, resampled by importance weight."""
        lower, upper = self._theta_bounds
        k1, k2 = jax.random.split(key)
        u = np.asarray(jax.random.uniform(k1, (20 * n, len(lower))))
        proposals = lower + (upper - lower) * u
        logw = np.asarray(jax.jit(lambda p: jax.lax.map(self._log_prior, p))(proposals))
        logw = np.where(np.isfinite(logw), logw, -np.inf)
        w = np.exp(logw - logw.max())
        pick = np.asarray(jax.random.choice(k2, len(w), (n,), p=jnp.asarray(w / w.sum())))
        return self.z_of(proposals[pick])

    @property
    def coordinate_names(self) -> tuple[str, ...]:
        return tuple(self.problem.parameters.estimated_ids)

    @property
    def layout(self) -> DrawLayout:
        table = self.problem.parameters
        labels = [
            scale_label(pid, table.scales[i])
            for pid, i in zip(table.estimated_ids, table.estimated_index, strict=True)
        ]
        measurements = self.problem.measurement_table.reset_index(drop=True)
        return DrawLayout(
            posterior=("theta",),
            log_likelihood="y",
            dims={"theta": ("parameter",), "y": ("measurement",)},
            coords={
                "parameter": labels,
                "measurement": [f"m{i}" for i in range(self.problem.n_measurements)],
            },
            observed={"y": np.asarray(self.problem.measurements)},
            observation_coords={
                "observable": (
                    "measurement",
                    measurements["observableId"].astype(str).tolist(),
                )
            },
        )


__all__ = [
    "BOUND_TOLERANCE",
    "PetabPosterior",
    "scale_label",
    "LaplaceResult",
    "MapResult",
    "Propagated",
    "fit_map",
    "laplace_approximation",
    "negative_log_posterior",
    "propagate",
]
