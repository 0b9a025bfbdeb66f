"""The shipped evidence: coverage of the published statements, provenance, honesty."""

import csv
import re

import pytest

from il6rcc.data import columns as C
from il6rcc.data import load_evidence, shipped_dir


def _read(name: str) -> list[dict[str, str]]:
    with open(shipped_dir() / name, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


@pytest.fixture(scope="module")
def evidence():
    return load_evidence()


#: Inventory section A rows (literature inventory, T/O/I/Y/X ids) that must be covered.
INVENTORY_A = (
    [f"T-{i}" for i in range(8)]
    + [f"O-{i}" for i in range(1, 11)]
    + [f"I-{i}" for i in range(1, 14)]
    + [f"Y-{i}" for i in range(1, 7)]
    + [f"X-{i}" for i in range(1, 9)]
)


def test_every_statement_is_encoded_or_explained(evidence):
    statements = {r[C.STATEMENT_ID] for r in _read("statements.tsv")}
    assert set(INVENTORY_A) <= statements
    assert {f"R-{i:02d}" for i in range(1, 44)} <= statements
    used = {s for cell in evidence[C.STATEMENT_IDS] for s in cell.split(",") if s}
    explained = {r[C.STATEMENT_ID] for r in _read("not_encoded.tsv")}
    assert statements - used - explained == set()
    assert (used | explained) <= statements


def test_not_encoded_rows_give_reasons():
    rows = _read("not_encoded.tsv")
    assert len(rows) >= 15
    for row in rows:
        assert row[C.REASON_CODE] in C.REASON_CODES
        assert len(row[C.REASON]) > 20


def test_no_invented_numbers_ship():
    assert _read("digitised.tsv") == []  # header only: nothing digitised yet
    values = [r for name in _evidence_files() for r in _read(name) if r[C.VALUE]]
    # the only numbers in the sources: SUVmax 9.6 vs 11.9 at day 3 (PMC5589655 Fig. 7B)
    assert sorted((r[C.VALUE], r[C.TIME_H], r[C.SPREAD]) for r in values) == [
        ("11.9", "72", ""),
        ("9.6", "72", ""),
    ]


def _evidence_files() -> list[str]:
    return sorted(p.name for p in shipped_dir().glob("evidence_*.tsv"))


def test_tables_name_no_machine_paths():
    # an absolute path starts a token: "/<segment>/..." or a drive letter "C:\\"
    pattern = re.compile(r"(?:^|[\s'\"(=])(?:/[\w.-]+/|[A-Za-z]:\\)")
    for path in [*shipped_dir().glob("*.tsv"), *shipped_dir().glob("*.md")]:
        assert not pattern.search(path.read_text(encoding="utf-8")), path.name


def test_quotes_are_short_and_present(evidence):
    assert (evidence[C.QUOTE].str.len() > 10).all()
    assert (evidence[C.QUOTE].str.len() <= C.MAX_QUOTE_CHARS).all()


def test_studies_are_kept_apart(evidence):
    assert set(evidence[C.STUDY_ID]) == {
        "tomita2011",
        "oguro2013",
        "ishibashi2017",
        "yabe2018",
        "kamli2018",
        "kamli2021",
        "pmid15252833",
        "ishibashi2018_review",
    }
    # row ids carry their study
    assert all(
        rid.startswith(study + "-")
        for rid, study in zip(evidence[C.ROW_ID], evidence[C.STUDY_ID], strict=True)
    )


def test_in_vivo_doses_are_unknown_exposures(evidence):
    in_vivo = evidence[evidence[C.BACKGROUND].str.contains("xenograft=on")]
    assert len(in_vivo) > 15
    for col in (C.BACKGROUND, C.CONDITION, C.CONTROL):
        doses = in_vivo[col].str.findall(r"(\w+)=([^;>,]+)").explode().dropna()
        for name, dose in doses:
            assert dose.strip() in ("on", "unknown[invivo]"), (name, dose)


def _has(df, **where) -> bool:
    mask = True
    for col, pattern in where.items():
        mask = mask & df[col].str.contains(pattern, regex=True)
    return bool(mask.any())


#: Topics the issue lists, each as a query on the loaded evidence (column -> regex).
TOPICS = {
    "SOCS family after IFN": dict(observable_id="cis_mrna|socs1_mrna", study_id="tomita"),
    "SOCS3 786-O vs ACHN": dict(observable_id="socs3_mrna", cell_line="786-O > ACHN"),
    "SOCS3 siRNA growth": dict(condition="si_socs3=on", observable_id="viability", kind="inter"),
    "SOCS3 siRNA pSTAT1": dict(condition="si_socs3=on", observable_id="pstat1"),
    "pCI-neo SOCS3 ACHN": dict(condition="socs3_overexpression", cell_line="ACHN"),
    "SOCS3 siRNA xenograft": dict(condition="si_socs3", background="xenograft"),
    "panel highest and lowest": dict(cell_line=r"^786-O > Caki-1, TUHR3TKB, TUHR4TKB > ACHN$"),
    "IFNAR siRNA": dict(condition="si_ifnar"),
    "IL-6 siRNA": dict(condition="si_il6=on", observable_id="socs3_mrna"),
    "IL-6R siRNA": dict(condition="si_il6r"),
    "TCZ+IFN MTT": dict(condition="ifn_alpha=unknown; tocilizumab", observable_id="viability"),
    "TCZ+IFN pSTAT3": dict(condition="tocilizumab", background="ifn", observable_id="pstat3"),
    "TCZ+IFN pERK": dict(condition="tocilizumab", observable_id="perk"),
    "TCZ+IFN SOCS3": dict(condition="tocilizumab", background="ifn", observable_id="socs3"),
    "IL-6+IFN ACHN": dict(condition="il6=unknown", cell_line="ACHN", observable_id="viability"),
    "TCZ+IFN xenograft": dict(background="xenograft.*ifn", observable_id="tumour_volume"),
    "TKI secretion at 1/2/24 h": dict(observable_id="il6_secreted", time_h=r"1\|2\|24"),
    "TKI dose series": dict(condition="sorafenib=10 uM > sorafenib=5 uM", observable_id="p70s6k"),
    "HIF": dict(observable_id="hif2a", condition="pazopanib"),
    "pazopanib exceptions": dict(condition="pazopanib=50 uM", kind="not_significant"),
    "TCZ+TKI MTT": dict(background="sunitinib", observable_id="viability"),
    "TCZ+TKI VEGF": dict(background="pazopanib", observable_id="vegf_secreted"),
    "CD31": dict(observable_id="cd31", kind="rank"),
    "PET day 21 n.s.": dict(observable_id="suv_max", time_h="504", p_value="0.10"),
    "SULF-2": dict(observable_id="sulf2_mrna", cell_line="ACHN > 786-O"),
    "DR4 TRAIL": dict(condition="trail", observable_id="viability"),
    "Kamli sublines": dict(cell_line="786-O-SunR", control_cell_line="786-O"),
    "Kamli in vivo": dict(study_id="kamli2021", background="xenograft", kind="not_sig"),
}


@pytest.mark.parametrize("topic", sorted(TOPICS))
def test_issue_topics_are_covered(evidence, topic):
    assert _has(evidence, **TOPICS[topic]), topic
