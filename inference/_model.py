"""The numpyro model: priors (+ hierarchy) -> simulate -> evidence likelihood.

Sample sites, all standardised so that the sampler sees unit-scale coordinates:

* ``z`` [n_estimated]: theta = transform(loc + sd * z), the shared parameters;
* ``tau`` [n_hierarchical] ~ HalfNormal(tau_scale) and ``z_cell`` [n_cell_lines,
  n_hierarchical] ~ Normal(0, 1): cell-line-specific parameters, non-centred,
  unconstrained(theta_c) = unconstrained(theta) + tau * z_c;
* ``z_dose`` [n_nuisance]: unknown doses, log-normal around their documented priors;
* ``sigma`` [n_noise]: log-scale noise of the assays whose values carry no spread;
* ``blot_scale`` [n_blots]: one unknown log scale per western blot.

Estimated parameters that are not cell-line-specific keep the model's default
cell-line factors (fixed modelling assumptions); cell-line-specific ones are set by
the hierarchy alone. A failed solve makes the log density -inf (numpyro counts the
transition as divergent) and is counted in the deterministic ``n_failed``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from ..data import EvidenceArrays
from ..models import ODEModel, SolverSettings, simulate_arrays
from ..models._simulate import Groups
from ._likelihood import LikelihoodSettings, row_log_likelihood, value_sd_groups
from ._priors import PriorSpec


@dataclass(frozen=True)
class Problem:
    """Everything the numpyro model needs (numpy constants; built by :func:`make_problem`)."""

    model: ODEModel
    solver: SolverSettings
    arrays: EvidenceArrays
    priors: PriorSpec
    likelihood: LikelihoodSettings
    base_rows: np.ndarray
    groups: Groups | None
    sd_groups: np.ndarray
    tau_scale: float = 0.5
    noise_scale: float = 0.5
    blot_scale_sd: float = 2.0

    @property
    def hier_index(self) -> np.ndarray:
        return np.flatnonzero(self.priors.hierarchical)

    @property
    def row_names(self) -> tuple[str, ...]:
        return self.arrays.batch.row_names

    @property
    def n_blots(self) -> int:
        return len(self.arrays.scale_groups)


def make_problem(
    model: ODEModel,
    solver: SolverSettings,
    arrays: EvidenceArrays,
    priors: PriorSpec,
    likelihood: LikelihoodSettings | None = None,
    tau_scale: float = 0.5,
    noise_scale: float = 0.5,
    blot_scale_sd: float = 2.0,
) -> Problem:
    """Bundle a model, evidence arrays and priors into a :class:`Problem`."""
    batch = arrays.batch
    base_rows = np.stack([model.default_params(r) for r in batch.row_names])
    pre = model.pretreatment_mask()
    slots = np.asarray(arrays.dose_slots).reshape(-1, 2)
    if slots.size and np.any(pre[slots[:, 1]] > 0):
        raise ValueError("an unknown dose fills a pre-treatment input; doses must be treatments")
    t_end = _condition_horizons(arrays)
    batch_t = dataclasses.replace(batch, t_end=t_end)
    arrays = dataclasses.replace(arrays, batch=batch_t)
    return Problem(
        model=model,
        solver=solver,
        arrays=arrays,
        priors=priors,
        likelihood=likelihood or LikelihoodSettings(),
        base_rows=base_rows,
        # One lock-step batch: the xenograft horizons (weeks) take about as many
        # adaptive steps as the in-vitro ones (hours), and every extra group is an extra
        # solver loop to compile.
        groups=None,
        sd_groups=value_sd_groups(arrays),
        tau_scale=tau_scale,
        noise_scale=noise_scale,
        blot_scale_sd=blot_scale_sd,
    )


def _condition_horizons(arrays: EvidenceArrays) -> np.ndarray:
    """Last time each condition is read at (hours)."""
    t_end = np.zeros(arrays.batch.n_conditions)
    times = np.asarray(arrays.times)[np.asarray(arrays.term_time_index)].max(axis=1)
    np.maximum.at(t_end, np.asarray(arrays.term_cond), times)
    return np.where(t_end > 0, t_end, times.max(initial=1.0))


def natural(priors: PriorSpec, unconstrained: jax.Array) -> jax.Array:
    """Unconstrained -> natural scale, column by column (last axis = parameters)."""
    scale = np.asarray(priors.scale)
    out = unconstrained
    out = jnp.where(scale == "log", jnp.exp(unconstrained), out)
    return jnp.where(scale == "logit", jax.nn.sigmoid(unconstrained), out)


def parameter_rows(problem: Problem, theta_rows: jax.Array) -> jax.Array:
    """Full parameter matrix [n_rows, n_params]: estimated values (natural scale,
    [n_rows, n_estimated]) written into the default rows."""
    pri = problem.priors
    base = jnp.asarray(problem.base_rows)
    defaults = np.array([problem.model.parameters[i].default for i in pri.index])
    factor = problem.base_rows[:, pri.index] / defaults[None, :]
    keep_factor = (np.asarray(pri.scale) == "log") & ~pri.hierarchical
    theta_rows = theta_rows * jnp.asarray(np.where(keep_factor[None, :], factor, 1.0))
    return base.at[:, pri.index].set(theta_rows)


def condition_inputs(problem: Problem, doses: jax.Array) -> jax.Array:
    """Condition inputs with the unknown doses filled in: [n_conditions, n_inputs]."""
    arrays = problem.arrays
    inputs = jnp.asarray(arrays.batch.inputs)
    slots = np.asarray(arrays.dose_slots).reshape(-1, 2)
    if slots.shape[0] == 0:
        return inputs
    return inputs.at[slots[:, 0], slots[:, 1]].set(doses[np.asarray(arrays.dose_nuisance)])


def simulate_problem(problem: Problem, rows: jax.Array, inputs: jax.Array):
    """Observables [n_c, n_t, n_obs], success [n_c] for given parameter rows and inputs."""
    b = problem.arrays.batch
    obs, _, ok, _ = simulate_arrays(
        problem.model,
        problem.solver,
        rows,
        inputs,
        jnp.asarray(b.param_index),
        jnp.asarray(b.basal_index),
        jnp.asarray(b.basal_param_index),
        jnp.asarray(b.basal_inputs),
        jnp.asarray(problem.arrays.times),
        groups=problem.groups,
    )
    return obs, ok


def sample_parameters(problem: Problem):
    """The prior part of the model: returns (rows, inputs, sigma, blot_scale)."""
    pri = problem.priors
    arrays = problem.arrays
    z = numpyro.sample("z", dist.Normal(0.0, 1.0).expand([pri.n]).to_event(1))
    u = jnp.asarray(pri.loc) + jnp.asarray(pri.sd) * z
    n_lines = len(problem.row_names)
    u_rows = jnp.broadcast_to(u, (n_lines, pri.n))
    hier = problem.hier_index
    if hier.size:
        tau = numpyro.sample(
            "tau", dist.HalfNormal(problem.tau_scale).expand([hier.size]).to_event(1)
        )
        z_cell = numpyro.sample(
            "z_cell", dist.Normal(0.0, 1.0).expand([n_lines, hier.size]).to_event(2)
        )
        u_rows = u_rows.at[:, hier].add(tau[None, :] * z_cell)
        numpyro.deterministic("theta_cell", natural(pri, u_rows)[:, hier])
    theta_rows = natural(pri, u_rows)
    numpyro.deterministic("theta", natural(pri, u))
    n_nuis = len(arrays.nuisance_names)
    if n_nuis:
        z_dose = numpyro.sample("z_dose", dist.Normal(0.0, 1.0).expand([n_nuis]).to_event(1))
        doses = jnp.exp(
            jnp.asarray(arrays.nuisance_log_median) + jnp.asarray(arrays.nuisance_log_sd) * z_dose
        )
        numpyro.deterministic("dose", doses)
    else:
        doses = jnp.zeros(0)
    n_noise = len(arrays.noise_groups)
    sigma = jnp.ones(n_noise)
    if problem.sd_groups.size:
        s = numpyro.sample(
            "sigma",
            dist.HalfNormal(problem.noise_scale).expand([problem.sd_groups.size]).to_event(1),
        )
        sigma = sigma.at[problem.sd_groups].set(s)
    if problem.n_blots:
        blot = numpyro.sample(
            "blot_scale",
            dist.Normal(0.0, problem.blot_scale_sd).expand([problem.n_blots]).to_event(1),
        )
    else:
        blot = jnp.zeros(0)
    return parameter_rows(problem, theta_rows), condition_inputs(problem, doses), sigma, blot


def model_fn(problem: Problem):
    """The numpyro model function (no arguments) of a problem."""

    def numpyro_model():
        rows, inputs, sigma, blot = sample_parameters(problem)
        obs, ok = simulate_problem(problem, rows, inputs)
        row_llh = row_log_likelihood(problem.arrays, obs, ok, problem.likelihood, sigma, blot)
        all_ok = jnp.all(ok)
        numpyro.deterministic("n_failed", jnp.sum(~ok))
        numpyro.deterministic("log_lik", jnp.where(all_ok, row_llh, -jnp.inf))
        numpyro.factor("evidence", jnp.where(all_ok, jnp.sum(row_llh), -jnp.inf))

    return numpyro_model


def prior_fn(problem: Problem):
    """The prior alone (for prior draws without solving ODEs)."""

    def numpyro_prior():
        sample_parameters(problem)

    return numpyro_prior


__all__ = [
    "Problem",
    "condition_inputs",
    "make_problem",
    "model_fn",
    "natural",
    "parameter_rows",
    "prior_fn",
    "sample_parameters",
    "simulate_problem",
]
