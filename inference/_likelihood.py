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

The evidence enters as a dict of arrays (:func:`evidence_data`) passed to the jitted
functions as an argument, so compiled programs do not depend on the data's values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import log_ndtr, logsumexp, ndtr
from pydantic import ConfigDict, Field

from ..data import ROW_KINDS, EvidenceArrays

KIND = {name: i for i, name in enumerate(ROW_KINDS)}


@dataclass(frozen=True)
class LikelihoodSettings:
    """The observation models' settings: the ``likelihood`` section of a job config
    (validated there; defaults live here, once).

    ``probit_scale``: sigma of the probit on qualitative contrasts (log units).
    ``not_significant_effect``: the log effect a study would have detected; "not
    significant" rows favour |effect| below it (weak evidence, never a zero effect).
    ``not_significant_floor``: probability of a non-significant result even for a large
    effect (keeps such rows weak). ``noise_scale``: half-normal scale of each assay's
    log-normal noise SD when the source gives none. ``blot_scale_sd``: prior SD of the
    log scale of each western blot.
    """

    __pydantic_config__ = ConfigDict(extra="forbid")

    probit_scale: Annotated[float, Field(gt=0)] = 0.3
    not_significant_effect: Annotated[float, Field(gt=0)] = 0.7
    not_significant_floor: Annotated[float, Field(gt=0, lt=1)] = 0.2
    noise_scale: Annotated[float, Field(gt=0)] = 0.5
    blot_scale_sd: Annotated[float, Field(gt=0)] = 2.0


def value_sd_groups(arrays: EvidenceArrays) -> np.ndarray:
    """Noise groups that value rows without a published spread need (sorted indices)."""
    kind = np.asarray(arrays.row_kind)
    no_sd = ~np.isfinite(np.asarray(arrays.row_log_sd))
    mask = (kind == KIND["value"]) & no_sd
    return np.unique(np.asarray(arrays.row_noise_group)[mask]).astype(np.int32)


def evidence_data(arrays: EvidenceArrays) -> dict[str, np.ndarray]:
    """The evidence as a flat dict of numeric arrays (the likelihood's data argument)."""
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


def row_log_likelihood(
    ev: dict,
    observables: jax.Array,
    success: jax.Array,
    settings: LikelihoodSettings,
    sigma: jax.Array,
    blot_scale: jax.Array,
) -> jax.Array:
    """Log-likelihood of every evidence row, [n_rows].

    Args:
        ev: :func:`evidence_data` (as arrays).
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
    s = settings.probit_scale

    sd = jnp.where(ev["row_sd_known"], ev["row_sd"], sigma[ev["row_noise_group"]])[unit_row]
    offset = _blot_offset(ev, blot_scale, unit_row)
    z = (ev["row_value"][unit_row][:, None] - delta - offset[:, None]) / sd[:, None]
    lp_value = -0.5 * z**2 - jnp.log(sd)[:, None] - 0.5 * jnp.log(2 * jnp.pi)

    lp_sign = log_ndtr(direction * delta / s)
    eff = settings.not_significant_effect
    floor = settings.not_significant_floor
    inside = ndtr((eff - delta) / s) - ndtr((-eff - delta) / s)
    lp_ns = jnp.log(floor + (1.0 - floor) * jnp.clip(inside, 0.0, 1.0))

    lp = jnp.where(
        kinds == KIND["value"],
        lp_value,
        jnp.where(kinds == KIND["not_significant"], lp_ns, lp_sign),
    )
    n_rows = ev["row_kind"].shape[0]
    per_row = jax.ops.segment_sum(lp, unit_row, num_segments=n_rows)  # [n_rows, K]
    return logsumexp(ev["row_time_logw"] + per_row, axis=1)


def reproduced_probability(ev: dict, delta: jax.Array, settings: LikelihoodSettings) -> jax.Array:
    """For each qualitative row, whether the model reproduces it at these parameters:
    the time-weighted fraction of candidate times at which every unit has the stated
    sign (not-significant rows: |delta| below ``not_significant_effect``).
    [n_rows], NaN for value rows. Averaged over posterior draws it is the posterior
    probability that the model reproduces the finding."""
    direction = ev["unit_direction"][:, None]
    ok_unit = jnp.where(
        ev["unit_kind"][:, None] == KIND["not_significant"],
        jnp.abs(delta) < settings.not_significant_effect,
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
    "evidence_data",
    "reproduced_probability",
    "row_log_likelihood",
    "row_prediction",
    "unit_deltas",
    "value_sd_groups",
]
