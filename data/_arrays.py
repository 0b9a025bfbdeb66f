"""The pandas -> JAX boundary: evidence rows as index arrays for the likelihood.

Every evidence row becomes one or more *units*; a unit is a linear contrast of log
observables,

    delta_u(k) = sum_{terms j of u} weight_j * log y(cond_j, time_j[k], obs_j),

evaluated at each of the row's K candidate sampling times k (one candidate when the
time is known; a grid with prior weights when it is "unknown", a discrete nuisance
that the likelihood marginalises). Row kinds:

* ``value`` (one unit): log(measured value) ~ Normal(delta + log blot scale, sigma);
  a fold change has terms (+1 treated, -1 control), an absolute value one term.
* ``sign`` (one unit): P(direction * delta > 0) through a probit.
* ``rank`` (tiers of cell lines or of conditions, e.g. a dose series): one unit per
  pair of members of *adjacent* tiers (higher minus lower, direction +1); pairs of
  tiers further apart follow by transitivity and are not units. The row is one ordinal
  observation: its likelihood is the probability that every member's noisy level
  lies in its tier, with independent noise per member (so adjacent contrasts that
  share a member are correlated), not a product over its units. For that the arrays
  carry the members (*entities*), their levels as signed sums of the row's units
  (*links*) and the orders that are consistent with the tiers (*chains*).
* ``interaction`` (one unit, four terms): sign of a difference of differences.
* ``not_significant`` (one unit): weak evidence that |delta| is small.

Unknown doses are continuous nuisance parameters: ``dose_slots`` name which entries
of ``batch.inputs`` they fill.

A qualitative contrast's probit scale can grow with its candidate time
(``row_contrast_scale``): tumour volumes integrate a growth rate over weeks, so their
contrasts are read as contrasts of growth rates (see ``assays.tsv``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..models import ConditionBatch

ROW_KINDS = ("value", "sign", "rank", "interaction", "not_significant")


def _empty_int(*shape: int) -> np.ndarray:
    return np.zeros(shape, dtype=np.int32)


@dataclass(frozen=True)
class EvidenceArrays:
    """Evidence rows as arrays (numpy; the inference converts them to JAX).

    Rows (n_rows): ``row_ids`` (unique), ``row_kind`` (index into :data:`ROW_KINDS`),
    ``row_study``, ``row_source``, ``row_readout`` (assay + analyte, for plots),
    ``row_value`` (log of the measured value; NaN unless kind is ``value``),
    ``row_log_sd`` (log-scale SD when the source gives a spread, else NaN),
    ``row_noise_group`` (index into ``noise_groups``, the assay-specific noise
    parameters, e.g. ``qpcr``, ``western``, ``mtt``, ``elisa``, ``tumour_volume``,
    ``suv``), ``row_scale_group`` (index into ``scale_groups``, one unknown log scale per
    western blot, -1 for none), ``row_time_index`` [n_rows, K] (indices into ``times``;
    padding repeats a valid index) and ``row_time_logw`` [n_rows, K] (log prior weight
    of each candidate time, -inf for padding; each row's weights sum to 1).

    Units (n_units): ``unit_row`` (the row it belongs to), ``unit_direction`` (+1 or
    -1: the expected sign of delta; 0 for value and not_significant units).

    Terms (n_terms): ``term_unit``, ``term_cond`` (index into ``batch``), ``term_obs``
    (observable index of the model), ``term_weight``, ``term_time_index`` [n_terms, K]
    (index into ``times`` per candidate; usually equal to ``row_time_index`` of the
    unit's row, different when a term is read at another time, e.g. a baseline).

    Doses (n_slots): ``dose_slots`` [n_slots, 2] (condition, input) filled by nuisance
    ``dose_nuisance`` [n_slots] (index into ``nuisance_names``), whose priors are
    log-normal with ``nuisance_log_median`` and ``nuisance_log_sd`` (natural log) and
    whose sources are in ``nuisance_sources``.

    Additions (all with defaults, so code that builds this class without them still
    works): ``row_statement`` [n_rows] (index into ``statement_ids``, the row's primary
    published statement, -1 for none: rows expanded from one sentence share it, so the
    likelihood may weight them jointly), ``row_significant`` [n_rows] (True when the
    source calls the finding significant: a likelihood may then ask for a minimum
    effect), ``row_cell_line`` (the row's cell line(s) as text, for plots),
    ``nuisance_units`` (the unit of each nuisance dose, the model input's unit).

    Ordinal structure of ``rank`` rows (empty when there are none): entities
    (n_entities, the members of a rank row's tiers) ``entity_row``; links (n_links)
    ``link_entity``, ``link_unit``, ``link_sign``: an entity's level relative to its
    row's first entity is ``sum sign * delta[unit]`` over its links (the first entity
    has none); chains (n_chains) ``chain_row``, ``chain_sign`` (+1, or -1 for a chain
    stored reflected: levels negated and tiers in reverse order, so that its top is one
    member), ``chain_middle`` [n_chains, L] (the entities of the middle tiers, one per
    level from the top down, -1 padding), and the members of the top and bottom sets
    as flat lists ``top_chain``/``top_entity`` and ``bottom_chain``/``bottom_entity``.
    A chain is one order of the middle tiers' members; the row's probability is the
    sum over its chains (a middle tier of m members gives m! chains; the top and
    bottom tiers need no order).

    ``row_contrast_scale`` [n_rows, K]: the factor on the probit scale of a
    qualitative row at each candidate time (1 except for assays whose contrasts are
    growth-rate contrasts); empty means all ones.
    Method :meth:`check` verifies shapes and index ranges.
    """

    batch: ConditionBatch
    times: np.ndarray
    row_ids: tuple[str, ...]
    row_kind: np.ndarray
    row_study: tuple[str, ...]
    row_source: tuple[str, ...]
    row_readout: tuple[str, ...]
    row_value: np.ndarray
    row_log_sd: np.ndarray
    row_noise_group: np.ndarray
    row_scale_group: np.ndarray
    row_time_index: np.ndarray
    row_time_logw: np.ndarray
    unit_row: np.ndarray
    unit_direction: np.ndarray
    term_unit: np.ndarray
    term_cond: np.ndarray
    term_obs: np.ndarray
    term_weight: np.ndarray
    term_time_index: np.ndarray
    noise_groups: tuple[str, ...]
    scale_groups: tuple[str, ...]
    dose_slots: np.ndarray
    dose_nuisance: np.ndarray
    nuisance_names: tuple[str, ...]
    nuisance_log_median: np.ndarray
    nuisance_log_sd: np.ndarray
    nuisance_sources: tuple[str, ...]
    row_statement: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    statement_ids: tuple[str, ...] = ()
    row_significant: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    row_cell_line: tuple[str, ...] = ()
    nuisance_units: tuple[str, ...] = ()
    entity_row: np.ndarray = field(default_factory=lambda: _empty_int(0))
    link_entity: np.ndarray = field(default_factory=lambda: _empty_int(0))
    link_unit: np.ndarray = field(default_factory=lambda: _empty_int(0))
    link_sign: np.ndarray = field(default_factory=lambda: np.zeros(0))
    chain_row: np.ndarray = field(default_factory=lambda: _empty_int(0))
    chain_sign: np.ndarray = field(default_factory=lambda: np.zeros(0))
    chain_middle: np.ndarray = field(default_factory=lambda: _empty_int(0, 0))
    top_chain: np.ndarray = field(default_factory=lambda: _empty_int(0))
    top_entity: np.ndarray = field(default_factory=lambda: _empty_int(0))
    bottom_chain: np.ndarray = field(default_factory=lambda: _empty_int(0))
    bottom_entity: np.ndarray = field(default_factory=lambda: _empty_int(0))
    row_contrast_scale: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    @property
    def n_rows(self) -> int:
        return len(self.row_ids)

    @property
    def n_units(self) -> int:
        return len(self.unit_row)

    @property
    def n_terms(self) -> int:
        return len(self.term_unit)

    @property
    def n_chains(self) -> int:
        return len(self.chain_row)

    def contrast_scale(self) -> np.ndarray:
        """``row_contrast_scale``, or ones [n_rows, K] when it is empty."""
        scale = np.asarray(self.row_contrast_scale, dtype=np.float64)
        if scale.size == 0:
            return np.ones((self.n_rows, self.n_candidates))
        return scale

    @property
    def n_candidates(self) -> int:
        """K, the number of candidate-time columns."""
        return int(self.row_time_index.shape[1])

    def check(self) -> None:
        """Raise ``ValueError`` listing every shape or index inconsistency."""
        problems = []
        n_r, n_u, n_t = self.n_rows, self.n_units, self.n_terms
        k = self.n_candidates
        n_c, n_times = self.batch.n_conditions, len(self.times)

        def shape(name: str, expected: tuple[int, ...]) -> None:
            got = tuple(np.shape(getattr(self, name)))
            if got != expected:
                problems.append(f"{name} has shape {got}, expected {expected}")

        for name in ("row_kind", "row_value", "row_log_sd", "row_noise_group"):
            shape(name, (n_r,))
        for name in ("row_scale_group", "row_time_index", "row_time_logw"):
            shape(name, (n_r,) if name == "row_scale_group" else (n_r, k))
        for name in ("unit_row", "unit_direction"):
            shape(name, (n_u,))
        for name in ("term_unit", "term_cond", "term_obs", "term_weight"):
            shape(name, (n_t,))
        shape("term_time_index", (n_t, k))
        ranges = (
            ("unit_row", self.unit_row, n_r),
            ("term_unit", self.term_unit, n_u),
            ("term_cond", self.term_cond, n_c),
            ("row_time_index", self.row_time_index, n_times),
            ("term_time_index", self.term_time_index, n_times),
            ("row_noise_group", self.row_noise_group, len(self.noise_groups)),
            ("dose_nuisance", self.dose_nuisance, len(self.nuisance_names)),
        )
        for name, values, bound in ranges:
            values = np.asarray(values)
            if values.size and (values.min() < 0 or values.max() >= bound):
                problems.append(f"{name} has indices outside [0, {bound})")
        if np.any(self.row_scale_group >= len(self.scale_groups)):
            problems.append("row_scale_group has indices beyond scale_groups")
        if n_r and not np.allclose(np.exp(self.row_time_logw).sum(axis=1), 1.0):
            problems.append("candidate-time weights of some rows do not sum to 1")
        if n_u and np.setdiff1d(np.arange(n_u), self.term_unit).size:
            problems.append("some units have no terms")
        if n_r and np.setdiff1d(np.arange(n_r), self.unit_row).size:
            problems.append("some rows have no units")
        if len(set(self.row_ids)) != n_r:
            problems.append("row_ids are not unique")
        problems += self._check_ordinal()
        scale = np.asarray(self.row_contrast_scale)
        if scale.size and (scale.shape != (n_r, k) or not np.all(scale > 0)):
            problems.append(f"row_contrast_scale must be > 0 with shape {(n_r, k)}")
        if problems:
            raise ValueError("inconsistent EvidenceArrays: " + "; ".join(problems))

    def _check_ordinal(self) -> list[str]:
        """Entities, links and chains of rank rows: shapes, ranges, one row each."""
        problems = []
        n_e, n_c = len(self.entity_row), self.n_chains
        rank = ROW_KINDS.index("rank")
        if len(self.link_unit) != len(self.link_entity) or len(self.link_sign) != len(
            self.link_entity
        ):
            problems.append("link_entity, link_unit and link_sign differ in length")
        elif len(self.link_unit):
            entity, unit = np.asarray(self.link_entity), np.asarray(self.link_unit)
            if entity.max() >= n_e or unit.max() >= self.n_units:
                problems.append("links name entities or units out of range")
            elif np.any(np.asarray(self.unit_row)[unit] != np.asarray(self.entity_row)[entity]):
                problems.append("links join an entity to a unit of another row")
        chain_row = np.asarray(self.chain_row)
        entity_row = np.asarray(self.entity_row)
        middle = np.asarray(self.chain_middle)
        if middle.ndim != 2 or middle.shape[0] != n_c or len(self.chain_sign) != n_c:
            problems.append("chain_middle and chain_sign need one line per chain")
            return problems
        for name in ("top", "bottom"):
            chain = np.asarray(getattr(self, f"{name}_chain"))
            entity = np.asarray(getattr(self, f"{name}_entity"))
            if chain.shape != entity.shape or (
                chain.size and (chain.max() >= n_c or entity.max() >= n_e or entity.min() < 0)
            ):
                problems.append(f"{name}_chain and {name}_entity do not index chains and entities")
            elif np.setdiff1d(np.arange(n_c), chain).size:
                problems.append(f"some chains have no {name} member")
            elif np.any(entity_row[entity] != chain_row[chain]):
                problems.append(f"a chain's {name} set holds entities of another row")
        valid = middle >= 0
        if middle.size and (middle.max() >= n_e or middle.min() < -1):
            problems.append("chain_middle names entities outside [0, n_entities)")
        elif np.any(entity_row[middle[valid]] != np.repeat(chain_row, valid.sum(1))):
            problems.append("a chain's middle holds entities of another row")
        if n_c and np.any(np.asarray(self.row_kind)[chain_row] != rank):
            problems.append("chains belong to rows that are not rank rows")
        ranked = np.flatnonzero(np.asarray(self.row_kind) == rank)
        if np.setdiff1d(ranked, self.chain_row).size:
            problems.append("some rank rows have no chain (their ordinal likelihood needs one)")
        return problems


__all__ = ["ROW_KINDS", "EvidenceArrays"]
