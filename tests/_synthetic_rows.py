"""Synthetic evidence rows for tests that write an evidence table (never evidence)."""

from il6rcc.data import columns

COLUMNS = list(columns.EVIDENCE_COLUMNS)


def synthetic_value_row(**fields) -> dict:
    """A ``value`` row of observable ``x`` in cell line ``default`` (no background, no
    control), every other column empty; ``fields`` fill or override columns."""
    return {
        **dict.fromkeys(COLUMNS, ""),
        "study_id": "gene",
        "source": "doi:10.0000/synthetic test",
        "kind": "value",
        "observable_id": "x",
        "assay": "generic",
        "cell_line": "default",
        "background": "none",
        "control": "none",
        "direction": "none",
        "quote": "synthetic test row",
        **fields,
    }
