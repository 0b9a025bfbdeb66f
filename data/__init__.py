"""Evidence tables with provenance, their validator, and the loader to arrays.

The shipped tables (package data beside this file; ``SCHEMA.md`` describes them):

* ``evidence_<study>.tsv``: one row per published observation (values, signs, ranks,
  interactions, non-significant results), each with source and a short quote;
* ``digitised.tsv``: numbers read off figures (empty: no figure has been digitised);
* ``not_encoded.tsv``: statements that cannot become a likelihood row, and why;
* ``statements.tsv``: every published statement the tables cover;
* ``assays.tsv``: noise groups and candidate sampling times per assay;
* ``nuisance_priors.tsv``: priors of the unknown doses, with their sources.

Typical use::

    from il6rcc.data import build_arrays, load_evidence
    from il6rcc.models import RCCCircuit

    model = RCCCircuit.variant("main")
    arrays = build_arrays(model, load_evidence())
"""

from . import _columns as columns
from ._arrays import ROW_KINDS as ROW_KINDS
from ._arrays import EvidenceArrays as EvidenceArrays
from ._build import ReportedDoses as ReportedDoses
from ._build import build_arrays as build_arrays
from ._build import nuisance_name as nuisance_name
from ._build import nuisance_table as nuisance_table
from ._build import reported_doses as reported_doses
from ._lint import lint_main as lint_main
from ._lint import lint_paths as lint_paths
from ._load import load_evidence as load_evidence
from ._load import load_statements as load_statements
from ._load import shipped_evidence_paths as shipped_evidence_paths
from ._tables import Issue as Issue
from ._tables import shipped_dir as shipped_dir

__all__ = [
    "ROW_KINDS",
    "EvidenceArrays",
    "Issue",
    "ReportedDoses",
    "build_arrays",
    "columns",
    "lint_main",
    "lint_paths",
    "load_evidence",
    "load_statements",
    "nuisance_name",
    "nuisance_table",
    "reported_doses",
    "shipped_dir",
    "shipped_evidence_paths",
]
