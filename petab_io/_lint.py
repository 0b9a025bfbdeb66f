"""Checks of a PEtab problem before anything is computed.

The petab library's own lint (:func:`library_lint`, ``petab.v1.lint_problem``, the
same checks as ``petablint``) runs first: it is the authority on what the standard
allows. Then il6rcc's checks: one function per check; each returns a list of
messages, and :func:`lint` runs them all so that every problem is reported in one
pass. Messages name the file, the line or id, the value found and what was
expected. They repeat the library's checks that matter for simulation with precise
locations (unknown ids, bounds, transforms) and add what it does not check
(negative or zero numeric noise, formulas that are not plain math), but they
never refuse what the library accepts as valid PEtab (e.g. a fixed parameter whose
nominal value is 0 on a log scale).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
from petab.v1 import C

from ..errors import choices
from ._math import Expr, free_symbols
from ._sbml import SbmlSpec
from ._tables import PetabTables, cell_is_empty, split_overrides

SCALES = ("lin", "log", "log10")
TRANSFORMATIONS = ("lin", "log", "log10")
DISTRIBUTIONS = ("normal", "laplace")
PRIOR_TYPES = tuple(C.PRIOR_TYPES)

_PLACEHOLDER = re.compile(r"^(observable|noise)Parameter(\d+)_(.+)$")


def placeholders(expr: Expr, kind: str, observable_id: str) -> int:
    """Number of ``{kind}Parameter{k}_{observable_id}`` placeholders in ``expr``
    (the largest ``k``; PEtab numbers them from 1)."""
    n = 0
    for name in free_symbols(expr):
        m = _PLACEHOLDER.match(name)
        if m and m.group(1) == kind and m.group(3) == observable_id:
            n = max(n, int(m.group(2)))
    return n


def _line(frame: pd.DataFrame, key) -> int:
    return int(frame.index.get_loc(key)) + 2


def _number(value) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out


def _text(value) -> str:
    return "" if cell_is_empty(value) else str(value).strip()


# ------------------------------------------------------------------------ parameters
def check_parameters(t: PetabTables, spec: SbmlSpec) -> list[str]:
    out = []
    df = t.parameter
    f = t.parameter_file
    for column in (C.PARAMETER_SCALE, C.LOWER_BOUND, C.UPPER_BOUND, C.NOMINAL_VALUE, C.ESTIMATE):
        if column not in df.columns:
            out.append(f"{f}: column {column!r} is missing")
    if out:
        return out
    if not df.index.is_unique:
        dup = sorted(set(df.index[df.index.duplicated()]))
        out.append(f"{f}: parameterId values {dup} occur more than once; ids must be unique")
    not_allowed = set(spec.state_ids) | set(spec.definition_ids)
    for pid, row in df.iterrows():
        where = f"{f} line {_line(df, pid)} (parameter {pid!r})"
        if not isinstance(pid, str) or not pid.isidentifier():
            out.append(f"{where}: parameterId must be an identifier, got {pid!r}")
            continue
        if pid in not_allowed:
            out.append(
                f"{where}: {pid!r} is a state or a rule/initial-assignment target of the SBML "
                f"model and cannot be a PEtab parameter"
            )
        scale = _text(row[C.PARAMETER_SCALE]) or "lin"
        if scale not in SCALES:
            out.append(f"{where}: parameterScale {scale!r} is invalid; expected one of {SCALES}")
        estimate = _number(row[C.ESTIMATE])
        if estimate not in (0.0, 1.0):
            out.append(f"{where}: estimate must be 0 or 1, got {row[C.ESTIMATE]!r}")
        nominal = _number(row[C.NOMINAL_VALUE])
        if (nominal is None or math.isnan(nominal)) and estimate == 0.0:
            out.append(f"{where}: nominalValue is required for a fixed parameter")
        lower, upper = _number(row[C.LOWER_BOUND]), _number(row[C.UPPER_BOUND])
        if estimate == 1.0:
            if lower is None or upper is None or math.isnan(lower) or math.isnan(upper):
                out.append(
                    f"{where}: lowerBound and upperBound must be numbers for an estimated "
                    f"parameter, got {row[C.LOWER_BOUND]!r} and {row[C.UPPER_BOUND]!r}"
                )
            elif lower > upper:
                out.append(
                    f"{where}: lowerBound {lower!r} is above upperBound {upper!r}; expected "
                    f"lowerBound <= upperBound"
                )
            elif scale in ("log", "log10") and (
                lower < 0 or (lower == 0 and not _text(row.get(C.INITIALIZATION_PRIOR_TYPE)))
            ):
                out.append(
                    f"{where}: lowerBound {lower!r} must be > 0 on parameterScale {scale!r} "
                    f"(0 only with an {C.INITIALIZATION_PRIOR_TYPE})"
                )
        out.extend(_check_prior(row, where))
    return out


def _check_prior(row, where: str) -> list[str]:
    out = []
    for type_col, par_col in (
        (C.OBJECTIVE_PRIOR_TYPE, C.OBJECTIVE_PRIOR_PARAMETERS),
        (C.INITIALIZATION_PRIOR_TYPE, C.INITIALIZATION_PRIOR_PARAMETERS),
    ):
        kind = _text(row.get(type_col))
        if not kind:
            continue
        if kind not in PRIOR_TYPES:
            out.append(f"{where}: {type_col} {kind!r} is invalid; expected one of {PRIOR_TYPES}")
            continue
        raw = _text(row.get(par_col))
        if not raw and kind in (C.UNIFORM, C.PARAMETER_SCALE_UNIFORM):
            continue
        values = [_number(v) for v in raw.split(C.PARAMETER_SEPARATOR)] if raw else []
        if len(values) != 2 or any(v is None or not math.isfinite(v) for v in values):
            out.append(
                f"{where}: {par_col} must be two numbers separated by ';' for prior {kind!r}, "
                f"got {raw!r}"
            )
        elif kind not in (C.UNIFORM, C.PARAMETER_SCALE_UNIFORM) and values[1] <= 0:
            out.append(f"{where}: {par_col}: the scale of prior {kind!r} must be > 0, got {raw!r}")
        elif kind in (C.UNIFORM, C.PARAMETER_SCALE_UNIFORM) and values[0] > values[1]:
            out.append(f"{where}: {par_col}: uniform prior bounds {raw!r} are reversed")
    return out


# ------------------------------------------------------------------------ observables
def check_observables(t: PetabTables, spec: SbmlSpec) -> list[str]:
    out = []
    df = t.observable
    f = t.observable_file
    if C.OBSERVABLE_FORMULA not in df.columns:
        out.append(f"{f}: column {C.OBSERVABLE_FORMULA!r} is missing")
    if C.NOISE_FORMULA not in df.columns:
        out.append(f"{f}: column {C.NOISE_FORMULA!r} is missing")
    if not df.index.is_unique:
        dup = sorted(set(df.index[df.index.duplicated()]))
        out.append(f"{f}: observableId values {dup} occur more than once")
    for oid, row in df.iterrows():
        where = f"{f} line {_line(df, oid)} (observable {oid!r})"
        if not isinstance(oid, str) or not oid.isidentifier():
            out.append(f"{where}: observableId must be an identifier, got {oid!r}")
        elif oid in spec.known_ids:
            out.append(f"{where}: observableId {oid!r} is also an id in the SBML model")
        transform = _text(row.get(C.OBSERVABLE_TRANSFORMATION)) or "lin"
        if transform not in TRANSFORMATIONS:
            out.append(
                f"{where}: observableTransformation {transform!r} is invalid; expected one "
                f"of {TRANSFORMATIONS}"
            )
        noise_formula = row.get(C.NOISE_FORMULA)
        if _number(noise_formula) is not None and not _number(noise_formula) > 0:
            out.append(
                f"{where}: noiseFormula {noise_formula!r} must be > 0 (a standard deviation "
                f"or scale)"
            )
        noise = _text(row.get(C.NOISE_DISTRIBUTION)) or "normal"
        if noise not in DISTRIBUTIONS:
            out.append(
                f"{where}: noiseDistribution {noise!r} is invalid; expected one of {DISTRIBUTIONS}"
            )
    return out


def check_formula_symbols(
    t: PetabTables, spec: SbmlSpec, formulas: Mapping[str, tuple[Expr, Expr]]
) -> list[str]:
    """Every identifier in an observable or noise formula must be a model id, a PEtab
    parameter, or one of that observable's own placeholders."""
    out = []
    known = spec.known_ids | set(t.parameter.index)
    for oid, (obs, noise) in formulas.items():
        where = f"{t.observable_file} line {_line(t.observable, oid)} (observable {oid!r})"
        for column, expr, kinds in (
            (C.OBSERVABLE_FORMULA, obs, ("observable",)),
            (C.NOISE_FORMULA, noise, ("observable", "noise")),
        ):
            unknown = []
            for name in sorted(free_symbols(expr)):
                m = _PLACEHOLDER.match(name)
                if m and m.group(1) in kinds and m.group(3) == oid:
                    continue
                if name in known or (column == C.NOISE_FORMULA and name == oid):
                    continue
                unknown.append(name)
            if unknown:
                out.append(
                    f"{where}: {column} refers to {unknown}, which are neither model ids, "
                    f"parameters of {t.parameter_file}, nor placeholders "
                    f"'observableParameter<k>_{oid}'/'noiseParameter<k>_{oid}'"
                )
    return out


# ------------------------------------------------------------------------ conditions
def check_conditions(t: PetabTables, spec: SbmlSpec) -> list[str]:
    out = []
    df = t.condition
    f = t.condition_file
    if not df.index.is_unique:
        dup = sorted(set(df.index[df.index.duplicated()]))
        out.append(f"{f}: conditionId values {dup} occur more than once")
    settable = set(spec.parameter_ids) | set(spec.state_ids)
    params = set(t.parameter.index)
    for column in df.columns:
        if column == C.CONDITION_NAME:
            continue
        if column not in settable:
            why = (
                "it is a rule or initial-assignment target"
                if column in spec.definition_ids
                else "it is not in the SBML model"
            )
            out.append(
                f"{f}: column {column!r} cannot be set by a condition ({why}); expected a "
                f"parameter, compartment or species id"
            )
            continue
        if column in params:
            out.append(
                f"{f}: {column!r} is both a condition column and a row of "
                f"{t.parameter_file}; PEtab allows only one of them"
            )
        for cid, value in df[column].items():
            if cell_is_empty(value) or _number(value) is not None:
                continue
            if str(value).strip() not in params:
                out.append(
                    f"{f} line {_line(df, cid)} (condition {cid!r}), column {column!r}: "
                    f"{value!r} is neither a number nor a parameter of {t.parameter_file}"
                )
    return out


# ------------------------------------------------------------------------ measurements
def check_measurements(  # noqa: C901 - one loop over rows, many small checks
    t: PetabTables, formulas: Mapping[str, tuple[Expr, Expr]]
) -> list[str]:
    out = []
    df = t.measurement
    f = t.measurement_file
    required = (C.OBSERVABLE_ID, C.SIMULATION_CONDITION_ID, C.MEASUREMENT, C.TIME)
    missing = [c for c in required if c not in df.columns]
    if missing:
        return [f"{f}: required column(s) {missing} are missing"]
    observables = set(t.observable.index)
    conditions = set(t.condition.index)
    params = t.parameter
    transforms = {
        oid: _text(row.get(C.OBSERVABLE_TRANSFORMATION)) or "lin"
        for oid, row in t.observable.iterrows()
    }
    for i, row in enumerate(df.to_dict("records")):
        where = t.measurement_lines[i]
        oid = row[C.OBSERVABLE_ID]
        if oid not in observables:
            out.append(
                f"{where}: observableId {oid!r} is not defined in {t.observable_file}; "
                f"valid: {choices(observables)}"
            )
        for column in (C.SIMULATION_CONDITION_ID, C.PREEQUILIBRATION_CONDITION_ID):
            cid = row.get(column)
            if column == C.PREEQUILIBRATION_CONDITION_ID and cell_is_empty(cid):
                continue
            if cid not in conditions:
                out.append(
                    f"{where}: {column} {cid!r} is not in {t.condition_file}; "
                    f"valid: {choices(conditions)}"
                )
        value = _number(row[C.MEASUREMENT])
        if value is None or not math.isfinite(value):
            out.append(f"{where}: measurement must be a finite number, got {row[C.MEASUREMENT]!r}")
        elif transforms.get(oid) in ("log", "log10") and value <= 0:
            out.append(
                f"{where}: measurement {value!r} of observable {oid!r} must be > 0 because its "
                f"observableTransformation is {transforms[oid]!r}"
            )
        time = _number(row[C.TIME])
        if time is None or math.isnan(time):
            out.append(f"{where}: time must be a number, got {row[C.TIME]!r}")
        elif time < 0:
            out.append(f"{where}: time {time!r} must be >= 0")
        if oid not in formulas:
            continue
        obs_expr, noise_expr = formulas[oid]
        for column, kind, expr in (
            (C.OBSERVABLE_PARAMETERS, "observable", obs_expr),
            (C.NOISE_PARAMETERS, "noise", noise_expr),
        ):
            overrides = split_overrides(row.get(column))
            expected = placeholders(expr, kind, oid)
            if len(overrides) != expected:
                out.append(
                    f"{where}: {column} has {len(overrides)} value(s) {overrides!r}; observable "
                    f"{oid!r} has {expected} {kind}Parameter placeholder(s)"
                )
                continue
            for k, entry in enumerate(overrides):
                if isinstance(entry, str):
                    if entry not in params.index:
                        out.append(
                            f"{where}: {column} entry {entry!r} is neither a number nor a "
                            f"parameter of {t.parameter_file}"
                        )
                        continue
                    nominal = _number(params.loc[entry, C.NOMINAL_VALUE])
                    fixed = _number(params.loc[entry, C.ESTIMATE]) == 0.0
                    entry = nominal if fixed and nominal is not None else None
                if entry is None or kind != "noise":
                    continue
                direct = noise_expr == ("sym", f"noiseParameter{k + 1}_{oid}")
                if math.isnan(entry) or (direct and entry <= 0):
                    out.append(
                        f"{where}: noise parameter {entry!r} of observable {oid!r} must be "
                        f"a standard deviation/scale > 0"
                    )
    return out


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage().strip()
        if message and message != "Not OK":
            self.messages.append(message)


def _not_visualization(record: logging.LogRecord) -> bool:
    return "Visualization table not available" not in record.getMessage()


def library_lint(yaml_path: str | Path) -> list[str]:
    """The errors that the petab library's lint (``petab.v1.lint_problem``, as run by
    ``petablint``) reports for a problem; empty when it finds none. Its warnings are
    not errors and are left to the library's logger. Visualization tables are not
    checked: il6rcc does not read them (and the library's check imports its plotting
    stack, about 10 s)."""
    import petab.v1 as petab

    handler = _Collect()
    logger = logging.getLogger("petab.v1.lint")
    logging.getLogger("petab").addHandler(handler)
    logger.addFilter(_not_visualization)
    try:
        problem = petab.Problem.from_yaml(str(yaml_path))
        problem.visualization_df = None
        failed = petab.lint_problem(problem)
    except Exception as err:  # noqa: BLE001 - the library's own failure is a finding too
        return [f"the petab library could not read or check the problem: {err}"]
    finally:
        logging.getLogger("petab").removeHandler(handler)
        logger.removeFilter(_not_visualization)
    if failed and not handler.messages:
        return ["the petab library's lint failed without a message (run petablint)"]
    return handler.messages


def lint(t: PetabTables, spec: SbmlSpec, formulas: Mapping[str, tuple[Expr, Expr]]) -> list[str]:
    """Run every check; the list of all problems found (empty when the problem is fine)."""
    return [
        *check_parameters(t, spec),
        *check_observables(t, spec),
        *check_formula_symbols(t, spec, formulas),
        *check_conditions(t, spec),
        *check_measurements(t, formulas),
    ]


__all__ = [
    "DISTRIBUTIONS",
    "SCALES",
    "TRANSFORMATIONS",
    "check_conditions",
    "check_formula_symbols",
    "check_measurements",
    "check_observables",
    "check_parameters",
    "library_lint",
    "lint",
    "placeholders",
]
