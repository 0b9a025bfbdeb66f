"""The validator: every problem of every table in one pass, as ``file:line: message``.

``il6rcc data lint PATH...`` calls :func:`lint_main`. Each check returns issues
instead of raising (petab v2 ``lint.py`` style), so one run lists everything.

Checks:

* file: readable, a recognised table type, no duplicate or unknown columns, no
  missing columns, every row as wide as the header;
* cells: required cells present; ids well formed; sources cite a DOI/PMCID/PMID/URL;
  vocabularies (kind, direction, significance, spread type, reason code);
* model names: cell lines (and aliases), observables, perturbations (inputs);
* doses: syntax, units convertible to the model's unit, > 0, on/off inputs given as
  ``on``, in-vivo doses unknown (``unknown[invivo]``), every unknown dose has a prior;
* contrasts: the control parses and differs from the condition, interaction rows have
  two factors over ``none``, ranks order exactly one of cell lines or conditions;
* values: > 0 (log-scale likelihood), units match the observable (or a ratio to the
  control), positive spreads with a stated meaning, whole positive n;
* consistency: kind vs direction vs significance vs p value; assay vs observable;
* duplicates: row ids across all tables, and the same observation (same study,
  kind, observable, cell lines, conditions, times) encoded twice;
* references: statement ids exist; reference tables (assays, priors, statements)
  are themselves valid.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..models import ODEModel
from . import _columns as C
from ._grammar import Vocabulary, check_source
from ._rows import EvidenceRow, digitised_to_evidence, parse_row
from ._tables import (
    Issue,
    References,
    Table,
    check_header,
    check_reference_table,
    load_references,
    missing_required,
    read_tsv,
    table_type,
)

REFERENCE_TYPES = ("assays", "nuisance_priors", "statements")


def default_model() -> ODEModel:
    """The model tables are checked against by default: the main circuit variant."""
    from ..models import RCCCircuit

    return RCCCircuit.variant("main")


def expand_paths(paths: Iterable[str | Path]) -> tuple[list[Path], list[Issue]]:
    """Files as given; folders become their ``*.tsv`` files (sorted)."""
    files: list[Path] = []
    issues: list[Issue] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(path.glob("*.tsv"))
            if not found:
                issues.append(Issue(str(path), 1, "folder has no .tsv files"))
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            issues.append(Issue(str(path), 1, "no such file or folder"))
    return files, issues


def resolve_references(
    tables: Sequence[tuple[Table, str]], vocab: Vocabulary
) -> tuple[References, list[Issue]]:
    """Reference tables among the linted ones replace the shipped ones of their type."""
    shipped, shipped_issues = load_references(vocab)
    parts = {"assays": dict(shipped.assays), "nuisance_priors": dict(shipped.priors)}
    statements = set(shipped.statements)
    issues: list[Issue] = []
    replaced: set[str] = set()
    for table, kind in tables:
        if kind not in REFERENCE_TYPES:
            continue
        items, table_issues = check_reference_table(table, kind, vocab)
        issues.extend(table_issues)
        if kind == "statements":
            statements = (statements if kind in replaced else set()) | set(items)
        else:
            base = parts[kind] if kind in replaced else {}
            parts[kind] = {**base, **items}
        replaced.add(kind)
    if not replaced >= set(REFERENCE_TYPES):
        issues.extend(shipped_issues)
    return (
        References(parts["assays"], parts["nuisance_priors"], frozenset(statements)),
        issues,
    )


def _lint_not_encoded(table: Table, refs: References) -> list[Issue]:
    issues = []
    for line, record in table.rows:
        problems = missing_required(record, C.NOT_ENCODED_REQUIRED)
        sid = record[C.STATEMENT_ID]
        if sid and refs.statements and sid not in refs.statements:
            problems.append(f"statement id {sid!r} is not in statements.tsv")
        code = record[C.REASON_CODE]
        if code and code not in C.REASON_CODES:
            problems.append(f"reason_code {code!r} is not one of {list(C.REASON_CODES)}")
        if record[C.SOURCE]:
            problems += check_source(record[C.SOURCE])
        if len(record[C.QUOTE]) > C.MAX_QUOTE_CHARS:
            problems.append(f"quote is longer than {C.MAX_QUOTE_CHARS} characters")
        issues.extend(Issue(table.path, line, p) for p in problems)
    return issues


def parse_evidence_tables(
    tables: Sequence[tuple[Table, str]], vocab: Vocabulary, refs: References
) -> tuple[list[tuple[EvidenceRow, dict[str, str]]], list[Issue]]:
    """Parse every evidence and digitisation row; duplicates across all of them."""
    parsed: list[tuple[EvidenceRow, dict[str, str]]] = []
    issues: list[Issue] = []
    ids: dict[str, str] = {}
    contents: dict[tuple, str] = {}
    for table, kind in tables:
        if kind not in ("evidence", "digitised"):
            continue
        for line, record in table.rows:
            problems: list[str] = []
            cells = dict(record)
            if kind == "digitised":
                cells, problems = digitised_to_evidence(record)
            row, row_problems = parse_row(
                cells, vocab, refs, table.path, line, digitised=kind == "digitised"
            )
            problems += row_problems
            row_id = record.get(C.ROW_ID, "")
            if row_id:
                if row_id in ids:
                    problems.append(f"row_id {row_id!r} is already used at {ids[row_id]}")
                else:
                    ids[row_id] = f"{table.path}:{line}"
            if row is not None:
                key = row.content_key()
                if key in contents:
                    problems.append(
                        f"the same observation is already encoded at {contents[key]} "
                        "(same study, kind, observable, cell lines, conditions and times)"
                    )
                else:
                    contents[key] = f"{table.path}:{line}"
            issues.extend(Issue(table.path, line, p) for p in problems)
            if row is not None and not problems:
                parsed.append((row, cells))
    return parsed, issues


def read_tables(paths: Iterable[str | Path]) -> tuple[list[tuple[Table, str]], list[Issue]]:
    """Read files and recognise their type; header problems are issues."""
    files, issues = expand_paths(paths)
    tables: list[tuple[Table, str]] = []
    for path in files:
        table, read_issues = read_tsv(path)
        issues.extend(read_issues)
        if table is None:
            continue
        kind = table_type(table)
        if kind is None:
            issues.append(
                Issue(
                    table.path,
                    1,
                    "not an il6rcc data table: the header has none of the columns "
                    f"{C.KIND!r} (evidence), {C.DIGITISED_BY!r} (digitised), "
                    f"{C.REASON_CODE!r} (not encoded), {C.SUMMARY!r} (statements), "
                    f"{C.NOISE_GROUP!r} (assays), {C.LOG10_SD!r} (nuisance priors)",
                )
            )
            continue
        header_issues = check_header(table, kind)
        issues.extend(header_issues)
        if not any("missing column" in i.message for i in header_issues):
            tables.append((table, kind))
    return tables, issues


def lint_paths(paths: Iterable[str | Path], model: ODEModel | None = None) -> list[Issue]:
    """Check data tables (files, or folders of ``.tsv`` files) against ``model``.

    Args:
        paths: evidence, digitisation, not-encoded and reference tables, or folders.
        model: the model whose names (cell lines, inputs, observables) rows must use;
            default: ``RCCCircuit.variant("main")``.

    Returns:
        Every problem found, in file and line order (empty when all is well).
    """
    vocab = Vocabulary.from_model(model or default_model())
    tables, issues = read_tables(paths)
    refs, ref_issues = resolve_references(tables, vocab)
    issues.extend(ref_issues)
    _, row_issues = parse_evidence_tables(tables, vocab, refs)
    issues.extend(row_issues)
    for table, kind in tables:
        if kind == "not_encoded":
            issues.extend(_lint_not_encoded(table, refs))
    order = {}
    for issue in issues:
        order.setdefault(issue.path, len(order))
    return sorted(issues, key=lambda i: (order[i.path], i.line))


def lint_main(paths: list[str]) -> int:
    """CLI entry: print every problem as ``file:line: message``; 0 when clean, else 1."""
    issues = lint_paths(paths)
    for issue in issues:
        print(issue)
    files = len({i.path for i in issues})
    if issues:
        print(f"{len(issues)} problem(s) in {files} file(s)", file=sys.stderr)
        return 1
    print("no problems found", file=sys.stderr)
    return 0


__all__ = [
    "default_model",
    "expand_paths",
    "lint_main",
    "lint_paths",
    "parse_evidence_tables",
    "read_tables",
    "resolve_references",
]
