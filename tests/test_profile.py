"""Profile likelihoods (``il6rcc profile``) on a linear-Gaussian PEtab problem
(tests/fixtures/petab_linear): x_obs = a t + b, whose profile likelihood of ``a`` is a
closed-form quadratic, and y_obs = c d t, where only the product c d is identified (c
is practically non-identifiable on both sides). One profile run serves the tests."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from il6rcc.cli import main
from il6rcc.errors import Il6rccError
from il6rcc.inference import PROFILE_THRESHOLD
from il6rcc.jobs.profile import run_profile, write_profiles
from il6rcc.petab_io import PetabPosterior, load_problem

FIXTURE = Path(__file__).parent / "fixtures" / "petab_linear"
SIGMA = 0.2


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
    posterior = PetabPosterior(load_problem(FIXTURE / "linear.yaml"))
    start = posterior.z_of(np.array([1.5, 0.7, 0.0, 0.0]))
    out = tmp_path_factory.mktemp("profile") / "profiles"
    profiles = write_profiles(posterior, start, ["a", "c"], out, quiet=True)
    return out, {(p.name, p.kind): p for p in profiles}


def closed_form_nll(a):
    """min over b and the product c d of the Gaussian -log likelihood, given a."""
    m = pd.read_csv(FIXTURE / "measurements.tsv", sep="\t")
    x, y = m[m.observableId == "x_obs"], m[m.observableId == "y_obs"]
    tx, yx = x.time.to_numpy(), x.measurement.to_numpy()
    ty, yy = y.time.to_numpy(), y.measurement.to_numpy()
    rss_y = yy @ yy - (yy @ ty) ** 2 / (ty @ ty)
    r = yx[None, :] - np.asarray(a)[:, None] * tx[None, :]
    rss_x = ((r - r.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    n = len(m)
    return 0.5 * n * np.log(2 * np.pi * SIGMA**2) + (rss_x + rss_y) / (2 * SIGMA**2)


def test_linear_gaussian_profile_matches_closed_form(profiled):
    out, _ = profiled
    table = pd.read_csv(out / "profiles.csv")
    rows = table[(table.parameter == "a") & (table.profile == "likelihood")]
    assert len(rows) >= 5 and (rows.status != "failed").all()
    assert (rows.natural_name == "theta[a]").all()
    np.testing.assert_allclose(
        rows.neg_log_likelihood, closed_form_nll(rows.natural.to_numpy()), rtol=1e-3
    )
    # the rise above the minimum too (absolute: it is zero at the optimum)
    expected = closed_form_nll(rows.natural.to_numpy())
    grid = np.linspace(rows.natural.min(), rows.natural.max(), 2001)
    np.testing.assert_allclose(rows.delta, expected - closed_form_nll(grid).min(), atol=1e-3)
    assert rows.delta.max() >= PROFILE_THRESHOLD  # the walk reached the threshold on both sides


def test_interval_and_identifiability_summary(profiled):
    out, profiles = profiled
    lik = profiles[("a", "likelihood")]
    assert lik.identifiable
    # closed form: a_hat +- sqrt(chi2(1, .95) sigma^2 / Sxx) on the natural scale
    m = pd.read_csv(FIXTURE / "measurements.tsv", sep="\t")
    x = m[m.observableId == "x_obs"]
    t, y = x.time.to_numpy(), x.measurement.to_numpy()
    sxx = ((t - t.mean()) ** 2).sum()
    a_hat = ((t - t.mean()) @ y) / sxx
    half = np.sqrt(2 * PROFILE_THRESHOLD * SIGMA**2 / sxx)
    summary = (out / "profiles.md").read_text()
    row = next(line for line in summary.splitlines() if line.startswith("| a | likelihood"))
    lower, upper = (float(v) for v in row.split("|")[4:6])
    np.testing.assert_allclose([lower, upper], [a_hat - half, a_hat + half], rtol=1e-3)
    # c: only c d is identified: open on both sides within the prior's range
    c = profiles[("c", "likelihood")]
    assert c.lower.open and c.upper.open
    assert c.lower.end == c.upper.end == "prior range"
    assert np.ptp(c.objective) < 1e-3  # flat
    tail = summary.split("## Practically non-identifiable")[1]
    assert "c (lower and upper sides)" in tail and "a (" not in tail
    assert {p.name for p in (out / "figures").iterdir()} == {"profile_a.png", "profile_c.png"}


def _run_folder(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    (run / "manifest.json").write_text('{"status": "complete", "kind": "petab"}\n')
    (run / "config.yaml").write_text(f"name: linear\nmodel:\n  petab: {FIXTURE / 'linear.yaml'}\n")
    return run


def test_bad_input_names_received_and_valid(tmp_path, capsys):
    run = _run_folder(tmp_path)
    out = tmp_path / "out"
    with pytest.raises(Il6rccError, match=r"unknown parameter\(s\) 'k', 'zz'; valid: a, b, c, d"):
        run_profile(run, ["a", "k", "zz"], out)
    missing = tmp_path / "no_such_run"
    with pytest.raises(Il6rccError, match=r"no_such_run does not exist; expected the --out"):
        run_profile(missing, ["a"], out)
    assert main(["profile", str(run), "--parameters", "k", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "unknown parameter(s) 'k'" in err and "valid: a, b, c, d" in err
    assert not out.exists()  # nothing written


@pytest.mark.slow
def test_cli_on_a_fitted_run_folder(tmp_path):
    """'il6rcc petab fit --method map', then 'il6rcc profile' from its map.csv."""
    run, out = tmp_path / "run", tmp_path / "profiles"
    fit = ["petab", "fit", str(FIXTURE / "linear.yaml"), "--out", str(run), "--method", "map"]
    assert main([*fit, "--quiet"]) == 0
    assert main(["profile", str(run), "--parameters", "b", "d", "--out", str(out)]) == 0
    table = pd.read_csv(out / "profiles.csv")
    assert set(table.parameter) == {"b", "d"} and set(table.profile) == {
        "likelihood",
        "posterior",
    }
    tail = (out / "profiles.md").read_text().split("## Practically non-identifiable")[1]
    assert "d (lower and upper sides)" in tail and "b (" not in tail


@pytest.mark.slow
def test_boehm_known_non_identifiabilities(tmp_path):
    """Boehm et al. 2014 (doi:10.1021/pr5006923), from the benchmark's reference optimum
    (the parameter table's nominal values): k_exp_hetero sits at its lower bound
    (1.0007e-5, bound 1e-5) and k_imp_homo near its upper bound (9.77e4, bound 1e5), so
    their likelihood profiles cannot cross the threshold on that side: practically
    non-identifiable; the noise SD of pSTAT5A (16 measurements) is identified."""
    from il6rcc.petab_io import problem_path

    posterior = PetabPosterior(load_problem(problem_path("Boehm_JProteomeRes2014")))
    start = posterior.z_of(posterior.problem.parameters.nominal_theta)
    names = ["k_exp_hetero", "k_imp_homo", "sd_pSTAT5A_rel"]
    out = tmp_path / "profiles"
    profiles = write_profiles(posterior, start, names, out, quiet=True)
    lik = {p.name: p for p in profiles if p.kind == "likelihood"}
    assert lik["k_exp_hetero"].lower.open
    assert lik["k_imp_homo"].upper.open
    assert lik["sd_pSTAT5A_rel"].identifiable
    tail = (out / "profiles.md").read_text().split("## Practically non-identifiable")[1]
    assert "k_exp_hetero" in tail and "k_imp_homo" in tail and "sd_pSTAT5A_rel" not in tail
