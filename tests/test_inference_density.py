"""The log density of a tiny case against a hand computation, and its gradient; the
ordinal rank likelihood and statement weighting against hand computations."""

import dataclasses
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _tiny import TIMES, closed_form, tiny_arrays
from scipy.stats import multivariate_normal, norm

from il6rcc.data import build_arrays, columns, load_evidence
from il6rcc.inference import (
    EvidencePosterior,
    LikelihoodSettings,
    build_priors,
    hessian_directions,
    likelihood_arrays,
    make_evidence_problem,
    row_log_likelihood,
    row_weights,
)
from il6rcc.models import RCCCircuit, SolverSettings

TIGHT = SolverSettings(rtol=1e-10, atol=1e-12)
SETTINGS = LikelihoodSettings(
    probit_scale=0.3, not_significant_effect=0.7, not_significant_floor=0.2
)


def _hand_log_density(z, model, priors, log_fold=0.9, log_sd=0.2):
    """Prior of z (standard normal) + the four rows, from the closed form."""
    theta = np.exp(priors.loc + priors.sd * z)
    a, k = theta
    x = {u: closed_form(a, k, u, TIMES) for u in (0.0, 1.0, 3.0, 0.05)}
    lp = norm.logpdf(z).sum()
    d_value = np.log(x[3.0][1] / x[0.0][1])
    lp += norm.logpdf(log_fold, loc=d_value, scale=log_sd)
    d_sign = np.log(x[1.0][0] / x[0.0][0])
    lp += norm.logcdf(d_sign / 0.3)
    d_unknown = np.log(x[1.0] / x[0.0])  # at both candidate times
    lp += np.log(0.5 * norm.cdf(d_unknown[0] / 0.3) + 0.5 * norm.cdf(d_unknown[1] / 0.3))
    d_ns = np.log(x[0.05][0] / x[0.0][0])
    inside = norm.cdf((0.7 - d_ns) / 0.3) - norm.cdf((-0.7 - d_ns) / 0.3)
    lp += np.log(0.2 + 0.8 * inside)
    return lp


def _potential(problem):
    posterior = EvidencePosterior(problem)
    assert posterior.dim == 2  # only z: no hierarchy, doses, noise or blots
    data = jax.tree.map(jnp.asarray, posterior.data)
    fn = jax.jit(lambda x, d: -posterior.log_density(x, d))
    return lambda x: fn(x, data)


@pytest.fixture(scope="module")
def tiny_weighted():
    """The tiny problem (rows 0 and 1 share a statement): its jitted potential and its
    data under each weighting; the weights are data, so one program serves both."""
    model, arrays = tiny_arrays()
    arrays = dataclasses.replace(
        arrays, row_statement=np.array([0, 0, 1, -1]), statement_ids=("S-1", "S-2")
    )
    priors = build_priors(model, ["a", "k"])
    data = {}
    for weighting in ("row", "statement"):
        settings = dataclasses.replace(SETTINGS, weighting=weighting)
        posterior = EvidencePosterior(make_evidence_problem(model, TIGHT, arrays, priors, settings))
        data[weighting] = jax.tree.map(jnp.asarray, posterior.data)
    assert posterior.dim == 2  # only z: no hierarchy, doses, noise or blots
    potential = jax.jit(lambda x, d: -posterior.log_density(x, d))
    return model, priors, potential, data


def test_log_density_equals_hand_computation(tiny_weighted):
    """Row weighting (the default) is the hand computation, statement ids or not."""
    model, priors, potential, data = tiny_weighted
    for z in (np.zeros(2), np.array([0.3, -0.4]), np.array([-1.1, 0.8])):
        expected = _hand_log_density(z, model, priors)
        got = -float(potential(jnp.asarray(z), data["row"]))
        np.testing.assert_allclose(got, expected, rtol=1e-8)


def test_log_likelihood_is_the_log_density_without_the_prior():
    """What the profile likelihood optimises: the z-only tiny problem's prior is a unit
    Normal per coordinate, so log density = log likelihood + sum log N(z; 0, 1)."""
    model, arrays = tiny_arrays()
    priors = build_priors(model, ["a", "k"])
    posterior = EvidencePosterior(make_evidence_problem(model, TIGHT, arrays, priors, SETTINGS))
    data = jax.tree.map(jnp.asarray, posterior.data)
    both = jax.jit(lambda x: (posterior.log_density(x, data), posterior.log_likelihood(x, data)))
    for z in (np.array([0.3, -0.4]), np.array([-1.1, 0.8])):
        lp, llh = (float(v) for v in both(jnp.asarray(z)))
        np.testing.assert_allclose(lp, llh + norm.logpdf(z).sum(), rtol=1e-10)
        np.testing.assert_allclose(lp, _hand_log_density(z, model, priors), rtol=1e-8)


def test_log_density_gradient_matches_finite_differences():
    model, arrays = tiny_arrays()
    problem = make_evidence_problem(model, TIGHT, arrays, build_priors(model, ["a", "k"]), SETTINGS)
    potential = _potential(problem)
    z = jnp.array([0.25, -0.35])
    grad = np.asarray(jax.grad(potential)(z))
    h = 1e-5
    fd = np.array(
        [(float(potential(z + h * e)) - float(potential(z - h * e))) / (2 * h) for e in np.eye(2)]
    )
    np.testing.assert_allclose(grad, fd, rtol=1e-6)


def test_hessian_directions_and_coordinate_names():
    names = ["stiff_one", "middle", "sloppy_one"]
    dirs = hessian_directions(np.diag([1e4, 1.0, 0.01]), names, k=1, top=1)
    assert [d["kind"] for d in dirs] == ["stiff", "sloppy"]
    assert dirs[0]["loadings"].keys() == {"stiff_one"} and dirs[0]["eigenvalue"] == 1e4
    np.testing.assert_allclose([dirs[0]["sd"], dirs[1]["sd"]], [0.01, 10.0])
    assert dirs[1]["loadings"].keys() == {"sloppy_one"}
    # a rotated pair: both coordinates load equally on the stiff direction
    r = np.array([[1.0, 1.0], [1.0, -1.0]]) / np.sqrt(2)
    (stiff,) = hessian_directions(r @ np.diag([100.0, 1.0]) @ r.T, ["x", "y"], k=1)[:1]
    # loadings are rounded to 3 decimals for the diagnostics file
    np.testing.assert_allclose(np.abs(list(stiff["loadings"].values())), 2**-0.5, atol=5e-4)
    assert np.isnan(hessian_directions(-np.eye(1), ["neg"], k=1)[0]["sd"])

    model, arrays = tiny_arrays()
    problem = make_evidence_problem(model, TIGHT, arrays, build_priors(model, ["a", "k"]), SETTINGS)
    assert EvidencePosterior(problem).coordinate_names == ("a", "k")


def test_mass_matrix_settings_reach_the_kernel():
    from il6rcc.inference._nuts import NutsSettings, make_kernel

    inverse = np.array([[2.0, 0.5], [0.5, 1.0]])
    for kind, given, adapt, dense in (
        ("laplace", True, False, True),
        ("laplace_adapt", True, True, True),
        ("dense", False, True, True),
        ("diag", False, True, False),
    ):
        model, arrays = tiny_arrays()
        problem = make_evidence_problem(
            model, TIGHT, arrays, build_priors(model, ["a", "k"]), SETTINGS
        )
        kernel = make_kernel(EvidencePosterior(problem), NutsSettings(mass_matrix=kind), inverse)
        assert (kernel._inverse_mass_matrix is not None) == given, kind
        assert kernel._adapt_mass_matrix == adapt and kernel._dense_mass == dense, kind


# ----------------------------------------------------------------------------- ranks
RANK_BASE = {
    columns.STUDY_ID: "fixture",
    columns.SOURCE: "doi:10.18632/oncotarget.19420 abstract",
    columns.KIND: "rank",
    columns.OBSERVABLE_ID: "pakt",
    columns.ASSAY: "western",
    columns.CELL_LINE: "786-O",
    columns.BACKGROUND: "none",
    columns.CONTROL: "",
    columns.TIME_H: "2",
    columns.DIRECTION: "none",
    columns.SIGNIFICANCE: "not_stated",
    columns.QUOTE: "SYNTHETIC test row, not a quotation",
}
CIRCUIT = RCCCircuit.variant("main")


def _rank_arrays(folder, *changes):
    lines = ["\t".join(columns.EVIDENCE_COLUMNS)]
    for i, change in enumerate(changes):
        row = {**RANK_BASE, columns.ROW_ID: f"r-{i:02d}", **change}
        lines.append("\t".join(row.get(c, "") for c in columns.EVIDENCE_COLUMNS))
    path = folder / "evidence_rank.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    arrays = build_arrays(CIRCUIT, load_evidence([path]))
    arrays.check()
    return arrays


SERIES5 = ("786-O|sorafenib=10", "786-O|sorafenib=5", "786-O|sorafenib=1")
SERIES5 += ("786-O|sorafenib=0.5", "786-O|none")
IDS3 = ("786-O|sorafenib=10", "786-O|sorafenib=1", "786-O|none")
LINES = ("786-O", "Caki-1", "TUHR3TKB", "ACHN")


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """Rank rows r-00 (3 tiers), r-01 (5 tiers), r-02 (a middle tier of two lines),
    r-03 (two lines), all read at 2 h, and r-04 (a tumour volume after 3 weeks): one
    compiled likelihood for all tests."""
    lines = {columns.CONDITION: "none"}
    return _rank_arrays(
        tmp_path_factory.mktemp("ranks"),
        {columns.CONDITION: "sorafenib=10 uM > sorafenib=1 uM > none"},
        {
            columns.CONDITION: "sorafenib=10 uM > sorafenib=5 uM > sorafenib=1 uM > "
            "sorafenib=0.5 uM > none"
        },
        {**lines, columns.CELL_LINE: "786-O > Caki-1, TUHR3TKB > ACHN"},
        {**lines, columns.CELL_LINE: "786-O > ACHN"},
        {
            columns.KIND: "sign",
            columns.OBSERVABLE_ID: "tumour_volume",
            columns.ASSAY: "caliper",
            columns.BACKGROUND: "xenograft=on",
            columns.CONDITION: "sorafenib=unknown[invivo]",
            columns.CONTROL: "none",
            columns.TIME_H: "504",
            columns.DIRECTION: "down",
        },
    )


def _rank_log_lik(arrays, levels: dict[str, float], settings=SETTINGS, observable="pakt"):
    """Row log-likelihoods with the observable set to exp(level) in the named conditions
    (1 in the others)."""
    obs = np.ones((arrays.batch.n_conditions, len(arrays.times), CIRCUIT.n_observables))
    index = CIRCUIT.index("observables", observable)
    for cid, level in levels.items():
        obs[arrays.batch.ids.index(cid), :, index] = np.exp(level)
    ev = jax.tree.map(jnp.asarray, likelihood_arrays(arrays))
    ok = jnp.ones(arrays.batch.n_conditions, dtype=bool)
    return np.asarray(_row_ll(ev, jnp.asarray(obs), ok, settings, jnp.ones(1), jnp.zeros(0)))


_row_ll = jax.jit(row_log_likelihood, static_argnums=3)


def test_three_tier_rank_equals_hand_computation(ranks):
    """A 3-tier rank is P(Y1 + e1 > Y2 + e2 > Y3 + e3), e iid N(0, s^2 / 2): the
    bivariate normal CDF of the two adjacent contrasts, correlation -1/2."""
    assert np.sum(ranks.unit_row == 0) == 2
    s = SETTINGS.probit_scale
    # equal levels: every one of the 3! orders is equally likely
    ll = _rank_log_lik(ranks, dict.fromkeys(IDS3, 0.0))[0]
    assert ll == pytest.approx(np.log(1 / 6), abs=1e-7)  # three independent pairs: 1/8
    cov = np.array([[1.0, -0.5], [-0.5, 1.0]])
    for y in ((0.4, 0.1, -0.2), (0.0, 0.5, -0.3), (-0.6, 0.0, 0.6)):
        ll = _rank_log_lik(ranks, dict(zip(IDS3, y, strict=True)))[0]
        d = np.array([y[0] - y[1], y[1] - y[2]]) / s
        hand = multivariate_normal(np.zeros(2), cov).logcdf(d)
        # quadrature error (256 points): ~1e-8 near the mode, 1e-6 relative in the tail
        assert ll == pytest.approx(hand, rel=1e-6, abs=1e-6), y


def test_five_tier_rank_is_one_row_of_four_adjacent_contrasts(ranks):
    units = np.flatnonzero(ranks.unit_row == 1)
    assert len(units) == 4 and np.sum(ranks.chain_row == 1) == 1
    for u, (hi, lo) in zip(units, itertools.pairwise(SERIES5), strict=True):
        sel = np.flatnonzero(ranks.term_unit == u)
        got = sorted(
            (float(ranks.term_weight[t]), ranks.batch.ids[ranks.term_cond[t]]) for t in sel
        )
        assert got == sorted([(1.0, hi), (-1.0, lo)])
    ll = _rank_log_lik(ranks, dict.fromkeys(SERIES5, 0.0))[1]
    assert ll == pytest.approx(-np.log(120.0), abs=1e-6)  # 1 of 5! orders
    y = (0.9, 0.5, 0.45, -0.1, -0.2)
    ll = _rank_log_lik(ranks, dict(zip(SERIES5, y, strict=True)))[1]
    tri = np.eye(4) - 0.5 * (np.eye(4, k=1) + np.eye(4, k=-1))  # adjacent: -1/2
    d = -np.diff(y) / SETTINGS.probit_scale
    mvn = multivariate_normal(np.zeros(4), tri, abseps=1e-9, releps=1e-9, maxpts=10**6)
    assert ll == pytest.approx(mvn.logcdf(d), abs=1e-4)  # scipy's QMC error ~1e-5


def test_rank_ties_and_two_member_rank(ranks):
    same = _rank_log_lik(ranks, {f"{line}|none": 0.0 for line in LINES})
    # 2 of the 4! orders put 786-O first and ACHN last; 1 of 2 for a pair
    np.testing.assert_allclose(same[2:4], np.log([2 / 24, 1 / 2]), atol=1e-6)
    ll = _rank_log_lik(ranks, {"786-O|none": 0.2, "ACHN|none": -0.1})
    assert ll[3] == pytest.approx(norm.logcdf(0.3 / SETTINGS.probit_scale), abs=1e-9)


def test_tumour_volume_contrasts_are_growth_rate_contrasts(ranks):
    """A caliper contrast after t = 504 h has the probit scale 0.3 sqrt(1 + (t/168)^2):
    a log-volume difference of 0.6 weighs like a growth-rate difference, not like a
    0.6 log fold change in vitro."""
    (row,) = np.flatnonzero(np.asarray(ranks.row_ids) == "r-04")
    scale = np.sqrt(1.0 + (504.0 / 168.0) ** 2)
    np.testing.assert_allclose(ranks.contrast_scale()[row], scale)
    assert np.all(ranks.contrast_scale()[:row] == 1.0)
    treated, control = (
        next(c for c in ranks.batch.ids if "xenograft" in c and ("sorafenib" in c) == with_tki)
        for with_tki in (True, False)
    )
    ll = _rank_log_lik(ranks, {treated: -0.6, control: 0.0}, observable="tumour_volume")
    assert ll[row] == pytest.approx(norm.logcdf(0.6 / (0.3 * scale)), abs=1e-12)


def test_rank_log_likelihood_gradient(ranks):
    ev = jax.tree.map(jnp.asarray, likelihood_arrays(ranks))
    rng = np.random.default_rng(3)
    shape = (ranks.batch.n_conditions, len(ranks.times), CIRCUIT.n_observables)
    base = rng.normal(0.0, 0.4, shape)
    ok = jnp.ones(ranks.batch.n_conditions, dtype=bool)

    @jax.jit
    def total(log_obs):
        ll = row_log_likelihood(ev, jnp.exp(log_obs), ok, SETTINGS, jnp.ones(1), jnp.zeros(0))
        return jnp.sum(ll)

    x = jnp.asarray(base)
    grad = np.asarray(jax.grad(total)(x))
    pakt = CIRCUIT.index("observables", "pakt")
    h = 1e-5
    for c in range(ranks.batch.n_conditions):
        e = np.zeros_like(base)
        e[c, :, pakt] = h
        fd = (float(total(x + e)) - float(total(x - e))) / (2 * h)
        assert grad[c, :, pakt].sum() == pytest.approx(fd, rel=1e-6, abs=1e-8)


# ----------------------------------------------------------------------------- weighting
def test_statement_weighting_gives_every_statement_equal_weight(tmp_path):
    a = _rank_arrays(
        tmp_path,
        *(
            {columns.STATEMENT_IDS: stmt, columns.CELL_LINE: line, columns.CONDITION: cond}
            for stmt, line, cond in (
                ("R-29,I-2", "786-O", "sorafenib=10 uM > none"),
                ("R-29", "786-O", "sunitinib=10 uM > none"),
                ("R-29", "786-O", "pazopanib=10 uM > none"),
                ("R-30", "786-O", "sorafenib=10 uM > pazopanib=10 uM"),
                ("R-30", "786-O", "sunitinib=10 uM > pazopanib=10 uM"),
                ("T-0", "786-O > ACHN", "none"),
                ("", "786-O > Caki-1", "none"),
            )
        ),
    )
    w = row_weights(a, "statement")
    groups = [a.statement_ids[s] if s >= 0 else a.row_ids[r] for r, s in enumerate(a.row_statement)]
    totals = {g: w[[i for i, x in enumerate(groups) if x == g]].sum() for g in set(groups)}
    assert len(totals) == 4
    np.testing.assert_allclose(list(totals.values()), 1.0)
    np.testing.assert_allclose(w, [1 / 3] * 3 + [1 / 2] * 2 + [1, 1])
    np.testing.assert_array_equal(row_weights(a, "row"), np.ones(a.n_rows))
    np.testing.assert_array_equal(likelihood_arrays(a)["row_weight"], np.ones(a.n_rows))
    with pytest.raises(ValueError, match="weighting 'rows' is not one of"):
        LikelihoodSettings(weighting="rows")


def test_statement_weighting_of_the_log_density(tiny_weighted):
    """Rows 0 and 1 of the tiny problem share a statement: with the switch on their
    log-likelihoods count half each (the other two rows are statements of their own)."""
    model, priors, potential, data = tiny_weighted
    z = np.array([0.3, -0.4])
    full = _hand_log_density(z, model, priors)
    theta = np.exp(priors.loc + priors.sd * z)
    x = {u: closed_form(*theta, u, TIMES) for u in (0.0, 1.0, 3.0)}
    value = norm.logpdf(0.9, loc=np.log(x[3.0][1] / x[0.0][1]), scale=0.2)
    sign = norm.logcdf(np.log(x[1.0][0] / x[0.0][0]) / 0.3)
    expected = full - 0.5 * (value + sign)
    got = -float(potential(jnp.asarray(z), data["statement"]))
    assert got == pytest.approx(expected, rel=1e-8)
