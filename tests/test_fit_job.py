"""End to end: 'il6rcc fit' on the tiny fixture job (closed-form model, synthetic rows).

Budget: 2 chains x (60 warmup + 80 draws), tree depth <= 6; about 30 s including
compilation on 2 CPU cores.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from il6rcc.jobs.fit import resume_fit, run_fit
from il6rcc.jobs.report import write_report

TINY = Path(__file__).parent / "fixtures" / "tiny_job" / "tiny.yaml"


def _posterior(run: Path) -> dict[str, np.ndarray]:
    tree = xr.open_datatree(run / "posterior.nc", engine="h5netcdf")
    out = {f"posterior/{k}": np.asarray(v) for k, v in tree["posterior"].data_vars.items()}
    out.update({f"stats/{k}": np.asarray(v) for k, v in tree["sample_stats"].data_vars.items()})
    out.update({f"loglik/{k}": np.asarray(v) for k, v in tree["log_likelihood"].data_vars.items()})
    tree.close()
    return out


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny") / "run"
    assert run_fit(TINY, out, quiet=True) == 0
    return out


def test_run_folder_contract(tiny_run):
    for name in (
        "config.yaml",
        "manifest.json",
        "priors.csv",
        "posterior.nc",
        "summary.csv",
        "diagnostics.json",
    ):
        assert (tiny_run / name).is_file(), name
    assert not (tiny_run / "checkpoint.npz").exists()  # removed once the run completes
    assert not list(tiny_run.rglob("*.tmp*"))
    for fig in (
        "ranks.png",
        "trace.png",
        "prior_posterior.png",
        "ppc_values.png",
        "findings.png",
        "energy.png",
    ):
        assert (tiny_run / "figures" / fig).stat().st_size > 1000, fig
    tree = xr.open_datatree(tiny_run / "posterior.nc", engine="h5netcdf")
    for group in (
        "posterior",
        "sample_stats",
        "log_likelihood",
        "observed_data",
        "prior",
        "posterior_predictive",
    ):
        assert group in tree.children, group
    theta = tree["posterior"]["theta"]
    assert theta.shape == (2, 80, 2)
    assert list(np.asarray(theta["parameter"])) == ["a", "k"]
    # one pointwise log-likelihood per data row, finite
    ll = np.asarray(tree["log_likelihood"]["evidence"])
    assert ll.shape == (2, 80, 4) and np.isfinite(ll).all()
    tree.close()
    diag = json.loads((tiny_run / "diagnostics.json").read_text())
    assert set(diag["gates"]) == {
        "max_rhat",
        "min_ess_bulk",
        "min_ess_tail",
        "divergences",
        "min_ebfmi",
    }
    assert diag["passed"] == (not diag["failed_gates"])
    assert diag["prior_draws_checked"] == 20 and diag["prior_draws_with_failed_solves"] == 0
    # the MAP Hessian's stiffest and sloppiest directions, named by coordinate
    directions = diag["map_hessian_directions"]
    assert [d["kind"] for d in directions].count("stiff") >= 1
    named = {n for d in directions for n in d["loadings"]}
    assert {"a", "k"} & named and all(
        n in ("a", "k") or n.startswith(("log sigma[", "blot_scale[")) for n in named
    ), named
    man = json.loads((tiny_run / "manifest.json").read_text())
    assert man["status"] == "complete" and man["exit_status"] == 0
    for key in (
        "config",
        "data",
        "git",
        "packages",
        "device",
        "seeds",
        "solver",
        "started",
        "finished",
        "environment",
    ):
        assert key in man, key
    assert man["seeds"]["inference.seed"] == 7
    assert len(man["config"]["sha256"]) == 64 and man["data"]["files"]


def test_recorded_predictions_equal_the_closed_form(tiny_run):
    """Row tiny-01 (u = 3 vs control at 4 h): at every posterior draw, the recorded
    prediction is the closed-form log fold change log(1 + 3 (1 - exp(-4 k)))."""
    post = _posterior(tiny_run)
    a, k = post["posterior/theta"][..., 0], post["posterior/theta"][..., 1]
    tree = xr.open_datatree(tiny_run / "posterior.nc", engine="h5netcdf")
    predicted = np.asarray(tree["posterior_predictive"]["predicted"])[..., 0]
    tree.close()
    fold = 1 + 3 * (1 - np.exp(-k * 4.0))  # x(4)/x(0) of the closed form, a cancels
    np.testing.assert_allclose(predicted, np.log(fold), rtol=1e-6, atol=1e-7)
    assert np.all(a > 0)


def test_same_seed_gives_identical_posterior_and_hashes(tiny_run, tmp_path):
    again = tmp_path / "again"
    assert run_fit(TINY, again, quiet=True) == 0
    first, second = _posterior(tiny_run), _posterior(again)
    assert first.keys() == second.keys()
    for k in first:
        np.testing.assert_array_equal(first[k], second[k], err_msg=k)
    m1 = json.loads((tiny_run / "manifest.json").read_text())
    m2 = json.loads((again / "manifest.json").read_text())
    assert m1["config"]["sha256"] == m2["config"]["sha256"]
    assert m1["config"]["run_sha256"] == m2["config"]["run_sha256"]
    assert m1["data"]["files"] == m2["data"]["files"]


def test_existing_run_folder_is_not_overwritten(tiny_run):
    from il6rcc.errors import Il6rccError

    with pytest.raises(Il6rccError, match="not empty"):
        run_fit(TINY, tiny_run, quiet=True)


def test_sigkill_during_sampling_then_resume_equals_uninterrupted(tmp_path):
    overrides = ["--samples", "1500"]
    reference = tmp_path / "reference"
    assert run_fit(TINY, reference, {"inference.nuts.num_samples": 1500}, quiet=True) == 0
    killed = tmp_path / "killed"
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.Popen(
        [sys.executable, "-m", "il6rcc.cli", "fit", str(TINY), "--out", str(killed), *overrides],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    checkpoint = killed / "checkpoint.npz"
    done, deadline = 0, time.monotonic() + 600
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if checkpoint.is_file():
                try:
                    with np.load(checkpoint) as f:
                        done = int(f["done"])
                except (OSError, KeyError, ValueError):
                    done = 0  # replaced while reading: try again
                if done >= 60 + 100:  # warmup (60) finished and sampling under way
                    proc.send_signal(signal.SIGKILL)
                    break
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (killed / "posterior.nc").exists()
    man = json.loads((killed / "manifest.json").read_text())
    assert man["status"] == "running"
    assert resume_fit(killed, quiet=True) == 0
    first, second = _posterior(reference), _posterior(killed)
    for k in first:
        np.testing.assert_array_equal(first[k], second[k], err_msg=k)
    assert json.loads((killed / "manifest.json").read_text())["resumed"] == 1


def test_report_is_self_contained(tiny_run):
    path = write_report(tiny_run)
    text = path.read_text()
    assert "max_rhat" in text and ("PASS" in text or "FAIL" in text)
    assert "<img" in text and "src='data:image/png;base64," in text
    assert 'src="http' not in text and 'href="http' not in text


@pytest.mark.slow  # a whole fit on prior mass where solves fail (minutes)
def test_prior_mass_where_solves_fail_still_finishes_and_is_reported(tmp_path):
    """Fault injection: max_steps 16 and a 1.5-decade prior on the decay rate make about
    half of the prior's solves fail (at fast decay rates the solver needs more steps).
    The fit finishes, reports the failed solves and keeps its draws where solves work."""
    out = tmp_path / "faulty"
    overrides = {
        "solver.max_steps": 16,
        "priors.overrides": {"k": {"median": 0.5, "log10_sd": 1.5}},
    }
    assert run_fit(TINY, out, overrides, quiet=True) == 0
    diag = json.loads((out / "diagnostics.json").read_text())
    assert diag["prior_draws_checked"] == 20
    assert 5 <= diag["prior_draws_with_failed_solves"] < 20
    assert diag["failed_solves_in_draws"] == 0
    assert (out / "posterior.nc").is_file() and (out / "figures" / "ranks.png").is_file()


MAP_JOB = {"inference.method": "map", "inference.map.num_draws": 40}


def _killed_after_starts(reference: Path, killed: Path, n_done: int) -> None:
    """The folder of a run killed during its MAP after ``n_done`` starts: what the run had
    written by then (config, priors, a 'running' manifest, the finished starts)."""
    import shutil

    import pandas as pd

    killed.mkdir()
    for name in ("config.yaml", "priors.csv"):
        shutil.copy(reference / name, killed / name)
    man = json.loads((reference / "manifest.json").read_text())
    man["status"] = "running"
    (killed / "manifest.json").write_text(json.dumps(man))
    table = pd.read_csv(reference / "map.csv")
    table.iloc[:n_done].to_csv(killed / "map.csv", index=False)


@pytest.fixture(scope="module")
def map_reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("map") / "reference"
    assert run_fit(TINY, out, MAP_JOB, quiet=True) == 0
    return out


def test_run_killed_during_the_map_resumes_after_its_last_finished_start(
    map_reference, tmp_path, capsys
):
    """Each MAP start is written to map.csv when it finishes; --resume minimises only the
    remaining starts and ends with the MAP, draws and gates of an uninterrupted run."""
    import pandas as pd

    reference = map_reference
    killed = tmp_path / "killed"
    _killed_after_starts(reference, killed, 2)
    capsys.readouterr()
    assert resume_fit(killed, quiet=False) == 0
    assert "resuming after start 2 of 4" in capsys.readouterr().err
    first, second = pd.read_csv(reference / "map.csv"), pd.read_csv(killed / "map.csv")
    assert len(second) == 4
    pd.testing.assert_frame_equal(first.drop(columns="seconds"), second.drop(columns="seconds"))
    np.testing.assert_array_equal(first["seconds"][:2], second["seconds"][:2])  # read, not rerun
    a, b = _posterior(reference), _posterior(killed)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    gates = [json.loads((r / "diagnostics.json").read_text())["gates"] for r in (reference, killed)]
    assert gates[0] == gates[1]


def test_resume_refuses_a_map_table_of_another_posterior(map_reference, tmp_path):
    from il6rcc.errors import Il6rccError

    killed = tmp_path / "killed"
    _killed_after_starts(map_reference, killed, 2)
    table = (killed / "map.csv").read_text().replace(",a,", ",alpha,", 1)
    (killed / "map.csv").write_text(table)
    with pytest.raises(Il6rccError, match=r"map.csv: not the MAP starts.*missing \['a'\]"):
        resume_fit(killed, quiet=True)
