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
from ._likelihood import (
    LikelihoodSettings,
    evidence_data,
    reproduced_probability,
    row_log_likelihood,
    row_prediction,
    unit_deltas,
    value_sd_groups,
)
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
    holdout: tuple[str, ...] = ()

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
    holdout_rows=(),
) -> Problem:
    """Bundle a model, evidence arrays and priors into a :class:`Problem`.

    ``holdout_rows``: row ids whose log-likelihood is recorded but not fitted."""
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
        holdout=tuple(holdout_rows),
    )


def _condition_horizons(arrays: EvidenceArrays) -> np.ndarray:
    """Last time each condition is read at (hours)."""
    t_end = np.zeros(arrays.batch.n_conditions)
    times = np.asarray(arrays.times)[np.asarray(arrays.term_time_index)].max(axis=1)
    np.maximum.at(t_end, np.asarray(arrays.term_cond), times)
    return np.where(t_end > 0, t_end, times.max(initial=1.0))


SCALE_CODE = {"lin": 0, "log": 1, "logit": 2}


def problem_data(problem: Problem) -> dict:
    """All numbers the numpyro model needs, as a pytree of numpy arrays.

    It is passed to the model (and to every jitted function built on it) as an
    argument, so compiled programs depend only on shapes: fits of different mechanism
    variants, seeds or evidence values with the same shapes share them (in memory and
    in JAX's persistent compilation cache).
    """
    pri = problem.priors
    arrays = problem.arrays
    b = arrays.batch
    defaults = np.array([problem.model.parameters[i].default for i in pri.index])
    factor = problem.base_rows[:, pri.index] / defaults[None, :]
    keep_factor = (np.asarray(pri.scale) == "log") & ~pri.hierarchical
    slots = np.asarray(arrays.dose_slots, dtype=np.int32).reshape(-1, 2)
    return {
        "base_rows": np.asarray(problem.base_rows, dtype=np.float64),
        "theta_factor": np.where(keep_factor[None, :], factor, 1.0),
        "est_index": np.asarray(pri.index, dtype=np.int32),
        "prior_loc": np.asarray(pri.loc, dtype=np.float64),
        "prior_sd": np.asarray(pri.sd, dtype=np.float64),
        "scale_code": np.array([SCALE_CODE[c] for c in pri.scale], dtype=np.int32),
        "hier_index": np.asarray(problem.hier_index, dtype=np.int32),
        "inputs": np.asarray(b.inputs, dtype=np.float64),
        "dose_cond": slots[:, 0],
        "dose_input": slots[:, 1],
        "dose_nuisance": np.asarray(arrays.dose_nuisance, dtype=np.int32),
        "nuisance_log_median": np.asarray(arrays.nuisance_log_median, dtype=np.float64),
        "nuisance_log_sd": np.asarray(arrays.nuisance_log_sd, dtype=np.float64),
        "noise_groups": np.zeros(len(arrays.noise_groups)),
        "sd_groups": np.asarray(problem.sd_groups, dtype=np.int32),
        "blots": np.zeros(problem.n_blots),
        "param_index": np.asarray(b.param_index, dtype=np.int32),
        "basal_index": np.asarray(b.basal_index, dtype=np.int32),
        "basal_param_index": np.asarray(b.basal_param_index, dtype=np.int32),
        "basal_inputs": np.asarray(b.basal_inputs, dtype=np.float64),
        "times": np.asarray(arrays.times, dtype=np.float64),
        "ev": evidence_data(arrays),
        "row_weight": np.array([0.0 if r in set(problem.holdout) else 1.0 for r in arrays.row_ids]),
    }


def natural(scale_code: jax.Array, unconstrained: jax.Array) -> jax.Array:
    """Unconstrained -> natural scale, column by column (last axis = parameters)."""
    out = jnp.where(scale_code == SCALE_CODE["log"], jnp.exp(unconstrained), unconstrained)
    return jnp.where(scale_code == SCALE_CODE["logit"], jax.nn.sigmoid(unconstrained), out)


def parameter_rows(data: dict, theta_rows: jax.Array) -> jax.Array:
    """Full parameter matrix [n_rows, n_params]: estimated values (natural scale,
    [n_rows, n_estimated]) written into the default rows (cell-line factors kept for
    estimated parameters that are not cell-line-specific)."""
    base = jnp.asarray(data["base_rows"])
    return base.at[:, data["est_index"]].set(theta_rows * data["theta_factor"])


def condition_inputs(data: dict, doses: jax.Array) -> jax.Array:
    """Condition inputs with the unknown doses filled in: [n_conditions, n_inputs]."""
    inputs = jnp.asarray(data["inputs"])
    if data["dose_cond"].shape[0] == 0:
        return inputs
    return inputs.at[data["dose_cond"], data["dose_input"]].set(doses[data["dose_nuisance"]])


def simulate_problem(problem: Problem, data: dict, rows: jax.Array, inputs: jax.Array):
    """Observables [n_c, n_t, n_obs], success [n_c] for given parameter rows and inputs."""
    obs, _, ok, _ = simulate_arrays(
        problem.model,
        problem.solver,
        rows,
        inputs,
        data["param_index"],
        data["basal_index"],
        data["basal_param_index"],
        data["basal_inputs"],
        data["times"],
        groups=problem.groups,
    )
    return obs, ok


def sample_parameters(problem: Problem, data: dict):
    """The prior part of the model: returns (rows, inputs, sigma, blot_scale)."""
    n_est = data["prior_loc"].shape[0]
    n_lines = data["base_rows"].shape[0]
    scale = data["scale_code"]
    z = numpyro.sample("z", dist.Normal(0.0, 1.0).expand([n_est]).to_event(1))
    u = data["prior_loc"] + data["prior_sd"] * z
    u_rows = jnp.broadcast_to(u, (n_lines, n_est))
    hier = data["hier_index"]
    if hier.shape[0]:
        tau = numpyro.sample(
            "tau", dist.HalfNormal(problem.tau_scale).expand([hier.shape[0]]).to_event(1)
        )
        z_cell = numpyro.sample(
            "z_cell", dist.Normal(0.0, 1.0).expand([n_lines, hier.shape[0]]).to_event(2)
        )
        u_rows = u_rows.at[:, hier].add(tau[None, :] * z_cell)
        numpyro.deterministic("theta_cell", natural(scale, u_rows)[:, hier])
    theta_rows = natural(scale, u_rows)
    numpyro.deterministic("theta", natural(scale, u))
    n_nuis = data["nuisance_log_median"].shape[0]
    if n_nuis:
        z_dose = numpyro.sample("z_dose", dist.Normal(0.0, 1.0).expand([n_nuis]).to_event(1))
        doses = jnp.exp(data["nuisance_log_median"] + data["nuisance_log_sd"] * z_dose)
        numpyro.deterministic("dose", doses)
    else:
        doses = jnp.zeros(0)
    sigma = jnp.ones(data["noise_groups"].shape[0])
    n_sd = data["sd_groups"].shape[0]
    if n_sd:
        s = numpyro.sample(
            "sigma", dist.HalfNormal(problem.likelihood.noise_scale).expand([n_sd]).to_event(1)
        )
        sigma = sigma.at[data["sd_groups"]].set(s)
    n_blots = data["blots"].shape[0]
    if n_blots:
        blot = numpyro.sample(
            "blot_scale",
            dist.Normal(0.0, problem.likelihood.blot_scale_sd).expand([n_blots]).to_event(1),
        )
    else:
        blot = jnp.zeros(0)
    return parameter_rows(data, theta_rows), condition_inputs(data, doses), sigma, blot


def model_fn(problem: Problem):
    """The numpyro model of a problem; call it with :func:`problem_data` as argument."""

    def numpyro_model(data):
        rows, inputs, sigma, blot = sample_parameters(problem, data)
        obs, ok = simulate_problem(problem, data, rows, inputs)
        ev = data["ev"]
        row_llh = row_log_likelihood(ev, obs, ok, problem.likelihood, sigma, blot)
        all_ok = jnp.all(ok)
        delta = unit_deltas(ev, obs, ok)
        numpyro.deterministic("reproduced", reproduced_probability(ev, delta, problem.likelihood))
        numpyro.deterministic("predicted", row_prediction(ev, delta, blot))
        numpyro.deterministic("n_failed", jnp.sum(~ok))
        numpyro.deterministic("log_lik", jnp.where(all_ok, row_llh, -jnp.inf))
        fitted = jnp.sum(data["row_weight"] * row_llh)
        numpyro.factor("evidence", jnp.where(all_ok, fitted, -jnp.inf))

    return numpyro_model


def coordinate_names(problem: Problem, unravel, n: int) -> list[str]:
    """Readable name of every coordinate of the flat unconstrained vector (``unravel``
    from :func:`il6rcc.inference._map.potential_and_unravel`): the parameter, cell line,
    nuisance dose, noise group or blot behind it (tau and sigma are on the log scale)."""
    pri = problem.priors
    hier = [pri.names[i] for i in problem.hier_index]
    a = problem.arrays
    label = {
        "z": lambda i: pri.names[i[0]],
        "tau": lambda i: f"log tau[{hier[i[0]]}]",
        "z_cell": lambda i: f"z_cell[{problem.row_names[i[0]]}, {hier[i[1]]}]",
        "z_dose": lambda i: f"dose[{a.nuisance_names[i[0]]}]",
        "sigma": lambda i: f"log sigma[{a.noise_groups[problem.sd_groups[i[0]]]}]",
        "blot_scale": lambda i: f"blot_scale[{a.scale_groups[i[0]]}]",
    }
    names = [""] * n
    for site, idx in unravel(jnp.arange(n, dtype=jnp.float64)).items():
        idx = np.asarray(idx)
        for pos in np.ndindex(idx.shape):
            fn = label.get(site, lambda i, site=site: f"{site}{list(i)}")
            names[int(idx[pos])] = fn(pos)
    return names


def prior_fn(problem: Problem):
    """The prior alone (for prior draws without solving ODEs); same argument."""

    def numpyro_prior(data):
        sample_parameters(problem, data)

    return numpyro_prior


__all__ = [
    "Problem",
    "condition_inputs",
    "coordinate_names",
    "make_problem",
    "model_fn",
    "natural",
    "parameter_rows",
    "prior_fn",
    "problem_data",
    "sample_parameters",
    "simulate_problem",
]
