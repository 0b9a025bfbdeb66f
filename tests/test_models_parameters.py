"""The circuit's parameter table (a TSV shipped as package data) and its variants as
values: defaults say what their sources say, bad tables fail with one clear error,
variants compare unequal but share one compiled program."""

import importlib.resources
import math

import numpy as np
import pytest
from scipy.stats import norm

from il6rcc.errors import ModelSpecError
from il6rcc.models import VARIANTS, RCCCircuit, load_model
from il6rcc.models._parameter_table import COLUMNS, conversion_result, read_parameter_table
from il6rcc.models.circuit import (
    COMPONENTS,
    PARAMETER_TABLE,
    PARAMETER_TABLE_PATH,
    PARAMETERS,
    SWITCH_VALUES,
    SWITCHES,
)

ROWS = {r.spec.name: r for r in PARAMETER_TABLE}


def test_the_table_is_package_data_and_defines_every_parameter_but_the_switches():
    shipped = importlib.resources.files("il6rcc.models") / "circuit_parameters.tsv"
    assert shipped.is_file()
    names = [p.name for p in PARAMETERS]
    assert names == [*ROWS, *SWITCHES]
    assert len(ROWS) >= 100


def test_every_cited_default_states_its_source_value_and_conversion():
    """A default with a citation carries the value as the source states it and the
    arithmetic that turns it into the model's unit, ending with the default itself;
    every other default says 'assumed: <reason>'."""
    for name, row in ROWS.items():
        if row.assumed:
            assert row.spec.source.startswith("assumed: ") and len(row.spec.source) > 20, name
        else:
            assert row.source_value and row.conversion, name
        if row.conversion:
            result = conversion_result(row.conversion)
            assert result is not None and math.isclose(result, row.spec.default, rel_tol=0.01), (
                name,
                row.conversion,
                row.spec.default,
            )


def test_ifn_ec50_is_the_cited_nanomolar_ec50_in_iu_per_ml():
    """0.1-1.5 nM antiproliferative EC50 (doi:10.1016/j.cyto.2011.07.019) at 19.2 kDa
    and 2e8 IU/mg: 384-5760 IU/mL; the default is the geometric middle."""
    row = ROWS["ifn_ec50"]
    assert "0.1-1.5 nM" in row.source_value and "10.1016/j.cyto.2011.07.019" in row.spec.source
    iu_per_nm = 19.2 * 200.0  # ng/nmol x IU/ng
    low, high = 0.1 * iu_per_nm, 1.5 * iu_per_nm
    assert row.spec.default == pytest.approx(math.sqrt(low * high), rel=1e-3)


def test_socs3_constants_are_bachmanns_in_basal_units():
    """Bachmann's SOCS3Inh = 10.41 halves activation at SOCS3Eqc/SOCS3Inh; in units of
    the basal level (qPCR fold 1 at RNA/RNAEqc = 1/scale_fold) that is
    geomean(56.96, 49.07, 80.73) / 10.41."""
    scale = math.exp(np.mean(np.log([56.96, 49.07, 80.73])))
    for name in ("socs3_k_ifnar", "socs3_k_il6r"):
        row = ROWS[name]
        assert "10.41" in row.source_value and "doi:10.1038/msb.2011.50" in row.spec.source
        assert row.spec.default == pytest.approx(scale / 10.41, rel=2e-3)


def test_socs3_induction_weight_is_bachmanns_and_names_raias_larger_fold():
    """The maximal SOCS3 induction is 1 + w (pSTAT3 = 1): Bachmann's fit gives 17-fold;
    Raia's several-hundred-fold (825) is stated with how far the prior is from it."""
    scale = math.exp(np.mean(np.log([56.96, 49.07, 80.73])))
    share = 0.02689 / (0.02689 + 0.07451)
    row = ROWS["w_stat3_socs3"]
    assert row.spec.default == pytest.approx(scale * share, rel=2e-3)
    assert "825-fold" in row.spec.source
    sd_away = math.log10(825.0 / (1.0 + row.spec.default)) / row.spec.log10_sd
    assert 1.0 < sd_away < 2.5  # inside the prior's reach, not at its centre


def test_suv_basal_prior_does_not_count_the_treated_values_twice():
    """suv_basal is estimated, and its prior is flat across the two treated values the
    likelihood uses (9.6, 11.9): its log density changes by less than 1 % between them."""
    spec = ROWS["suv_basal"].spec
    assert spec.estimable
    z = [(math.log10(v) - math.log10(spec.default)) / spec.log10_sd for v in (9.6, 11.9)]
    assert abs(norm.logpdf(z[0]) - norm.logpdf(z[1])) < 0.01


def _write(tmp_path, rows):
    path = tmp_path / "params.tsv"
    path.write_text("\n".join("\t".join(r) for r in [list(COLUMNS), *rows]) + "\n")
    return path


GOOD = ["k", "0.4986", "1/h", "log", "0.5", "yes", "0.00831 /min", "x 60 = 0.4986 /h",
        "doi:10.1038/msb.2011.50", "a rate"]  # fmt: skip


def test_a_good_table_reads(tmp_path):
    (row,) = read_parameter_table(_write(tmp_path, [GOOD]))
    assert row.spec.default == 0.4986 and row.spec.scale == "log" and row.line == 2
    assert "source value: 0.00831 /min" in row.spec.source


def test_every_problem_of_a_bad_table_is_reported_with_file_line_column_and_value(tmp_path):
    bad_default = [*GOOD[:1], "-1", *GOOD[2:]]
    drifted = ["k2", "0.6", *GOOD[2:]]  # the conversion still ends with 0.4986
    uncited = ["k3", "1.0", "1", "log", "1", "yes", "", "", "my guess", "x"]
    no_reason = ["k4", "1.0", "1", "log", "1", "yes", "", "", "assumed", "x"]
    duplicate = GOOD
    bad_scale = ["k5", "0.5", "1", "sqrt", "1", "maybe", "", "", "assumed: because of x y", "x"]
    path = _write(tmp_path, [bad_default, drifted, uncited, no_reason, duplicate, bad_scale])
    with pytest.raises(ModelSpecError) as info:
        read_parameter_table(path)
    text = str(info.value)
    assert str(path) in text
    for needle in (
        "line 2 (k), column 'default': got '-1'; expected a number > 0 (log scale)",
        "line 3 (k2), column 'conversion': its result 0.4986 differs from the default 0.6",
        "line 4 (k3), column 'source': got 'my guess'; expected a citation",
        "line 5 (k4), column 'source': got 'assumed'; expected 'assumed: <reason>'",
        "line 6 (k), column 'name': 'k' is already defined on line 2",
        "line 7 (k5), column 'scale': got 'sqrt'",
        "line 7 (k5), column 'estimable': got 'maybe'",
    ):
        assert needle in text, needle


def test_wrong_header_is_refused(tmp_path):
    path = tmp_path / "p.tsv"
    path.write_text("name\tvalue\n")
    with pytest.raises(ModelSpecError, match=r"line 1: got columns \['name', 'value'\]"):
        read_parameter_table(path)


def test_the_shipped_table_path_is_the_package_file():
    assert PARAMETER_TABLE_PATH.name == "circuit_parameters.tsv"
    assert len(read_parameter_table(PARAMETER_TABLE_PATH)) == len(PARAMETER_TABLE)


# ---------------------------------------------------------------------------- variants
def test_variants_are_distinct_values_sharing_one_program():
    models = {name: RCCCircuit.variant(name) for name in VARIANTS}
    distinct = {m for name, m in models.items() if name != "socs3_il6_loop"}
    assert len(distinct) == len(VARIANTS) - 1  # socs3_il6_loop is main by another name
    assert models["socs3_il6_loop"] == models["main"]
    assert models["main"] != models["review"] and hash(models["main"]) != hash(models["review"])
    assert len({id(m.program) for m in models.values()}) == 1
    assert RCCCircuit.variant("review") == load_model("rcc_circuit", "review")


def test_every_variant_is_its_switch_values():
    for name, components in VARIANTS.items():
        model = RCCCircuit.variant(name)
        params = model.default_params()
        for component, choice in {**model.components, **components}.items():
            for switch, value in SWITCH_VALUES[component][choice].items():
                assert params[model.index("parameters", switch)] == value, (name, switch)
    assert set(SWITCH_VALUES) == set(COMPONENTS)
    assert {s for c in SWITCH_VALUES.values() for v in c.values() for s in v} == set(SWITCHES)


def test_unknown_components_are_refused():
    with pytest.raises(ModelSpecError, match="ifn_desensitisation 'socs9' is unknown"):
        RCCCircuit(ifn_desensitisation="socs9")
    with pytest.raises(ModelSpecError, match="unknown variant components"):
        RCCCircuit.variant("main", tki="x")
