"""The evidence posterior: priors (+ hierarchy) -> simulate -> evidence likelihood.

The adapter of any :class:`~il6rcc.models.ODEModel` fitted to evidence tables (the RCC
circuit, or a user's model) to the :class:`~il6rcc.inference.Posterior` interface.

Coordinates of ``x``, in this order, each standardised so that the prior alone has
unit scale:

* ``z`` [n_estimated]: theta = transform(loc + sd * z), the shared parameters;
* ``log tau`` [n_hierarchical], tau ~ HalfNormal(tau_scale), and ``z_cell``
  [n_cell_lines, n_hierarchical] ~ Normal(0, 1): the cell-line-specific parameters,
  non-centred, unconstrained(theta_c) = unconstrained(theta) + tau * z_c;
* ``z_dose`` [n_nuisance]: unknown doses, log-normal around their documented priors;
* ``log sigma`` [n_noise] ~ Normal(log noise_scale, noise_log_sd): log-scale noise of
  the assays whose values carry no spread (a log-normal sigma, see
  :class:`~il6rcc.inference.LikelihoodSettings`);
* ``blot_scale`` [n_blots] ~ Normal(0, blot_scale_sd): one unknown log scale per blot.

How the estimated values reach each cell line's parameter row (transforms and
cell-line factors) is the :class:`~il6rcc.inference.Parameterisation`'s rule. A failed
solve makes the log density -inf and is counted in ``n_failed``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.stats import norm

from ..data import ROW_KINDS, EvidenceArrays
from ..models import ODEModel, SolverSettings, simulate_arrays
from ._likelihood import (
    LikelihoodSettings,
    likelihood_arrays,
    reproduction_probability,
    row_log_likelihood,
    row_prediction,
    unit_deltas,
    value_sd_groups,
)
from ._parameterisation import Parameterisation
from ._posterior import DrawLayout, Posterior

_HALF_LOG_2_OVER_PI = 0.5 * float(np.log(2.0 / np.pi))


@dataclass(frozen=True, eq=False)
class EvidenceProblem:
    """A model, its solver, evidence arrays and the parameterisation (numpy constants;
    built by :func:`make_evidence_problem`).

    ``base_rows`` [n_lines, n_params]: the model's defaults of each fitted cell line
    (``row_names``); ``holdout``: row ids whose log-likelihood is recorded but not fitted.
    """

    model: ODEModel
    solver: SolverSettings
    arrays: EvidenceArrays
    parameterisation: Parameterisation
    likelihood: LikelihoodSettings
    base_rows: np.ndarray
    sd_groups: np.ndarray
    tau_scale: float = 0.5
    holdout: tuple[str, ...] = ()

    @property
    def hier_index(self) -> np.ndarray:
        return np.asarray(self.parameterisation.hier_index, dtype=np.int32)

    @property
    def row_names(self) -> tuple[str, ...]:
        """The fitted cell lines, in the order of ``base_rows``."""
        return self.arrays.batch.row_names

    @property
    def n_blots(self) -> int:
        return len(self.arrays.scale_groups)


def make_evidence_problem(
    model: ODEModel,
    solver: SolverSettings,
    arrays: EvidenceArrays,
    parameterisation: Parameterisation,
    likelihood: LikelihoodSettings | None = None,
    tau_scale: float = 0.5,
    holdout_rows=(),
) -> EvidenceProblem:
    """Bundle a model, evidence arrays and the parameterisation into an
    :class:`EvidenceProblem`. ``holdout_rows``: row ids whose log-likelihood is recorded
    but not fitted."""
    batch = arrays.batch
    base_rows = np.stack([model.default_params(r) for r in batch.row_names])
    pre = model.pretreatment_mask()
    slots = np.asarray(arrays.dose_slots).reshape(-1, 2)
    if slots.size and np.any(pre[slots[:, 1]] > 0):
        raise ValueError("an unknown dose fills a pre-treatment input; doses must be treatments")
    batch_t = dataclasses.replace(batch, t_end=_condition_horizons(arrays))
    return EvidenceProblem(
        model=model,
        solver=solver,
        arrays=dataclasses.replace(arrays, batch=batch_t),
        parameterisation=parameterisation,
        likelihood=likelihood or LikelihoodSettings(),
        base_rows=base_rows,
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


class EvidenceData(NamedTuple):
    """Every number the evidence posterior needs: the data argument of its compiled
    functions (arrays only, so programs depend on shapes, not values). Built from an
    :class:`EvidenceProblem` by :meth:`EvidenceData.from_problem`."""

    parameterisation: Parameterisation
    base_rows: np.ndarray  # [n_lines, n_params] defaults of each fitted line
    row_factor: np.ndarray  # [n_lines, n_estimated] cell-line factors of those lines
    inputs: np.ndarray  # [n_conditions, n_inputs]
    dose_cond: np.ndarray  # [n_slots] condition of each unknown dose
    dose_input: np.ndarray  # [n_slots] input it fills
    dose_nuisance: np.ndarray  # [n_slots] which nuisance dose
    nuisance_log_median: np.ndarray
    nuisance_log_sd: np.ndarray
    noise_groups: np.ndarray  # [n_noise_groups] zeros (its shape is the count)
    sd_groups: np.ndarray  # noise groups with a sampled sigma
    blots: np.ndarray  # [n_blots] zeros (its shape is the count)
    param_index: np.ndarray
    basal_index: np.ndarray
    basal_param_index: np.ndarray
    basal_inputs: np.ndarray
    basal_reference_index: np.ndarray
    times: np.ndarray
    ev: dict  # the rows' arrays (:func:`il6rcc.inference.likelihood_arrays`)
    row_weight: np.ndarray  # [n_rows] 1 for fitted rows, 0 for held-out rows

    @classmethod
    def from_problem(cls, problem: EvidenceProblem) -> EvidenceData:
        """The posterior's data argument of an evidence problem: its evidence arrays,
        parameterisation and settings packed as plain arrays (numpy; cast with
        ``jax.tree.map(jnp.asarray, ...)`` to pass them to compiled functions)."""
        param = problem.parameterisation
        arrays = problem.arrays
        b = arrays.batch
        slots = np.asarray(arrays.dose_slots, dtype=np.int32).reshape(-1, 2)
        holdout = set(problem.holdout)
        return cls(
            parameterisation=param,
            base_rows=np.asarray(problem.base_rows, dtype=np.float64),
            row_factor=param.factors(problem.row_names),
            inputs=np.asarray(b.inputs, dtype=np.float64),
            dose_cond=slots[:, 0],
            dose_input=slots[:, 1],
            dose_nuisance=np.asarray(arrays.dose_nuisance, dtype=np.int32),
            nuisance_log_median=np.asarray(arrays.nuisance_log_median, dtype=np.float64),
            nuisance_log_sd=np.asarray(arrays.nuisance_log_sd, dtype=np.float64),
            noise_groups=np.zeros(len(arrays.noise_groups)),
            sd_groups=np.asarray(problem.sd_groups, dtype=np.int32),
            blots=np.zeros(problem.n_blots),
            param_index=np.asarray(b.param_index, dtype=np.int32),
            basal_index=np.asarray(b.basal_index, dtype=np.int32),
            basal_param_index=np.asarray(b.basal_param_index, dtype=np.int32),
            basal_inputs=np.asarray(b.basal_inputs, dtype=np.float64),
            basal_reference_index=np.asarray(b.basal_reference_index, dtype=np.int32),
            times=np.asarray(arrays.times, dtype=np.float64),
            ev=likelihood_arrays(arrays, problem.likelihood.weighting),
            row_weight=np.array([0.0 if r in holdout else 1.0 for r in arrays.row_ids]),
        )


class Sites(NamedTuple):
    """The blocks of ``x`` (see the module docstring), natural where noted."""

    z: jax.Array
    log_tau: jax.Array
    z_cell: jax.Array
    z_dose: jax.Array
    log_sigma: jax.Array
    blot_scale: jax.Array


def block_sizes(data: EvidenceData) -> dict[str, tuple[int, ...]]:
    """Shape of every block of ``x``."""
    n_hier = len(data.parameterisation.hier_index)
    return {
        "z": (data.parameterisation.n,),
        "log_tau": (n_hier,),
        "z_cell": (data.base_rows.shape[0] if n_hier else 0, n_hier),
        "z_dose": (data.nuisance_log_median.shape[0],),
        "log_sigma": (data.sd_groups.shape[0],),
        "blot_scale": (data.blots.shape[0],),
    }


def split(x: jax.Array, data: EvidenceData) -> Sites:
    """``x`` [..., n] -> its blocks (leading axes kept)."""
    parts, start = [], 0
    lead = x.shape[:-1]
    for shape in block_sizes(data).values():
        size = int(np.prod(shape))
        parts.append(x[..., start : start + size].reshape(*lead, *shape))
        start += size
    return Sites(*parts)


def parameter_rows(data: EvidenceData, sites: Sites) -> jax.Array:
    """Full parameter matrix [n_lines, n_params] of the fitted lines at ``sites``."""
    param = data.parameterisation
    u = param.from_standardised(sites.z)
    n_lines = data.base_rows.shape[0]
    z_cell = sites.z_cell if param.hier_index else jnp.zeros((n_lines, 0))
    u_rows = param.line_unconstrained(u, jnp.exp(sites.log_tau), z_cell)
    return param.parameter_rows(data.base_rows, param.to_natural(u_rows), data.row_factor)


def inputs_with_doses(data: EvidenceData, doses: jax.Array) -> jax.Array:
    """Condition inputs with the unknown doses filled in: [n_conditions, n_inputs]."""
    inputs = jnp.asarray(data.inputs)
    if data.dose_cond.shape[0] == 0:
        return inputs
    return inputs.at[data.dose_cond, data.dose_input].set(doses[data.dose_nuisance])


def doses_of(data: EvidenceData, sites: Sites) -> jax.Array:
    return jnp.exp(data.nuisance_log_median + data.nuisance_log_sd * sites.z_dose)


def sigmas_of(data: EvidenceData, sites: Sites) -> jax.Array:
    """Noise SD of every noise group (1 where no row needs a sampled one)."""
    sigma = jnp.ones(data.noise_groups.shape[0])
    if data.sd_groups.shape[0]:
        sigma = sigma.at[data.sd_groups].set(jnp.exp(sites.log_sigma))
    return sigma


def simulate_conditions(problem: EvidenceProblem, data: EvidenceData, rows, inputs):
    """Observables [n_conditions, n_times, n_obs] and success flags [n_conditions] of
    the evidence's conditions for given parameter rows and inputs.

    Conditions are integrated in groups by horizon (days of cell culture apart from
    weeks of xenograft growth, :meth:`ConditionBatch.horizon_groups`), so a batch does
    not step in lock-step with the longest; observables after a condition's last
    needed time are NaN and never read."""
    batch = problem.arrays.batch
    obs, _, ok, _ = simulate_arrays(
        problem.model,
        problem.solver,
        rows,
        inputs,
        data.param_index,
        data.basal_index,
        data.basal_param_index,
        data.basal_inputs,
        data.basal_reference_index,
        data.times,
        groups=batch.horizon_groups(np.asarray(problem.arrays.times)),
    )
    return obs, ok


def _half_normal_log_scale(log_value, scale: float):
    """log HalfNormal(exp(u); scale) + u: the density of u = log(value)."""
    value = jnp.exp(log_value)
    return _HALF_LOG_2_OVER_PI - np.log(scale) - 0.5 * (value / scale) ** 2 + log_value


def log_prior(problem: EvidenceProblem, sites: Sites) -> jax.Array:
    """Log prior density of the coordinates (Jacobians of the log transforms included)."""
    lp = jnp.sum(norm.logpdf(sites.z)) + jnp.sum(norm.logpdf(sites.z_cell))
    lp += jnp.sum(norm.logpdf(sites.z_dose))
    lp += jnp.sum(_half_normal_log_scale(sites.log_tau, problem.tau_scale))
    noise = problem.likelihood
    lp += jnp.sum(
        norm.logpdf(sites.log_sigma, loc=np.log(noise.noise_scale), scale=noise.noise_log_sd)
    )
    lp += jnp.sum(norm.logpdf(sites.blot_scale, scale=problem.likelihood.blot_scale_sd))
    return lp


def _evaluate(problem: EvidenceProblem, x, data: EvidenceData):
    sites = split(x, data)
    rows = parameter_rows(data, sites)
    inputs = inputs_with_doses(data, doses_of(data, sites))
    obs, ok = simulate_conditions(problem, data, rows, inputs)
    sigma = sigmas_of(data, sites)
    # each row's term of the fitted log density (its statement weight included; held-out
    # rows too), so pointwise LOO removes exactly what the fit used
    row_llh = data.ev["row_weight"] * row_log_likelihood(
        data.ev, obs, ok, problem.likelihood, sigma, sites.blot_scale
    )
    fitted = jnp.where(jnp.all(ok), jnp.sum(data.row_weight * row_llh), -jnp.inf)
    lp = log_prior(problem, sites) + fitted
    return sites, obs, ok, row_llh, fitted, lp


@dataclass(frozen=True, eq=False)
class EvidencePosterior(Posterior):
    """The posterior of an :class:`EvidenceProblem` (see the module docstring)."""

    problem: EvidenceProblem

    @cached_property
    def data(self) -> EvidenceData:
        return EvidenceData.from_problem(self.problem)

    def initial_point(self) -> np.ndarray:
        """The prior median of every block (tau at its HalfNormal median, sigma at its
        log-normal median)."""
        data = self.data
        sizes = block_sizes(data)
        median_half_normal = float(np.log(0.6744897501960817))  # median of |N(0, 1)|
        out = []
        for name, shape in sizes.items():
            size = int(np.prod(shape))
            if name == "log_tau":
                out.append(np.full(size, median_half_normal + np.log(self.problem.tau_scale)))
            elif name == "log_sigma":
                out.append(np.full(size, np.log(self.problem.likelihood.noise_scale)))
            else:
                out.append(np.zeros(size))
        return np.concatenate(out)

    def log_density(self, x, data):
        return _evaluate(self.problem, x, data)[-1]

    def log_likelihood(self, x, data):
        """The fitted rows' weighted log-likelihood (held-out rows excluded)."""
        return _evaluate(self.problem, x, data)[-2]

    def natural(self, x, data) -> dict:
        sites = split(x, data)
        param = data.parameterisation
        u = param.from_standardised(sites.z)
        out = {"theta": param.to_natural(u)}
        if param.hier_index:
            tau = jnp.exp(sites.log_tau)
            u_rows = param.line_unconstrained(u, tau, sites.z_cell)
            out["theta_cell"] = param.to_natural(u_rows)[:, jnp.asarray(param.hier_index)]
            out["tau"] = tau
        if data.nuisance_log_median.shape[0]:
            out["dose"] = doses_of(data, sites)
        if data.sd_groups.shape[0]:
            out["sigma"] = jnp.exp(sites.log_sigma)
        if data.blots.shape[0]:
            out["blot_scale"] = sites.blot_scale
        return out

    def record(self, x, data) -> dict:
        sites, obs, ok, row_llh, _, lp = _evaluate(self.problem, x, data)
        delta = unit_deltas(data.ev, obs, ok)
        return {
            **self.natural(x, data),
            "evidence": jnp.where(jnp.all(ok), row_llh, -jnp.inf),
            "reproduced": reproduction_probability(data.ev, delta, self.problem.likelihood),
            "predicted": row_prediction(data.ev, delta, sites.blot_scale),
            "n_failed": jnp.sum(~ok),
            "log_density": lp,
        }

    def prior_sample(self, key, n: int, data) -> np.ndarray:
        sizes = block_sizes(data)
        keys = dict(zip(sizes, jax.random.split(key, len(sizes)), strict=True))
        out = []
        for name, shape in sizes.items():
            size = int(np.prod(shape))
            eps = np.asarray(jax.random.normal(keys[name], (n, size)))
            if name == "log_tau":
                out.append(np.log(np.abs(eps) * self.problem.tau_scale))
            elif name == "log_sigma":
                noise = self.problem.likelihood
                out.append(np.log(noise.noise_scale) + noise.noise_log_sd * eps)
            elif name == "blot_scale":
                out.append(eps * self.problem.likelihood.blot_scale_sd)
            else:
                out.append(eps)
        return np.concatenate(out, axis=1)

    @property
    def coordinate_names(self) -> tuple[str, ...]:
        """The parameter, cell line, nuisance dose, noise group or blot behind each
        coordinate (tau and sigma on the log scale)."""
        problem = self.problem
        param = problem.parameterisation
        a = problem.arrays
        hier = [param.names[i] for i in param.hier_index]
        names = list(param.names)
        names += [f"log tau[{h}]" for h in hier]
        if hier:
            names += [f"z_cell[{line}, {h}]" for line in problem.row_names for h in hier]
        names += [f"dose[{d}]" for d in a.nuisance_names]
        names += [f"log sigma[{a.noise_groups[g]}]" for g in problem.sd_groups]
        names += [f"blot_scale[{b}]" for b in a.scale_groups]
        return tuple(names)

    @property
    def layout(self) -> DrawLayout:
        problem = self.problem
        param = problem.parameterisation
        arrays = problem.arrays
        direction = np.zeros(arrays.n_rows)
        np.add.at(direction, np.asarray(arrays.unit_row), np.asarray(arrays.unit_direction))
        hier = tuple(param.names[i] for i in param.hier_index)
        return DrawLayout(
            posterior=("theta", "theta_cell", "tau", "dose", "sigma", "blot_scale"),
            log_likelihood="evidence",
            predictive=("reproduced", "predicted"),
            dims={
                "theta": ("parameter",),
                "theta_cell": ("cell_line", "hier_parameter"),
                "tau": ("hier_parameter",),
                "dose": ("nuisance",),
                "sigma": ("noise_group",),
                "blot_scale": ("blot",),
                "evidence": ("row",),
                "reproduced": ("row",),
                "predicted": ("row",),
                "value": ("row",),
                "direction": ("row",),
            },
            coords={
                "parameter": list(param.names),
                "cell_line": list(problem.row_names),
                "hier_parameter": list(hier),
                "nuisance": list(arrays.nuisance_names),
                "noise_group": [arrays.noise_groups[i] for i in problem.sd_groups],
                "blot": list(arrays.scale_groups),
                "row": list(arrays.row_ids),
            },
            observed={"value": np.asarray(arrays.row_value), "direction": np.sign(direction)},
            observation_coords={
                "row_kind": ("row", [ROW_KINDS[int(k)] for k in arrays.row_kind]),
                "row_study": ("row", list(arrays.row_study)),
                "row_readout": ("row", list(arrays.row_readout)),
                "row_source": ("row", list(arrays.row_source)),
            },
        )


__all__ = [
    "EvidenceData",
    "EvidencePosterior",
    "EvidenceProblem",
    "Sites",
    "block_sizes",
    "inputs_with_doses",
    "log_prior",
    "make_evidence_problem",
    "parameter_rows",
    "simulate_conditions",
    "split",
]
