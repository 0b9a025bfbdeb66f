"""Recovery studies: the evidence design measured quantitatively at known parameters.

Fast tests use the closed-form tiny problem (tests/_tiny.py). The slow test fits the
circuit to the quantitative twin of the shipped evidence design (``configs/default.yaml``:
159 rows -> 241 contrasts over 71 conditions) and checks that every identifiable
parameter's truth lies inside its 90 % interval.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _tiny import TIMES, closed_form, tiny_arrays
from scipy.stats import norm

from il6rcc.errors import Il6rccError
from il6rcc.inference import (
    EvidencePosterior,
    MapSettings,
    build_priors,
    laplace_approximation,
    make_evidence_problem,
    map_multistart,
    simulated_evidence,
    standardised_quantities,
    truth_point,
)
from il6rcc.models import SolverSettings

TIGHT = SolverSettings(rtol=1e-10, atol=1e-12)
Z_TRUE = np.array([0.8, -0.6])


def _tiny_problem():
    model, arrays = tiny_arrays()
    return make_evidence_problem(model, TIGHT, arrays, build_priors(model, ["a", "k"]))


def _truth_contrasts(problem):
    a, k = np.exp(problem.parameterisation.loc + problem.parameterisation.sd * Z_TRUE)
    x = {u: closed_form(a, k, u, TIMES) for u in (0.0, 1.0, 3.0, 0.05)}
    # rows of _tiny: u3 vs ctrl at 4 h; u1 vs ctrl at 1 h; u1 vs ctrl at {1, 4} h with
    # equal weights (the weighted median candidate is 1 h); u0.05 vs ctrl at 1 h
    return np.log(
        [
            x[3.0][1] / x[0.0][1],
            x[1.0][0] / x[0.0][0],
            x[1.0][0] / x[0.0][0],
            x[0.05][0] / x[0.0][0],
        ]
    )


def test_twin_values_are_the_closed_form_contrasts_at_the_truth():
    problem = _tiny_problem()
    twin = simulated_evidence(problem, truth_point(problem, Z_TRUE), log_sd=0.1)
    a = twin.arrays
    assert a.row_ids == ("value", "sign", "sign_unknown_time", "ns")
    assert set(a.row_kind) == {0} and np.all(a.unit_direction == 0)
    # atol: the basal state comes from pre-equilibration (steady-state tolerance ~1e-8)
    np.testing.assert_allclose(a.row_value, _truth_contrasts(problem), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(a.row_log_sd, 0.1)
    np.testing.assert_array_equal(TIMES[a.row_time_index[:, 0]], [4.0, 1.0, 1.0, 1.0])
    # the latest candidate when asked for the upper end of the weights
    late = simulated_evidence(problem, truth_point(problem, Z_TRUE), 0.1, time_quantile=1.0)
    assert TIMES[late.arrays.row_time_index[2, 0]] == 4.0


def test_twin_noise_is_seeded_and_scaled():
    problem = _tiny_problem()
    point = truth_point(problem, Z_TRUE)
    clean = simulated_evidence(problem, point, log_sd=0.2).arrays.row_value
    noisy = simulated_evidence(problem, point, log_sd=0.2, noise_seed=7).arrays.row_value
    again = simulated_evidence(problem, point, log_sd=0.2, noise_seed=7).arrays.row_value
    np.testing.assert_array_equal(noisy, again)
    expected = 0.2 * np.random.default_rng(7).normal(size=4)
    np.testing.assert_allclose(noisy - clean, expected, rtol=1e-10, atol=1e-14)


def test_twin_log_density_is_prior_plus_gaussian_rows():
    problem = _tiny_problem()
    twin = simulated_evidence(problem, truth_point(problem, Z_TRUE), log_sd=0.1)
    posterior = EvidencePosterior(twin)
    data = jax.tree.map(jnp.asarray, posterior.data)
    x_true = truth_point(twin, Z_TRUE)
    np.testing.assert_array_equal(x_true, Z_TRUE)  # only z: no hierarchy, doses or noise
    # at the truth every row sits at its mean: log N(0; 0, 0.1) per row
    expected = norm.logpdf(Z_TRUE).sum() + 4 * norm.logpdf(0.0, scale=0.1)
    np.testing.assert_allclose(
        float(posterior.log_density(jnp.asarray(x_true), data)), expected, rtol=1e-9
    )


def test_tiny_recovery_finds_k_and_leaves_a_at_its_prior():
    """Identifiable: k (the 1 h rows see the approach to steady state, the 4 h row its
    level). Not identifiable: a, exactly, because every row is a fold change and x is
    proportional to a, so a's posterior is its prior (Hessian entry 1 in standardised
    coordinates). With noise-free rows of SD 0.05, k's Laplace interval is far narrower
    than its prior, contains the truth and excludes the prior median."""
    problem = _tiny_problem()
    twin = simulated_evidence(problem, truth_point(problem, Z_TRUE), log_sd=0.05)
    posterior = EvidencePosterior(twin)
    res = map_multistart(posterior, jax.random.PRNGKey(1), MapSettings(n_starts=2))
    sd = np.sqrt(np.diag(np.linalg.inv(laplace_approximation(posterior, res.x).hessian)))
    assert sd[1] < 0.1, sd
    assert abs(res.x[1] - Z_TRUE[1]) < 1.645 * sd[1], (res.x, sd)
    assert abs(res.x[1]) > 1.645 * sd[1]  # the fit moved away from the prior median
    # a: the prior alone (mode 0, SD 1)
    np.testing.assert_allclose([res.x[0], sd[0]], [0.0, 1.0], atol=1e-3)


def test_a_truth_whose_solves_fail_is_refused():
    problem = _tiny_problem()
    solver = SolverSettings(rtol=1e-10, atol=1e-12, max_steps=2)
    bad = make_evidence_problem(problem.model, solver, problem.arrays, problem.parameterisation)
    with pytest.raises(Il6rccError, match="condition solves failed"):
        simulated_evidence(bad, truth_point(bad, Z_TRUE))


def test_standardised_quantities_of_the_hierarchy():
    problem = _tiny_problem()
    q = standardised_quantities(problem, np.array([[0.5, -0.5]]))
    np.testing.assert_array_equal(q["shared"], [[0.5, -0.5]])
    assert "cell" not in q


# ---------------------------------------------------------------- the circuit (slow)
#
# The truth: the default job's fit to the published evidence (MAP + Laplace medians of
# 'il6rcc fit configs/default.yaml'), rounded, in standardised coordinates (prior SDs
# from the prior median). A realistic point: the circuit there reproduces most findings,
# and it is away from the prior median in several directions.
TRUTH_SHARED = {
    "il6_tx_basal": 0.08,
    "w_stat1_il6": 0.01,
    "w_stat3_il6": -0.68,
    "w_nfkb_il6": -0.24,
    "socs3_tx_basal": -0.49,
    "w_stat3_socs3": 0.27,
    "socs3_k_ifnar": -1.35,
    "socs3_k_il6r": 1.67,
    "k_socs3_mrna_deg": 0.29,
    "k_socs3_deg": -0.14,
    "il6_ec50": 1.1,
    "mil6r": 0.09,
    "sil6r": 0.2,
    "w_il6r_akt": 0.33,
    "w_tki_nfkb": -0.07,
    "tki_emax_pazopanib": 0.04,
    "mtorc1_block_pazopanib": 0.0,
    "w_stat1_growth": 0.36,
    "w_akt_growth": 0.4,
    "w_stat3_growth": -0.16,
    "w_vessel_growth": -1.39,
    "kd_socs3": 0.22,
}
TRUTH_TAU = [1.884, 1.11, 0.899]  # il6_tx_basal, w_stat1_il6, socs3_tx_basal
# cell-line coordinates (u_c - loc) / sd in the order of the problem's cell lines
TRUTH_CELL = {
    "786-O": [-2.22, 0.29, 0.06],
    "ACHN": [-1.4, -0.52, -0.98],
    "786-O-SunR": [-0.41, -0.14, -0.51],
    "Caki-1-SunR": [1.99, -0.15, -0.47],
    "Caki-1": [0.03, -0.02, -0.52],
    "Caki-2-SunR": [2.42, -0.02, -0.58],
    "Caki-2": [-0.43, -0.03, -0.38],
    "SN12K1-SunR": [2.69, -0.15, -0.62],
    "SN12K1": [-0.45, 0.11, -0.42],
    "RCC": [-0.6, 0.02, -0.65],
    "TUHR3TKB": [-0.17, -0.05, -0.44],
    "TUHR4TKB": [-0.48, 0.01, -0.5],
}
TRUTH_DOSE = {"ishibashi2017.tocilizumab": 0.99, "ishibashi2017.sorafenib.invivo": -0.57}
TRUTH_DOSE.update({"ishibashi2017.tocilizumab.invivo": -0.71, "pmid15252833.il6": -0.34})
# The design identifies these (Laplace SD below 0.3 prior SDs in the reference run): the
# IFN-alpha -> SOCS3 and TKI -> NF-kB -> IL-6 arms and the growth weights.
CORE_IDENTIFIED = (
    "w_stat3_socs3",
    "socs3_k_ifnar",
    "w_il6r_akt",
    "w_tki_nfkb",
    "tki_emax_pazopanib",
    "w_stat1_growth",
    "w_akt_growth",
)


def _circuit_truth(problem):
    """The truth's parts (z, tau, z_cell, z_dose) in standardised coordinates."""
    pri = problem.parameterisation
    z = np.array([TRUTH_SHARED[n] for n in pri.names])
    hier = np.flatnonzero(pri.hierarchical)
    tau = np.array(TRUTH_TAU)
    cell = np.array([TRUTH_CELL[line] for line in problem.row_names])
    z_cell = (cell - z[hier]) * np.asarray(pri.sd)[hier] / tau
    z_dose = np.array([TRUTH_DOSE.get(n, 0.0) for n in problem.arrays.nuisance_names])
    return {"z": z, "tau": tau, "z_cell": z_cell, "z_dose": z_dose}


@pytest.mark.slow
def test_circuit_recovery_over_the_evidence_design():
    """The default job's problem (22 shared parameters, 3 cell-line-specific ones over 12
    lines, 20 unknown doses: 81 coordinates) fitted to the quantitative twin of the
    shipped evidence: 241 contrasts (every fold change, cross-line difference,
    interaction and adjacent-tier rank contrast the 159 rows compare) simulated at the
    truth above, noise-free, with a stated log-scale SD of 0.3 (a typical qPCR / western
    replicate SD). MAP from the prior median, then the Laplace approximation (4000
    Gaussian draws).

    Identifiable means a Laplace SD below 0.5 prior SDs (the data at least quadruple the
    precision). In the reference run (on the earlier 358-contrast twin, whose extra
    contrasts were rank pairs of non-adjacent tiers, sums of the adjacent ones; not yet
    re-run on 241; 7 min on 2 CPU cores, MAP converged in 169
    iterations, Hessian condition number 3.8e3) 18 quantities were: 11 of the 22 shared
    parameters (w_stat1_il6, w_nfkb_il6, w_stat3_socs3, socs3_k_ifnar, w_il6r_akt,
    w_tki_nfkb, tki_emax_pazopanib, w_stat1_growth, w_akt_growth, w_vessel_growth,
    kd_socs3), w_stat1_il6 in the five lines of the panel (786-O, ACHN, Caki-1,
    TUHR3TKB, TUHR4TKB) and the in-vivo sorafenib and tocilizumab exposures of
    ishibashi2017. All 18 truths were inside their 90 % intervals, as were the other 60.
    Not identifiable, and why:

    * basal transcription (il6_tx_basal, socs3_tx_basal) and the receptor and
      sensitivity constants of the IL-6 branch (socs3_k_il6r, il6_ec50, mil6r, sil6r):
      every row is a contrast (a ratio or a difference of log levels), so a level cancels,
      and along the IL-6 -> receptor -> STAT3 -> SOCS3 path the rows see only the
      product of sensitivities, not each factor;
    * SOCS3 turnover (k_socs3_mrna_deg, k_socs3_deg): the rows are read at one time
      each, which fixes a combination of rate and amplitude;
    * mtorc1_block_pazopanib and w_stat3_growth: no row separates them from the
      pazopanib and growth weights already fitted;
    * most unknown in-vitro doses: each enters one or two rows, confounded with the
      potency it multiplies; and the cell-line deviations of lines with one or two rows.

    Their intervals stay near the prior and are not tested beyond containing the truth.
    """
    from il6rcc.configs import SHIPPED, load_config
    from il6rcc.inference import sample_gaussian
    from il6rcc.jobs import evidence_problem

    problem, _ = evidence_problem(load_config(SHIPPED / "default.yaml"))
    truth = _circuit_truth(problem)
    twin = simulated_evidence(problem, truth_point(problem, **truth), log_sd=0.3)
    assert twin.arrays.n_rows == 241
    posterior = EvidencePosterior(twin)
    res = map_multistart(posterior, jax.random.PRNGKey(0), MapSettings(n_starts=1, max_steps=250))
    # the optimiser must reach the truth's posterior density at least
    x_true = truth_point(twin, **truth)
    assert x_true.shape == (posterior.dim,)
    v_true = -posterior.compiled.log_density(x_true, posterior.data)
    assert res.value <= v_true + 1e-6, (res.value, v_true)

    lap = laplace_approximation(posterior, res.x)
    flat, _ = sample_gaussian(jax.random.PRNGKey(0), res.x, lap.covariance, 4000)
    q = standardised_quantities(twin, flat)
    truth = standardised_quantities(twin, x_true)
    pri = twin.parameterisation
    names = {
        "shared": list(pri.names),
        "cell": [
            f"{line}:{pri.names[h]}"
            for line in twin.row_names
            for h in np.flatnonzero(pri.hierarchical)
        ],
        "dose": list(twin.arrays.nuisance_names),
    }
    identified, missed, moved, table = [], [], [], []
    for key, labels in names.items():
        d = q[key].reshape(len(flat), -1)
        t = np.ravel(truth[key])
        lo, hi = np.percentile(d, [5, 95], axis=0)
        sd = d.std(axis=0)
        for i, label in enumerate(labels):
            table.append(
                f"{label:40s} truth {t[i]:6.2f} sd {sd[i]:5.2f} [{lo[i]:6.2f}, {hi[i]:6.2f}]"
            )
            if sd[i] < 0.5:
                identified.append(label)
                if not lo[i] < t[i] < hi[i]:
                    missed.append(table[-1])
                if not lo[i] < 0.0 < hi[i]:
                    moved.append(label)
    print("\n".join(table))
    assert not missed, (
        "identifiable parameters whose truth is outside the 90 % interval:\n" + "\n".join(missed)
    )
    assert set(CORE_IDENTIFIED) <= set(identified), sorted(set(CORE_IDENTIFIED) - set(identified))
    assert len(identified) >= 15, identified
    # not vacuous: the fit moved well away from the prior median where the truth is
    for label in (
        "socs3_k_ifnar",
        "w_vessel_growth",
        "w_stat1_growth",
        "ishibashi2017.sorafenib.invivo",
    ):
        assert label in moved, (label, moved)
