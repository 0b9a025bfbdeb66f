"""``il6rcc sweep`` with the local executor, on the tiny job (closed-form model).

tests/fixtures/sweep_job/local.yaml: three tiny fits (seeds 1-3, MAP + 100 Laplace
draws each) and one element whose user model raises at run time, two at a time. About
a minute on 2 CPU cores, most of it the four processes' imports and compilation.
"""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

from il6rcc.cli import main
from il6rcc.configs import load_sweep_config
from il6rcc.errors import ConfigError
from il6rcc.jobs.sweep import plan_sweep, run_sweep

FIX = Path(__file__).parent / "fixtures" / "sweep_job"
OK = ["seed=1__model=ok", "seed=2__model=ok", "seed=3__model=ok"]
BROKEN = "seed=4__model=broken"


def _rows(out: Path) -> dict[str, dict]:
    with (out / "sweep.csv").open() as fh:
        return {r["element"]: r for r in csv.DictReader(fh)}


def _draws(run: Path) -> np.ndarray:
    tree = xr.open_datatree(run / "posterior.nc", engine="h5netcdf")
    theta = np.asarray(tree["posterior"]["theta"])
    tree.close()
    return theta


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "out"
    code = main(["sweep", str(FIX / "local.yaml"), "--out", str(out), "--jobs", "2", "--quiet"])
    return out, code, _rows(out)


def test_each_element_is_a_run_folder_indexed_in_sweep_csv(swept):
    out, code, rows = swept
    assert code == 1  # one element failed: the sweep says so, after finishing the others
    assert list(rows) == [*OK, BROKEN]  # the plan's order
    for seed, name in enumerate(OK, start=1):
        row = rows[name]
        assert row["status"] == "complete" and row["action"] == "started", row
        assert row["seed"] == str(seed) and row["model"] == "ok"
        assert row["attempts"] == "1" and float(row["wall_seconds"]) > 0
        assert row["gates"] == "passed" or row["gates"].startswith("failed: "), row
        assert row["error"] == "" and row["run_dir"] == name
        run = out / name
        man = json.loads((run / "manifest.json").read_text())
        assert man["status"] == "complete" and man["seeds"]["inference.seed"] == seed
        diag = json.loads((run / "diagnostics.json").read_text())
        assert row["gates"] == ("passed" if diag["passed"] else row["gates"])
        assert _draws(run).shape == (1, 100, 2)
        cfg = yaml.safe_load((run / "config.yaml").read_text())
        assert cfg["inference"]["method"] == "map" and cfg["inference"]["map"]["num_draws"] == 100
        # paths are absolute: the run folder is self-contained
        assert all(Path(t).is_absolute() for t in cfg["data"]["tables"])
    # different seeds, different draws
    assert not np.array_equal(_draws(out / OK[0]), _draws(out / OK[1]))
    assert not list(out.rglob("*.tmp"))


def test_a_failing_element_is_recorded_with_its_error(swept):
    out, _, rows = swept
    row = rows[BROKEN]
    assert row["status"] == "failed" and row["attempts"] == "1", row
    assert "deliberately broken model" in row["error"], row["error"]
    assert row["gates"] == ""
    log = (out / row["log"]).read_text()
    assert "RuntimeError: deliberately broken model" in log  # the traceback is kept
    state = json.loads((out / "_sweep" / "state" / f"{BROKEN}.json").read_text())
    assert state["attempts"][0]["exit_code"] not in (0, None)


def test_rerun_skips_complete_elements_and_retries_the_failed_one(swept):
    out, _, _ = swept
    before = {n: (out / n / "posterior.nc").stat().st_mtime_ns for n in OK}
    assert run_sweep(FIX / "local.yaml", out, jobs=2, quiet=True) == 1
    rows = _rows(out)
    for name in OK:
        assert rows[name]["action"] == "skipped" and rows[name]["status"] == "complete"
        assert rows[name]["attempts"] == "1"
        assert (out / name / "posterior.nc").stat().st_mtime_ns == before[name]
    # its run folder was left unfinished: the retry continues it with --resume
    assert rows[BROKEN]["action"] == "resumed" and rows[BROKEN]["attempts"] == "2"
    assert rows[BROKEN]["status"] == "failed"


def test_a_changed_sweep_is_refused_for_elements_already_run(swept, tmp_path):
    out, _, _ = swept
    changed = yaml.safe_load((FIX / "local.yaml").read_text())
    changed["base"] = str(FIX.parent / "tiny_job" / "tiny.yaml")
    changed["set"]["inference.map.num_draws"] = 120
    for axis in changed["axes"]:
        if axis["key"] == "model.name":
            axis["values"][-1] = str(FIX / "broken_model.py") + ":BrokenGene"
    path = tmp_path / "changed.yaml"
    path.write_text(yaml.safe_dump(changed))
    with pytest.raises(ConfigError, match="different config") as err:
        run_sweep(path, out, quiet=True)
    for name in [*OK, BROKEN]:
        assert name in str(err.value)


def test_sweep_file_errors_are_all_reported_with_file_key_and_value(tmp_path, capsys):
    bad = {
        "base": str(FIX.parent / "tiny_job" / "tiny.yaml"),
        "axes": [
            {"key": "inference.sed", "values": [1]},
            {"key": "inference.seed", "values": [1, 2], "names": ["a"]},
        ],
        "combine": "cross",
        "executor": {"kind": "pbs", "slurm": {"partitions": "gpu"}},
    }
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err
    for expected in (
        "unknown key 'sed' at inference",  # with the valid keys at that level
        "checkpoint_every",
        "names has 1 entries for 2 values",
        "key combine",
        "'product' or 'zip'",
        "key executor.kind",
        "key executor.slurm.partitions: unknown key",
    ):
        assert expected in err, (expected, err)
    assert not out.exists()  # nothing half-written


def test_element_values_are_validated_as_job_configs_before_anything_runs(tmp_path):
    bad = {
        "base": str(FIX.parent / "tiny_job" / "tiny.yaml"),
        "axes": [
            {"key": "inference.method", "values": ["map", "hmc"]},
            {"key": "priors.estimate", "values": [["a", "k"], ["a", "kk"]], "label": "est"},
        ],
    }
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(ConfigError) as err:
        run_sweep(path, tmp_path / "out", quiet=True)
    text = str(err.value)
    assert "element method=hmc__est=a-k: " in text and "key inference.method" in text
    assert "unknown parameter 'kk'" in text
    assert not (tmp_path / "out").exists()


def test_element_names_come_from_axis_values(tmp_path):
    sweep = {
        "base": str(FIX.parent / "tiny_job" / "tiny.yaml"),
        "axes": [
            {"key": "priors.width_factor", "values": [0.5, 2.0], "label": "width"},
            {"key": "inference.seed", "values": [0, 1]},
        ],
    }
    path = tmp_path / "names.yaml"
    path.write_text(yaml.safe_dump(sweep))
    plan = plan_sweep(path)
    assert [e.name for e in plan.elements] == [
        "width=0.5__seed=0",
        "width=0.5__seed=1",
        "width=2__seed=0",
        "width=2__seed=1",
    ]
    assert plan.elements[1].overrides == {"priors.width_factor": 0.5, "inference.seed": 1}
    assert load_sweep_config(path).executor.kind == "local"
    shutil.rmtree(tmp_path / "none", ignore_errors=True)


def test_a_key_added_with_its_default_since_an_element_ran_is_not_a_change():
    """A run folder written before il6rcc gained a config key (here ``cpu_devices``,
    default null) is still the same element; a changed value is not."""
    from il6rcc.jobs.sweep._plan import same_config, validate

    new = validate(plan_sweep(FIX / "local.yaml"))[OK[0]]
    as_written = yaml.safe_load(new)
    assert "cpu_devices" in as_written
    del as_written["cpu_devices"]
    old = yaml.safe_dump(as_written, sort_keys=True)
    assert old != new and same_config(old, new)
    as_written["inference"]["seed"] = as_written["inference"]["seed"] + 1
    assert not same_config(yaml.safe_dump(as_written, sort_keys=True), new)
    assert not same_config("kind: profile\nparameter: k_a\n", new)
