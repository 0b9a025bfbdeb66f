"""Array semantics of build_arrays: terms, units, times, nuisance doses, the shipped map."""

import math
from pathlib import Path

import numpy as np
import pytest

from il6rcc.data import (
    ROW_KINDS,
    build_arrays,
    columns,
    load_evidence,
    reported_doses,
    shipped_evidence_paths,
)
from il6rcc.errors import DataError
from il6rcc.models import RCCCircuit
from il6rcc.models.examples import LinearDecay

FIXTURES = Path(__file__).parent / "fixtures"
MODEL = RCCCircuit.variant("main")

BASE = {
    columns.ROW_ID: "t-01",
    columns.STUDY_ID: "fixture",
    columns.SOURCE: "doi:10.1111/j.1349-7006.2010.01751.x abstract",
    columns.KIND: "sign",
    columns.OBSERVABLE_ID: "socs3_mrna",
    columns.ASSAY: "qpcr",
    columns.CELL_LINE: "786-O",
    columns.BACKGROUND: "none",
    columns.CONDITION: "ifn_alpha=unknown",
    columns.CONTROL: "none",
    columns.TIME_H: "2",
    columns.DIRECTION: "up",
    columns.SIGNIFICANCE: "not_stated",
    columns.QUOTE: "SYNTHETIC test row, not a quotation",
}


def arrays_of(tmp_path, *rows):
    """Build arrays from rows given as changes to BASE (row ids numbered)."""
    lines = ["\t".join(columns.EVIDENCE_COLUMNS)]
    for i, change in enumerate(rows):
        row = {**BASE, columns.ROW_ID: f"t-{i:02d}", **change}
        lines.append("\t".join(row.get(c, "") for c in columns.EVIDENCE_COLUMNS))
    path = tmp_path / "evidence_test.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    arrays = build_arrays(MODEL, load_evidence([path]))
    arrays.check()
    return arrays


def terms(arrays, unit):
    """(weight, condition id) of a unit's terms, sorted."""
    sel = np.flatnonzero(arrays.term_unit == unit)
    return sorted(
        (float(arrays.term_weight[t]), arrays.batch.ids[arrays.term_cond[t]]) for t in sel
    )


def test_fold_change_value_row(tmp_path):
    a = arrays_of(
        tmp_path,
        {
            columns.KIND: "value",
            columns.DIRECTION: "none",
            columns.VALUE: "4",
            columns.VALUE_UNIT: "fold",
            columns.SPREAD: "0.8",
            columns.SPREAD_TYPE: "SEM",
        },
    )
    assert ROW_KINDS[a.row_kind[0]] == "value"
    assert a.row_value[0] == pytest.approx(math.log(4.0))
    assert a.row_log_sd[0] == pytest.approx(math.sqrt(math.log1p(0.2**2)))
    assert list(a.unit_direction) == [0]
    assert terms(a, 0) == [(-1.0, "786-O|none"), (1.0, "786-O|ifn_alpha=~fixture.ifn_alpha")]
    assert a.term_obs.tolist() == [MODEL.index("observables", "socs3_mrna")] * 2


def test_absolute_value_and_percent(tmp_path):
    a = arrays_of(
        tmp_path,
        {
            columns.KIND: "value",
            columns.DIRECTION: "none",
            columns.OBSERVABLE_ID: "il6_secreted",
            columns.ASSAY: "elisa",
            columns.CONTROL: "",
            columns.VALUE: "0.12",
            columns.VALUE_UNIT: "ng/mL",
        },
        {
            columns.KIND: "value",
            columns.DIRECTION: "none",
            columns.OBSERVABLE_ID: "viability",
            columns.ASSAY: "mtt",
            columns.TIME_H: "72",
            columns.CONTROL: "",
            columns.VALUE: "80",
            columns.VALUE_UNIT: "%",
        },
    )
    assert a.row_value == pytest.approx([math.log(120.0), math.log(0.8)])  # pg/mL, fraction
    assert [len(terms(a, u)) for u in range(2)] == [1, 1]
    assert np.isnan(a.row_log_sd).all()  # no spread reported: none invented


def test_sign_row_direction(tmp_path):
    a = arrays_of(tmp_path, {columns.DIRECTION: "down"})
    assert list(a.unit_direction) == [-1]
    assert [w for w, _ in terms(a, 0)] == [-1.0, 1.0]


def test_rank_over_cell_lines_has_adjacent_tier_units(tmp_path):
    """A rank's units are the pairs of members of adjacent tiers: 786-O > ACHN follows
    by transitivity and is not a unit of its own."""
    a = arrays_of(
        tmp_path,
        {
            columns.KIND: "rank",
            columns.DIRECTION: "none",
            columns.CELL_LINE: "786-O > Caki-1, TUHR3TKB > ACHN",
            columns.CONTROL: "",
        },
    )
    pairs = []
    for u in range(a.n_units):
        (w_lo, lo), (w_hi, hi) = terms(a, u)
        assert (w_lo, w_hi) == (-1.0, 1.0)
        pairs.append((hi.split("|")[0], lo.split("|")[0]))
    assert sorted(pairs) == sorted(
        [
            ("786-O", "Caki-1"),
            ("786-O", "TUHR3TKB"),
            ("Caki-1", "ACHN"),
            ("TUHR3TKB", "ACHN"),
        ]
    )
    assert set(a.unit_direction) == {1}
    assert set(a.unit_row) == {0}
    # one ordinal observation: 4 entities, and one chain per order of the middle tier
    assert a.entity_row.tolist() == [0] * 4
    assert a.chain_row.tolist() == [0, 0] and a.chain_sign.tolist() == [1, 1]
    assert a.top_entity.tolist() == [0, 0] and a.bottom_entity.tolist() == [3, 3]
    assert sorted(a.chain_middle.tolist()) == [[1, 2], [2, 1]]


def test_rank_links_give_member_levels(tmp_path):
    """Entity levels rebuilt from the units through the links equal the members' own
    log levels (relative to the first member), for tiers of any size."""
    a = arrays_of(
        tmp_path,
        {
            columns.KIND: "rank",
            columns.DIRECTION: "none",
            columns.CELL_LINE: "786-O, Caki-2 > Caki-1, TUHR3TKB, TUHR4TKB > ACHN, A-498",
            columns.CONTROL: "",
        },
    )
    rng = np.random.default_rng(0)
    log_y = rng.normal(size=a.batch.n_conditions)  # one level per condition
    delta = np.zeros(a.n_units)
    np.add.at(delta, a.term_unit, a.term_weight * log_y[a.term_cond])
    level = np.zeros(len(a.entity_row))
    np.add.at(level, a.link_entity, a.link_sign * delta[a.link_unit])
    lines = ["786-O", "Caki-2", "Caki-1", "TUHR3TKB", "TUHR4TKB", "ACHN", "A498"]
    own = np.array(
        [log_y[a.batch.ids.index(f"{line}|ifn_alpha=~fixture.ifn_alpha")] for line in lines]
    )
    np.testing.assert_allclose(level, own - own[0], atol=1e-12)
    assert a.n_units == 2 * 3 + 3 * 2
    assert a.n_chains == 6  # 3! orders of the middle tier


def test_rank_of_fold_changes_has_four_terms(tmp_path):
    a = arrays_of(
        tmp_path,
        {columns.KIND: "rank", columns.DIRECTION: "none", columns.CELL_LINE: "786-O > ACHN"},
    )
    assert terms(a, 0) == sorted(
        [
            (1.0, "786-O|ifn_alpha=~fixture.ifn_alpha"),
            (-1.0, "786-O|none"),
            (-1.0, "ACHN|ifn_alpha=~fixture.ifn_alpha"),
            (1.0, "ACHN|none"),
        ]
    )


def test_rank_over_a_dose_series(tmp_path):
    a = arrays_of(
        tmp_path,
        {
            columns.KIND: "rank",
            columns.DIRECTION: "none",
            columns.OBSERVABLE_ID: "pakt",
            columns.ASSAY: "western",
            columns.CONDITION: "sorafenib=10 uM > sorafenib=1000 nM > none",
            columns.CONTROL: "",
        },
    )
    assert a.n_units == 2  # adjacent tiers only
    top = terms(a, 0)
    assert top == [(-1.0, "786-O|sorafenib=1"), (1.0, "786-O|sorafenib=10")]  # nM -> uM
    sor = MODEL.index("inputs", "sorafenib")
    assert sorted(a.batch.inputs[:, sor]) == [0.0, 1.0, 10.0]


def test_interaction_has_four_terms(tmp_path):
    a = arrays_of(
        tmp_path,
        {
            columns.KIND: "interaction",
            columns.OBSERVABLE_ID: "viability",
            columns.ASSAY: "mtt",
            columns.CONDITION: "ifn_alpha=unknown; si_socs3=on",
            columns.DIRECTION: "down",
        },
    )
    ifn = "ifn_alpha=~fixture.ifn_alpha"
    assert terms(a, 0) == sorted(
        [
            (1.0, f"786-O|{ifn};si_socs3=1"),
            (-1.0, f"786-O|{ifn}"),
            (-1.0, "786-O|si_socs3=1"),
            (1.0, "786-O|none"),
        ]
    )
    assert list(a.unit_direction) == [-1]


def test_cross_line_contrast(tmp_path):
    a = arrays_of(
        tmp_path,
        {
            columns.CELL_LINE: "786-O-SunR",
            columns.CONTROL_CELL_LINE: "786-0",  # alias of 786-O
            columns.CONDITION: "none",
            columns.CONTROL: "",
            columns.OBSERVABLE_ID: "il6_mrna",
        },
    )
    assert terms(a, 0) == [(-1.0, "786-O|none"), (1.0, "786-O-SunR|none")]


def test_candidate_times_and_weights(tmp_path):
    a = arrays_of(
        tmp_path,
        {columns.TIME_H: "unknown"},
        {columns.TIME_H: "1|2|24", columns.DIRECTION: "down"},
        {
            columns.TIME_H: "504",
            columns.OBSERVABLE_ID: "cd31",
            columns.ASSAY: "ihc",
            columns.BACKGROUND: "xenograft=on",
            columns.CONDITION: "sorafenib=unknown[invivo]",
            columns.CONTROL: "sorafenib=unknown[invivo]",
            columns.CONTROL_TIME_H: "72",
        },
    )
    weights = np.exp(a.row_time_logw)
    assert weights.sum(axis=1) == pytest.approx(np.ones(3))
    qpcr_grid = [0.5, 1, 2, 4, 8, 12, 24, 48]
    assert a.times[a.row_time_index[0]].tolist() == qpcr_grid
    assert weights[0] == pytest.approx(np.full(8, 1 / 8))
    assert a.times[a.row_time_index[1, :3]].tolist() == [1, 2, 24]
    assert weights[1] == pytest.approx([1 / 3] * 3 + [0] * 5)
    assert np.isneginf(a.row_time_logw[1, 3:]).all()
    # the day-21 vs day-3 contrast: treated term at 504 h, control term at 72 h
    sel = np.flatnonzero(np.isin(a.term_unit, np.flatnonzero(a.unit_row == 2)))
    read = {float(a.term_weight[t]): a.times[a.term_time_index[t, 0]] for t in sel}
    assert read == {1.0: 504.0, -1.0: 72.0}


def test_tumour_volume_contrast_scale_grows_with_the_horizon(tmp_path):
    a = arrays_of(
        tmp_path,
        {
            columns.OBSERVABLE_ID: "tumour_volume",
            columns.ASSAY: "caliper",
            columns.BACKGROUND: "xenograft=on",
            columns.CONDITION: "sorafenib=unknown[invivo]",
            columns.TIME_H: "unknown",
            columns.DIRECTION: "down",
        },
        {},
    )
    grid = a.times[a.row_time_index[0]]
    assert grid.tolist() == [168, 336, 504, 672, 840, 1008]
    np.testing.assert_allclose(a.row_contrast_scale[0], np.sqrt(1 + (grid / 168.0) ** 2))
    np.testing.assert_array_equal(a.row_contrast_scale[1], 1.0)  # qPCR: no horizon


def test_unknown_doses_become_named_nuisances(tmp_path):
    a = arrays_of(
        tmp_path,
        {},
        {columns.OBSERVABLE_ID: "il6_mrna"},
        {columns.STUDY_ID: "other"},
    )
    assert a.nuisance_names == ("fixture.ifn_alpha", "other.ifn_alpha")
    assert a.nuisance_log_median == pytest.approx([math.log(1000.0)] * 2)
    assert a.nuisance_log_sd == pytest.approx([0.5 * math.log(10.0)] * 2)
    assert a.nuisance_units == ("IU/mL", "IU/mL")
    assert all(src.startswith("assumed") for src in a.nuisance_sources)
    # two studies, two conditions (different unknowns); one slot each
    ifn = MODEL.index("inputs", "ifn_alpha")
    assert a.dose_slots[:, 1].tolist() == [ifn, ifn]
    assert sorted(a.dose_nuisance.tolist()) == [0, 1]
    assert a.batch.inputs[a.dose_slots[:, 0], ifn] == pytest.approx([1000.0, 1000.0])


def test_statement_and_significance_fields(tmp_path):
    a = arrays_of(
        tmp_path,
        {columns.STATEMENT_IDS: "T-1,R-01", columns.SIGNIFICANCE: "significant"},
        {columns.STATEMENT_IDS: "T-1", columns.OBSERVABLE_ID: "il6_mrna"},
    )
    assert a.statement_ids == ("T-1",)
    assert a.row_statement.tolist() == [0, 0]
    assert a.row_significant.tolist() == [True, False]


def test_digitised_rows_merge_as_values():
    paths = [*shipped_evidence_paths(), FIXTURES / "digitised_SYNTHETIC.tsv"]
    frame = load_evidence(paths)
    a = build_arrays(MODEL, frame)
    a.check()
    rows = {rid: i for i, rid in enumerate(a.row_ids) if rid.startswith("synthetic-")}
    assert len(rows) == 3
    mtt, qpcr, blot = rows["synthetic-01"], rows["synthetic-02"], rows["synthetic-03"]
    assert a.row_value[mtt] == pytest.approx(math.log(0.75))  # 75 % read from pixels
    assert a.row_log_sd[mtt] == pytest.approx(math.sqrt(math.log1p((5 / 75) ** 2)))
    assert a.row_log_sd[qpcr] == pytest.approx(math.sqrt(math.log1p((1 / math.sqrt(3) / 4) ** 2)))
    assert np.isnan(a.row_log_sd[blot])  # bars of unknown meaning carry no spread
    assert a.scale_groups == ("synthetic:blot_S1C",)
    assert a.row_scale_group[blot] == 0
    assert "Fig. S1 panel A" in a.row_source[mtt]


def test_rows_that_do_not_fit_the_model_raise_one_data_error():
    frame = load_evidence()
    with pytest.raises(DataError) as err:
        build_arrays(LinearDecay(), frame)
    text = str(err.value)
    assert "evidence_tomita2011.tsv:2:" in text
    assert "unknown cell line '786-O'" in text
    assert "problem(s)" in text


def test_every_shipped_row_maps_onto_the_main_circuit():
    frame = load_evidence()
    a = build_arrays(MODEL, frame)
    a.check()
    assert a.n_rows == len(frame)
    assert set(a.unit_row.tolist()) == set(range(a.n_rows))
    observables = frame[columns.OBSERVABLE_ID].tolist()
    for t in range(a.n_terms):
        row = a.unit_row[a.term_unit[t]]
        assert MODEL.observable_names[a.term_obs[t]] == observables[row]
    assert set(a.batch.cell_lines) <= set(MODEL.cell_line_names)
    # 0 h: a control read before treatment (the same tumours at baseline)
    assert (a.times >= 0).all() and (np.diff(a.times) > 0).all()
    # the number of units per kind follows the row shapes
    kinds = [ROW_KINDS[k] for k in a.row_kind]
    n_terms = np.bincount(a.term_unit, minlength=a.n_units)
    for u, r in enumerate(a.unit_row):
        if kinds[r] == "interaction":
            assert n_terms[u] == 4
            assert sorted(a.term_weight[a.term_unit == u]) == [-1, -1, 1, 1]
    # every unknown dose has a slot and every slot a nuisance with a sourced prior
    assert len(a.nuisance_names) == len(set(a.nuisance_names)) > 10
    assert all(src for src in a.nuisance_sources)


def test_reported_doses_of_the_shipped_evidence():
    """Predictions use the doses the sources report: each TKI its own series; IFN-a and
    tocilizumab have none, only the nuisances of each study."""
    a = build_arrays(MODEL, load_evidence())
    doses = reported_doses(a, MODEL)
    assert doses["sorafenib"].values == doses["sunitinib"].values == (0.5, 1.0, 5.0, 10.0)
    assert doses["pazopanib"].values == (1.0, 5.0, 10.0, 50.0)
    assert "ishibashi2017.sorafenib.invivo" in doses["sorafenib"].nuisances
    assert doses["ifn_alpha"].values == () and "oguro2013.ifn_alpha" in doses["ifn_alpha"].nuisances
    assert doses["tocilizumab"].values == ()
    assert set(doses) <= {i.name for i in MODEL.inputs if not i.indicator}
    assert {n for d in doses.values() for n in d.nuisances} == set(a.nuisance_names)


@pytest.mark.slow
def test_shipped_rows_are_informative_contrasts_of_the_model(rng):
    """Every evidence condition solves, and no unit is zero by construction.

    Parameters are the defaults of each cell line scaled by log-normal noise (rows
    differ), so a unit whose delta is still exactly zero is structurally empty for the
    model: a row the likelihood would carry without information.
    """
    from il6rcc.models import simulate

    a = build_arrays(MODEL, load_evidence())
    params = np.stack([MODEL.default_params(r) for r in a.batch.row_names])
    log_scale = np.array([p.scale == "log" for p in MODEL.parameters])
    params = np.where(log_scale, params * np.exp(0.2 * rng.standard_normal(params.shape)), params)
    sim = simulate(MODEL, params, a.batch, a.times)
    assert sim.success.all()
    logs = np.log(sim.observables)
    delta = np.zeros((a.n_units, a.n_candidates))
    for t in range(a.n_terms):
        cond, times, obs = a.term_cond[t], a.term_time_index[t], a.term_obs[t]
        delta[a.term_unit[t]] += a.term_weight[t] * logs[cond, times, obs]
    assert np.isfinite(delta).all()
    empty = sorted({a.row_ids[a.unit_row[u]] for u in np.flatnonzero(np.abs(delta).max(1) < 1e-9)})
    assert empty == []
