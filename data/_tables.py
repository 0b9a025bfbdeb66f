"""Reading the TSV files, recognising their type, and the reference tables.

The reference tables (``assays.tsv``, ``nuisance_priors.tsv``, ``statements.tsv``)
are read into typed, frozen objects; their own problems are reported like any other
table's, with file and line.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from . import _columns as C
from ._grammar import ROW_ID_RE, STUDY_ID_RE, Vocabulary, check_source, parse_positive

#: Where the shipped tables live (package data of ``il6rcc.data``).
PACKAGE = "il6rcc.data"
ASSAYS_FILE = "assays.tsv"
PRIORS_FILE = "nuisance_priors.tsv"
STATEMENTS_FILE = "statements.tsv"
NOT_ENCODED_FILE = "not_encoded.tsv"


@dataclass(frozen=True)
class Issue:
    """One problem found in a table: ``str(issue)`` is ``file:line: message``."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass(frozen=True)
class Table:
    """A TSV file as read: header and data rows (line number, cell by column)."""

    path: str
    header: tuple[str, ...]
    rows: tuple[tuple[int, Mapping[str, str]], ...]


def shipped_dir() -> Path:
    """The folder of the shipped tables."""
    return Path(str(resources.files(PACKAGE)))


def read_tsv(path: str | Path) -> tuple[Table | None, list[Issue]]:
    """Read a TSV file with line numbers; rows of the wrong width are issues."""
    name = str(path)
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            lines = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    except (OSError, UnicodeDecodeError) as err:
        return None, [Issue(name, 1, f"cannot read the file: {err}")]
    if not lines or not any(cell.strip() for cell in lines[0]):
        return None, [Issue(name, 1, "the file is empty; expected a header line")]
    header = tuple(cell.strip() for cell in lines[0])
    issues: list[Issue] = []
    for column in sorted({c for c in header if header.count(c) > 1}):
        issues.append(Issue(name, 1, f"column {column!r} appears more than once in the header"))
    rows = []
    for number, cells in enumerate(lines[1:], start=2):
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            issues.append(
                Issue(
                    name,
                    number,
                    f"has {len(cells)} fields, the header has {len(header)} "
                    "(tabs inside a cell, or a missing cell?)",
                )
            )
            continue
        rows.append((number, {col: cell.strip() for col, cell in zip(header, cells, strict=True)}))
    return Table(name, header, tuple(rows)), issues


#: Table type -> (a column that identifies it, all columns, required columns).
TABLE_TYPES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "digitised": (C.DIGITISED_BY, C.DIGITISED_COLUMNS, C.DIGITISED_REQUIRED),
    "evidence": (C.KIND, C.EVIDENCE_COLUMNS, C.EVIDENCE_REQUIRED),
    "not_encoded": (C.REASON_CODE, C.NOT_ENCODED_COLUMNS, C.NOT_ENCODED_REQUIRED),
    "statements": (C.SUMMARY, C.STATEMENT_COLUMNS, C.STATEMENT_REQUIRED),
    "assays": (C.NOISE_GROUP, C.ASSAY_COLUMNS, C.ASSAY_REQUIRED),
    "nuisance_priors": (C.LOG10_SD, C.NUISANCE_COLUMNS, C.NUISANCE_REQUIRED),
}


def table_type(table: Table) -> str | None:
    """The type of a table, recognised by its header (None when unrecognised)."""
    for kind, (marker, _, _) in TABLE_TYPES.items():
        if marker in table.header:
            return kind
    return None


def check_header(table: Table, kind: str) -> list[Issue]:
    """Missing and unknown columns (all of them)."""
    _, columns, _ = TABLE_TYPES[kind]
    issues = []
    missing = [c for c in columns if c not in table.header]
    if missing:
        issues.append(Issue(table.path, 1, f"missing column(s) {missing} for a {kind} table"))
    for column in table.header:
        if column not in columns:
            issues.append(
                Issue(
                    table.path,
                    1,
                    f"unknown column {column!r} in a {kind} table; valid: {list(columns)}",
                )
            )
    return issues


def missing_required(record: Mapping[str, str], required: Iterable[str]) -> list[str]:
    """Problems for required cells that are empty."""
    return [f"{col!r} is empty (required)" for col in required if not record.get(col, "")]


# ----------------------------------------------------------------------------- references
@dataclass(frozen=True)
class Assay:
    """An assay: its noise group, the observables it reads and its candidate times."""

    id: str
    description: str
    noise_group: str
    observables: frozenset[str] | None
    times: tuple[float, ...]
    weights: tuple[float, ...]
    time_source: str
    contrast_horizon_h: float | None = None
    contrast_source: str = ""

    def contrast_scale(self, t: float) -> float:
        """Factor on the probit scale of a qualitative contrast read at ``t`` hours:
        sqrt(1 + (t / t_ref)^2) for an assay with a contrast horizon, else 1."""
        if self.contrast_horizon_h is None:
            return 1.0
        return (1.0 + (t / self.contrast_horizon_h) ** 2) ** 0.5


@dataclass(frozen=True)
class NuisancePrior:
    """Log-normal prior of an unknown dose: median (model unit), SD in decades."""

    perturbation: str
    label: str | None
    unit: str
    median: float
    log10_sd: float
    source: str


@dataclass(frozen=True)
class References:
    """The reference tables a row is checked against."""

    assays: Mapping[str, Assay] = field(default_factory=dict)
    priors: Mapping[tuple[str, str | None], NuisancePrior] = field(default_factory=dict)
    statements: frozenset[str] = frozenset()


def _parse_assay(
    record: Mapping[str, str], vocab: Vocabulary | None
) -> tuple[Assay | None, list[str]]:
    problems = missing_required(record, C.ASSAY_REQUIRED)
    if problems:
        return None, problems
    observables: frozenset[str] | None = None
    if record[C.OBSERVABLES] != "*":
        observables = frozenset(o.strip() for o in record[C.OBSERVABLES].split(","))
        known = set(vocab.observables) if vocab is not None else observables
        for obs in sorted(observables - known):
            problems.append(f"unknown observable {obs!r}; valid: {sorted(vocab.observables)}")
    times: list[float] = []
    for part in record[C.CANDIDATE_TIMES_H].split("|"):
        value, issues = parse_positive(part.strip(), "candidate time (hours)")
        problems.extend(issues)
        if value is not None:
            times.append(value)
    if sorted(set(times)) != times:
        problems.append(f"candidate times {record[C.CANDIDATE_TIMES_H]!r} must increase")
    if record[C.TIME_WEIGHTS] == "uniform":
        weights = [1.0] * len(times)
    else:
        weights = []
        for part in record[C.TIME_WEIGHTS].split("|"):
            value, issues = parse_positive(part.strip(), "time weight")
            problems.extend(issues)
            weights.append(value or 0.0)
        if len(weights) != len(times):
            problems.append(
                f"{len(weights)} time weights for {len(times)} candidate times; expected equal"
            )
    horizon = None
    if record[C.CONTRAST_HORIZON_H] != "-":
        horizon, issues = parse_positive(record[C.CONTRAST_HORIZON_H], "contrast horizon (hours)")
        problems.extend(issues)
        if record[C.CONTRAST_SOURCE] == "-":
            problems.append(
                "a contrast_horizon_h needs its contrast_source (a source or 'assumed: ...')"
            )
    elif record[C.CONTRAST_SOURCE] != "-":
        problems.append("contrast_source is given without a contrast_horizon_h; use '-' for both")
    if problems:
        return None, problems
    total = sum(weights)
    return (
        Assay(
            record[C.ASSAY_ID],
            record[C.DESCRIPTION],
            record[C.NOISE_GROUP],
            observables,
            tuple(times),
            tuple(w / total for w in weights),
            record[C.TIME_SOURCE],
            horizon,
            "" if horizon is None else record[C.CONTRAST_SOURCE],
        ),
        [],
    )


def _check_prior_input(name: str, unit: str, vocab: Vocabulary) -> list[str]:
    """The prior's perturbation is a dosed model input, in the input's unit."""
    info = vocab.inputs.get(name)
    if info is None:
        return [f"unknown perturbation {name!r}; valid: {sorted(vocab.inputs)}"]
    if info.indicator:
        return [f"{name!r} is an on/off perturbation; it has no dose to be unknown"]
    if unit != info.unit:
        return [f"unit {unit!r} must be the model's unit {info.unit!r} for {name!r}"]
    return []


def _parse_prior(
    record: Mapping[str, str], vocab: Vocabulary | None
) -> tuple[NuisancePrior | None, list[str]]:
    problems = missing_required(record, C.NUISANCE_REQUIRED)
    if problems:
        return None, problems
    name = record[C.PERTURBATION]
    if vocab is not None:
        problems += _check_prior_input(name, record[C.UNIT], vocab)
    median, issues = parse_positive(record[C.MEDIAN], "median")
    problems.extend(issues)
    sd, issues = parse_positive(record[C.LOG10_SD], "log10_sd")
    problems.extend(issues)
    label = None if record[C.LABEL] == "-" else record[C.LABEL]
    if problems or median is None or sd is None:
        return None, problems
    return NuisancePrior(name, label, record[C.UNIT], median, sd, record[C.PRIOR_SOURCE]), []


def check_reference_table(
    table: Table, kind: str, vocab: Vocabulary | None
) -> tuple[dict, list[Issue]]:
    """Parse a reference table (assays, priors, statements) and list its problems.

    Args:
        table: the table as read.
        kind: ``assays``, ``nuisance_priors`` or ``statements``.
        vocab: the model's names; None skips the checks of observable and input
            names (rows are checked against their model when they are parsed).

    Returns:
        The parsed items by key, and the problems found.
    """
    issues = check_header(table, kind)
    if issues:
        return {}, issues
    out: dict = {}
    for line, record in table.rows:
        problems: list[str]
        if kind == "assays":
            item, problems = _parse_assay(record, vocab)
            key = record[C.ASSAY_ID]
        elif kind == "nuisance_priors":
            item, problems = _parse_prior(record, vocab)
            key = (record[C.PERTURBATION], None if record[C.LABEL] == "-" else record[C.LABEL])
        else:
            problems = missing_required(record, C.STATEMENT_REQUIRED)
            if record[C.SOURCE]:
                problems += check_source(record[C.SOURCE])
            if record[C.STUDY_ID] and not STUDY_ID_RE.match(record[C.STUDY_ID]):
                problems.append(
                    f"study_id {record[C.STUDY_ID]!r} must be lower case, e.g. 'tomita2011'"
                )
            if record[C.STATEMENT_ID] and not ROW_ID_RE.match(record[C.STATEMENT_ID]):
                problems.append(f"statement_id {record[C.STATEMENT_ID]!r} has invalid characters")
            item, key = record[C.STATEMENT_ID], record[C.STATEMENT_ID]
        if key in out:
            problems.append(f"{key!r} is defined twice")
        issues.extend(Issue(table.path, line, p) for p in problems)
        if not problems:
            out[key] = item
    return out, issues


def load_references(
    vocab: Vocabulary | None, paths: Mapping[str, str | Path] | None = None
) -> tuple[References, list[Issue]]:
    """The reference tables (shipped by default; ``paths`` overrides some by type).

    ``vocab`` None skips the checks of model names (see :func:`check_reference_table`)."""
    defaults = {
        "assays": shipped_dir() / ASSAYS_FILE,
        "nuisance_priors": shipped_dir() / PRIORS_FILE,
        "statements": shipped_dir() / STATEMENTS_FILE,
    }
    defaults.update(paths or {})
    parsed: dict[str, dict] = {}
    issues: list[Issue] = []
    for kind, path in defaults.items():
        table, read_issues = read_tsv(path)
        issues.extend(read_issues)
        if table is None:
            parsed[kind] = {}
            continue
        parsed[kind], table_issues = check_reference_table(table, kind, vocab)
        issues.extend(table_issues)
    return (
        References(parsed["assays"], parsed["nuisance_priors"], frozenset(parsed["statements"])),
        issues,
    )


__all__ = [
    "Assay",
    "Issue",
    "NuisancePrior",
    "References",
    "TABLE_TYPES",
    "Table",
    "check_header",
    "check_reference_table",
    "load_references",
    "missing_required",
    "read_tsv",
    "shipped_dir",
    "table_type",
]
