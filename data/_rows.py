"""One evidence row, parsed and checked: the unit of both the linter and the loader.

:func:`parse_row` turns the cells of a row into an :class:`EvidenceRow` (doses in model
units, cell lines canonical, candidate times with weights, the value on its scale) and
lists every problem it finds. Digitisation rows are first rewritten as evidence rows
by :func:`digitised_to_evidence`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import choices
from . import _columns as C
from ._grammar import (
    ROW_ID_RE,
    STUDY_ID_RE,
    Perturbations,
    Vocabulary,
    check_source,
    parse_calibration,
    parse_p_value,
    parse_perturbations,
    parse_positive,
    parse_tiers,
    parse_time,
)
from ._tables import Assay, References, missing_required
from ._units import conversion_factor

#: p values at or below this are read as "significant" (the sources' convention).
ALPHA = 0.05
#: Stands for a cell that was given but did not parse (its problem is reported).
_INVALID = "<invalid>"
#: z of a two-sided 95% interval (CI95 half-width -> standard error).
Z95 = 1.959963984540054


@dataclass(frozen=True)
class EvidenceRow:
    """A parsed evidence row. Tiers are tuples of tuples; plain rows have one tier of
    one entry. ``control`` is None when the row has no within-line comparison."""

    path: str
    line: int
    row_id: str
    study_id: str
    statement_ids: tuple[str, ...]
    source: str
    kind: str
    observable: str
    assay: Assay
    cell_lines: tuple[tuple[str, ...], ...]
    control_cell_line: str | None
    background: Perturbations
    conditions: tuple[tuple[Perturbations, ...], ...]
    control: Perturbations | None
    times: tuple[float, ...]
    time_weights: tuple[float, ...]
    control_time: float | None
    direction: int
    value: float | None
    log_sd: float | None
    n: int | None
    significance: str
    p_value: tuple[str, float] | None
    scale_group: str | None
    quote: str

    @property
    def cell_line(self) -> str:
        """The cell line of a row that is not a rank over cell lines."""
        return self.cell_lines[0][0]

    @property
    def condition(self) -> Perturbations:
        """The condition of a row that is not a rank over conditions."""
        return self.conditions[0][0]

    def content_key(self) -> tuple:
        """What makes two rows the same observation (for the duplicate check)."""
        return (
            self.study_id,
            self.kind,
            self.observable,
            self.cell_lines,
            self.control_cell_line,
            self.background,
            self.conditions,
            self.control,
            self.times,
            self.control_time,
        )


def _lines(text: str, vocab: Vocabulary, what: str) -> tuple[tuple | None, list[str]]:
    tiers, problems = parse_tiers(text)
    if tiers is None:
        return None, [f"{what}: {p}" for p in problems]
    out = []
    for tier in tiers:
        canon = []
        for name in tier:
            if name not in vocab.cell_lines:
                problems.append(
                    f"unknown cell line {name!r} in {what}; valid: "
                    f"{choices(set(vocab.cell_lines.values()))} (or an alias)"
                )
            else:
                canon.append(vocab.cell_lines[name])
        out.append(tuple(canon))
    if problems:
        return None, problems
    flat = [x for tier in out for x in tier]
    if len(set(flat)) != len(flat):
        return None, [f"{what} {text!r} names one cell line twice (through an alias?)"]
    return tuple(out), []


def _conditions(text: str, vocab: Vocabulary) -> tuple[tuple | None, list[str]]:
    tiers, problems = parse_tiers(text)
    if tiers is None:
        return None, [f"condition: {p}" for p in problems]
    out = []
    for tier in tiers:
        parsed = []
        for item in tier:
            perts, issues = parse_perturbations(item, vocab)
            problems.extend(f"condition {item!r}: {p}" for p in issues)
            if perts is not None:
                parsed.append(perts)
        out.append(tuple(parsed))
    if problems:
        return None, problems
    flat = [x for tier in out for x in tier]
    if len(set(flat)) != len(flat):
        return None, [f"condition {text!r} lists one condition twice"]
    return tuple(out), []


def _check_doses(
    background: Perturbations,
    conditions: tuple[tuple[Perturbations, ...], ...],
    control: Perturbations | None,
    study: str,
    refs: References,
    vocab: Vocabulary,
) -> list[str]:
    """Overlaps with the background, in-vivo rules and priors of unknown doses."""
    problems = []
    bg_inputs = {d.input for d in background}
    groups = [c for tier in conditions for c in tier] + ([control] if control is not None else [])
    overlap = sorted({n for perts in groups for n in bg_inputs & {d.input for d in perts}})
    for name in overlap:
        problems.append(f"perturbation {name!r} is in both the background and a condition")
    in_condition = any("xenograft" in {d.input for d in perts} for perts in groups)
    if in_condition and "xenograft" not in bg_inputs:
        problems.append(
            "put 'xenograft=on' in the background: a row is in vivo or in vitro throughout"
        )
    in_vivo = "xenograft" in bg_inputs or in_condition
    seen = set()
    for perts in [background, *groups]:
        for dose in perts:
            if vocab.inputs[dose.input].indicator:
                continue
            if dose.value is not None:
                if in_vivo:
                    problems.append(
                        f"in-vivo dose {dose.key()!r}: the effective exposure of an in-vivo "
                        f"dose is unknown; write '{dose.input}=unknown[{C.INVIVO}]' and put "
                        f"the regimen in {C.STATED_DOSE!r}"
                    )
                continue
            key = (dose.input, dose.label)
            if in_vivo and dose.label != C.INVIVO:
                problems.append(
                    f"unknown dose {dose.key()!r} in an in-vivo row must be "
                    f"'{dose.input}=unknown[{C.INVIVO}]'"
                )
            elif not in_vivo and dose.label == C.INVIVO:
                problems.append(
                    f"unknown dose {dose.key()!r} is labelled in vivo but the row has no "
                    "'xenograft=on' in its background"
                )
            elif key not in seen and key not in refs.priors:
                label = "." + dose.label if dose.label else ""
                problems.append(
                    f"no prior for the unknown dose {dose.key()!r} (nuisance "
                    f"'{study}.{dose.input}{label}'); add perturbation={dose.input!r}, "
                    f"label={dose.label or '-'!r} to nuisance_priors.tsv"
                )
            seen.add(key)
    return problems


def _log_sd(value: float, spread: float, kind: str, n: int | None) -> float:
    """Log-scale standard error of a reported mean (moment-matched log-normal)."""
    if kind == "SEM":
        se = spread
    elif kind == "CI95":
        se = spread / Z95
    else:  # SD: the SE of the mean when n is known, else the SD itself (conservative)
        se = spread / math.sqrt(n) if n else spread
    return math.sqrt(math.log1p((se / value) ** 2))


def _value_cells(
    record: Mapping[str, str], kind: str, observable: str, has_control: bool, vocab: Vocabulary
) -> tuple[tuple[float | None, float | None, int | None], list[str]]:
    """Value, log SD and n of a row, and the problems of those cells."""
    problems: list[str] = []
    value_text, unit = record[C.VALUE], record[C.VALUE_UNIT]
    spread_text, spread_type, n_text = record[C.SPREAD], record[C.SPREAD_TYPE], record[C.N]
    n = None
    if n_text:
        if n_text.isdigit() and int(n_text) > 0:
            n = int(n_text)
        else:
            problems.append(f"n must be a positive whole number, got {n_text!r}")
    if kind != "value":
        for col in (C.VALUE, C.VALUE_UNIT, C.SPREAD, C.SPREAD_TYPE, C.SCALE_GROUP):
            if record[col]:
                problems.append(f"{col!r} must be empty for a {kind!r} row, got {record[col]!r}")
        return (None, None, n), problems
    if not value_text:
        problems.append("a 'value' row needs a value")
    value, issues = parse_positive(value_text, "value (the likelihood compares log values)")
    if value_text:
        problems.extend(issues)
    obs_unit, relative = vocab.observables[observable]
    factor = None
    if not unit:
        problems.append("a 'value' row needs a value_unit")
    elif has_control:
        if unit not in C.RATIO_UNITS:
            problems.append(
                f"value_unit {unit!r}: a value relative to the control is a ratio; "
                f"expected one of {list(C.RATIO_UNITS)}"
            )
        else:
            factor = conversion_factor(unit, "1")
    elif relative:
        if unit != C.ARBITRARY_UNIT:
            problems.append(
                f"observable {observable!r} is relative (arbitrary units): an absolute value "
                f"needs value_unit {C.ARBITRARY_UNIT!r} and a scale_group, or a control to "
                f"divide by; got value_unit {unit!r}"
            )
        elif not record[C.SCALE_GROUP]:
            problems.append(
                f"an absolute value of the relative observable {observable!r} needs a "
                "scale_group (one unknown scale per blot or plate)"
            )
        factor = 1.0
    else:
        try:
            factor = conversion_factor(unit, obs_unit)
        except ValueError as err:
            problems.append(f"value_unit: {err} (observable {observable!r} is in {obs_unit!r})")
    if record[C.SCALE_GROUP] and (has_control or not relative):
        problems.append("scale_group is only for absolute values of relative observables")
    log_sd = None
    if spread_text or spread_type:
        if not (spread_text and spread_type):
            problems.append("spread and spread_type go together; one of them is empty")
        elif spread_type not in C.SPREAD_TYPES:
            problems.append(f"spread_type {spread_type!r} is not one of {list(C.SPREAD_TYPES)}")
        else:
            spread, issues = parse_positive(spread_text, "spread")
            problems.extend(issues)
            if spread is not None and value is not None:
                log_sd = _log_sd(value, spread, spread_type, n)
    if problems or value is None or factor is None:
        return (None, None, n), problems
    return (value * factor, log_sd, n), []


def _check_significance(record: Mapping[str, str], kind: str) -> tuple[tuple | None, list[str]]:
    problems = []
    level = record[C.SIGNIFICANCE]
    if level not in C.SIGNIFICANCE_LEVELS:
        return None, [f"significance {level!r} is not one of {list(C.SIGNIFICANCE_LEVELS)}"]
    if kind == "not_significant" and level != "not_significant":
        problems.append(
            f"a not_significant row must have significance 'not_significant', got {level!r}"
        )
    if kind not in ("not_significant", "value") and level == "not_significant":
        problems.append(
            f"significance 'not_significant' on a {kind!r} row: use kind 'not_significant'"
        )
    p_value = None
    if record[C.P_VALUE]:
        p_value, issues = parse_p_value(record[C.P_VALUE])
        problems.extend(issues)
        if p_value is not None:
            op, number = p_value
            says_significant = (op in "<=") and number <= ALPHA
            says_not = op == ">" or (op == "=" and number > ALPHA)
            if level == "not_stated":
                problems.append("a p value is given: state the significance it implies")
            elif level == "significant" and not says_significant:
                problems.append(
                    f"p {record[C.P_VALUE]!r} does not support 'significant' (alpha {ALPHA})"
                )
            elif level == "not_significant" and not says_not:
                problems.append(
                    f"p {record[C.P_VALUE]!r} contradicts 'not_significant' (alpha {ALPHA})"
                )
    return p_value, problems


def _check_shape(
    kind: str,
    direction: str | None,
    lines,
    conds,
    control,
    control_line,
    *,
    timed_control: bool,
    control_given: bool,
) -> list[str]:
    """Kind-specific rules on direction, tiers and the compared conditions.

    ``direction`` None, or a ``control_given`` that did not parse, mean the cell's
    problem is already reported; the rules that depend on it are then skipped."""
    problems = []
    wants_direction = kind in ("sign", "interaction")
    if direction is not None and wants_direction and direction not in ("up", "down"):
        problems.append(f"a {kind!r} row needs direction 'up' or 'down', got {direction!r}")
    if direction is not None and not wants_direction and direction != "none":
        problems.append(f"a {kind!r} row has direction 'none', got {direction!r}")
    if lines is None or conds is None:
        return problems
    line_tiers, cond_tiers = len(lines), len(conds)
    if kind == "rank":
        if (line_tiers > 1) == (cond_tiers > 1):
            problems.append(
                "a 'rank' row orders either cell lines (tiers in cell_line) or conditions "
                "(tiers in condition), exactly one of them"
            )
        if control_line is not None:
            problems.append("a 'rank' row has no control_cell_line")
        return problems
    if line_tiers > 1 or any(len(t) > 1 for t in lines):
        problems.append(f"only 'rank' rows list several cell lines (kind {kind!r})")
    if cond_tiers > 1 or any(len(t) > 1 for t in conds):
        problems.append(f"only 'rank' rows list several conditions (kind {kind!r})")
    if problems:
        return problems
    condition = conds[0][0]
    if kind == "interaction":
        if len(condition) != 2:
            problems.append(
                "an 'interaction' row's condition is the two factors, 'a=...; b=...', "
                f"got {len(condition)} perturbation(s)"
            )
        if control_given and control != ():
            problems.append(
                "an 'interaction' row's control is 'none' (the background without either factor)"
            )
        if control_line is not None:
            problems.append("an 'interaction' row has no control_cell_line")
        return problems
    if kind == "value":
        if control_line is not None:
            problems.append("a 'value' row has no control_cell_line")
        return problems
    if not control_given and control_line is None:
        problems.append(
            f"a {kind!r} row compares two things: give a control condition ('none' = the "
            "background alone) or a control_cell_line"
        )
    if control_line is None and control is not None and control == condition and not timed_control:
        problems.append(
            "condition and control are the same (and no control_time_h): the contrast is empty"
        )
    if control_line is not None and control_line == lines[0][0]:
        problems.append("control_cell_line is the row's own cell line")
    return problems


def parse_row(
    record: Mapping[str, str],
    vocab: Vocabulary,
    refs: References,
    path: str = "<table>",
    line: int = 0,
    *,
    digitised: bool = False,
) -> tuple[EvidenceRow | None, list[str]]:
    """Parse and check one evidence row.

    Args:
        record: the row's cells by column name (strings; empty = not given).
        vocab: the model's names (cell lines, inputs, observables).
        refs: assays, nuisance priors and statement ids to check against.
        path, line: where the row is, for the returned row.
        digitised: the row comes from a digitisation table (no quote required).

    Returns:
        The parsed row (None when there is any problem) and every problem found, as
        sentences that name the value received and what is expected.
    """
    required = [c for c in C.EVIDENCE_REQUIRED if not (digitised and c == C.QUOTE)]
    problems = missing_required(record, required)
    cell = record.get
    row_id, study = cell(C.ROW_ID, ""), cell(C.STUDY_ID, "")
    if row_id and not ROW_ID_RE.match(row_id):
        problems.append(f"row_id {row_id!r} may hold letters, digits and '_.-' only")
    if study and not STUDY_ID_RE.match(study):
        problems.append(f"study_id {study!r} must be lower case letters/digits, e.g. 'tomita2011'")
    statements = tuple(s.strip() for s in cell(C.STATEMENT_IDS, "").split(",") if s.strip())
    for sid in statements:
        if refs.statements and sid not in refs.statements:
            problems.append(f"statement id {sid!r} is not in statements.tsv")
    if cell(C.SOURCE):
        problems += check_source(cell(C.SOURCE, ""))
    kind = cell(C.KIND, "")
    if kind and kind not in C.KINDS:
        problems.append(f"kind {kind!r} is not one of {list(C.KINDS)}")
        kind = ""
    direction: str | None = cell(C.DIRECTION, "")
    if direction and direction not in C.DIRECTIONS:
        problems.append(f"direction {direction!r} is not one of {list(C.DIRECTIONS)}")
        direction = None
    observable = cell(C.OBSERVABLE_ID, "")
    if observable and observable not in vocab.observables:
        problems.append(f"unknown observable {observable!r}; valid: {choices(vocab.observables)}")
        observable = ""
    assay = refs.assays.get(cell(C.ASSAY, ""))
    if cell(C.ASSAY) and assay is None:
        problems.append(f"unknown assay {cell(C.ASSAY)!r}; valid: {choices(refs.assays)}")
    if (
        assay
        and observable
        and assay.observables is not None
        and observable not in assay.observables
    ):
        problems.append(
            f"assay {assay.id!r} does not read {observable!r}; it reads {sorted(assay.observables)}"
        )
    lines = control_line = background = conds = None
    control: Perturbations | None = None
    if cell(C.CELL_LINE):
        lines, issues = _lines(cell(C.CELL_LINE, ""), vocab, "cell_line")
        problems += issues
    if cell(C.CONTROL_CELL_LINE):
        ctl, issues = _lines(cell(C.CONTROL_CELL_LINE, ""), vocab, "control_cell_line")
        problems += issues
        if ctl is not None:
            if len(ctl) > 1 or len(ctl[0]) > 1:
                problems.append("control_cell_line is one cell line")
            control_line = ctl[0][0]
    if cell(C.BACKGROUND):
        background, issues = parse_perturbations(cell(C.BACKGROUND, ""), vocab)
        problems += [f"background: {p}" for p in issues]
    if cell(C.CONDITION):
        conds, issues = _conditions(cell(C.CONDITION, ""), vocab)
        problems += issues
    if cell(C.CONTROL):
        control, issues = parse_perturbations(cell(C.CONTROL, ""), vocab)
        problems += [f"control: {p}" for p in issues]
    if kind:
        problems += _check_shape(
            kind,
            direction if cell(C.DIRECTION) else None,
            lines,
            conds,
            control,
            # a control cell line that did not parse counts as given (already reported)
            control_line or (_INVALID if cell(C.CONTROL_CELL_LINE) else None),
            timed_control=bool(cell(C.CONTROL_TIME_H)),
            control_given=bool(cell(C.CONTROL)),
        )
    if (
        background is not None
        and conds is not None
        and (control is not None or not cell(C.CONTROL))
    ):
        problems += _check_doses(background, conds, control, study, refs, vocab)
    times, issues = parse_time(cell(C.TIME_H, "")) if cell(C.TIME_H) else (None, [])
    problems += [f"time_h: {p}" for p in issues]
    weights: tuple[float, ...] = ()
    if times == () and assay is not None:
        times, weights = assay.times, assay.weights
    elif times:
        weights = tuple(1.0 / len(times) for _ in times)
    control_time = None
    if cell(C.CONTROL_TIME_H):
        ctimes, issues = parse_time(cell(C.CONTROL_TIME_H, ""), allow_zero=True)
        problems += [f"control_time_h: {p}" for p in issues]
        if ctimes is not None and len(ctimes) != 1:
            problems.append("control_time_h must be one number of hours")
        elif ctimes:
            control_time = ctimes[0]
        if not cell(C.CONTROL):
            problems.append("control_time_h needs a control condition")
    (value, log_sd, n), issues = (
        _value_cells(record, kind, observable, bool(cell(C.CONTROL)), vocab)
        if kind and observable
        else ((None, None, None), [])
    )
    problems += issues
    p_value, issues = _check_significance(record, kind) if cell(C.SIGNIFICANCE) else (None, [])
    problems += issues
    quote = cell(C.QUOTE, "")
    if len(quote) > C.MAX_QUOTE_CHARS:
        problems.append(
            f"quote has {len(quote)} characters; at most {C.MAX_QUOTE_CHARS} (a short "
            "verbatim excerpt, '...' for omissions)"
        )
    if problems:
        return None, problems
    return (
        EvidenceRow(
            path=path,
            line=line,
            row_id=row_id,
            study_id=study,
            statement_ids=statements,
            source=cell(C.SOURCE, ""),
            kind=kind,
            observable=observable,
            assay=assay,
            cell_lines=lines,
            control_cell_line=control_line,
            background=background,
            conditions=conds,
            control=control,
            times=times,
            time_weights=weights,
            control_time=control_time,
            direction={"up": 1, "down": -1}.get(direction or "", 0),
            value=value,
            log_sd=log_sd,
            n=n,
            significance=cell(C.SIGNIFICANCE, ""),
            p_value=p_value,
            scale_group=cell(C.SCALE_GROUP) or None,
            quote=quote,
        ),
        [],
    )


def _from_pixels(px: float, calibration, log_axis: bool) -> float:
    (p1, v1), (p2, v2) = calibration
    if log_axis:
        v1, v2 = math.log10(v1), math.log10(v2)
    value = v1 + (px - p1) * (v2 - v1) / (p2 - p1)
    return 10.0**value if log_axis else value


def digitised_to_evidence(record: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Rewrite a digitisation row as an evidence ``value`` row (cells as text).

    The value (and spread) come from the ``value`` cells, or from pixel coordinates
    and the axis calibration when ``value`` is empty; when both are given they must
    agree within 1%.
    """
    problems = missing_required(record, C.DIGITISED_REQUIRED)
    scale = record.get(C.AXIS_SCALE, "")
    if scale and scale not in ("linear", "log"):
        problems.append(f"axis_scale {scale!r} must be 'linear' or 'log'")
    bars = record.get(C.ERROR_BARS, "")
    if bars and bars not in C.ERROR_BARS_CHOICES:
        problems.append(f"error_bars {bars!r} is not one of {list(C.ERROR_BARS_CHOICES)}")
    calibration = None
    if record.get(C.AXIS_CALIBRATION):
        calibration, issues = parse_calibration(record[C.AXIS_CALIBRATION])
        problems += issues
        if calibration and scale == "log" and min(v for _, v in calibration) <= 0:
            problems.append("a log axis needs calibration values > 0")
            calibration = None
    value, spread = record.get(C.VALUE, ""), record.get(C.SPREAD, "")
    log_axis = scale == "log"
    if record.get(C.VALUE_PX) and calibration:
        try:
            px = float(record[C.VALUE_PX])
            computed = _from_pixels(px, calibration, log_axis)
            if value:
                if abs(computed - float(value)) > 0.01 * abs(float(value)):
                    problems.append(
                        f"value {value!r} disagrees with value_px {record[C.VALUE_PX]!r} "
                        f"on the calibrated axis ({computed:.4g})"
                    )
            else:
                value = f"{computed:.6g}"
            if record.get(C.SPREAD_PX) and not spread:
                end = _from_pixels(float(record[C.SPREAD_PX]), calibration, log_axis)
                spread = f"{abs(end - computed):.6g}"
        except ValueError:
            problems.append("value_px and spread_px must be numbers (pixels)")
    elif record.get(C.VALUE_PX) and not record.get(C.AXIS_CALIBRATION):
        problems.append("value_px needs an axis_calibration")
    if record.get(C.VALUE_PX) and not value and problems:
        # the value could not be computed for a reason already reported; a placeholder
        # keeps the evidence checks from repeating it (the row is rejected anyway)
        value = "1"
    if bars in ("none", "unknown") and spread:
        problems.append(f"error_bars {bars!r} but a spread is given; the spread needs a meaning")
    if bars in C.SPREAD_TYPES and not spread:
        problems.append(f"error_bars {bars!r} but no spread (or spread_px) is given")
    evidence = {col: record.get(col, "") for col in C.EVIDENCE_COLUMNS}
    evidence.update(
        {
            C.KIND: "value",
            C.DIRECTION: "none",
            C.CONTROL_CELL_LINE: "",
            C.VALUE: value,
            C.SPREAD: spread,
            C.SPREAD_TYPE: bars if bars in C.SPREAD_TYPES and spread else "",
            C.SOURCE: f"{record.get(C.SOURCE, '')} {record.get(C.FIGURE, '')} "
            f"panel {record.get(C.PANEL, '')}".strip(),
            C.QUOTE: "",
            C.NOTES: (
                f"digitised by {record.get(C.DIGITISED_BY, '')} with {record.get(C.TOOL, '')} "
                f"on {record.get(C.DIGITISED_ON, '')}; {record.get(C.NOTES, '')}"
            ).strip("; "),
        }
    )
    return evidence, problems


__all__ = ["EvidenceRow", "digitised_to_evidence", "parse_row"]
