"""Malformed PEtab problems give one clear PetabError before anything is simulated.

Each case copies the shipped Boehm problem into tmp_path and breaks one thing; the
error must name the file, the line or id, the value found and what was expected.
"""

import shutil
from pathlib import Path

import libsbml
import pandas as pd
import pytest

from il6rcc.errors import PetabError
from il6rcc.petab_io import load_problem, problem_path

NAME = "Boehm_JProteomeRes2014"
MEASUREMENTS = f"measurementData_{NAME}.tsv"
OBSERVABLES = f"observables_{NAME}.tsv"
PARAMETERS = f"parameters_{NAME}.tsv"
CONDITIONS = f"experimentalCondition_{NAME}.tsv"


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / NAME
    shutil.copytree(problem_path(NAME).parent, folder)
    return folder


def _edit(folder: Path, file: str, edit) -> Path:
    path = folder / file
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    edit(table)
    table.to_csv(path, sep="\t", index=False)
    return folder / f"{NAME}.yaml"


def _error(yaml_path: Path) -> str:
    with pytest.raises(PetabError) as info:
        load_problem(yaml_path)
    return str(info.value)


def test_the_unmodified_copy_loads(tmp_path):
    problem = load_problem(_copy(tmp_path) / f"{NAME}.yaml")
    assert problem.n_measurements == 48


def test_unknown_observable_id(tmp_path):
    def edit(t):
        t.loc[4, "observableId"] = "pSTAT5A_rell"

    message = _error(_edit(_copy(tmp_path), MEASUREMENTS, edit))
    assert f"{MEASUREMENTS} line 6" in message
    assert "'pSTAT5A_rell' is not defined in " + OBSERVABLES in message
    assert "'pSTAT5A_rel'" in message  # the valid choices


def test_missing_condition(tmp_path):
    def edit(t):
        t.loc[10, "simulationConditionId"] = "model1_data2"

    message = _error(_edit(_copy(tmp_path), MEASUREMENTS, edit))
    assert f"{MEASUREMENTS} line 12" in message
    assert "simulationConditionId 'model1_data2' is not in " + CONDITIONS in message
    assert "'model1_data1'" in message


def test_lower_bound_above_upper_bound(tmp_path):
    def edit(t):
        t.loc[t["parameterId"] == "k_phos", "lowerBound"] = "1e6"

    message = _error(_edit(_copy(tmp_path), PARAMETERS, edit))
    assert f"{PARAMETERS} line 7 (parameter 'k_phos')" in message
    assert "lowerBound 1000000.0 is above upperBound 100000.0" in message
    assert "expected lowerBound <= upperBound" in message


def test_non_positive_measurement_under_log_transform(tmp_path):
    folder = _copy(tmp_path)

    def log_transform(t):
        t.loc[t["observableId"] == "pSTAT5A_rel", "observableTransformation"] = "log10"

    def negative(t):
        t.loc[2, "measurement"] = "-3.5"

    _edit(folder, OBSERVABLES, log_transform)
    message = _error(_edit(folder, MEASUREMENTS, negative))
    assert f"{MEASUREMENTS} line 4" in message
    assert "measurement -3.5 of observable 'pSTAT5A_rel' must be > 0" in message
    assert "'log10'" in message


@pytest.mark.parametrize("value", ["-1.5", "0"])
def test_negative_or_zero_noise(tmp_path, value):
    def edit(t):
        t.loc[7, "noiseParameters"] = value

    message = _error(_edit(_copy(tmp_path), MEASUREMENTS, edit))
    assert f"{MEASUREMENTS} line 9" in message
    assert f"noise parameter {float(value)!r} of observable" in message
    assert "must be a standard deviation/scale > 0" in message


def test_negative_noise_formula(tmp_path):
    def edit(t):
        t.loc[t["observableId"] == "pSTAT5B_rel", "noiseFormula"] = "-2"

    message = _error(_edit(_copy(tmp_path), OBSERVABLES, edit))
    assert f"{OBSERVABLES} line 3 (observable 'pSTAT5B_rel')" in message
    assert "noiseFormula '-2' must be > 0" in message


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        ("__import__('os').system('touch PWNED')", "is not a valid formula"),
        ("__import__(os)", "unknown function '__import__'"),
        ("pApB; import os", "is not a valid formula"),
        ("lambda(x, x)", "unsupported math construct"),
        ("delay(pApB, 1)", "unsupported math construct 'delay'"),
        ("pApB * evil_name", "refers to ['evil_name']"),
    ],
)
def test_formula_with_code_is_rejected_and_never_run(tmp_path, monkeypatch, formula, expected):
    monkeypatch.chdir(tmp_path)

    def edit(t):
        t.loc[t["observableId"] == "rSTAT5A_rel", "observableFormula"] = formula

    message = _error(_edit(_copy(tmp_path), OBSERVABLES, edit))
    assert f"{OBSERVABLES} line 4 (observable 'rSTAT5A_rel')" in message
    assert expected in message
    assert not (tmp_path / "PWNED").exists()


def test_every_problem_is_reported_in_one_error(tmp_path):
    folder = _copy(tmp_path)

    def measurements(t):
        t.loc[0, "observableId"] = "nope"
        t.loc[1, "simulationConditionId"] = "nowhere"

    def parameters(t):
        t.loc[t["parameterId"] == "k_phos", "lowerBound"] = "1e6"

    _edit(folder, PARAMETERS, parameters)
    message = _error(_edit(folder, MEASUREMENTS, measurements))
    assert "3 problem(s) found" in message
    assert "'nope'" in message and "'nowhere'" in message and "'k_phos'" in message


def test_unknown_parameter_in_overrides(tmp_path):
    def edit(t):
        t.loc[3, "noiseParameters"] = "sd_unknown"

    message = _error(_edit(_copy(tmp_path), MEASUREMENTS, edit))
    assert f"{MEASUREMENTS} line 5" in message
    assert "'sd_unknown' is neither a number nor a parameter of " + PARAMETERS in message


def test_wrong_number_of_overrides(tmp_path):
    def edit(t):
        t.loc[3, "noiseParameters"] = "sd_pSTAT5A_rel;1.0"

    message = _error(_edit(_copy(tmp_path), MEASUREMENTS, edit))
    assert "noiseParameters has 2 value(s)" in message
    assert "has 1 noiseParameter placeholder(s)" in message


def test_unsupported_sbml_feature_is_named(tmp_path):
    """Events are supported, but not one that resizes a compartment holding species
    (the species' concentrations would need converting)."""
    folder = _copy(tmp_path)
    sbml_path = folder / f"model_{NAME}.xml"
    document = libsbml.readSBMLFromFile(str(sbml_path))
    model = document.getModel()
    model.getCompartment("cyt").setConstant(False)
    event = model.createEvent()
    event.setId("swell")
    event.setUseValuesFromTriggerTime(True)
    trigger = event.createTrigger()
    trigger.setMath(libsbml.parseL3Formula("time > 10"))
    trigger.setInitialValue(True)
    trigger.setPersistent(True)
    assignment = event.createEventAssignment()
    assignment.setVariable("cyt")
    assignment.setMath(libsbml.parseL3Formula("2"))
    libsbml.writeSBMLToFile(document, str(sbml_path))
    message = _error(folder / f"{NAME}.yaml")
    assert f"model_{NAME}.xml: unsupported SBML feature: event 'swell'" in message
    assert "changes the size of compartment 'cyt' while species live in it" in message


def test_problem_file_errors(tmp_path):
    with pytest.raises(PetabError, match="does not exist"):
        load_problem(tmp_path / "missing.yaml")
    bad = tmp_path / "v2.yaml"
    bad.write_text("format_version: 2.0.0\nproblems: []\n")
    with pytest.raises(PetabError, match="format_version '2.0.0' is not supported"):
        load_problem(bad)


def test_the_petab_library_lint_runs_first(tmp_path):
    """A problem that only the petab library's lint refuses (a conditionId that is not
    an identifier) is refused with the library's message."""
    folder = _copy(tmp_path)

    def conditions(t):
        t.loc[0, "conditionId"] = "1st_condition"

    def measurements(t):
        t["simulationConditionId"] = "1st_condition"

    _edit(folder, CONDITIONS, conditions)
    message = _error(_edit(folder, MEASUREMENTS, measurements))
    assert "the petab library's lint (petablint) reports" in message
    assert "1st_condition" in message


def test_what_the_standard_allows_is_accepted():
    """Zhao_QuantBiol2020 fixes 'sigma' at nominal value 0 on a log10 scale (outside its
    bounds): valid PEtab (the petab library's lint accepts it), so il6rcc loads it."""
    from il6rcc.petab_io._lint import library_lint

    path = problem_path("Zhao_QuantBiol2020")
    assert library_lint(path) == []
    problem = load_problem(path)
    i = problem.parameters.ids.index("sigma")
    assert problem.parameters.nominal[i] == 0.0 and not problem.parameters.estimate[i]
