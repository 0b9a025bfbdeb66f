"""Pointwise log-likelihood of the evidence rows, given simulated observables.

A row's model quantity is the contrast delta of its units (see
:mod:`il6rcc.data`): sum of weight * log(observable) over its terms, at each of the
row's candidate sampling times. Per row kind, with s = probit_scale times the row's
contrast scale at that time (1, or growing with the horizon for tumour volumes: see
below):

* value: log(measured) ~ Normal(delta + blot scale, sigma): qPCR fold changes
  (log-normal on the ratio to the matched control), western densitometry (with a
  per-blot scale), MTT relative to untreated, ELISA/Luminex absolute, tumour volume and
  SUVmax; sigma is the source's log-scale spread when given, else the assay's noise;
* sign, interaction: probit, P = Phi(direction * delta / s);
* rank (tiers T_1 > ... > T_k): one ordinal observation. Each member's level is seen
  with independent normal noise of SD s / sqrt(2), and P is the probability that every
  member lies above every member of the next tier (:mod:`._ordinal`). Its units are
  the k - 1 adjacent contrasts (for tiers of one member; every pair of members of
  adjacent tiers otherwise), correlated through the members they share, never the
  k (k - 1) / 2 pairs as independent probits. A two-member rank equals the sign probit;
* not significant: P = floor + (1 - floor) * P(|delta + e| < effect), e ~ N(0, s^2):
  favours small effects, but weakly (a non-significant result of a study of unknown
  power is never read as a zero effect).

Contrast scale: a tumour volume after t hours is the exponential of a growth rate
integrated over t, so the noise of a log-volume contrast between groups of animals
grows with t (between-animal growth-rate variability adds to the measurement error).
Rows of an assay with a ``contrast_horizon_h`` t_ref (``assays.tsv``) use
s = probit_scale * sqrt(1 + (t / t_ref)^2) (and a not-significant effect scaled alike):
a contrast of probit_scale at short horizons, a growth-rate contrast of
probit_scale / t_ref per hour at long ones. Value rows keep their own spread. (A
constant probit on a log volume after 3-6 weeks made the MAP Hessian's stiffest
directions 1e3-1e4 times stiffer than any in-vitro contrast.)

Units of a row share its sampling time; an unknown time is a discrete nuisance that
is summed out with its prior weights: row log-lik = logsumexp_k(log w_k + log p_row(k)).

Weighting (:func:`row_weights`): ``row`` gives every row weight 1; ``statement`` gives
the rows that share one published statement (their primary ``statement_ids``) weights
1 / (their number), so every statement carries the same total weight (rows without a
statement count as their own statement).

The evidence enters as a dict of arrays (:func:`likelihood_arrays`) passed to the jitted
functions as an argument, so compiled programs do not depend on the data's values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import log_ndtr, logsumexp, ndtr
from pydantic import ConfigDict, Field

from ..data import ROW_KINDS, EvidenceArrays
from ._ordinal import BLOCK, log_order_probability

KIND = {name: i for i, name in enumerate(ROW_KINDS)}
#: How the rows' log-likelihoods are weighted in the fitted log density.
WEIGHTINGS = ("row", "statement")


@dataclass(frozen=True)
class LikelihoodSettings:
    """The observation models' settings: the ``likelihood`` section of a job config
    (validated there; defaults live here, once). See the module docstring.

    ``probit_scale``: sigma of the probit on qualitative contrasts (log units).
    ``not_significant_effect``: the log effect a study would have detected; "not
    significant" rows favour |effect| below it (weak evidence, never a zero effect).
    ``not_significant_floor``: probability of a non-significant result even for a large
    effect (keeps such rows weak). ``noise_scale`` and ``noise_log_sd``: the prior of
    each assay's log-normal noise SD when the source gives none, sigma ~
    LogNormal(log noise_scale, noise_log_sd) (median ``noise_scale``). Not a half-normal:
    a noise group whose few values the model can fit exactly (two SUVmax group values
    in the shipped evidence) makes the likelihood grow as -n log sigma as sigma -> 0, a
    half-normal's density stays finite there, so the log density had no maximum
    (measured on the default job: log sigma 7 units below zero at the MAP and still
    falling, condition number 4e7, every MAP start unconverged); the log-normal's
    quadratic in log sigma bounds it (with an exact fit of n rows the mode is at
    log sigma = log noise_scale - n noise_log_sd^2). ``blot_scale_sd``: prior SD of the
    log scale of each western blot. ``weighting``: ``row`` (every evidence row weight 1)
    or ``statement`` (the rows expanded from one published statement share a total
    weight of 1, so a sentence that became 21 rows counts as much as one that became
    one row). ``rank_grid``: quadrature points of the ordinal rank likelihood.
    """

    __pydantic_config__ = ConfigDict(extra="forbid")

    probit_scale: Annotated[float, Field(gt=0)] = 0.3
    not_significant_effect: Annotated[float, Field(gt=0)] = 0.7
    not_significant_floor: Annotated[float, Field(gt=0, lt=1)] = 0.2
    noise_scale: Annotated[float, Field(gt=0)] = 0.3
    noise_log_sd: Annotated[float, Field(gt=0)] = 1.0
    blot_scale_sd: Annotated[float, Field(gt=0)] = 2.0
    weighting: Literal["row", "statement"] = "row"
    rank_grid: Annotated[int, Field(gt=0)] = 256

    def __post_init__(self) -> None:
        if self.weighting not in WEIGHTINGS:
            raise ValueError(
                f"likelihood weighting {self.weighting!r} is not one of {list(WEIGHTINGS)}"
            )
        if self.rank_grid < BLOCK or self.rank_grid % BLOCK:
            raise ValueError(
                f"rank_grid must be a positive multiple of {BLOCK} quadrature points, "
                f"got {self.rank_grid}"
            )


def row_weights(arrays: EvidenceArrays, weighting: str = "row") -> np.ndarray:
    """Weight of every row's log-likelihood in the fitted log density, [n_rows].

    ``row``: ones. ``statement``: 1 / (rows sharing the row's primary statement), so
    each statement's rows sum to 1; a row without a statement is its own statement.
    Counted over all rows of ``arrays`` (held-out rows included, so leaving a row out
    removes exactly its term)."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting {weighting!r} is not one of {list(WEIGHTINGS)}")
    n = arrays.n_rows
    if weighting == "row":
        return np.ones(n)
    statement = np.asarray(arrays.row_statement, dtype=np.int64)
    if statement.shape != (n,):
        raise ValueError(
            "statement weighting needs row_statement (one entry per row); these arrays "
            f"have shape {statement.shape} for {n} rows"
        )
    n_stmt = int(statement.max(initial=-1)) + 1
    group = np.where(statement >= 0, statement, n_stmt + np.arange(n))
    counts = np.bincount(group)
    return 1.0 / counts[group]


def value_sd_groups(arrays: EvidenceArrays) -> np.ndarray:
    """Noise groups that value rows without a published spread need (sorted indices)."""
    kind = np.asarray(arrays.row_kind)
    no_sd = ~np.isfinite(np.asarray(arrays.row_log_sd))
    mask = (kind == KIND["value"]) & no_sd
    return np.unique(np.asarray(arrays.row_noise_group)[mask]).astype(np.int32)


def likelihood_arrays(arrays: EvidenceArrays, weighting: str = "row") -> dict[str, np.ndarray]:
    """The evidence rows, their units and terms as a flat dict of numeric arrays: the
    ``ev`` argument of the row likelihood functions (:func:`row_log_likelihood`,
    :func:`reproduction_probability`, :func:`row_prediction`).

    ``weighting``: see :func:`row_weights` (its result is ``row_weight``)."""
    unit_row = np.asarray(arrays.unit_row, dtype=np.int32)
    first = np.zeros(arrays.n_rows, dtype=np.int32)
    for u in range(len(unit_row) - 1, -1, -1):
        first[unit_row[u]] = u
    row_sd = np.asarray(arrays.row_log_sd, dtype=np.float64)
    scale_group = np.asarray(arrays.row_scale_group, dtype=np.int32)
    return {
        "term_cond": np.asarray(arrays.term_cond, dtype=np.int32),
        "term_obs": np.asarray(arrays.term_obs, dtype=np.int32),
        "term_time_index": np.asarray(arrays.term_time_index, dtype=np.int32),
        "term_weight": np.asarray(arrays.term_weight, dtype=np.float64),
        "term_unit": np.asarray(arrays.term_unit, dtype=np.int32),
        "unit_row": unit_row,
        "unit_direction": np.asarray(arrays.unit_direction, dtype=np.float64),
        "unit_kind": np.asarray(arrays.row_kind, dtype=np.int32)[unit_row],
        "row_kind": np.asarray(arrays.row_kind, dtype=np.int32),
        "row_value": np.nan_to_num(np.asarray(arrays.row_value, dtype=np.float64)),
        "row_sd_known": np.isfinite(row_sd),
        "row_sd": np.nan_to_num(row_sd, nan=1.0),
        "row_noise_group": np.asarray(arrays.row_noise_group, dtype=np.int32),
        "row_has_blot": scale_group >= 0,
        "row_blot": np.maximum(scale_group, 0),
        "row_time_logw": np.asarray(arrays.row_time_logw, dtype=np.float64),
        "row_first_unit": first,
        "row_contrast_scale": arrays.contrast_scale(),
        "row_weight": row_weights(arrays, weighting),
        "entity_row": np.asarray(arrays.entity_row, dtype=np.int32),
        "link_entity": np.asarray(arrays.link_entity, dtype=np.int32),
        "link_unit": np.asarray(arrays.link_unit, dtype=np.int32),
        "link_sign": np.asarray(arrays.link_sign, dtype=np.float64),
        "chain_row": np.asarray(arrays.chain_row, dtype=np.int32),
        "chain_sign": np.asarray(arrays.chain_sign, dtype=np.float64),
        "chain_middle": np.asarray(arrays.chain_middle, dtype=np.int32),
        "top_chain": np.asarray(arrays.top_chain, dtype=np.int32),
        "top_entity": np.asarray(arrays.top_entity, dtype=np.int32),
        "bottom_chain": np.asarray(arrays.bottom_chain, dtype=np.int32),
        "bottom_entity": np.asarray(arrays.bottom_entity, dtype=np.int32),
    }


def unit_deltas(ev: dict, observables: jax.Array, success: jax.Array) -> jax.Array:
    """Contrast of every unit at every candidate time: [n_units, K].

    Observables of failed conditions are replaced by 1 (their rows are discarded by the
    caller), so no NaN reaches a gradient.
    """
    cond = ev["term_cond"]
    values = observables[cond[:, None], ev["term_time_index"], ev["term_obs"][:, None]]
    good = success[cond][:, None] & jnp.isfinite(values) & (values > 0)
    log_values = jnp.log(jnp.where(good, values, 1.0))
    weighted = ev["term_weight"][:, None] * log_values
    return jax.ops.segment_sum(weighted, ev["term_unit"], num_segments=ev["unit_row"].shape[0])


def _blot_offset(ev: dict, blot_scale: jax.Array, rows) -> jax.Array:
    if blot_scale.shape[0] == 0:
        return jnp.zeros(rows.shape[0])
    return jnp.where(ev["row_has_blot"][rows], blot_scale[ev["row_blot"][rows]], 0.0)


def rank_log_probability(ev: dict, delta: jax.Array, scale: jax.Array, grid_size: int = 256):
    """Log-probability of every rank row's order at every candidate time, [n_rows, K]
    (0 for rows that are not ranks).

    Args:
        delta: [n_units, K] unit contrasts (:func:`unit_deltas`).
        scale: [n_rows, K] probit scale s of each row and time; member noise SD s/sqrt(2).
    """
    n_rows, k = ev["row_kind"].shape[0], delta.shape[1]
    n_chains = ev["chain_row"].shape[0]
    if n_chains == 0:
        return jnp.zeros((n_rows, k))
    n_entities = ev["entity_row"].shape[0]
    level = jax.ops.segment_sum(
        ev["link_sign"][:, None] * delta[ev["link_unit"]],
        ev["link_entity"],
        num_segments=n_entities,
    )  # [n_entities, K], relative to each row's first member
    level = level / (scale[ev["entity_row"]] / jnp.sqrt(2.0))  # in member noise SDs
    rows, sign = ev["chain_row"], ev["chain_sign"][:, None]
    middle = ev["chain_middle"]
    mid_levels = jnp.moveaxis(level[jnp.maximum(middle, 0)], -1, 1)  # [n_chains, K, L]
    lp_chain = log_order_probability(
        sign[..., None] * mid_levels,
        middle >= 0,
        sign[ev["top_chain"]] * level[ev["top_entity"]],
        ev["top_chain"],
        sign[ev["bottom_chain"]] * level[ev["bottom_entity"]],
        ev["bottom_chain"],
        grid_size,
    )  # [n_chains, K]
    # a row's probability is the sum over its chains (the orders of its middle tiers)
    is_rank = (ev["row_kind"] == KIND["rank"])[:, None]
    top_lp = jax.ops.segment_max(lp_chain, rows, num_segments=n_rows)
    top_lp = jnp.where(is_rank, top_lp, 0.0)
    total = jax.ops.segment_sum(jnp.exp(lp_chain - top_lp[rows]), rows, num_segments=n_rows)
    return jnp.where(is_rank, top_lp + jnp.log(jnp.where(is_rank, total, 1.0)), 0.0)


def row_log_likelihood(
    ev: dict,
    observables: jax.Array,
    success: jax.Array,
    settings: LikelihoodSettings,
    sigma: jax.Array,
    blot_scale: jax.Array,
) -> jax.Array:
    """Log-likelihood of every evidence row, [n_rows] (unweighted: the fitted log
    density is ``sum(ev["row_weight"] * row_log_likelihood(...))``).

    Args:
        ev: :func:`likelihood_arrays` (as arrays).
        observables: [n_conditions, n_times, n_observables] from the simulator.
        success: [n_conditions] solver success flags.
        sigma: [n_noise_groups] log-scale noise SD per assay group (used by value rows
            without a published spread).
        blot_scale: [n_scale_groups] log scale of each western blot (may be empty).
    """
    delta = unit_deltas(ev, observables, success)  # [n_units, K]
    unit_row = ev["unit_row"]
    kinds = ev["unit_kind"][:, None]
    direction = ev["unit_direction"][:, None]
    row_scale = settings.probit_scale * ev["row_contrast_scale"]  # [n_rows, K]
    s = row_scale[unit_row]

    sd = jnp.where(ev["row_sd_known"], ev["row_sd"], sigma[ev["row_noise_group"]])[unit_row]
    offset = _blot_offset(ev, blot_scale, unit_row)
    z = (ev["row_value"][unit_row][:, None] - delta - offset[:, None]) / sd[:, None]
    lp_value = -0.5 * z**2 - jnp.log(sd)[:, None] - 0.5 * jnp.log(2 * jnp.pi)

    lp_sign = log_ndtr(direction * delta / s)
    eff = settings.not_significant_effect
    floor = settings.not_significant_floor
    effect = eff * ev["row_contrast_scale"][unit_row]
    inside = ndtr((effect - delta) / s) - ndtr((-effect - delta) / s)
    lp_ns = jnp.log(floor + (1.0 - floor) * jnp.clip(inside, 0.0, 1.0))

    lp = jnp.where(
        kinds == KIND["value"],
        lp_value,
        jnp.where(kinds == KIND["not_significant"], lp_ns, lp_sign),
    )
    lp = jnp.where(kinds == KIND["rank"], 0.0, lp)  # ranks: one ordinal term per row
    n_rows = ev["row_kind"].shape[0]
    per_row = jax.ops.segment_sum(lp, unit_row, num_segments=n_rows)  # [n_rows, K]
    per_row = per_row + rank_log_probability(ev, delta, row_scale, settings.rank_grid)
    return logsumexp(ev["row_time_logw"] + per_row, axis=1)


def reproduction_probability(ev: dict, delta: jax.Array, settings: LikelihoodSettings) -> jax.Array:
    """For each qualitative row, whether the model reproduces it at these parameters:
    the time-weighted fraction of candidate times at which every unit has the stated
    sign (not-significant rows: |delta| below ``not_significant_effect``).
    [n_rows], NaN for value rows. Averaged over posterior draws it is the posterior
    probability that the model reproduces the finding."""
    direction = ev["unit_direction"][:, None]
    effect = settings.not_significant_effect * ev["row_contrast_scale"][ev["unit_row"]]
    ok_unit = jnp.where(
        ev["unit_kind"][:, None] == KIND["not_significant"],
        jnp.abs(delta) < effect,
        direction * delta > 0,
    )
    n_rows = ev["row_kind"].shape[0]
    bad = jax.ops.segment_sum((~ok_unit).astype(delta.dtype), ev["unit_row"], num_segments=n_rows)
    p = jnp.sum(jnp.exp(ev["row_time_logw"]) * (bad == 0), axis=1)
    return jnp.where(ev["row_kind"] == KIND["value"], jnp.nan, p)


def row_prediction(ev: dict, delta: jax.Array, blot_scale: jax.Array) -> jax.Array:
    """The model's value of each row's first unit (plus its blot scale), averaged over
    the candidate times with their weights: the predicted log value of value rows and
    the predicted contrast of qualitative rows. [n_rows]"""
    rows = jnp.arange(ev["row_kind"].shape[0])
    value = jnp.sum(jnp.exp(ev["row_time_logw"]) * delta[ev["row_first_unit"]], axis=1)
    return value + _blot_offset(ev, blot_scale, rows)


__all__ = [
    "KIND",
    "LikelihoodSettings",
    "WEIGHTINGS",
    "likelihood_arrays",
    "rank_log_probability",
    "reproduction_probability",
    "row_log_likelihood",
    "row_weights",
    "row_prediction",
    "unit_deltas",
    "value_sd_groups",
]
