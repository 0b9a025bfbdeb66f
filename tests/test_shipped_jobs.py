"""Smoke budgets of the shipped fit configs, end to end through 'il6rcc fit'.

The budget (SVI, 2 steps, 4 draws, 4 prior draws) checks that a config runs through
every stage and writes a complete run folder, not the statistics. All of them run with
`-m slow` (`make test-slow`): the default job takes 8-10 minutes on 2 CPU cores when
the compiled programs are not cached yet, mostly compiling the gradient of the log
density over the whole evidence; the other shipped configs share that compiled program
(same shapes). The default suite checks the shipped configs' validation
(tests/test_configs.py) and the CLI's refusal of a bad override below.
"""

import json

import pytest
import xarray as xr

from il6rcc.cli import main
from il6rcc.configs import SHIPPED

SMOKE = [
    "--method",
    "svi",
    "--seed",
    "1",
]
OVERRIDES = {
    "inference.svi.steps": 2,
    "inference.svi.num_samples": 4,
    "inference.prior_draws": 4,
}


def _smoke(config, out):
    from il6rcc.jobs.fit import run_fit

    assert run_fit(config, out, {"inference.method": "svi", **OVERRIDES}, quiet=True) == 0
    for name in (
        "posterior.nc",
        "summary.csv",
        "diagnostics.json",
        "manifest.json",
        "figures/prior_posterior.png",
        "figures/findings.png",
    ):
        assert (out / name).is_file(), name
    tree = xr.open_datatree(out / "posterior.nc", engine="h5netcdf")
    assert tree["posterior"]["theta"].sizes["draw"] == 4
    assert tree["log_likelihood"]["evidence"].sizes["row"] > 100  # the shipped evidence
    tree.close()
    man = json.loads((out / "manifest.json").read_text())
    assert man["status"] == "complete"
    assert man["config"]["overrides"]["inference.method"] == "svi"


# compiles the log density of the whole evidence (8-10 min on 2 cores from an empty
# compile cache): with `make test-slow`, like the other shipped configs
@pytest.mark.slow
def test_default_job_smoke(tmp_path):
    _smoke(SHIPPED / "default.yaml", tmp_path / "default")


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["full.yaml"] + sorted(p.name for p in (SHIPPED / "variants").glob("*.yaml"))
)
def test_other_shipped_jobs_smoke(name, tmp_path):
    path = SHIPPED / name if (SHIPPED / name).is_file() else SHIPPED / "variants" / name
    _smoke(path, tmp_path / "run")


def test_cli_fit_with_overrides_reports_bad_override(tmp_path, capsys):
    status = main(
        [
            "fit",
            str(SHIPPED / "default.yaml"),
            "--out",
            str(tmp_path / "r"),
            "--samples",
            "0",
            *SMOKE,
        ]
    )
    assert status == 2
    assert "num_samples" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
