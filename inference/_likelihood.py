"""Pointwise log-likelihood of the evidence rows, given simulated observables.

A row's model quantity is the contrast delta of its units (see
:mod:`il6rcc.data`): sum of weight * log(observable) over its terms, at each of the
row's candidate sampling times. Per unit:

* value: log(measured) ~ Normal(delta + blot scale, sigma): qPCR fold changes
  (log-normal on the ratio to the matched control), western densitometry (with a
  per-blot scale), MTT relative to untreated, ELISA/Luminex absolute, tumour volume and
  SUVmax; sigma is the source's log-scale spread when given, else the assay's noise;
* sign, rank pair, interaction: probit, P = Phi(direction * delta / probit_scale);
* not significant: P = floor + (1 - floor) * P(|delta + e| < effect), e ~ N(0,
  probit_scale^2): favours small effects, but weakly (a non-significant result of a
  study of unknown power is never read as a zero effect).

Units of a row share its sampling time; an unknown time is a discrete nuisance that
is summed out with its prior weights: row log-lik = logsumexp_k(log w_k + sum_units
log p_unit(k)).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import log_ndtr, logsumexp, ndtr

from ..data import ROW_KINDS, EvidenceArrays

KIND = {name: i for i, name in enumerate(ROW_KINDS)}
TINY = 1e-300


@dataclass(frozen=True)
class LikelihoodSettings:
    """Settings of the qualitative observation models (see the module docstring)."""

    probit_scale: float = 0.3
    not_significant_effect: float = 0.7
    not_significant_floor: float = 0.2


def unit_kinds(arrays: EvidenceArrays) -> np.ndarray:
    """Kind code of each unit (its row's kind)."""
    return np.asarray(arrays.row_kind)[np.asarray(arrays.unit_row)]


def value_sd_groups(arrays: EvidenceArrays) -> np.ndarray:
    """Noise groups that value rows without a published spread need (sorted indices)."""
    kind = np.asarray(arrays.row_kind)
    no_sd = ~np.isfinite(np.asarray(arrays.row_log_sd))
    mask = (kind == KIND["value"]) & no_sd
    return np.unique(np.asarray(arrays.row_noise_group)[mask]).astype(np.int32)


def unit_deltas(arrays: EvidenceArrays, observables: jax.Array, success: jax.Array):
    """Contrast of every unit at every candidate time: [n_units, K].

    Observables of failed conditions are replaced by 1 (their rows are discarded by the
    caller), so no NaN reaches a gradient.
    """
    cond = jnp.asarray(arrays.term_cond)
    obs_index = jnp.asarray(arrays.term_obs)
    t_index = jnp.asarray(arrays.term_time_index)  # [n_terms, K]
    values = observables[cond[:, None], t_index, obs_index[:, None]]  # [n_terms, K]
    good = success[cond][:, None] & jnp.isfinite(values) & (values > 0)
    log_values = jnp.log(jnp.where(good, values, 1.0))
    weighted = jnp.asarray(arrays.term_weight)[:, None] * log_values
    n_units = len(arrays.unit_row)
    return jax.ops.segment_sum(weighted, jnp.asarray(arrays.term_unit), num_segments=n_units)


def row_log_likelihood(
    arrays: EvidenceArrays,
    observables: jax.Array,
    success: jax.Array,
    settings: LikelihoodSettings,
    sigma: jax.Array,
    blot_scale: jax.Array,
) -> jax.Array:
    """Log-likelihood of every evidence row, [n_rows].

    Args:
        observables: [n_conditions, n_times, n_observables] from the simulator.
        success: [n_conditions] solver success flags.
        sigma: [n_noise_groups] log-scale noise SD per assay group (used by value rows
            without a published spread).
        blot_scale: [n_scale_groups] log scale of each western blot (may be empty).
    """
    delta = unit_deltas(arrays, observables, success)  # [n_units, K]
    kinds = jnp.asarray(unit_kinds(arrays))
    unit_row = jnp.asarray(arrays.unit_row)
    direction = jnp.asarray(arrays.unit_direction, dtype=delta.dtype)[:, None]
    s = settings.probit_scale

    # value units
    row_value = jnp.asarray(np.nan_to_num(arrays.row_value))[unit_row][:, None]
    row_sd = np.asarray(arrays.row_log_sd)
    noise = jnp.asarray(arrays.row_noise_group)[unit_row]
    published = jnp.asarray(np.nan_to_num(row_sd, nan=1.0))[unit_row]
    sd = jnp.where(jnp.asarray(np.isfinite(row_sd))[unit_row], published, sigma[noise])[:, None]
    scale_group = np.asarray(arrays.row_scale_group)[np.asarray(arrays.unit_row)]
    if blot_scale.shape[0] > 0:
        offset = jnp.where(
            jnp.asarray(scale_group >= 0), blot_scale[jnp.asarray(np.maximum(scale_group, 0))], 0.0
        )[:, None]
    else:
        offset = 0.0
    z = (row_value - delta - offset) / sd
    lp_value = -0.5 * z**2 - jnp.log(sd) - 0.5 * jnp.log(2 * jnp.pi)

    # qualitative units
    lp_sign = log_ndtr(direction * delta / s)
    eff = settings.not_significant_effect
    floor = settings.not_significant_floor
    inside = ndtr((eff - delta) / s) - ndtr((-eff - delta) / s)
    lp_ns = jnp.log(floor + (1.0 - floor) * jnp.clip(inside, 0.0, 1.0))

    lp = jnp.where(
        (kinds == KIND["value"])[:, None],
        lp_value,
        jnp.where((kinds == KIND["not_significant"])[:, None], lp_ns, lp_sign),
    )
    per_row = jax.ops.segment_sum(lp, unit_row, num_segments=arrays.n_rows)  # [n_rows, K]
    return logsumexp(jnp.asarray(arrays.row_time_logw) + per_row, axis=1)


def reproduced_probability(
    arrays: EvidenceArrays, delta: jax.Array, settings: LikelihoodSettings
) -> jax.Array:
    """For each qualitative row, whether the model reproduces it at these parameters:
    the time-weighted fraction of candidate times at which every unit has the stated
    sign (not-significant rows: |delta| below ``not_significant_effect``).
    [n_rows], NaN for value rows. Averaged over posterior draws it is the posterior
    probability that the model reproduces the finding."""
    direction = jnp.asarray(arrays.unit_direction)[:, None]
    kinds = jnp.asarray(unit_kinds(arrays))
    ok_unit = jnp.where(
        (kinds == KIND["not_significant"])[:, None],
        jnp.abs(delta) < settings.not_significant_effect,
        direction * delta > 0,
    )
    bad = jax.ops.segment_sum(
        (~ok_unit).astype(delta.dtype), jnp.asarray(arrays.unit_row), num_segments=arrays.n_rows
    )
    weights = jnp.exp(jnp.asarray(arrays.row_time_logw))
    p = jnp.sum(weights * (bad == 0), axis=1)
    return jnp.where(jnp.asarray(arrays.row_kind) == KIND["value"], jnp.nan, p)


__all__ = [
    "KIND",
    "LikelihoodSettings",
    "reproduced_probability",
    "row_log_likelihood",
    "unit_deltas",
    "unit_kinds",
    "value_sd_groups",
]
