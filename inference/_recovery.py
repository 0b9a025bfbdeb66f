"""Recovery studies: the evidence design, measured quantitatively at known parameters.

The published evidence is mostly qualitative (signs, ranks, interactions). To ask
which parameters that *design* can identify, and whether the fit finds them, every
unit of every row (a contrast of log observables: a fold change, a difference between
cell lines, a difference of differences) is turned into a quantitative row whose value
is the contrast simulated at known parameters, with a stated log-scale SD. The
conditions, observables, contrasts and unknown doses stay those of the evidence; an
unknown sampling time is fixed at its candidates' weighted median (the synthetic
experiment records its time; the median, not the first of equally weighted candidates,
so that e.g. a western over 0.5-48 h is read at 4 h, when responses have developed).

:func:`truth_point` fills the model's sample sites from standardised coordinates;
:func:`simulated_evidence` returns a copy of the problem whose evidence is the
quantitative twin. Fit it with any sampler and compare with the truth.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..data import ROW_KINDS, EvidenceArrays
from ..errors import Il6rccError
from ._evidence import (
    EvidenceData,
    EvidencePosterior,
    EvidenceProblem,
    block_sizes,
    doses_of,
    inputs_with_doses,
    make_evidence_problem,
    parameter_rows,
    simulate_conditions,
    split,
)
from ._likelihood import unit_deltas


def truth_point(
    problem: EvidenceProblem,
    z: np.ndarray,
    tau: np.ndarray | None = None,
    z_cell: np.ndarray | None = None,
    z_dose: np.ndarray | None = None,
) -> np.ndarray:
    """The coordinates ``x`` (of :class:`EvidencePosterior`) of a recovery truth.

    ``z``: standardised shared parameters (theta = transform(loc + sd * z));
    ``tau``, ``z_cell``: the hierarchy (default: tau 0.1 and no cell-line deviation);
    ``z_dose``: standardised unknown doses (default: their prior medians). Noise SDs
    and blot scales (if the problem has any) sit at their prior's centre.
    """
    param = problem.parameterisation
    z = np.asarray(z, dtype=np.float64)
    if z.shape != (param.n,):
        raise ValueError(f"z has shape {z.shape}, expected ({param.n},)")
    posterior = EvidencePosterior(problem)
    sizes = block_sizes(posterior.data)
    given = {
        "z": z,
        "log_tau": None if tau is None else np.log(np.asarray(tau, dtype=float)),
        "z_cell": None if z_cell is None else np.asarray(z_cell, dtype=float),
        "z_dose": None if z_dose is None else np.asarray(z_dose, dtype=float),
    }
    center = split(posterior.initial_point(), posterior.data)
    defaults = {"log_tau": np.full(sizes["log_tau"], np.log(0.1))}
    parts = []
    for name, shape in sizes.items():
        value = given.get(name)
        if value is None:
            value = defaults.get(name, np.asarray(getattr(center, name)))
        if np.shape(value) != shape:
            raise ValueError(f"{name} has shape {np.shape(value)}, expected {shape}")
        parts.append(np.ravel(value))
    return np.concatenate(parts)


def _contrasts_at(problem: EvidenceProblem, x: np.ndarray) -> np.ndarray:
    """Every unit's contrast at every candidate time, [n_units, K], at ``x``."""
    data = jax.tree.map(jnp.asarray, EvidenceData.from_problem(problem))
    sites = split(jnp.asarray(x), data)
    rows = parameter_rows(data, sites)
    inputs = inputs_with_doses(data, doses_of(data, sites))
    obs, ok = simulate_conditions(problem, data, rows, inputs)  # simulate_arrays is jitted
    ok = np.asarray(ok)
    if not ok.all():
        batch = problem.arrays.batch
        failed = [f"{batch.ids[i]} ({batch.cell_lines[i]})" for i in np.flatnonzero(~ok)]
        raise Il6rccError(
            f"recovery truth: {len(failed)} condition solves failed ({', '.join(failed[:5])}"
            f"{', ...' if len(failed) > 5 else ''}); choose a truth where every condition solves"
        )
    return np.asarray(unit_deltas(data.ev, obs, jnp.asarray(ok)))


def _median_candidate(logw: np.ndarray, quantile: float) -> np.ndarray:
    """Per row, the first candidate time at which the cumulative weight reaches
    ``quantile`` (padding has weight 0 and is never chosen)."""
    cum = np.cumsum(np.exp(logw), axis=1)
    return np.argmax(cum >= quantile - 1e-9, axis=1)


def simulated_evidence(
    problem: EvidenceProblem,
    point: np.ndarray,
    log_sd: float = 0.3,
    noise_seed: int | None = None,
    time_quantile: float = 0.5,
) -> EvidenceProblem:
    """The problem with its evidence replaced by its quantitative twin at ``point``
    (coordinates ``x``, see :func:`truth_point`).

    One value row per unit (row id ``<row>#<unit>``), value = the unit's contrast at
    the truth (plus Normal(0, ``log_sd``) noise when ``noise_seed`` is given), known
    log-scale SD ``log_sd``, read at the row's candidate time where the cumulative
    prior weight reaches ``time_quantile`` (the weighted median by default). No blot
    scales (contrasts need none); doses, priors, hierarchy and solver are unchanged.
    """
    if log_sd <= 0:
        raise ValueError(f"log_sd must be > 0, got {log_sd}")
    a = problem.arrays
    delta = _contrasts_at(problem, point)
    unit_row = np.asarray(a.unit_row)
    if not 0.0 < time_quantile <= 1.0:
        raise ValueError(f"time_quantile must be in (0, 1], got {time_quantile}")
    best_k = _median_candidate(np.asarray(a.row_time_logw), time_quantile)  # per row
    k_unit = best_k[unit_row]
    values = delta[np.arange(len(unit_row)), k_unit]
    if noise_seed is not None:
        values = values + log_sd * np.random.default_rng(noise_seed).normal(size=values.shape)
    term_unit = np.asarray(a.term_unit)
    n_units = len(unit_row)
    counts = np.bincount(unit_row, minlength=a.n_rows)
    seen = np.zeros(a.n_rows, dtype=int)
    unit_ids = []
    for r in unit_row:
        unit_ids.append(a.row_ids[r] if counts[r] == 1 else f"{a.row_ids[r]}#{seen[r] + 1}")
        seen[r] += 1
    kind_value = ROW_KINDS.index("value")
    cell_lines = a.row_cell_line or ("",) * a.n_rows
    twin = EvidenceArrays(
        batch=a.batch,
        times=np.asarray(a.times),
        row_ids=tuple(unit_ids),
        row_kind=np.full(n_units, kind_value, dtype=np.int32),
        row_study=tuple(a.row_study[r] for r in unit_row),
        row_source=tuple(
            f"simulated at a recovery truth; design of {a.row_ids[r]}" for r in unit_row
        ),
        row_readout=tuple(a.row_readout[r] for r in unit_row),
        row_value=values,
        row_log_sd=np.full(n_units, float(log_sd)),
        row_noise_group=np.asarray(a.row_noise_group)[unit_row],
        row_scale_group=np.full(n_units, -1, dtype=np.int32),
        row_time_index=np.asarray(a.row_time_index)[unit_row, k_unit][:, None],
        row_time_logw=np.zeros((n_units, 1)),
        unit_row=np.arange(n_units, dtype=np.int32),
        unit_direction=np.zeros(n_units),
        term_unit=term_unit,
        term_cond=np.asarray(a.term_cond),
        term_obs=np.asarray(a.term_obs),
        term_weight=np.asarray(a.term_weight),
        term_time_index=np.asarray(a.term_time_index)[np.arange(len(term_unit)), k_unit[term_unit]][
            :, None
        ],
        noise_groups=a.noise_groups,
        scale_groups=(),
        dose_slots=np.asarray(a.dose_slots),
        dose_nuisance=np.asarray(a.dose_nuisance),
        nuisance_names=a.nuisance_names,
        nuisance_log_median=np.asarray(a.nuisance_log_median),
        nuisance_log_sd=np.asarray(a.nuisance_log_sd),
        nuisance_sources=a.nuisance_sources,
        row_statement=np.full(n_units, -1, dtype=np.int32),
        statement_ids=(),
        row_significant=np.ones(n_units, dtype=bool),
        row_cell_line=tuple(cell_lines[r] for r in unit_row),
        nuisance_units=a.nuisance_units,
    )
    twin.check()
    return make_evidence_problem(
        problem.model,
        problem.solver,
        twin,
        problem.parameterisation,
        problem.likelihood,
        tau_scale=problem.tau_scale,
    )


def standardised_quantities(problem: EvidenceProblem, xs: np.ndarray) -> dict[str, np.ndarray]:
    """Shared, cell-line and dose coordinates of points ``xs`` [..., n], in prior-SD units.

    Returns ``shared`` [..., n_est] (= z), ``cell`` [..., n_lines, n_hier]
    ((u_c - loc) / sd of the cell-line-specific parameters, u_c = loc + sd z + tau z_c)
    and ``dose`` [..., n_nuisance] (= z_dose).
    """
    sites = split(np.asarray(xs, dtype=np.float64), EvidenceData.from_problem(problem))
    param = problem.parameterisation
    out = {"shared": sites.z}
    hier = np.asarray(param.hier_index, dtype=int)
    if hier.size:
        sd = np.asarray(param.sd)[hier]
        tau = np.exp(sites.log_tau)
        out["cell"] = sites.z[..., None, hier] + tau[..., None, :] * sites.z_cell / sd
    if sites.z_dose.shape[-1]:
        out["dose"] = sites.z_dose
    return out


__all__ = ["simulated_evidence", "standardised_quantities", "truth_point"]
