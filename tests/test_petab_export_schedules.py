"""Dosing schedules exported as SBML events: the events and condition-table columns
are what the schedules say, PEtab's lint accepts the problem, and il6rcc's own PEtab
importer simulates the exported problem as il6rcc simulates the model (slow).

Model: x' = a (1 + u) - k x (``InducibleGene``'s equations, written as ``rates`` so
they can be exported); between doses x relaxes exponentially to a (1 + u) / k.
"""

from dataclasses import dataclass
from typing import ClassVar

import jax.numpy as jnp
import libsbml
import numpy as np
import pandas as pd
import petab.v1 as petab
import pytest

from il6rcc.models import (
    Bolus,
    Condition,
    DosingSchedule,
    Exposure,
    InputSpec,
    ObservableSpec,
    ODEModel,
    ParameterSpec,
    SolverSettings,
    simulate,
)
from il6rcc.models.examples import InducibleGene
from il6rcc.petab_io import ExportMeasurement, export_problem, load_problem, simulation_table


@dataclass(frozen=True)
class ExportableGene(ODEModel):
    """x' = a (1 + u) - k x, with its equations as ``rates`` (exportable to SBML)."""

    name: ClassVar[str] = "exportable_gene"
    states: ClassVar[tuple[str, ...]] = InducibleGene.states
    parameters: ClassVar[tuple[ParameterSpec, ...]] = InducibleGene.parameters
    inputs: ClassVar[tuple[InputSpec, ...]] = InducibleGene.inputs
    observables: ClassVar[tuple[ObservableSpec, ...]] = InducibleGene.observables

    def rates(self, s, p, u, fn) -> dict:
        return {"x": p["a"] * (1.0 + u["inducer"]) - p["k"] * s["x"]}

    def observable_values(self, t, s, p, u, fn) -> dict:
        return {"x": s["x"]}

    def vector_field(self, t, y, params, inputs):
        return params[0] * (1.0 + inputs[0]) - params[1] * y

    def observe(self, t, y, params, inputs):
        return y


MODEL = ExportableGene()
TIMES = [0.5, 1.0, 2.0, 2.5, 3.0, 4.5]
CONDITIONS = [
    Condition("plain", "default"),
    Condition("constant", "default", {"inducer": 2.0}),
    Condition(
        "boluses", "default", schedule=DosingSchedule((Bolus("x", 1.5, 1.0, every=1.5, count=2),))
    ),
    Condition(
        "pulses",
        "default",
        schedule=DosingSchedule(
            (
                # touching exposures (wash-out and restart at 1.5 h) and a bolus at a
                # measurement time
                Exposure("inducer", 3.0, start=0.5, duration=1.0, every=1.0, count=2),
                Bolus("x", 0.5, 3.0),
            )
        ),
    ),
]
MEASUREMENTS = [
    ExportMeasurement("x", c.id, t, 1.0 + 0.1 * i, noise=0.2)
    for c in CONDITIONS
    for i, t in enumerate(TIMES)
]
#: Kvaerno5 at 1e-10 on both sides: the round trip compares the two paths, not
#: solver error.
SOLVER = SolverSettings(rtol=1e-10, atol=1e-10, max_steps=20000)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("scheduled_petab")
    return export_problem(MODEL, CONDITIONS, MEASUREMENTS, out, name="gene")


def _events(yaml_path):
    document = libsbml.readSBMLFromFile(str(yaml_path.parent / "model_gene.xml"))
    model = document.getModel()
    out = {}
    for e in model.getListOfEvents():
        a = e.getEventAssignment(0)
        out[e.getId()] = (
            libsbml.formulaToL3String(e.getTrigger().getMath()),
            libsbml.formulaToL3String(e.getPriority().getMath()),
            a.getVariable(),
            libsbml.formulaToL3String(a.getMath()),
            e.getTrigger().getInitialValue(),
            e.getUseValuesFromTriggerTime(),
        )
    constant = {p.getId(): p.getConstant() for p in model.getListOfParameters()}
    return out, constant


def test_schedules_become_events_and_condition_columns(exported):
    events, constant = _events(exported)
    # slots in il6rcc's order: wash-outs, boluses, exposure starts (one per repeat)
    assert events == {
        "schedule_0": ("time >= schedule_0_time", "3", "input_inducer", "0", False, False),
        "schedule_1": ("time >= schedule_1_time", "3", "input_inducer", "0", False, False),
        "schedule_2": ("time >= schedule_2_time", "2", "x", "x + schedule_2_value", False, False),
        "schedule_3": ("time >= schedule_3_time", "2", "x", "x + schedule_3_value", False, False),
        "schedule_4": (
            "time >= schedule_4_time",
            "1",
            "input_inducer",
            "schedule_4_value",
            False,
            False,
        ),
        "schedule_5": (
            "time >= schedule_5_time",
            "1",
            "input_inducer",
            "schedule_5_value",
            False,
            False,
        ),
    }
    assert constant["input_inducer"] is False and constant["schedule_0_time"] is True
    table = pd.read_csv(exported.parent / "experimentalCondition_gene.tsv", sep="\t")
    table = table.set_index("conditionId")
    never = 1e30
    expected = {
        # wash-outs, boluses (time, value), exposure starts (time, value)
        "plain": [never, never, never, 0, never, 0, never, 0, never, 0],
        "constant": [never, never, never, 0, never, 0, never, 0, never, 0],
        "boluses": [never, never, 1.0, 1.5, 2.5, 1.5, never, 0, never, 0],
        "pulses": [1.5, 2.5, 3.0, 0.5, never, 0, 0.5, 3.0, 1.5, 3.0],
    }
    columns = [
        "schedule_0_time",
        "schedule_1_time",
        "schedule_2_time",
        "schedule_2_value",
        "schedule_3_time",
        "schedule_3_value",
        "schedule_4_time",
        "schedule_4_value",
        "schedule_5_time",
        "schedule_5_value",
    ]
    for cid, row in expected.items():
        np.testing.assert_array_equal(table.loc[cid, columns].to_numpy(float), row, err_msg=cid)
    pre = table[table.index.str.startswith("preeq_")]
    assert len(pre) == 1 and (pre[[c for c in columns if c.endswith("_time")]] == never).all(
        axis=None
    )


def test_export_with_schedules_passes_petabs_lint(exported, caplog):
    problem = petab.Problem.from_yaml(exported)
    assert not petab.lint_problem(problem), caplog.text  # True: errors found


# compiles the model with events twice, through both paths (about a minute of CPU)
@pytest.mark.slow
def test_round_trip_simulates_the_schedules_as_il6rcc_does(exported):
    table = simulation_table(load_problem(exported), solver=SOLVER)
    assert table["success"].all(), table.attrs["failures"]
    native = simulate(MODEL, None, CONDITIONS, np.asarray(TIMES), SOLVER)
    assert native.success.all()
    for c, cond in enumerate(CONDITIONS):
        rows = table[table["simulationConditionId"] == cond.id].sort_values("time")
        np.testing.assert_allclose(
            rows["simulation"].to_numpy(), native.observables[c, :, 0], rtol=1e-6, err_msg=cond.id
        )
    # the schedules did act: the pulsed condition differs from the plain one
    assert not np.allclose(native.observables[3], native.observables[0], rtol=1e-3)
    assert jnp.isfinite(jnp.asarray(table["simulation"])).all()
