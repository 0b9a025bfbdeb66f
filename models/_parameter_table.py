"""Parameter tables: a model's parameters, their units and sources, as a TSV data file.

One row per parameter, columns (tab-separated, header first):

========================  =================================================================
``name``                  identifier (letters, digits, underscore)
``default``               nominal value in ``unit``
``unit``                  the model's unit (time in hours)
``scale``                 ``log`` (positive), ``logit`` (fraction in (0, 1)) or ``lin``
``prior_log10_sd``        default prior width in decades (log/logit) or absolute (lin)
``estimable``             ``yes`` or ``no`` (structural constants)
``source_value``          the value as its source states it (may be a range or a sentence)
``conversion``            how ``source_value`` becomes ``default``, ending ``= <default>``
``source``                the citation (DOI, PMID, PMC, PEtab problem) or
                          ``assumed: <reason>``
``description``           what the parameter means
========================  =================================================================

Rules checked when the table is read (every problem reported at once, each naming the
file, the line, the column, the value received and what was expected):

* a row whose source is not ``assumed: <reason>`` cites one (``doi:``, ``PMID``,
  ``PMC``, ``PEtab``, ``literature inventory``) and states ``source_value`` and
  ``conversion``;
* ``source_value`` and ``conversion`` come together, and the conversion's result (the
  number after its last ``=``) equals ``default`` to 1 % - so a default cannot drift
  from the arithmetic that is written next to it.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelSpecError
from ._model import ParameterSpec

COLUMNS = (
    "name",
    "default",
    "unit",
    "scale",
    "prior_log10_sd",
    "estimable",
    "source_value",
    "conversion",
    "source",
    "description",
)
SCALES = ("log", "logit", "lin")
CITATION_MARKERS = ("doi:", "pmid", "pmc", "petab", "literature inventory")
#: The result of a conversion: the last ``= number`` (an optional unit may follow).
_RESULT = re.compile(r"=\s*([-+]?\d[\d.]*(?:[eE][-+]?\d+)?)\s*[^=]*$")
CONVERSION_RTOL = 0.01


@dataclass(frozen=True)
class ParameterRow:
    """One row of a parameter table, with its provenance (see the module docstring)."""

    spec: ParameterSpec
    source_value: str
    conversion: str
    line: int

    @property
    def assumed(self) -> bool:
        return self.spec.source.startswith("assumed")


def _float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def conversion_result(conversion: str) -> float | None:
    """The number a conversion text ends with (after its last ``=``), or None."""
    match = _RESULT.search(conversion)
    return None if match is None else _float(match.group(1))


def _check_row(row: dict[str, str], where: str) -> list[str]:
    """Problems of one row, each as '<where>, column <c>: got <v>; expected <e>'."""
    problems = []

    def bad(column: str, expected: str) -> None:
        problems.append(f"{where}, column {column!r}: got {row[column]!r}; expected {expected}")

    if not row["name"].isidentifier():
        bad("name", "an identifier (letters, digits, underscore)")
    default = _float(row["default"])
    scale = row["scale"]
    if scale not in SCALES:
        bad("scale", "one of " + ", ".join(SCALES))
    if default is None:
        bad("default", "a finite number")
    elif scale == "log" and default <= 0:
        bad("default", "a number > 0 (log scale)")
    elif scale == "logit" and not 0 < default < 1:
        bad("default", "a number in (0, 1) (logit scale)")
    width = _float(row["prior_log10_sd"])
    if width is None or width <= 0:
        bad("prior_log10_sd", "a number > 0")
    if row["estimable"] not in ("yes", "no"):
        bad("estimable", "'yes' or 'no'")
    if not row["unit"]:
        bad("unit", "a unit ('1' for dimensionless)")
    if not row["description"]:
        bad("description", "what the parameter means")
    source = row["source"]
    assumed = source.startswith("assumed")
    if assumed and not re.match(r"assumed:\s*\S.{8,}", source):
        bad("source", "'assumed: <reason>' with the reason")
    if not assumed and not any(m in source.lower() for m in CITATION_MARKERS):
        bad("source", "a citation (doi:, PMID, PMC, PEtab problem) or 'assumed: <reason>'")
    value, conversion = row["source_value"], row["conversion"]
    if not assumed and not value:
        bad("source_value", "the value as the cited source states it")
    if not assumed and not conversion:
        bad("conversion", "how the source value becomes the default, ending '= <default>'")
    if value and not conversion:
        bad("conversion", "a conversion for the stated source value, ending '= <default>'")
    if conversion and not value:
        bad("source_value", "the source value that the conversion starts from")
    if conversion and default is not None:
        result = conversion_result(conversion)
        if result is None:
            bad("conversion", "a text ending '= <number> [unit]' (the default)")
        elif not math.isclose(result, default, rel_tol=CONVERSION_RTOL):
            problems.append(
                f"{where}, column 'conversion': its result {result!r} differs from the "
                f"default {default!r} by more than {CONVERSION_RTOL:.0%}; expected the "
                f"conversion to end with the default"
            )
    return problems


def _full_source(row: dict[str, str]) -> str:
    """The citation with the stated value and its conversion (what priors.csv shows)."""
    if not row["source_value"]:
        return row["source"]
    return f"{row['source']}; source value: {row['source_value']}; conversion: {row['conversion']}"


def read_parameter_table(path: str | Path) -> tuple[ParameterRow, ...]:
    """Read and validate a parameter table; raise :class:`ModelSpecError` listing every
    problem (file, line, column, value received, what was expected)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ModelSpecError(f"{path}: cannot read the parameter table: {err}") from None
    lines = text.splitlines()
    if not lines:
        raise ModelSpecError(f"{path}: the parameter table is empty; expected a header line")
    header = lines[0].split("\t")
    if tuple(header) != COLUMNS:
        raise ModelSpecError(
            f"{path}, line 1: got columns {header}; expected exactly {list(COLUMNS)}"
        )
    problems: list[str] = []
    rows: list[ParameterRow] = []
    seen: dict[str, int] = {}
    for lineno, fields in enumerate(csv.reader(lines[1:], delimiter="\t"), start=2):
        if not any(fields):
            continue
        where = f"{path}, line {lineno}"
        if len(fields) != len(COLUMNS):
            problems.append(
                f"{where}: got {len(fields)} fields; expected {len(COLUMNS)} ({', '.join(COLUMNS)})"
            )
            continue
        row = dict(zip(COLUMNS, (f.strip() for f in fields), strict=True))
        where = f"{where} ({row['name']})"
        if row["name"] in seen:
            problems.append(
                f"{where}, column 'name': {row['name']!r} is already defined on line "
                f"{seen[row['name']]}; expected unique names"
            )
        seen.setdefault(row["name"], lineno)
        row_problems = _check_row(row, where)
        problems.extend(row_problems)
        if row_problems:
            continue
        spec = ParameterSpec(
            name=row["name"],
            default=float(row["default"]),
            unit=row["unit"],
            description=row["description"],
            source=_full_source(row),
            scale=row["scale"],  # type: ignore[arg-type]  # checked above
            log10_sd=float(row["prior_log10_sd"]),
            estimable=row["estimable"] == "yes",
        )
        rows.append(ParameterRow(spec, row["source_value"], row["conversion"], lineno))
    if problems:
        raise ModelSpecError(
            f"{path}: {len(problems)} problem(s) in the parameter table:\n  "
            + "\n  ".join(problems)
        )
    return tuple(rows)


__all__ = ["COLUMNS", "ParameterRow", "conversion_result", "read_parameter_table"]
