"""Profile sweeps: each parameter's profile likelihood one sweep element (its own
process), merged into the same profiles.csv / profiles.md as one ``il6rcc profile``
process. On the linear-Gaussian PEtab fixture (tests/fixtures/petab_linear), from a run
folder whose map.csv holds the start test_profile.py uses (a real MAP fit of it takes
a minute and a half here). Three element processes (a, c and an unknown name), two at
a time, then a rerun that skips them; a coarse grid keeps each profile to a few points.
Still 136 s of CPU (each process compiles the posterior; 3.7 min on a shared 2-core
machine), so those tests run with -m slow; the config validation runs by default.
"""

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from il6rcc.cli import main
from il6rcc.petab_io import PetabPosterior, load_problem

FIXTURE = Path(__file__).parent / "fixtures" / "petab_linear"
ELEMENTS = ["parameter=a", "parameter=c", "parameter=zz"]
#: a coarse grid and few points: the test is about the sweep, not the walk
OPTIONS = ["--grid", "5", "--max-points", "3"]


def _rows(out: Path) -> dict[str, dict]:
    with (out / "sweep.csv").open() as fh:
        return {r["element"]: r for r in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A run folder of the linear problem whose best MAP optimum is the start."""
    posterior = PetabPosterior(load_problem(FIXTURE / "linear.yaml"))
    start = posterior.z_of(np.array([1.5, 0.7, 0.0, 0.0]))
    run = tmp_path_factory.mktemp("profile_sweep") / "run"
    run.mkdir()
    (run / "manifest.json").write_text('{"status": "complete", "kind": "petab"}\n')
    (run / "config.yaml").write_text(f"name: linear\nmodel:\n  petab: {FIXTURE / 'linear.yaml'}\n")
    table = pd.DataFrame([start], columns=list(posterior.coordinate_names))
    table["neg_log_posterior"] = 0.0
    table.to_csv(run / "map.csv", index=False)
    return run


@pytest.fixture(scope="module")
def sequential(run_dir) -> Path:
    """Today's one-process ``il6rcc profile``: the reference."""
    out = run_dir.parent / "sequential"
    cmd = ["profile", str(run_dir), "--parameters", "a", "c", *OPTIONS, "--out", str(out)]
    assert main([*cmd, "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def swept(run_dir):
    """A profile sweep file: a, c and a name the run does not have, two at a time."""
    sweep = {
        "name": "profiles",
        "kind": "profile",
        "run": "run",  # relative to the sweep file
        "axes": [{"parameter": ["a", "c", "zz"]}],
        "profile": {"grid": 5, "max_points": 3},
        "executor": {"jobs": 2},
    }
    path = run_dir.parent / "profiles.yaml"
    path.write_text(yaml.safe_dump(sweep))
    out = run_dir.parent / "swept"
    code = main(["sweep", str(path), "--out", str(out), "--quiet"])
    return out, code


@pytest.mark.slow
def test_each_profile_is_an_element_and_the_merge_equals_one_process(swept, sequential):
    out, code = swept
    assert code == 1  # the unknown name failed; the sweep says so after the others
    rows = _rows(out)
    assert list(rows) == ELEMENTS
    for name, parameter in (("parameter=a", "a"), ("parameter=c", "c")):
        row = rows[name]
        assert row["status"] == "complete" and row["action"] == "started", row
        assert row["parameter"] == parameter and row["attempts"] == "1"
        assert float(row["wall_seconds"]) > 0 and row["error"] == "" and row["run_dir"] == name
        element = out / name
        table = pd.read_csv(element / "profiles.csv")
        assert set(table.parameter) == {parameter}
        assert set(table.profile) == {"likelihood", "posterior"}
        assert {p.name for p in (element / "figures").iterdir()} == {f"profile_{parameter}.png"}
    assert not list(out.glob(".*.tmp")) and not list(out.glob("*/.*.tmp"))
    # the merged table: the same numbers as one process (the profiles are deterministic)
    merged = pd.read_csv(out / "profiles.csv")
    reference = pd.read_csv(sequential / "profiles.csv")
    pd.testing.assert_frame_equal(merged, reference, check_exact=True)
    assert (out / "profiles.csv").read_bytes() == (sequential / "profiles.csv").read_bytes()
    seq_json = json.loads((sequential / "profiles.json").read_text())
    assert json.loads((out / "profiles.json").read_text())["profiles"] == seq_json["profiles"]
    figures = {p.name for p in (out / "figures").iterdir()}
    assert figures == {"profile_a.png", "profile_c.png"}


@pytest.mark.slow
def test_an_unknown_parameter_is_a_recorded_failure(swept, sequential):
    out, _ = swept
    row = _rows(out)["parameter=zz"]
    assert row["status"] == "failed" and row["attempts"] == "1", row
    assert "unknown parameter(s) 'zz'; valid: a, b, c, d" in row["error"], row["error"]
    assert not (out / "parameter=zz").exists()
    summary = (out / "profiles.md").read_text()
    head, _, tail = summary.partition("\n## Not profiled")
    assert "- zz: " in tail and "unknown parameter(s) 'zz'" in tail
    # the rest is the one-process summary, word for word
    assert head == (sequential / "profiles.md").read_text()


@pytest.mark.slow
def test_profile_jobs_continues_the_sweep_and_skips_finished_profiles(swept, sequential, run_dir):
    """``il6rcc profile --jobs 2`` builds the same profile sweep: run over the folder
    of the sweep above, both profiles are finished and skipped; the merge now covers
    exactly a and c, as the one-process run does."""
    out, _ = swept
    before = {n: (out / n / "profiles.csv").stat().st_mtime_ns for n in ELEMENTS[:2]}
    cmd = ["profile", str(run_dir), "--parameters", "a", "c", *OPTIONS, "--jobs", "2"]
    cmd += ["--out", str(out)]
    assert main([*cmd, "--quiet"]) == 0
    rows = _rows(out)
    assert list(rows) == ELEMENTS[:2]
    for name in ELEMENTS[:2]:
        assert rows[name]["action"] == "skipped" and rows[name]["status"] == "complete"
        assert (out / name / "profiles.csv").stat().st_mtime_ns == before[name]
    for file in ("profiles.csv", "profiles.md"):
        assert (out / file).read_text() == (sequential / file).read_text(), file


def test_profile_sweep_keys_are_validated_in_one_pass(tmp_path, capsys):
    bad = {
        "kind": "profile",
        "base": "job.yaml",
        "set": {"inference.seed": 1},
        "axes": [{"parameter": ["a", "a"]}, {"key": "inference.seed", "values": [1]}],
        "profile": {"grid": 1, "max_pts": 3},
        "then": ["compare"],
    }
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    for expected in (
        f"{path}: key profile.grid: got 1 (int); Input should be greater than or equal to 2",
        f"{path}: key profile.max_pts: unknown key",
        f"{path}: key axes.0.parameter: got ['a', 'a'] (list); each parameter once",
        f"{path}: key run: required key is missing; kind 'profile' needs the finished run",
        f"{path}: key base: kind 'profile' takes no base config",
        f"{path}: key set: got ['inference.seed']; kind 'profile' sets no job-config keys",
        f"{path}: key axes: kind 'profile' takes exactly one axis",
        f"{path}: key then: got ['compare']; kind 'profile' takes none",
    ):
        assert expected in err, (expected, err)
    # a fit sweep with profile keys, and a profile sweep whose run folder is missing
    path.write_text(yaml.safe_dump({"run": "r", "axes": [{"parameter": ["a"]}]}))
    assert main(["sweep", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "key base: required key is missing; kind 'fit' needs" in err
    assert "key run: only for kind 'profile'" in err
    assert "a {parameter: [...]} axis needs kind: profile" in err
    path.write_text(yaml.safe_dump({"kind": "profile", "run": "r", "axes": [{"parameter": ["a"]}]}))
    assert main(["sweep", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: key run: got 'r' (resolved to {tmp_path / 'r'}), not found; expected" in err
    assert not out.exists()  # nothing written
