"""PEtab observables, noise models, log-likelihood and log-prior, as JAX functions.

Noise model of one measurement ``y`` with simulated observable ``m`` and noise
parameter ``sigma`` (PEtab v1, the convention of AMICI's benchmark values): with
``h`` the observable transformation (identity, ``ln`` or ``log10``) and
``r = h(y) - h(m)``,

* normal: ``log p = -log(2 pi sigma^2) / 2 - r^2 / (2 sigma^2) - log|h'(y)|^-1``
* Laplace: ``log p = -log(2 sigma) - |r| / sigma - log|h'(y)|^-1``

where the last term, ``log y`` for ``log`` and ``log y + log(ln 10)`` for ``log10``,
makes ``p`` a density of the untransformed measurement.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from petab.v1 import C

from ..errors import PetabError
from ..models import SolverSettings
from ..runtime import require_x64
from ._math import JaxBackend, evaluate
from ._problem import ParameterTable, PetabProblem
from ._simulate import describe_failures, simulate_states

#: Default solver for PEtab problems: the tolerances of AMICI's benchmark reference
#: values; conditions are solved one after another (``map``) because their step counts
#: differ widely (Bachmann: 104-705 steps) and a vmapped batch takes the slowest one's
#: steps for all (Bachmann forward 1.0 s with ``map`` vs 3.9 s with ``vmap``, 2 CPUs).
#: The implicit stages' root finder stops at 0.1 x rtol/atol in an RMS norm (CVODES's
#: nonlinear tolerance and norm): with the max norm at 1e-2 x 1e-8, rounding on
#: Laske_PLOSComputBiol2019 (stoichiometries up to 2932) kept it from converging, the
#: solve rejected most steps and failed (see :class:`il6rcc.models.SolverSettings`).
#: Gradients: ``adjoint="auto"`` (see :func:`gradient_solver`).
DEFAULT_SOLVER = SolverSettings(
    rtol=1e-8,
    atol=1e-8,
    max_steps=100_000,
    batching="map",
    root_tol_factor=0.1,
    root_norm="rms",
    adjoint="auto",
)

#: With ``adjoint="auto"``, problems with at most this many estimated parameters get
#: their gradients by forward sensitivities (one tangent per parameter carried along
#: the solve, as CVODES's forward sensitivity analysis), larger ones by reverse mode
#: through diffrax's checkpointed adjoint. Measured interleaved (benchmarks/RESULTS.md,
#: "Forward sensitivities"): on Boehm_JProteomeRes2014 (9 parameters) forward 29.5 ms
#: against reverse 62.7 ms.
FORWARD_MAX_PARAMETERS = 20


def gradient_solver(problem: PetabProblem, solver: SolverSettings) -> SolverSettings:
    """``solver`` with ``adjoint="auto"`` resolved for ``problem``: ``forward`` when it
    estimates at most :data:`FORWARD_MAX_PARAMETERS` parameters, else
    ``recursive_checkpoint``; any other setting unchanged."""
    if solver.adjoint != "auto":
        return solver
    n = len(problem.parameters.estimated_ids)
    choice = "forward" if n <= FORWARD_MAX_PARAMETERS else "recursive_checkpoint"
    return dataclasses.replace(solver, adjoint=choice)


def observables_and_sigmas(problem: PetabProblem, parameter_values, pool, states, params):
    """Simulated observable values and noise parameters of every measurement.

    Args:
        parameter_values: [n_parameters] PEtab parameters (linear scale).
        pool: [n_pool] (:meth:`PetabProblem.pool`).
        states, params: [n_sim, n_times + 1, n_states | n_params] states and model
            parameters at each time (:class:`._simulate.Trajectories`).

    Returns:
        ``(simulated [n_meas], sigma [n_meas])``, untransformed, in the order of the
        measurement table.
    """
    model = problem.model
    petab_index = {pid: i for i, pid in enumerate(problem.parameters.ids)}
    output = {pid: parameter_values[petab_index[pid]] for pid in problem.output_parameter_ids}
    times = jnp.asarray(np.append(problem.times, np.inf))
    sims, sigmas, order = [], [], []
    for k, obs in enumerate(problem.observables):
        idx = np.flatnonzero(problem.measurement_observable_index == k)
        if idx.size == 0:
            continue
        where = (problem.measurement_simulation_index[idx], problem.measurement_time_index[idx])
        p, y = params[where], states[where]
        t = times[problem.measurement_time_index[idx]]
        ph_obs = pool[problem.observable_parameter_index[idx, : obs.n_observable_parameters]]
        ph_noise = pool[problem.noise_parameter_index[idx, : obs.n_noise_parameters]]

        def one(p, y, t, ph_obs, ph_noise, obs=obs):
            extra = dict(output)
            for j in range(obs.n_observable_parameters):
                extra[f"observableParameter{j + 1}_{obs.id}"] = ph_obs[j]
            for j in range(obs.n_noise_parameters):
                extra[f"noiseParameter{j + 1}_{obs.id}"] = ph_noise[j]
            env = model.expression_env(t, y, p, extra)
            m = jnp.asarray(evaluate(obs.formula, env, t, JaxBackend), dtype=jnp.float64)
            env.set(obs.id, m)
            s = jnp.asarray(evaluate(obs.noise_formula, env, t, JaxBackend), dtype=jnp.float64)
            return m, s

        m, s = jax.vmap(one)(p, y, t, ph_obs, ph_noise)
        sims.append(m)
        sigmas.append(s)
        order.append(idx)
    inverse = np.argsort(np.concatenate(order))
    return jnp.concatenate(sims)[inverse], jnp.concatenate(sigmas)[inverse]


def measurement_log_likelihoods(problem: PetabProblem, simulated, sigma) -> jnp.ndarray:
    """[n_meas] log-density of each measurement (see the module docstring)."""
    y_all = jnp.asarray(problem.measurements)
    out = jnp.zeros(problem.n_measurements)
    for k, obs in enumerate(problem.observables):
        idx = np.flatnonzero(problem.measurement_observable_index == k)
        if idx.size == 0:
            continue
        y, m, s = y_all[idx], simulated[idx], sigma[idx]
        if obs.transformation == "lin":
            r, jac = y - m, 0.0
        elif obs.transformation == "log":
            r, jac = jnp.log(y) - jnp.log(m), jnp.log(y)
        else:
            r, jac = jnp.log10(y) - jnp.log10(m), jnp.log(y) + math.log(math.log(10.0))
        if obs.noise_distribution == "normal":
            ll = -0.5 * jnp.log(2.0 * jnp.pi * s**2) - 0.5 * (r / s) ** 2 - jac
        else:
            ll = -jnp.log(2.0 * s) - jnp.abs(r) / s - jac
        out = out.at[idx].set(ll)
    return out


@partial(jax.jit, static_argnums=(0, 1, 3))
def simulate_measurements(
    problem: PetabProblem, solver: SolverSettings, theta, max_event_segments: int | None = None
):
    """Simulated observables and noise parameters [n_meas] and the simulations'
    :class:`._simulate.Trajectories`. Compiled once per problem object and solver (a
    :class:`PetabProblem` hashes by identity)."""
    values = problem.parameters.values(theta)
    pool = problem.pool(values)
    traj = simulate_states(problem, solver, pool, max_event_segments)
    ok = traj.ok
    safe = jnp.where(ok[:, None, None], traj.states, 1.0)  # keeps NaN out of gradients
    simulated, sigma = observables_and_sigmas(problem, values, pool, safe, traj.params)
    return simulated, sigma, traj


def _evaluate(
    problem: PetabProblem, solver: SolverSettings, theta, max_event_segments: int | None = None
):
    """Simulated observables, noise parameters [n_meas], per-measurement success and
    per-simulation step counts (differentiable in either mode with ``solver``'s adjoint;
    see :func:`evaluate_for_gradients` for reverse-mode users of forward sensitivities)."""
    simulated, sigma, traj = simulate_measurements(problem, solver, theta, max_event_segments)
    return simulated, sigma, traj.ok[problem.measurement_simulation_index], traj.num_steps


@partial(jax.custom_vjp, nondiff_argnums=(0, 1, 3))
def _forward_sensitivities(problem, solver, theta, max_event_segments):
    return _evaluate(problem, solver, theta, max_event_segments)


def _forward_sensitivities_fwd(problem, solver, theta, max_event_segments):
    def outputs(th):
        out = _evaluate(problem, solver, th, max_event_segments)
        return out[:2], out

    # one primal solve with n_estimated tangents carried along it
    jacobians, out = jax.jacfwd(outputs, has_aux=True)(theta)
    return out, jacobians


def _forward_sensitivities_bwd(problem, solver, max_event_segments, jacobians, cotangents):
    d_simulated, d_sigma = jacobians  # [n_meas, n_estimated] each
    c_simulated, c_sigma = cotangents[:2]  # success flags and step counts carry none
    return (c_simulated @ d_simulated + c_sigma @ d_sigma,)


_forward_sensitivities.defvjp(_forward_sensitivities_fwd, _forward_sensitivities_bwd)


def evaluate_for_gradients(
    problem: PetabProblem, solver: SolverSettings, theta, max_event_segments: int | None = None
):
    """:func:`_evaluate` for callers that differentiate in reverse mode (``jax.grad``,
    NUTS, BFGS). With ``solver.adjoint == "forward"`` the gradient comes from forward
    sensitivities (``jax.jacfwd`` inside a custom VJP), which is faster than reverse
    mode for problems with few parameters; then the result must not be differentiated
    in forward mode again (use :func:`_evaluate` for that). ``solver`` must be resolved
    (:func:`gradient_solver`)."""
    if solver.adjoint == "forward":
        simulated, sigma, ok, steps = _forward_sensitivities(
            problem, solver, theta, max_event_segments
        )
        # the flags and counts carry no derivative; without this, a vmapped gradient
        # would ask for the (undefined) derivative of ``jnp.all(ok)``
        return simulated, sigma, jax.lax.stop_gradient(ok), jax.lax.stop_gradient(steps)
    return _evaluate(problem, solver, theta, max_event_segments)


def make_llh(
    problem: PetabProblem,
    solver: SolverSettings | None = None,
    max_event_segments: int | None = None,
) -> tuple[Callable[[jax.Array], jax.Array], ParameterTable]:
    """The log-likelihood as a jitted, differentiable function of the estimated
    parameters.

    Returns:
        ``(llh, table)``: ``llh(theta)`` takes ``theta`` [n_estimated], the estimated
        parameters (``table.estimated_ids``) on their PEtab scales, and returns the
        scalar log-likelihood (``-inf`` when a simulation fails); ``table`` is the
        parameter table (``table.nominal_theta`` gives the nominal point).
    """
    require_x64()
    solver = gradient_solver(problem, solver or DEFAULT_SOLVER)

    @jax.jit
    def llh(theta):
        simulated, sigma, ok, _ = evaluate_for_gradients(problem, solver, theta, max_event_segments)
        safe_sim = jnp.where(ok, simulated, 1.0)
        safe_sigma = jnp.where(ok, sigma, 1.0)
        total = jnp.sum(measurement_log_likelihoods(problem, safe_sim, safe_sigma))
        return jnp.where(jnp.all(ok), total, -jnp.inf)

    return llh, problem.parameters


def _theta(problem: PetabProblem, theta) -> np.ndarray:
    table = problem.parameters
    if theta is None:
        theta = table.nominal_theta
        bad = [table.estimated_ids[i] for i in np.flatnonzero(~np.isfinite(theta))]
        if bad:
            raise PetabError(
                f"{problem.name}: estimated parameter(s) {bad} have no valid nominalValue; "
                f"pass parameter values explicitly"
            )
    theta = np.asarray(theta, dtype=np.float64)
    if theta.shape != (len(table.estimated_index),):
        raise PetabError(
            f"{problem.name}: expected {len(table.estimated_index)} estimated parameter "
            f"values (on their PEtab scales), got an array of shape {theta.shape}"
        )
    return theta


def simulation_table(
    problem: PetabProblem,
    theta=None,
    solver: SolverSettings | None = None,
    max_event_segments: int | None = None,
) -> pd.DataFrame:
    """Simulate every measurement; a PEtab simulation table (the measurement table
    with ``simulation`` in place of ``measurement``) plus ``sigma``, ``llh`` and
    ``success`` columns. ``theta``: estimated parameters on their scales (default:
    nominal values)."""
    require_x64()
    solver = solver or DEFAULT_SOLVER
    theta = _theta(problem, theta)
    simulated, sigma, traj = simulate_measurements(
        problem, solver, jnp.asarray(theta), max_event_segments
    )
    ok = traj.ok[problem.measurement_simulation_index]
    ll = measurement_log_likelihoods(problem, simulated, sigma)
    table = problem.measurement_table.copy()
    table = table.rename(columns={C.MEASUREMENT: C.SIMULATION})
    table[C.SIMULATION] = np.asarray(simulated)
    table["sigma"] = np.asarray(sigma)
    table["llh"] = np.asarray(ll)
    table["success"] = np.asarray(ok)
    table.attrs["failures"] = describe_failures(problem, traj, solver)
    table.attrs["num_steps"] = np.asarray(traj.num_steps).tolist()
    return table


def log_likelihood(
    problem: PetabProblem,
    theta=None,
    solver: SolverSettings | None = None,
    max_event_segments: int | None = None,
) -> float:
    """Log-likelihood at ``theta`` (estimated parameters on their scales; default:
    the nominal values), with host-side checks: a failed simulation or a noise
    parameter <= 0 raises :class:`PetabError` naming the measurements."""
    table = simulation_table(problem, theta, solver, max_event_segments)
    lines = list(range(2, len(table) + 2))
    failed = [lines[i] for i in np.flatnonzero(~table["success"].to_numpy())]
    if failed:
        raise PetabError(
            f"{problem.name}: the simulation failed for measurement line(s) {failed[:10]}"
            f"{' ...' if len(failed) > 10 else ''}:\n  - " + "\n  - ".join(table.attrs["failures"])
        )
    bad = np.flatnonzero(~(table["sigma"].to_numpy() > 0))
    if bad.size:
        raise PetabError(
            f"{problem.name}: noise parameter (sigma) <= 0 or NaN for measurement line(s) "
            f"{[lines[i] for i in bad[:10]]}: {table['sigma'].to_numpy()[bad[:10]].tolist()}; "
            f"expected > 0"
        )
    return float(table["llh"].sum())


# ------------------------------------------------------------------------ priors
def make_log_prior(problem: PetabProblem) -> Callable[[jax.Array], jax.Array]:
    """Log-density of the PEtab objective priors of the estimated parameters, as a
    function of ``theta`` [n_estimated] on the parameters' scales.

    Priors on the linear scale (``uniform``, ``normal``, ``laplace``, ``logNormal``,
    ``logLaplace``) are densities of the linear value and include the change of
    variables to ``theta``; ``parameterScale*`` priors are densities of ``theta``.
    Parameters without a prior get a flat prior; values outside the bounds give
    ``-inf``.
    """
    table = problem.parameters
    idx = table.estimated_index
    lower, upper = table.bounds_theta
    kinds = [table.prior_types[i] for i in idx]
    pars = table.prior_parameters[idx]
    scales = [table.scales[i] for i in idx]

    def log_prior(theta):
        theta = jnp.asarray(theta)
        total = jnp.zeros(())
        for j, (kind, scale) in enumerate(zip(kinds, scales, strict=True)):
            th = theta[j]
            a, b = pars[j]
            if kind.startswith("parameterScale") or not kind:
                x, log_jac = th, 0.0
            elif scale == "log":
                x, log_jac = jnp.exp(th), th
            elif scale == "log10":
                x, log_jac = jnp.power(10.0, th), th * math.log(10.0) + math.log(math.log(10.0))
            else:
                x, log_jac = th, 0.0
            if kind in ("", C.UNIFORM, C.PARAMETER_SCALE_UNIFORM):
                lp = 0.0 if kind == "" or not np.isfinite(a) else -math.log(b - a)
                if kind in (C.UNIFORM, C.PARAMETER_SCALE_UNIFORM) and np.isfinite(a):
                    lp = jnp.where((x >= a) & (x <= b), lp, -jnp.inf)
            elif kind in (C.NORMAL, C.PARAMETER_SCALE_NORMAL):
                lp = -0.5 * math.log(2 * math.pi * b**2) - 0.5 * ((x - a) / b) ** 2
            elif kind in (C.LAPLACE, C.PARAMETER_SCALE_LAPLACE):
                lp = -math.log(2 * b) - jnp.abs(x - a) / b
            elif kind == C.LOG_NORMAL:
                lx = jnp.log(x)
                lp = -0.5 * math.log(2 * math.pi * b**2) - 0.5 * ((lx - a) / b) ** 2 - lx
            elif kind == C.LOG_LAPLACE:
                lx = jnp.log(x)
                lp = -math.log(2 * b) - jnp.abs(lx - a) / b - lx
            else:  # pragma: no cover - lint rejects other types
                raise PetabError(f"unknown prior type {kind!r}")
            inside = (th >= lower[j]) & (th <= upper[j])
            total = total + jnp.where(inside, lp + log_jac, -jnp.inf)
        return total

    return jax.jit(log_prior)


__all__ = [
    "DEFAULT_SOLVER",
    "FORWARD_MAX_PARAMETERS",
    "evaluate_for_gradients",
    "gradient_solver",
    "log_likelihood",
    "make_llh",
    "make_log_prior",
    "measurement_log_likelihoods",
    "observables_and_sigmas",
    "simulate_measurements",
    "simulation_table",
]
