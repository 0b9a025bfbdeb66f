"""Dosing schedules written in job configs (``simulate.experiments[].schedule``,
``predict.custom[].schedule``): parsed into the models' own value objects, refused
with every problem in one message, and simulated as the Python API simulates them.

The end-to-end job compiles the model with events once (about 15 s of CPU, cold);
the posterior draws' simulator runs with ``-m slow``.

Model: ``InducibleGene``, x' = a (1 + u) - k x, basal x = a / k. Between doses u is
constant, so x relaxes exponentially to a (1 + u) / k; a bolus adds its amount to x.
"""

import numpy as np
import pandas as pd
import pytest
import yaml

from il6rcc.cli import main
from il6rcc.configs import load_config
from il6rcc.errors import ConfigError
from il6rcc.jobs.predict import simulate_draws
from il6rcc.models import (
    Bolus,
    Condition,
    DosingSchedule,
    Exposure,
    SolverSettings,
    load_model,
    simulate,
)

MODEL = load_model("inducible_gene")
A, K = MODEL.default_params()
TIMES = [0.25, 1.0, 2.0, 3.0, 4.5]
#: Tsit5 at 1e-12: the solver's error stays far below the closed form's rtol.
SOLVER = {"solver": "tsit5", "rtol": 1e-12, "atol": 1e-12, "max_steps": 20000}

CONFIG = {
    "name": "schedules",
    "model": {"name": "inducible_gene"},
    "solver": SOLVER,
    "simulate": {
        "times": TIMES,
        "experiments": [
            {
                "id": "boluses",
                "cell_line": "default",
                "schedule": {
                    "boluses": [
                        {"state": "x", "amount": 1.5, "time": 1.0, "every": 1.5, "count": 2}
                    ]
                },
            },
            {
                "id": "washout",
                "cell_line": "default",
                "schedule": {"exposures": [{"input": "inducer", "level": 3.0, "duration": 1.5}]},
            },
            {"id": "constant", "cell_line": "default", "perturbations": {"inducer": 3.0}},
        ],
    },
    "predict": {
        "standard": False,
        "cell_lines": ["default"],
        "custom": [
            {
                "label": "inducer pulse vs held",
                "cell_line": "default",
                "inputs": {},
                "schedule": {
                    "exposures": [
                        {"input": "inducer", "level": 2.0, "start": 0.5, "duration": 1.0}
                    ],
                    "boluses": [{"state": "x", "amount": 0.5, "time": 3.0}],
                },
                "control": {"inducer": 2.0},
                "observable": "x",
                "time": 4.0,
            }
        ],
    },
}

#: The same conditions written with the Python API.
API = [
    Condition("boluses", "default", schedule=DosingSchedule((Bolus("x", 1.5, 1.0, 1.5, 2),))),
    Condition(
        "washout",
        "default",
        schedule=DosingSchedule((Exposure("inducer", 3.0, start=0.0, duration=1.5),)),
    ),
    Condition("constant", "default", {"inducer": 3.0}),
]
API_CUSTOM = (
    Condition(
        "custom0",
        "default",
        schedule=DosingSchedule(
            (Bolus("x", 0.5, 3.0), Exposure("inducer", 2.0, start=0.5, duration=1.0))
        ),
    ),
    Condition("custom0-control", "default", {"inducer": 2.0}),
)


def _write(tmp_path, data, name="schedules.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def closed_form(a, k, events, times):
    """x(t) from the basal state a / k under ``events`` (time, op, value), op ``add``
    (to x) or ``u`` (the inducer set to value), in time order: x relaxes to
    a (1 + u) / k between events; a measurement at an event time sees it applied."""
    out = []
    for t in times:
        x, u, s = a / k, 0.0, 0.0
        for te, op, value in events:
            if te > t:
                break
            target = a * (1 + u) / k
            x = target + (x - target) * np.exp(-k * (te - s))
            s = te
            if op == "add":
                x += value
            else:
                u = value
        target = a * (1 + u) / k
        out.append(target + (x - target) * np.exp(-k * (t - s)))
    return np.array(out)


#: The events of :data:`API` and :data:`API_CUSTOM`, written out by hand.
EVENTS = {
    "boluses": [(1.0, "add", 1.5), (2.5, "add", 1.5)],
    "washout": [(0.0, "u", 3.0), (1.5, "u", 0.0)],
    "constant": [(0.0, "u", 3.0)],
    "custom0": [(0.5, "u", 2.0), (1.5, "u", 0.0), (3.0, "add", 0.5)],
    "custom0-control": [(0.0, "u", 2.0)],
}


def test_config_schedules_are_the_python_apis_objects(tmp_path):
    cfg = load_config(_write(tmp_path, CONFIG)).config
    assert [e.to_condition() for e in cfg.simulate.experiments] == API
    custom = cfg.predict.custom[0]
    assert custom.to_conditions("custom0", "default") == API_CUSTOM
    # the defaults are the value objects' own
    bolus = cfg.simulate.experiments[0].schedule.boluses[0]
    assert Bolus("x", 1.0) == type(bolus)(state="x", amount=1.0).to_dose()


def test_bad_schedules_are_all_reported_at_their_keys(tmp_path):
    data = yaml.safe_load(yaml.safe_dump(CONFIG))
    experiments = data["simulate"]["experiments"]
    experiments[0]["schedule"]["boluses"] += [
        {"state": "x", "amount": -2.0},
        {"state": "x", "amount": 1.0, "count": 3},
        {"state": "x", "amount": 1.0, "dose": 5},
    ]
    experiments[1]["schedule"]["exposures"].append(
        {"input": "inducer", "level": 1.0, "duration": 5.0, "every": 2.0, "count": 2}
    )
    experiments[2]["schedule"] = {}
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    lines = str(err.value).splitlines()
    assert all(line.startswith(f"{path}: key simulate.experiments.") for line in lines), lines
    expected = [
        ("0.schedule.boluses.1", "amount must be a finite number >= 0", "got -2.0"),
        ("0.schedule.boluses.2", "count is 3 but every is not set", "hours > 0"),
        ("0.schedule.boluses.3.dose", "unknown key", "5"),
        ("1.schedule.exposures.1", "duration 5.0 h is longer than every 2.0 h", "<= every"),
        ("2.schedule", "at least one entry under boluses or exposures", "{}"),
    ]
    assert len(lines) == len(expected), lines
    for (key, what, value), line in zip(expected, lines, strict=True):
        assert f"simulate.experiments.{key}:" in line and what in line and value in line, line


def test_schedules_that_do_not_fit_the_model_are_all_reported(tmp_path, capsys):
    data = yaml.safe_load(yaml.safe_dump(CONFIG))
    experiments = data["simulate"]["experiments"]
    experiments[0]["schedule"]["boluses"][0]["state"] = "y"
    experiments[1]["perturbations"] = {"inducer": 1.0}
    experiments[1]["schedule"]["exposures"].append(
        {"input": "inducer", "level": 1.0, "start": 1.0, "duration": 1.0}
    )
    data["predict"]["custom"][0]["schedule"]["exposures"][0]["input"] = "drug"
    path = _write(tmp_path, data)
    out = tmp_path / "run"
    assert main(["simulate", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and not out.exists()
    for key, needle in (
        ("simulate.experiments[boluses].schedule", "Bolus into unknown state 'y'; valid: 'x'"),
        ("simulate.experiments[washout].schedule", "exposures to 'inducer' overlap"),
        ("simulate.experiments[washout].schedule", "input 'inducer' is both a constant"),
        ("predict.custom['inducer pulse vs held'].schedule", "Exposure to unknown input 'drug'"),
    ):
        assert f"{path}: key {key}: {needle}" in err, err


def test_simulate_job_runs_the_config_schedule_as_the_api_does(tmp_path):
    """End to end: ``il6rcc simulate`` on the config equals ``simulate`` of the API's
    conditions and the closed forms."""
    out = tmp_path / "run"
    assert main(["simulate", str(_write(tmp_path, CONFIG)), "--out", str(out)]) == 0
    table = pd.read_csv(out / "simulation.csv")
    assert table["success"].all()
    api = simulate(MODEL, None, API, np.asarray(TIMES), SolverSettings(**SOLVER))
    for c, cond in enumerate(API):
        job = table[table["condition_id"] == cond.id].sort_values("time_h")["value"].to_numpy()
        np.testing.assert_allclose(job, api.observables[c, :, 0], rtol=1e-12)
        np.testing.assert_allclose(job, closed_form(A, K, EVENTS[cond.id], TIMES), rtol=1e-6)


@pytest.mark.slow
def test_predict_draws_simulate_the_custom_schedule(tmp_path):
    """``predict.custom``'s schedule reaches the simulator of the posterior draws
    (two parameter draws) and gives the closed forms. Slow: it compiles the draws'
    simulator (about 10 s of CPU)."""
    custom = load_config(_write(tmp_path, CONFIG)).config.predict.custom[0]
    conds = [c for c in custom.to_conditions("custom0", "default") if c is not None]
    draws = np.array([[A, K], [1.5 * A, 0.8 * K]])
    solver = SolverSettings(**SOLVER)
    obs, ok, times = simulate_draws(MODEL, solver, {"default": draws}, conds, [4.0, 2.0])
    assert ok.all() and times == [2.0, 4.0]
    for d, (a, k) in enumerate(draws):
        for c, cond in enumerate(conds):
            exact = closed_form(a, k, EVENTS[cond.id], times)
            np.testing.assert_allclose(obs[d, c, :, 0], exact, rtol=1e-6)
    # the pulse was washed out at 1.5 h and a bolus given at 3 h: not the held control
    assert not np.allclose(obs[:, 0], obs[:, 1], rtol=1e-3)
