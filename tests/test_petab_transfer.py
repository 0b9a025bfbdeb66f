"""Transfer priors (issue 7, part 4): the shipped prior table, the conversions behind
it, the MAP fit and Laplace approximation on a small published problem, and (slow) the
full derivation from Bachmann_MSB2011 and Raia_CancerResearch2011.

The derivation script is not a module of the package; it is loaded from its file next
to the shipped table (``petab_io/priors/derive.py``).
"""

import importlib.util
import math
import re
import sys
from pathlib import Path

import jax.numpy as jnp
import libsbml
import numpy as np
import pandas as pd
import pytest

import il6rcc.petab_io
from il6rcc.errors import PetabError
from il6rcc.models.circuit import PARAMETERS
from il6rcc.petab_io import (
    DEFAULT_SOLVER,
    fit_map,
    laplace_approximation,
    load_problem,
    problem_path,
    propagate,
)
from il6rcc.petab_io._fit import _starts
from il6rcc.petab_io._simulate import condition_parameters
from il6rcc.petab_io._steady import conservation_laws, steady_state

PRIORS = Path(il6rcc.petab_io.__file__).parent / "priors"
TABLE = PRIORS / "transfer_priors.tsv"
CIRCUIT = {p.name: p for p in PARAMETERS}
#: AMICI's benchmark value at Boehm's nominal parameters (tests/test_petab_benchmarks.py).
BOEHM_REFERENCE_LLH = -138.22199693517703


@pytest.fixture(scope="module")
def derive():
    spec = importlib.util.spec_from_file_location("il6rcc_transfer_derive", PRIORS / "derive.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def table():
    return pd.read_csv(TABLE, sep="\t", keep_default_na=False)


@pytest.fixture(scope="module")
def boehm():
    return load_problem(problem_path("Boehm_JProteomeRes2014"))


# ----------------------------------------------------------------- the shipped table
def test_table_has_the_exact_columns(table, derive):
    assert tuple(table.columns) == derive.COLUMNS
    assert tuple(table.columns[:4]) == ("parameterId", "median", "log10_sd", "source")


def test_table_names_log_scale_circuit_parameters_once(table):
    ids = table["parameterId"].tolist()
    assert len(ids) == len(set(ids))
    unknown = sorted(set(ids) - set(CIRCUIT))
    assert not unknown
    # the medians are log-normal medians: only log-scale parameters qualify
    assert all(CIRCUIT[p].scale == "log" for p in ids)


def test_table_parses_as_an_il6rcc_prior_table(table):
    from il6rcc.inference import read_prior_table

    priors = read_prior_table(TABLE)
    assert list(priors) == table["parameterId"].tolist()
    for pid, (median, width, source) in priors.items():
        row = table.set_index("parameterId").loc[pid]
        assert (median, width) == (float(row["median"]), float(row["log10_sd"]))
        assert source == row["source"]


def test_table_values_are_positive_and_sourced(table):
    median = pd.to_numeric(table["median"]).to_numpy()
    sd = pd.to_numeric(table["log10_sd"]).to_numpy()
    assert np.all(np.isfinite(median)) and np.all(median > 0)
    assert np.all(np.isfinite(sd)) and np.all(sd > 0)
    assert all(s.strip() for s in table["source"])
    for cell in table["n_identifiable"]:
        k, n = (int(x) for x in cell.split("/"))
        assert 0 < k == n  # only quantities whose sources are all identifiable


def test_table_rows_are_the_declared_transfers(table, derive):
    assert table["parameterId"].tolist() == [t.parameter for t in derive.TRANSFERS]
    assert not set(table["parameterId"]) & set(derive.NOT_TRANSFERRED)
    assert set(derive.NOT_TRANSFERRED) <= set(CIRCUIT)


def test_table_is_at_least_as_wide_as_its_widening(table, derive):
    for t in derive.TRANSFERS:
        row = table.set_index("parameterId").loc[t.parameter]
        floor = derive.widen(0.0, t.reasons)
        if t.combine_with_default:  # the product with the default prior is narrower
            floor = derive.combine(0.0, floor, 0.0, CIRCUIT[t.parameter].log10_sd)[1]
        assert float(row["log10_sd"]) >= floor - 1e-3


def test_shipped_files_name_no_machine_paths():
    pattern = re.compile(r"(?:^|[\s'\"(=])(?:/[\w.-]+/|[A-Za-z]:\\)")
    for path in [*PRIORS.glob("*.tsv"), *PRIORS.glob("*.md")]:
        assert not pattern.search(path.read_text(encoding="utf-8")), path.name


# ----------------------------------------------------------------- conversions
def test_time_unit_and_half_life_conversions(derive):
    # Bachmann's nominal SOCS3RNATurn 0.00831/min = 0.4986/h; t1/2 = ln2/0.4986 h = 83.4 min
    k = derive.per_hour(0.00831)
    assert k == pytest.approx(0.4986, rel=1e-12)
    assert derive.half_life(k) == pytest.approx(1.39019, rel=1e-5)
    assert 60 * derive.half_life(k) == pytest.approx(83.41, rel=1e-4)
    assert derive.half_life(0.00831) == pytest.approx(83.41, rel=1e-4)  # minutes in, minutes out


def test_stat_cycle_quantities_by_hand(derive):
    # Bachmann's nominal STAT5Imp 0.0269/min, STAT5Exp 0.0745/min
    assert derive.nuclear_share(0.0269, 0.0745) == pytest.approx(0.0269 / 0.1014)
    assert derive.stat_cycle_rate(0.0269, 0.0745) == pytest.approx(0.019764, rel=1e-4)
    # 1/k = mean time phosphorylated = 1/imp + 1/exp
    assert 1 / derive.stat_cycle_rate(2.0, 3.0) == pytest.approx(1 / 2 + 1 / 3)
    assert derive.fold_per_unit_pstat(60.0, 1.0, 3.0) == pytest.approx(15.0)
    assert derive.inhibition_constant(52.0, 10.4) == pytest.approx(5.0)
    assert derive.geometric_mean([2.0, 8.0]) == pytest.approx(4.0)
    assert derive.geometric_mean([2.0, 4.0, 8.0]) == pytest.approx(4.0)


def test_widening_pooling_and_combination_by_hand(derive):
    assert derive.widen(0.3, ["context"]) == pytest.approx(math.sqrt(0.09 + 0.25))
    assert derive.widen(0.0, ["context", "analogy", "scale"]) == pytest.approx(math.sqrt(0.75))
    mean, sd = derive.pool([0.0, 0.2], [0.1, 0.1])
    assert mean == pytest.approx(0.1)
    assert sd == pytest.approx(math.sqrt(0.01 + 0.02))  # var([0, 0.2], ddof=1) = 0.02
    assert derive.pool([0.3], [0.2]) == pytest.approx((0.3, 0.2))
    assert derive.combine(0.0, 1.0, 1.0, 1.0) == pytest.approx((0.5, math.sqrt(0.5)))
    assert derive.combine(0.0, 0.5, 1.0, 1.0) == pytest.approx((0.2, math.sqrt(0.2)))


def test_transfer_formulas_on_known_values(derive):
    values = {
        "SOCS3RNATurn": 0.01,
        "SOCS3_degradation": 0.05,
        "SOCS3Inh": 10.0,
        "STAT5Imp": 1.0,
        "STAT5Exp": 3.0,
        "pSTAT5_dephosphorylation": 1e-4,
        **dict.fromkeys(derive.SOCS3_FOLD, 40.0),
        **dict.fromkeys(derive.CIS_FOLD, 20.0),
    }
    expected = {
        "k_socs3_mrna_deg": 0.6,
        "k_socs3_deg": 3.0,
        "socs3_k_il6r": 4.0,
        "socs3_k_ifnar": 4.0,
        "w_stat3_socs3": 10.0,
        "w_stat1_socs3": 10.0,
        "w_stat3_cis": 5.0,
        "w_stat1_cis": 5.0,
    }
    for t in derive.TRANSFERS:
        got = [s.quantity(values) for s in t.sources]
        if t.parameter in expected:
            assert got == pytest.approx([expected[t.parameter]]), t.parameter
        else:  # STAT deactivation: Bachmann's cycle and Raia's 91 x k, per hour
            assert got == pytest.approx([60 * 0.75, 60 * 91 * 1e-4]), t.parameter


# ------------------------------------------- the model structure the mapping relies on
def _reaction_formulas(name):
    doc = libsbml.readSBML(str(problem_path(name).parent / f"model_{name}.xml"))
    return [
        libsbml.formulaToL3String(r.getKineticLaw().getMath()) for r in doc.getModel().reactions
    ]


def test_raia_dephosphorylation_carries_the_factor_91(derive):
    laws = _reaction_formulas("Raia_CancerResearch2011")
    assert "cyt * 91 * pSTAT5 * pSTAT5_dephosphorylation" in laws
    assert derive.RAIA_DEPHOSPHORYLATION_FACTOR == 91.0


def test_bachmann_fold_observables_are_one_plus_scaled_mrna(derive):
    obs = pd.read_csv(
        problem_path("Bachmann_MSB2011").parent / "observables_Bachmann_MSB2011.tsv", sep="\t"
    ).set_index("observableId")
    for gene in ("SOCS3", "CIS"):
        for series in "ABC":
            oid = f"observable_{gene}RNA_fold{series}"
            formula = obs.loc[oid, "observableFormula"].replace(" ", "")
            assert formula == f"{gene}RNA*observableParameter1_{oid}/{gene}RNAEqc+1"
    measurements = pd.read_csv(
        problem_path("Bachmann_MSB2011").parent / "measurementData_Bachmann_MSB2011.tsv",
        sep="\t",
    )
    for scale in (*derive.SOCS3_FOLD, *derive.CIS_FOLD):
        oid = "observable_" + scale.removeprefix("scale_")
        rows = measurements[measurements["observableId"] == oid]
        assert len(rows) and (rows["observableParameters"] == scale).all()


# compiles Bachmann's steady states (minutes)
@pytest.mark.slow
def test_bachmann_steady_state_mrna_follows_nuclear_share(derive):
    """RNA/RNAEqc = STAT5Imp/(STAT5Imp+STAT5Exp) x phosphorylated STAT5 fraction at a
    steady state under constant Epo: the basis of w = scale x nuclear share."""
    problem = load_problem(problem_path("Bachmann_MSB2011"))
    table = problem.parameters
    pool = problem.pool(table.values(table.nominal_theta))
    c = problem.condition_ids.index("model1_data1")
    rows = condition_parameters(problem, pool)
    init = pool[problem.condition_initial_index][c]
    flags = jnp.asarray(problem.condition_initial_set[c])
    y0 = problem.model.initial_guess(rows[c], jnp.concatenate([init, flags]))
    cons = conservation_laws(problem.model)
    y, status, _ = steady_state(problem.model, cons, DEFAULT_SOLVER, rows[c], y0)
    assert int(status) == 0
    state = dict(zip(problem.model.states, np.asarray(y), strict=True))
    value = {pid: float(v) for pid, v in zip(table.ids, table.nominal, strict=True)}
    cyt, nuc = 0.4, 0.275  # compartment sizes in the SBML model
    total = cyt * value["init_STAT5"]
    p_fraction = (cyt * state["pSTAT5"] + nuc * state["npSTAT5"]) / total
    share = derive.nuclear_share(value["STAT5Imp"], value["STAT5Exp"])
    for gene in ("SOCS3", "CIS"):
        ratio = state[f"{gene}RNA"] / value[f"{gene}RNAEqc"]
        assert ratio == pytest.approx(share * p_fraction, rel=1e-4)
    # the protein sits at SOCS3Eqc x RNA/RNAEqc (basis of socs3_k = scale / SOCS3Inh)
    expected = value["SOCS3Eqc"] * state["SOCS3RNA"] / value["SOCS3RNAEqc"]
    assert state["SOCS3"] == pytest.approx(expected, rel=1e-4)


# ----------------------------------------------------------------- fit and Laplace
def test_map_fit_on_boehm_reaches_the_reference(boehm):
    result = fit_map(boehm, n_starts=1, seed=0, max_steps=20, laplace=None)
    assert result.start_kinds == ("nominal",)
    assert result.nominal_log_likelihood == pytest.approx(BOEHM_REFERENCE_LLH, rel=1e-6)
    assert result.best_log_likelihood >= BOEHM_REFERENCE_LLH - 1e-3
    assert result.best_log_likelihood >= result.nominal_log_likelihood - 1e-6
    lower, upper = result.lower, result.upper
    assert np.all((result.theta >= lower) & (result.theta <= upper))
    assert list(result.starts_table().columns[:3]) == ["problem", "start", "kind"]
    assert set(result.starts_table()["problem"]) == {boehm.name}
    with pytest.raises(PetabError, match=f"^{boehm.name}: fit_map ran without a Laplace"):
        propagate(result, lambda v: jnp.log10(v["k_phos"]))


def test_laplace_on_boehm_by_hand(boehm):
    table = boehm.parameters
    theta = table.nominal_theta  # Boehm's nominal values are its MLE
    lap = laplace_approximation(boehm, theta, "hessian")
    ids = list(table.estimated_ids)
    # k_exp_hetero and k_imp_homo sit at their bounds: conditioned on, not approximated
    assert [ids[i] for i in np.flatnonzero(lap.at_bound)] == ["k_exp_hetero", "k_imp_homo"]
    assert np.isnan(lap.sd[lap.at_bound]).all() and not lap.identifiable[lap.at_bound].any()
    # a noise parameter theta = log10(sigma) of n normal measurements, at its MLE:
    # d2(-llh)/dtheta2 = 2 n ln(10)^2 (n = 16 per observable)
    n = 16
    for name in ("sd_pSTAT5A_rel", "sd_pSTAT5B_rel", "sd_rSTAT5A_rel"):
        i = ids.index(name)
        assert lap.hessian[i, i] == pytest.approx(2 * n * math.log(10.0) ** 2, rel=2e-3)
    assert lap.identifiable[~lap.at_bound].all()
    assert lap.n_non_identifiable_directions == 0
    # the delta method on a single parameter gives its marginal SD; at a bound: NaN
    k = ids.index("k_phos")
    single = propagate(lap, lambda v: jnp.log10(v["k_phos"]))
    assert single.value == pytest.approx(theta[k])
    assert single.sd == pytest.approx(lap.sd[k], rel=1e-9)
    assert single.sources == ("k_phos",) and single.n_identifiable == 1
    at_bound = propagate(lap, lambda v: jnp.log10(v["k_phos"] * v["k_imp_homo"]))
    assert math.isnan(at_bound.sd) and at_bound.not_identifiable == ("k_imp_homo",)


def test_fisher_information_of_noise_parameters_by_hand(boehm):
    """Expected Fisher information of theta = log10(sigma) for n normal measurements:
    2 n ln(10)^2 exactly, uncorrelated with the model parameters."""
    ids = list(boehm.parameters.estimated_ids)
    lap = laplace_approximation(boehm, boehm.parameters.nominal_theta, "fisher")
    for name in ("sd_pSTAT5A_rel", "sd_pSTAT5B_rel", "sd_rSTAT5A_rel"):
        i = ids.index(name)
        assert lap.hessian[i, i] == pytest.approx(2 * 16 * math.log(10.0) ** 2, rel=1e-9)
        others = [j for j in np.flatnonzero(lap.free) if j != i]
        assert np.all(lap.hessian[i, others] == 0.0)
    assert np.isnan(lap.gradient).all()  # only the finite differences give a gradient


def test_random_starts_are_seeded_inside_the_bounds_and_redrawn(boehm):
    lower, upper = boehm.parameters.bounds_theta

    def draw(log_posterior, jitter=None, seed=7):
        return _starts(boehm, log_posterior, 4, seed, True, jitter, lower, upper, 3)

    kinds, starts = draw(lambda theta: 0.0)
    assert kinds == ("nominal", "uniform", "uniform", "uniform")
    np.testing.assert_array_equal(starts[0], boehm.parameters.nominal_theta)
    assert np.all((starts >= lower) & (starts <= upper))
    np.testing.assert_array_equal(draw(lambda theta: 0.0)[1], starts)  # same seed
    assert not np.array_equal(draw(lambda theta: 0.0, seed=8)[1], starts)
    kinds, near = draw(lambda theta: 0.0, jitter=0.05)
    assert kinds[1:] == ("jitter",) * 3
    assert np.abs(near - boehm.parameters.nominal_theta).max() < 0.5
    # starts whose objective is not finite are redrawn, up to a limit
    flaky = iter([-math.inf, 0.0] * 10)
    assert len(draw(lambda theta: next(flaky))[1]) == 4
    with pytest.raises(PetabError, match="starts with a finite objective"):
        draw(lambda theta: -math.inf)


def test_fit_map_rejects_bad_arguments(boehm):
    with pytest.raises(PetabError, match="n_starts"):
        fit_map(boehm, n_starts=0)
    with pytest.raises(PetabError, match="Laplace method"):
        laplace_approximation(boehm, boehm.parameters.nominal_theta, "exact")


# ----------------------------------------------------------------- full derivation
@pytest.mark.slow
def test_derivation_regenerates_the_shipped_table(derive, table, tmp_path):
    """Refits Bachmann and Raia (about 20-25 min on 2 CPU cores) and compares."""
    new = derive.derive(tmp_path, verbose=False)
    new = pd.read_csv(tmp_path / "transfer_priors.tsv", sep="\t", keep_default_na=False)
    assert new["parameterId"].tolist() == table["parameterId"].tolist()
    np.testing.assert_allclose(
        pd.to_numeric(new["median"]), pd.to_numeric(table["median"]), rtol=2e-2
    )
    np.testing.assert_allclose(
        pd.to_numeric(new["log10_sd"]), pd.to_numeric(table["log10_sd"]), atol=1e-2
    )
    assert new["n_identifiable"].tolist() == table["n_identifiable"].tolist()
