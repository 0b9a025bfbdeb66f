"""The functions behind ``il6rcc petab llh`` and ``il6rcc petab export``."""

import pytest

from il6rcc.errors import PetabError
from il6rcc.petab_io import export_main, llh_main, load_problem, problem_path


def test_llh_main_prints_a_bare_number_last(capsys):
    status = llh_main(str(problem_path("Boehm_JProteomeRes2014")))
    assert status == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert float(lines[-1]) == pytest.approx(-138.22199693517703, rel=1e-6)
    assert "Boehm_JProteomeRes2014" in lines[0]


def test_llh_main_reports_errors_as_petab_errors(tmp_path):
    with pytest.raises(PetabError, match="does not exist"):
        llh_main(str(tmp_path / "nothing.yaml"))


# exports and reloads the whole circuit (~2 min); export is checked in test_petab_export.py
@pytest.mark.slow
def test_export_main_writes_a_loadable_problem(tmp_path, capsys):
    out = tmp_path / "export"
    assert export_main("socs3_stat1", out) == 0
    yaml_path = out / "rcc_circuit.yaml"
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(yaml_path)
    assert "SYNTHETIC" in (out / "README.md").read_text()
    problem = load_problem(yaml_path)
    assert problem.n_measurements > 0
    assert "input_treatment_phase" in problem.model.parameter_names


def test_export_main_rejects_unknown_variants(tmp_path):
    with pytest.raises(PetabError, match="neither a circuit variant"):
        export_main("no_such_variant", tmp_path)
