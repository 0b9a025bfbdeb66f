"""The one pandas -> JAX boundary: evidence rows to :class:`EvidenceArrays`.

How rows become units and terms (``delta = sum weight * log y(condition, time, obs)``):

* every condition of a row is its background plus the condition (or control) cell, on
  one cell line; identical (cell line, doses) pairs share one entry of the batch, and
  unknown doses are part of the identity (``oguro2013.ifn_alpha`` and
  ``tomita2011.ifn_alpha`` are different conditions);
* ``value``: one unit; one term (absolute value) or +1 condition / -1 control (a
  ratio to the control);
* ``sign`` and ``not_significant``: one unit, +1 condition / -1 control on the row's
  cell line; against a ``control_cell_line`` the unit is the difference of the two
  lines' quantities (levels, or ratios to the control when one is given: 4 terms);
* ``interaction`` (factors a, b over the background): +1 (a+b), -1 a, -1 b, +1 none;
* ``rank``: one unit per pair of members of adjacent tiers (higher minus lower),
  direction +1; each member's (entity's) quantity is its level, or its ratio to the
  control when one is given. The row's ordinal structure (entities, links from units
  to entity levels, chains: see :class:`EvidenceArrays`) comes from
  :func:`rank_structure`;
* contrast scale: the probit scale of a qualitative row at each candidate time t is
  multiplied by its assay's ``contrast_scale(t)`` (tumour volumes: growth-rate
  contrasts, see ``assays.tsv``);
* times: a known time is one candidate of weight 1; ``unknown`` takes the assay's grid
  and weights (``assays.tsv``); stated candidates ``1|2|24`` get equal weights. A
  control read at ``control_time_h`` uses that time for every candidate.

Unknown doses become nuisance quantities named ``<study>.<input>[.<label>]`` with the
log-normal prior of ``nuisance_priors.tsv``; the batch holds the prior median as a
placeholder, and ``dose_slots`` says which entries the inference overwrites.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import DataError
from ..models import Condition, ODEModel, make_batch
from . import _columns as C
from ._arrays import ROW_KINDS, EvidenceArrays
from ._grammar import Dose, Perturbations, Vocabulary
from ._load import REFERENCES, SOURCE_FILE, SOURCE_LINE, TABLE_TYPE, format_issues, load_evidence
from ._rows import EvidenceRow, parse_row
from ._tables import Issue, References, load_references

#: A term before indexing: (weight, cell line, doses, read at the control time).
_Term = tuple[float, str, Perturbations, bool]


def nuisance_name(study_id: str, dose: Dose) -> str:
    """Name of the nuisance quantity behind an unknown dose."""
    return f"{study_id}.{dose.input}" + (f".{dose.label}" if dose.label else "")


def _merge(background: Perturbations, perts: Perturbations) -> Perturbations:
    return tuple(sorted(background + perts, key=lambda d: d.input))


def row_units(row: EvidenceRow) -> list[tuple[int, list[_Term]]]:
    """The units of a row: (direction, terms) each, in the order of the module doc."""

    def quantity(line: str, condition: Perturbations) -> list[_Term]:
        terms: list[_Term] = [(1.0, line, _merge(row.background, condition), False)]
        if row.control is not None:
            terms.append((-1.0, line, _merge(row.background, row.control), True))
        return terms

    def minus(terms: list[_Term]) -> list[_Term]:
        return [(-w, line, perts, ctl) for w, line, perts, ctl in terms]

    if row.kind == "rank":
        tiers = _rank_tiers(row)
        return [
            (1, quantity(*tiers[i][a]) + minus(quantity(*tiers[i + 1][b])))
            for i, a, b in _adjacent_pairs([len(t) for t in tiers])
        ]
    if row.kind == "interaction":
        a, b = row.condition
        line, bg = row.cell_line, row.background
        return [
            (
                row.direction,
                [
                    (1.0, line, _merge(bg, (a, b)), False),
                    (-1.0, line, _merge(bg, (a,)), False),
                    (-1.0, line, _merge(bg, (b,)), False),
                    (1.0, line, _merge(bg, ()), False),
                ],
            )
        ]
    terms = quantity(row.cell_line, row.condition)
    if row.control_cell_line is not None:
        terms += minus(quantity(row.control_cell_line, row.condition))
    return [(row.direction, terms)]


def _rank_tiers(row: EvidenceRow) -> list[list[tuple[str, Perturbations]]]:
    """The (cell line, condition) of every member of a rank row, tier by tier."""
    if len(row.cell_lines) > 1:
        return [[(line, row.condition) for line in tier] for tier in row.cell_lines]
    return [[(row.cell_line, cond) for cond in tier] for tier in row.conditions]


def _adjacent_pairs(sizes: Sequence[int]) -> list[tuple[int, int, int]]:
    """(tier i, member of tier i, member of tier i + 1): a rank row's units, in order."""
    return [
        (i, a, b)
        for i in range(len(sizes) - 1)
        for a in range(sizes[i])
        for b in range(sizes[i + 1])
    ]


@dataclass(frozen=True)
class RankStructure:
    """The ordinal structure of one rank row, in the row's own indices.

    ``tiers``: entity indices per tier (entities numbered tier by tier, from the top);
    ``links``: (entity, unit, sign): an entity's level minus the first entity's is
    ``sum sign * delta[unit]`` over its links (units as :func:`row_units` orders them);
    ``chains``: (top, middle, bottom) entity indices, one per order of the members of
    the middle tiers (the middle listed from the top down); ``sign``: -1 when the chains
    are stored reflected (levels negated, tiers reversed: a rank whose top tier has
    several members and whose bottom tier one is computed with a one-member top).
    """

    tiers: tuple[tuple[int, ...], ...]
    links: tuple[tuple[int, int, int], ...]
    chains: tuple[tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]], ...]
    sign: int = 1


def rank_structure(sizes: Sequence[int]) -> RankStructure:
    """Entities, links and chains of a rank with tiers of these sizes (top first)."""
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"a rank needs at least two non-empty tiers, got sizes {list(sizes)}")
    offsets = np.cumsum([0, *sizes])
    tiers = tuple(tuple(range(offsets[t], offsets[t + 1])) for t in range(len(sizes)))
    unit = {pair: u for u, pair in enumerate(_adjacent_pairs(sizes))}
    last = len(sizes) - 1
    paths: dict[tuple[int, int], dict[int, int]] = {(0, 0): {}}

    def add(path: dict[int, int], u: int, sign: int) -> dict[int, int]:
        out = dict(path)
        out[u] = out.get(u, 0) + sign
        return {k: v for k, v in out.items() if v}

    # delta(a, b) = level a - level b for a in tier i, b in tier i + 1: walk down the
    # first members, then step sideways through a neighbouring tier
    for t in range(1, last + 1):
        paths[(t, 0)] = add(paths[(t - 1, 0)], unit[(t - 1, 0, 0)], -1)
    for t in range(last + 1):
        for m in range(1, sizes[t]):
            if t < last:
                paths[(t, m)] = add(paths[(t + 1, 0)], unit[(t, m, 0)], +1)
            else:
                paths[(t, m)] = add(paths[(t - 1, 0)], unit[(t - 1, 0, m)], -1)
    links = tuple(
        (tiers[t][m], u, sign)
        for (t, m), path in sorted(paths.items())
        for u, sign in sorted(path.items())
    )
    sign = -1 if len(tiers[0]) > 1 and len(tiers[-1]) == 1 else 1
    ordered = tiers if sign == 1 else tiers[::-1]
    middle_orders = itertools.product(*(itertools.permutations(t) for t in ordered[1:-1]))
    chains = tuple(
        (ordered[0], tuple(e for tier in order for e in tier), ordered[-1])
        for order in middle_orders
    )
    return RankStructure(tiers, links, chains, sign)


class _Conditions:
    """Distinct conditions, their unknown-dose slots and the nuisance quantities."""

    def __init__(self, model: ODEModel, refs: References) -> None:
        self.model = model
        self.refs = refs
        self.index: dict[tuple, int] = {}
        self.conditions: list[Condition] = []
        self.slots: list[tuple[int, int, int]] = []
        self.nuisances: dict[str, int] = {}
        self.priors: list = []

    def get(self, study: str, line: str, perts: Perturbations) -> int:
        resolved = tuple(
            (d.input, d.value if d.value is not None else "~" + nuisance_name(study, d))
            for d in perts
        )
        key = (line, resolved)
        if key in self.index:
            return self.index[key]
        c = len(self.conditions)
        doses = {}
        for dose, (name, value) in zip(perts, resolved, strict=True):
            if dose.value is None:
                prior = self.refs.priors[(dose.input, dose.label)]
                nuisance = self.nuisances.setdefault(value[1:], len(self.nuisances))
                if nuisance == len(self.priors):
                    self.priors.append(prior)
                self.slots.append((c, self.model.index("inputs", name), nuisance))
                doses[name] = prior.median
            else:
                doses[name] = dose.value
        text = ";".join(f"{n}={v:.6g}" if isinstance(v, float) else f"{n}={v}" for n, v in resolved)
        self.conditions.append(Condition(f"{line}|{text or 'none'}", line, doses))
        self.index[key] = c
        return c


def parse_frame(evidence: pd.DataFrame, vocab: Vocabulary, refs: References) -> list[EvidenceRow]:
    """Parse the rows of a loaded evidence frame; all problems in one DataError."""
    missing = [c for c in C.EVIDENCE_COLUMNS if c not in evidence.columns]
    if missing:
        raise DataError(
            f"evidence frame lacks column(s) {missing}; expected the frame of load_evidence()"
        )
    rows, issues = [], []
    for i, record in enumerate(evidence.to_dict("records")):
        path = str(record.get(SOURCE_FILE, "<frame>"))
        line = int(record.get(SOURCE_LINE, i + 2))
        cells = {c: "" if pd.isna(record[c]) else str(record[c]) for c in C.EVIDENCE_COLUMNS}
        digitised = record.get(TABLE_TYPE) == "digitised"
        row, problems = parse_row(cells, vocab, refs, path, line, digitised=digitised)
        issues.extend(Issue(path, line, p) for p in problems)
        if row is not None:
            rows.append(row)
    ids = [r.row_id for r in rows]
    for dup in sorted({i for i in ids if ids.count(i) > 1}):
        issues.append(Issue("<frame>", 0, f"row_id {dup!r} appears more than once"))
    if issues:
        raise DataError(format_issues(issues, "evidence rows do not fit the model"))
    if not rows:
        raise DataError("the evidence frame has no rows")
    return rows


def build_arrays(
    model: ODEModel,
    evidence: pd.DataFrame | None = None,
    *,
    references: References | None = None,
    row_names: Sequence[str] | None = None,
) -> EvidenceArrays:
    """Map evidence rows onto the model's conditions, observables and times.

    Args:
        model: the model (any variant: the mapping uses only its names and units).
        evidence: the frame of :func:`load_evidence` (default: the shipped tables).
        references: assays, nuisance priors and statements (default: the shipped ones).
        row_names: parameter rows (cell lines) of the batch, passed to ``make_batch``.

    Returns:
        :class:`EvidenceArrays` (numpy arrays; see its docstring for the semantics).

    Raises:
        DataError: a row does not fit the model (unknown name, unit, ...), all listed.
    """
    vocab = Vocabulary.from_model(model)
    if references is None and evidence is not None:
        references = evidence.attrs.get(REFERENCES)
    if references is None:
        # model names are checked on the rows: a model without some observable or
        # input of the shipped reference tables can still take the rows that fit it
        references, issues = load_references(None)
        if issues:
            raise DataError(format_issues(issues, "invalid reference tables"))
    if evidence is None:
        evidence = load_evidence(model=model)
    rows = parse_frame(evidence, vocab, references)

    times = sorted(
        {t for r in rows for t in r.times}
        | {r.control_time for r in rows if r.control_time is not None}
    )
    t_index = {t: i for i, t in enumerate(times)}
    k_max = max(len(r.times) for r in rows)
    conditions = _Conditions(model, references)
    noise_groups: dict[str, int] = {}
    scale_groups: dict[str, int] = {}
    statements: dict[str, int] = {}
    n_rows = len(rows)
    row_time_index = np.zeros((n_rows, k_max), dtype=np.int32)
    row_time_logw = np.full((n_rows, k_max), -np.inf)
    row_contrast_scale = np.ones((n_rows, k_max))
    row_kind = np.zeros(n_rows, dtype=np.int32)
    row_value = np.full(n_rows, np.nan)
    row_log_sd = np.full(n_rows, np.nan)
    row_noise = np.zeros(n_rows, dtype=np.int32)
    row_scale = np.full(n_rows, -1, dtype=np.int32)
    row_statement = np.full(n_rows, -1, dtype=np.int32)
    row_significant = np.zeros(n_rows, dtype=bool)
    unit_row, unit_direction = [], []
    term_unit, term_cond, term_obs, term_weight, term_time = [], [], [], [], []
    entity_row: list[int] = []
    links: list[tuple[int, int, int]] = []
    chains: list[tuple[int, int, tuple[int, ...], tuple[int, ...], tuple[int, ...]]] = []
    for r, row in enumerate(rows):
        idx = [t_index[t] for t in row.times]
        row_time_index[r] = idx + [idx[0]] * (k_max - len(idx))
        row_time_logw[r, : len(idx)] = np.log(np.asarray(row.time_weights))
        scales = [row.assay.contrast_scale(t) for t in row.times]
        row_contrast_scale[r] = scales + [scales[0]] * (k_max - len(scales))
        row_kind[r] = ROW_KINDS.index(row.kind)
        if row.value is not None:
            row_value[r] = math.log(row.value)
        if row.log_sd is not None:
            row_log_sd[r] = row.log_sd
        row_noise[r] = noise_groups.setdefault(row.assay.noise_group, len(noise_groups))
        if row.scale_group:
            name = f"{row.study_id}:{row.scale_group}"
            row_scale[r] = scale_groups.setdefault(name, len(scale_groups))
        if row.statement_ids:
            row_statement[r] = statements.setdefault(row.statement_ids[0], len(statements))
        row_significant[r] = row.significance == "significant"
        obs = model.index("observables", row.observable)
        control_idx = (
            np.full(k_max, t_index[row.control_time], dtype=np.int32)
            if row.control_time is not None
            else row_time_index[r]
        )
        if row.kind == "rank":
            structure = rank_structure([len(t) for t in _rank_tiers(row)])
            e0, u0 = len(entity_row), len(unit_row)
            entity_row.extend([r] * sum(len(t) for t in structure.tiers))
            links.extend((e0 + e, u0 + u, sign) for e, u, sign in structure.links)
            chains.extend(
                (r, structure.sign, *(tuple(e0 + e for e in part) for part in chain))
                for chain in structure.chains
            )
        for direction, terms in row_units(row):
            u = len(unit_row)
            unit_row.append(r)
            unit_direction.append(direction)
            for weight, line, perts, is_control in terms:
                term_unit.append(u)
                term_cond.append(conditions.get(row.study_id, line, perts))
                term_obs.append(obs)
                term_weight.append(weight)
                term_time.append(control_idx if is_control else row_time_index[r])
    batch = make_batch(model, conditions.conditions, row_names)
    priors = conditions.priors
    ln10 = math.log(10.0)
    return EvidenceArrays(
        batch=batch,
        times=np.asarray(times, dtype=np.float64),
        row_ids=tuple(r.row_id for r in rows),
        row_kind=row_kind,
        row_study=tuple(r.study_id for r in rows),
        row_source=tuple(r.source for r in rows),
        row_readout=tuple(f"{r.assay.id} {r.observable}" for r in rows),
        row_value=row_value,
        row_log_sd=row_log_sd,
        row_noise_group=row_noise,
        row_scale_group=row_scale,
        row_time_index=row_time_index,
        row_time_logw=row_time_logw,
        row_contrast_scale=row_contrast_scale,
        unit_row=np.asarray(unit_row, dtype=np.int32),
        unit_direction=np.asarray(unit_direction, dtype=np.int32),
        term_unit=np.asarray(term_unit, dtype=np.int32),
        term_cond=np.asarray(term_cond, dtype=np.int32),
        term_obs=np.asarray(term_obs, dtype=np.int32),
        term_weight=np.asarray(term_weight, dtype=np.float64),
        term_time_index=np.asarray(term_time, dtype=np.int32).reshape(len(term_unit), k_max),
        noise_groups=tuple(noise_groups),
        scale_groups=tuple(scale_groups),
        dose_slots=np.asarray([(c, i) for c, i, _ in conditions.slots], dtype=np.int32).reshape(
            -1, 2
        ),
        dose_nuisance=np.asarray([n for _, _, n in conditions.slots], dtype=np.int32),
        nuisance_names=tuple(conditions.nuisances),
        nuisance_log_median=np.asarray([math.log(p.median) for p in priors], dtype=np.float64),
        nuisance_log_sd=np.asarray([p.log10_sd * ln10 for p in priors], dtype=np.float64),
        nuisance_sources=tuple(p.source for p in priors),
        row_statement=row_statement,
        statement_ids=tuple(statements),
        row_significant=row_significant,
        row_cell_line=tuple(" > ".join(", ".join(t) for t in r.cell_lines) for r in rows),
        nuisance_units=tuple(p.unit for p in priors),
        entity_row=np.asarray(entity_row, dtype=np.int32),
        link_entity=np.asarray([e for e, _, _ in links], dtype=np.int32),
        link_unit=np.asarray([u for _, u, _ in links], dtype=np.int32),
        link_sign=np.asarray([sign for _, _, sign in links], dtype=np.float64),
        chain_row=np.asarray([c[0] for c in chains], dtype=np.int32),
        chain_sign=np.asarray([c[1] for c in chains], dtype=np.float64),
        chain_middle=_padded([c[3] for c in chains]),
        top_chain=np.asarray([i for i, c in enumerate(chains) for _ in c[2]], dtype=np.int32),
        top_entity=np.asarray([e for c in chains for e in c[2]], dtype=np.int32),
        bottom_chain=np.asarray([i for i, c in enumerate(chains) for _ in c[4]], dtype=np.int32),
        bottom_entity=np.asarray([e for c in chains for e in c[4]], dtype=np.int32),
    )


def _padded(parts: Sequence[tuple[int, ...]]) -> np.ndarray:
    """Rows of entity indices padded with -1 to a common width."""
    width = max([0, *(len(p) for p in parts)])
    out = np.full((len(parts), width), -1, dtype=np.int32)
    for i, part in enumerate(parts):
        out[i, : len(part)] = part
    return out


@dataclass(frozen=True)
class ReportedDoses:
    """The doses of one model input that the evidence states (``values``, in the
    input's unit, sorted) and the nuisance quantities that stand for the ones it does
    not (``nuisances``, names of :attr:`EvidenceArrays.nuisance_names`)."""

    values: tuple[float, ...]
    nuisances: tuple[str, ...]


def reported_doses(arrays: EvidenceArrays, model: ODEModel) -> dict[str, ReportedDoses]:
    """Per dosed model input used by the evidence: the doses the sources report and the
    nuisances of the unknown ones, so that predictions are made at reported doses (a
    TKI's own series: sorafenib 0.5-10 uM, pazopanib 1-50 uM) and, where no dose is
    reported (IFN-a, tocilizumab in vitro, every in-vivo exposure), at the posterior
    draws of the nuisance dose rather than at an invented number."""
    inputs = np.asarray(arrays.batch.inputs)
    unknown = np.zeros(inputs.shape, dtype=bool)
    slots = np.asarray(arrays.dose_slots).reshape(-1, 2)
    unknown[slots[:, 0], slots[:, 1]] = True
    out = {}
    for i, name in enumerate(model.input_names):
        known = inputs[~unknown[:, i], i]
        values = tuple(float(v) for v in np.unique(known[known > 0]))
        nuisances = tuple(
            sorted({arrays.nuisance_names[n] for n in arrays.dose_nuisance[slots[:, 1] == i]})
        )
        if (values or nuisances) and not model.inputs[i].indicator:
            out[name] = ReportedDoses(values, nuisances)
    return out


def nuisance_table(arrays: EvidenceArrays) -> Mapping[str, tuple[float, float, str]]:
    """Nuisance name -> (prior median, prior SD in decades, source), for reports."""
    return {
        name: (math.exp(m), s / math.log(10.0), src)
        for name, m, s, src in zip(
            arrays.nuisance_names,
            arrays.nuisance_log_median,
            arrays.nuisance_log_sd,
            arrays.nuisance_sources,
            strict=True,
        )
    }


__all__ = [
    "RankStructure",
    "ReportedDoses",
    "build_arrays",
    "nuisance_name",
    "nuisance_table",
    "parse_frame",
    "rank_structure",
    "reported_doses",
    "row_units",
]
