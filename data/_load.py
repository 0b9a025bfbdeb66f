"""Loading evidence tables into one pandas frame (pandas stays at this edge).

:func:`load_evidence` reads the shipped tables (or given ones), lints them against the
model and returns one long frame, digitised rows rewritten as ``value`` rows. Any
problem raises one :class:`il6rcc.errors.DataError` that lists all of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from ..errors import DataError
from ..models import ODEModel
from . import _columns as C
from ._grammar import Vocabulary
from ._lint import default_model, parse_evidence_tables, read_tables, resolve_references
from ._tables import STATEMENTS_FILE, Issue, read_tsv, shipped_dir, table_type

#: Extra columns of the loaded frame: where each row comes from.
SOURCE_FILE = "source_file"
SOURCE_LINE = "source_line"
#: ``evidence`` or ``digitised``: the layout the row was read from.
TABLE_TYPE = "table_type"
#: Key of the frame's ``attrs`` holding the reference tables the rows were read with.
REFERENCES = "il6rcc_references"


def shipped_evidence_paths() -> list[Path]:
    """The shipped evidence and digitisation tables (``evidence_*.tsv``, ``digitised*.tsv``)."""
    folder = shipped_dir()
    return sorted(folder.glob("evidence_*.tsv")) + sorted(folder.glob("digitised*.tsv"))


def format_issues(issues: Iterable[Issue], what: str) -> str:
    """One paragraph naming the count, then every problem on its own line."""
    issues = list(issues)
    lines = "\n".join(f"  {issue}" for issue in issues)
    return f"{what}: {len(issues)} problem(s); fix them (il6rcc data lint lists them too):\n{lines}"


def load_evidence(
    paths: Iterable[str | Path] | None = None, model: ODEModel | None = None
) -> pd.DataFrame:
    """Read, check and merge evidence tables.

    Args:
        paths: evidence / digitisation tables or folders (default: the shipped ones,
            :func:`shipped_evidence_paths`). Reference tables among them replace the
            shipped reference tables of their type.
        model: model to check names against (default ``RCCCircuit.variant("main")``).

    Returns:
        One row per observation with the evidence columns (``il6rcc.data`` column
        constants) as strings, plus ``source_file``, ``source_line`` and
        ``table_type`` (``evidence`` or ``digitised``).

    Raises:
        DataError: any problem in any table, all listed with file and line.
    """
    paths = shipped_evidence_paths() if paths is None else list(paths)
    vocab = Vocabulary.from_model(model or default_model())
    tables, issues = read_tables(paths)
    refs, ref_issues = resolve_references(tables, vocab)
    parsed, row_issues = parse_evidence_tables(tables, vocab, refs)
    issues += ref_issues + row_issues
    if issues:
        raise DataError(format_issues(issues, "invalid evidence tables"))
    if not any(kind in ("evidence", "digitised") for _, kind in tables):
        raise DataError(
            f"no evidence tables among {[str(p) for p in paths]}; expected files with the "
            f"evidence columns (see SCHEMA.md)"
        )
    records = []
    kinds = {table.path: kind for table, kind in tables}
    for row, cells in parsed:
        record = {col: cells.get(col, "") for col in C.EVIDENCE_COLUMNS}
        record[SOURCE_FILE] = row.path
        record[SOURCE_LINE] = row.line
        record[TABLE_TYPE] = kinds[row.path]
        records.append(record)
    frame = pd.DataFrame.from_records(
        records, columns=[*C.EVIDENCE_COLUMNS, SOURCE_FILE, SOURCE_LINE, TABLE_TYPE]
    )
    # The reference tables these rows were checked against (assays, nuisance priors):
    # build_arrays uses them, so a folder with its own assays.tsv is self-contained.
    frame.attrs[REFERENCES] = refs
    return frame


def load_statements(paths: Iterable[str | Path] | None = None) -> dict[str, str]:
    """Statement id -> its summary (``statements.tsv``), for labelling findings by
    what they say. The statements tables among ``paths`` (files or folders, as given
    to :func:`load_evidence`) replace the shipped one, as they do when rows are
    checked; without any, the shipped table. Unreadable tables give no entries (the
    evidence loader reports them)."""
    files = [shipped_dir() / STATEMENTS_FILE]
    if paths is not None:
        tables, _ = read_tables(paths)
        given = [Path(t.path) for t, kind in tables if kind == "statements"]
        files = given or files
    out: dict[str, str] = {}
    for path in files:
        table, _ = read_tsv(path)
        if table is None or table_type(table) != "statements":
            continue
        for _, cells in table.rows:
            if cells.get(C.STATEMENT_ID):
                out[cells[C.STATEMENT_ID]] = cells.get(C.SUMMARY, "")
    return out


__all__ = [
    "SOURCE_FILE",
    "SOURCE_LINE",
    "TABLE_TYPE",
    "format_issues",
    "load_evidence",
    "load_statements",
    "shipped_evidence_paths",
]
