"""Export an il6rcc model (the RCC circuit) and measurements as a PEtab v1 problem.

The SBML is generated from the model's own equations: ``model.rates`` and
``model.observable_values`` are called with sympy symbols and a math namespace whose
``log``, ``exp`` and ``maximum`` build sympy expressions (nothing is parsed or
evaluated from text). The layout:

* SBML: one compartment ``cell`` of size 1; each state is a species (concentration,
  initial value = the model's ``initial_guess`` at its default parameters) driven by a
  rate rule; each model parameter is a constant parameter with its default value;
  each input ``u`` is a constant parameter ``input_<u>`` (0 by default) that the
  condition table sets.
* Conditions: each il6rcc condition becomes a simulation condition (all inputs,
  ``input_treatment_phase`` = 1, and the states of ``model.treatment_state`` as
  initial-value overrides) with a pre-equilibration condition per cell line and
  pre-treatment (pre-treatment inputs only, ``input_treatment_phase`` = 0): PEtab's
  pre-equilibration reproduces il6rcc's basal steady state. A model with reference
  inputs (the circuit: growth is counted against untreated cells of the line) gets a
  copy of every state, ``<state>__ref``, driven by the reference inputs alone; the
  states :meth:`ODEModel.anchor` takes from the reference relax to their copies during
  pre-equilibration, so a knock-down's growth effect survives the export.
* Cell lines: a parameter that a cell line scales becomes a condition-table column
  whose entries are per-cell-line parameters ``<parameter>__<cell line>`` (nominal
  value = default x factor), so they stay estimable.
* Parameters: ``log``-scale model parameters are estimated on ``log10`` scale with a
  ``parameterScaleNormal`` prior (mean log10(default), sd ``log10_sd``) and bounds
  +-4 sd; ``logit`` ones on linear scale in [0, 1]; others are fixed.
* Observables ``obs_<name>`` (suffixed by transformation and noise distribution when
  one observable is measured with several), with an optional scale factor
  ``observableParameter1_<id>`` and the noise ``noiseParameter1_<id>``.
* Dosing schedules (:class:`~il6rcc.models.DosingSchedule` of a condition): the
  batch's dose *slots* (:func:`il6rcc.models.make_batch`) become SBML events
  ``schedule_<k>``, triggered at ``time >= schedule_<k>_time``: a bolus adds
  ``schedule_<k>_value`` to its species, an exposure sets ``input_<u>`` (then not
  constant) to it, a wash-out sets ``input_<u>`` to 0. Priorities order the events of
  one instant as il6rcc does (wash-outs, boluses, exposures), the trigger is false
  before the start (a dose at time 0 acts at the start) and values are taken at
  execution. The slot times and values are condition-table columns; a slot a
  condition does not use (and every pre-equilibration) gets time
  ``UNUSED_DOSE_TIME`` (1e30 h), so it never fires.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import jax.numpy as jnp
import libsbml
import numpy as np
import pandas as pd
import petab.v1 as petab
import sympy
from petab.v1 import C
from petab.v1.math import petab_math_str

from ..errors import PetabError
from ..models import (
    UNUSED_DOSE_TIME,
    Condition,
    ODEModel,
    ScheduleEvents,
    condition_inputs,
    make_batch,
)
from ._lint import DISTRIBUTIONS, TRANSFORMATIONS

COMPARTMENT = "cell"
INPUT_PREFIX = "input_"
#: Suffix of the species of a model's untreated reference (see :func:`reference_expressions`).
REFERENCE_SUFFIX = "__ref"


@dataclass(frozen=True)
class ExportMeasurement:
    """One measurement to export.

    Attributes:
        observable: a model observable name (``model.observable_names``).
        condition: the id of one of the exported :class:`~il6rcc.models.Condition`.
        time: time after treatment start, in the model's time unit (hours).
        value: the measured value (> 0 under a ``log``/``log10`` transformation).
        noise: the noise standard deviation (normal) or scale (Laplace): a number > 0
            or the id of a noise parameter (see ``noise_parameters`` of
            :func:`export_problem`).
        transformation: ``lin``, ``log`` or ``log10``.
        distribution: ``normal`` or ``laplace``.
        scale: None, or a number or parameter id multiplying the model observable
            (relative units such as western blot densities).
    """

    observable: str
    condition: str
    time: float
    value: float
    noise: float | str
    transformation: str = "lin"
    distribution: str = "normal"
    scale: float | str | None = None


class _SympyMath:
    """The math namespace that turns the model's equations into sympy expressions."""

    log = staticmethod(sympy.log)
    exp = staticmethod(sympy.exp)

    @staticmethod
    def maximum(a, b):
        return sympy.Max(a, b)


def petab_id(text: str) -> str:
    """A PEtab identifier from any label: non-word characters become ``_`` and a
    leading digit gets a ``c`` in front (``786-O`` -> ``c786_O``)."""
    out = re.sub(r"\W", "_", text)
    return out if re.match(r"^[A-Za-z_]", out) else f"c{out}"


# ------------------------------------------------------------------------ sympy -> SBML
def _ast(kind, *children, name=None, value=None):
    node = libsbml.ASTNode(kind)
    if name is not None:
        node.setName(name)
    if value is not None:
        node.setValue(value)
    for child in children:
        node.addChild(child)
    return node


def _number(value: float):
    if float(value).is_integer() and abs(value) < 2**31:
        return _ast(libsbml.AST_INTEGER, value=int(value))
    return _ast(libsbml.AST_REAL, value=float(value))


def sympy_to_ast(expr):  # noqa: C901 - one branch per sympy node type
    """A libsbml AST of a sympy expression (explicit node-by-node conversion).

    ``Max``/``Min`` become ``piecewise`` (SBML L3V1 has no max/min). Raises
    :class:`PetabError` for any other construct.
    """
    if expr.is_Symbol:
        return _ast(libsbml.AST_NAME, name=str(expr))
    if expr is sympy.pi:
        return _ast(libsbml.AST_CONSTANT_PI)
    if expr is sympy.E:
        return _ast(libsbml.AST_CONSTANT_E)
    if expr.is_Number:
        value = float(expr)
        if not math.isfinite(value):
            raise PetabError(f"cannot export the non-finite number {expr}")
        if value < 0:
            return _ast(libsbml.AST_MINUS, _number(-value))
        return _number(value)
    if isinstance(expr, sympy.Add):
        return _ast(libsbml.AST_PLUS, *(sympy_to_ast(a) for a in expr.args))
    if isinstance(expr, sympy.Mul):
        num, den = [], []
        for factor in expr.args:
            base, exponent = factor.as_base_exp()
            if exponent.is_Number and exponent < 0:
                den.append(base if exponent == -1 else base ** (-exponent))
            else:
                num.append(factor)
        top = (
            _number(1.0)
            if not num
            else (
                sympy_to_ast(num[0])
                if len(num) == 1
                else _ast(libsbml.AST_TIMES, *(sympy_to_ast(a) for a in num))
            )
        )
        if not den:
            return top
        bottom = (
            sympy_to_ast(den[0])
            if len(den) == 1
            else _ast(libsbml.AST_TIMES, *(sympy_to_ast(a) for a in den))
        )
        return _ast(libsbml.AST_DIVIDE, top, bottom)
    if isinstance(expr, sympy.Pow):
        base, exponent = expr.args
        if exponent == -1:
            return _ast(libsbml.AST_DIVIDE, _number(1.0), sympy_to_ast(base))
        return _ast(libsbml.AST_POWER, sympy_to_ast(base), sympy_to_ast(exponent))
    if isinstance(expr, sympy.exp):
        return _ast(libsbml.AST_FUNCTION_EXP, sympy_to_ast(expr.args[0]))
    if isinstance(expr, sympy.log):
        if len(expr.args) != 1:
            raise PetabError(f"cannot export {expr}")
        return _ast(libsbml.AST_FUNCTION_LN, sympy_to_ast(expr.args[0]))
    if isinstance(expr, sympy.Max | sympy.Min):
        # max(a, b, ...) = piecewise(a, a >= b, b), folded over the arguments
        rel = (
            libsbml.AST_RELATIONAL_GEQ
            if isinstance(expr, sympy.Max)
            else libsbml.AST_RELATIONAL_LEQ
        )
        out = sympy_to_ast(expr.args[0])
        for arg in expr.args[1:]:
            test = _ast(rel, out.deepCopy(), sympy_to_ast(arg))
            out = _ast(libsbml.AST_FUNCTION_PIECEWISE, out, test, sympy_to_ast(arg))
        return out
    raise PetabError(
        f"cannot export the expression {expr} ({type(expr).__name__}); supported: "
        f"+ - * / ^, exp, log, max, min"
    )


# ------------------------------------------------------------------------ symbols
def _symbols(model: ODEModel):
    states = {s: sympy.Symbol(s) for s in model.states}
    params = {p.name: sympy.Symbol(p.name) for p in model.parameters}
    inputs = {u.name: sympy.Symbol(INPUT_PREFIX + u.name) for u in model.inputs}
    ids = list(states) + list(params) + [str(v) for v in inputs.values()] + [COMPARTMENT]
    clashes = sorted({i for i in ids if ids.count(i) > 1})
    if clashes:
        raise PetabError(
            f"model {model.name!r}: ids {clashes} are used for more than one of states, "
            f"parameters and inputs; SBML ids must be unique"
        )
    return states, params, inputs


def model_expressions(model: ODEModel):
    """Symbolic equations: ``(rates, observables)``, dicts of sympy expressions by state
    and observable name, over symbols named by state, parameter and ``input_<input>``.
    Time in observables is the symbol ``time``."""
    if not (callable(getattr(type(model), "rates", None))):
        raise PetabError(
            f"model {model.name!r} does not write its equations as rates(s, p, u, fn); only "
            f"such models (e.g. the RCC circuit) can be exported to SBML"
        )
    states, params, inputs = _symbols(model)
    rates = model.rates(states, params, inputs, _SympyMath)
    observables = model.observable_values(sympy.Symbol("time"), states, params, inputs, _SympyMath)
    return {s: _as_sympy(rates[s]) for s in model.states}, {
        o: _as_sympy(observables[o]) for o in model.observable_names
    }


def _as_sympy(value):
    """A sympy expression from an equation's result (a plain number where the equation
    does not depend on any symbol); never parses text."""
    if isinstance(value, sympy.Basic):
        return value
    if isinstance(value, int | float | np.floating | np.integer) and not isinstance(value, bool):
        return sympy.Float(float(value))
    raise PetabError(f"the model returned {value!r} ({type(value).__name__}) for an equation")


def reference_expressions(model: ODEModel):
    """The untreated reference of a model with :attr:`ODEModel.reference_inputs` (the
    state the simulator solves besides each basal state and hands to
    :meth:`ODEModel.anchor`), as SBML can carry it: ``(reference rates, anchored
    states)``. The reference rates are the model's rates over the states
    ``<state>__ref`` with every input but the reference inputs (and the treatment
    phase) at 0; the anchored states are those :meth:`ODEModel.anchor` copies from the
    reference. ``({}, [])`` for models without a reference."""
    if model.reference_inputs is None:
        return {}, []
    _, params, inputs = _symbols(model)
    ref_states = {s: sympy.Symbol(s + REFERENCE_SUFFIX) for s in model.states}
    ref_inputs = {
        u.name: inputs[u.name] if (u.phase or u.name in model.reference_inputs) else 0
        for u in model.inputs
    }
    rates = model.rates(ref_states, params, ref_inputs, _SympyMath)
    y, y_ref = jnp.zeros(model.n_states), jnp.ones(model.n_states)
    values = np.asarray(
        model.anchor(y, y_ref, jnp.asarray(model.default_params()), jnp.zeros(model.n_inputs)),
        dtype=float,
    )
    anchored = [s for s, v in zip(model.states, values, strict=True) if v == 1.0]
    return {s + REFERENCE_SUFFIX: _as_sympy(rates[s]) for s in model.states}, anchored


def _numeric_initial_state(model: ODEModel) -> np.ndarray:
    params = model.default_params()
    inputs = np.zeros(model.n_inputs)
    return np.asarray(model.initial_guess(params, inputs), dtype=np.float64)


#: SBML priority of each slot operation (higher acts first at one instant).
_PRIORITY = {"off": 3, "add": 2, "on": 1}


def schedule_ids(k: int) -> tuple[str, str]:
    """The ids of dose slot ``k``'s time and value parameters."""
    return f"schedule_{k}_time", f"schedule_{k}_value"


def _add_schedule_events(m, model: ODEModel, events: ScheduleEvents) -> None:
    """One SBML event per dose slot (see the module docstring)."""
    for k, (kind, i, op) in enumerate(events.slots):
        time_id, value_id = schedule_ids(k)
        for pid, value in ((time_id, UNUSED_DOSE_TIME), (value_id, 0.0)):
            if op == "off" and pid == value_id:
                continue
            p = m.createParameter()
            p.setId(pid)
            p.setValue(value)
            p.setConstant(True)
        target = model.states[i] if kind == "state" else INPUT_PREFIX + model.inputs[i].name
        what = {"add": "bolus into", "on": "exposure to", "off": "wash-out of"}[op]
        event = m.createEvent()
        event.setId(f"schedule_{k}")
        event.setName(f"{what} {target}")
        event.setUseValuesFromTriggerTime(False)
        trigger = event.createTrigger()
        trigger.setInitialValue(False)
        trigger.setPersistent(True)
        trigger.setMath(
            _ast(
                libsbml.AST_RELATIONAL_GEQ,
                _ast(libsbml.AST_NAME_TIME, name="time"),
                _ast(libsbml.AST_NAME, name=time_id),
            )
        )
        event.createPriority().setMath(_number(_PRIORITY[op]))
        assignment = event.createEventAssignment()
        assignment.setVariable(target)
        value = _ast(libsbml.AST_NAME, name=value_id)
        if op == "add":
            value = _ast(libsbml.AST_PLUS, _ast(libsbml.AST_NAME, name=target), value)
        elif op == "off":
            value = _number(0.0)
        assignment.setMath(value)


def build_sbml(model: ODEModel, schedule: ScheduleEvents | None = None) -> str:
    """SBML Level 3 Version 1 text of ``model`` (see the module docstring), with the
    dose slots of ``schedule`` as events."""
    rates, _ = model_expressions(model)
    ref_rates, anchored = reference_expressions(model)
    if anchored:
        # the anchored states relax to their reference copies during pre-equilibration
        # (the treatment phase input is 0) and follow their own rates afterwards
        phase = [sympy.Symbol(INPUT_PREFIX + u.name) for u in model.inputs if u.phase]
        on = phase[0] if phase else sympy.Integer(0)
        rates = dict(rates)
        for sid in anchored:
            ref = sympy.Symbol(sid + REFERENCE_SUFFIX)
            rates[sid] = (1 - on) * (ref - sympy.Symbol(sid)) + on * rates[sid]
    document = libsbml.SBMLDocument(3, 1)
    m = document.createModel()
    m.setId(petab_id(model.name))
    name = model.name + (f" ({model.variant_name})" if model.variant_name else "")
    m.setName(name)
    comp = m.createCompartment()
    comp.setId(COMPARTMENT)
    comp.setSize(1.0)
    comp.setConstant(True)
    comp.setSpatialDimensions(3)
    y0 = _numeric_initial_state(model)
    species = list(zip(model.states, y0, strict=True))
    if ref_rates:
        species += [(s + REFERENCE_SUFFIX, v) for s, v in zip(model.states, y0, strict=True)]
    for sid, value in species:
        sp = m.createSpecies()
        sp.setId(sid)
        sp.setCompartment(COMPARTMENT)
        sp.setInitialConcentration(float(value))
        sp.setHasOnlySubstanceUnits(False)
        sp.setBoundaryCondition(False)
        sp.setConstant(False)
    nominal = np.asarray(model.default_params(), dtype=np.float64)  # variant switches set
    for spec, value in zip(model.parameters, nominal, strict=True):
        p = m.createParameter()
        p.setId(spec.name)
        p.setValue(float(value))
        p.setConstant(True)
        p.setName(spec.description[:200])
    scheduled = (
        set() if schedule is None else {i for kind, i, _ in schedule.slots if kind == "input"}
    )
    for j, u in enumerate(model.inputs):
        p = m.createParameter()
        p.setId(INPUT_PREFIX + u.name)
        p.setValue(0.0)
        p.setConstant(j not in scheduled)
        p.setName(f"{u.description} [{u.unit}]"[:200])
    for sid, expression in [*rates.items(), *ref_rates.items()]:
        rule = m.createRateRule()
        rule.setVariable(sid)
        if rule.setMath(sympy_to_ast(expression)) != libsbml.LIBSBML_OPERATION_SUCCESS:
            raise PetabError(f"could not set the rate rule of {sid!r}")
    if schedule is not None:
        _add_schedule_events(m, model, schedule)
    text = libsbml.writeSBMLToString(document)
    return text


# ------------------------------------------------------------------------ tables
def _check_measurements(model: ODEModel, conditions, measurements) -> None:
    problems = []
    ids = {c.id for c in conditions}
    for i, m in enumerate(measurements):
        where = f"measurement {i} ({m.observable!r}, {m.condition!r}, t={m.time!r})"
        if m.observable not in model.observable_names:
            problems.append(f"{where}: unknown observable; valid: {sorted(model.observable_names)}")
        if m.condition not in ids:
            problems.append(f"{where}: unknown condition; valid: {sorted(ids)}")
        if m.transformation not in TRANSFORMATIONS:
            problems.append(f"{where}: transformation must be one of {TRANSFORMATIONS}")
        if m.distribution not in DISTRIBUTIONS:
            problems.append(f"{where}: distribution must be one of {DISTRIBUTIONS}")
        if not (math.isfinite(m.time) and m.time >= 0):
            problems.append(f"{where}: time must be finite and >= 0")
        if not math.isfinite(m.value) or (m.transformation != "lin" and m.value <= 0):
            problems.append(f"{where}: value {m.value!r} must be finite (> 0 under a log)")
        if isinstance(m.noise, int | float) and not m.noise > 0:
            problems.append(f"{where}: noise {m.noise!r} must be > 0")
    if problems:
        raise PetabError("cannot export the measurements:\n  " + "\n  ".join(problems))


def _parameter_row(pid: str, spec, nominal: float, name: str) -> dict:
    if spec.scale == "log":
        width = 4.0 * spec.log10_sd
        center = math.log10(nominal)
        return {
            C.PARAMETER_ID: pid,
            C.PARAMETER_NAME: name,
            C.PARAMETER_SCALE: C.LOG10,
            C.LOWER_BOUND: 10 ** (center - width),
            C.UPPER_BOUND: 10 ** (center + width),
            C.NOMINAL_VALUE: nominal,
            C.ESTIMATE: 1,
            C.OBJECTIVE_PRIOR_TYPE: C.PARAMETER_SCALE_NORMAL,
            C.OBJECTIVE_PRIOR_PARAMETERS: f"{center!r};{spec.log10_sd!r}",
        }
    if spec.scale == "logit":
        return {
            C.PARAMETER_ID: pid,
            C.PARAMETER_NAME: name,
            C.PARAMETER_SCALE: C.LIN,
            C.LOWER_BOUND: 0.0,
            C.UPPER_BOUND: 1.0,
            C.NOMINAL_VALUE: nominal,
            C.ESTIMATE: 1,
            C.OBJECTIVE_PRIOR_TYPE: C.UNIFORM,
            C.OBJECTIVE_PRIOR_PARAMETERS: "0.0;1.0",
        }
    return {
        C.PARAMETER_ID: pid,
        C.PARAMETER_NAME: name,
        C.PARAMETER_SCALE: C.LIN,
        C.LOWER_BOUND: nominal - 10 * max(abs(nominal), 1.0),
        C.UPPER_BOUND: nominal + 10 * max(abs(nominal), 1.0),
        C.NOMINAL_VALUE: nominal,
        C.ESTIMATE: 0,
        C.OBJECTIVE_PRIOR_TYPE: "",
        C.OBJECTIVE_PRIOR_PARAMETERS: "",
    }


def export_problem(  # noqa: C901 - assembles five tables
    model: ODEModel,
    conditions: Sequence[Condition],
    measurements: Sequence[ExportMeasurement],
    out_dir: str | Path,
    *,
    noise_parameters: Mapping[str, float] | None = None,
    name: str = "rcc_circuit",
) -> Path:
    """Write ``model`` with ``conditions`` and ``measurements`` as a PEtab v1 problem.

    Args:
        model: the model (e.g. ``RCCCircuit.variant("main")``), whose equations are
            written as ``rates``/``observable_values`` over a math namespace.
        conditions: the experimental conditions the measurements refer to.
        measurements: the data rows.
        out_dir: folder to write (created if needed).
        noise_parameters: nominal values of the parameter ids used as ``noise`` or
            ``scale`` in ``measurements`` (estimated on log10 scale, bounds x/1000).
        name: file stem of the problem (``<name>.yaml``, ``model_<name>.xml``, ...).

    Returns:
        The path of the problem's YAML file.
    """
    conditions = list(conditions)
    measurements = list(measurements)
    noise_parameters = dict(noise_parameters or {})
    if not conditions or not measurements:
        raise PetabError("export needs at least one condition and one measurement")
    _check_measurements(model, conditions, measurements)
    used_ids = {v for m in measurements for v in (m.noise, m.scale) if isinstance(v, str)} - set(
        noise_parameters
    )
    if used_ids:
        raise PetabError(
            f"parameter ids {sorted(used_ids)} are used as noise or scale but have no "
            f"nominal value in noise_parameters"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _, obs_exprs = model_expressions(model)
    specs = {p.name: p for p in model.parameters}
    inputs = condition_inputs(model, conditions)  # [n_conditions, n_inputs], phase = 1
    batch = make_batch(model, conditions)  # checks the dosing schedules, lays out slots
    slot_columns = _schedule_columns(batch)
    pretreat = model.pretreatment_mask()
    lines = [model.cell_line(c.cell_line) for c in conditions]
    scaled = sorted({p for line in lines for p, f in line.factors.items() if f != 1.0})

    # conditions: one simulation condition each, one pre-equilibration per basal group
    rows, sim_ids, pre_ids, cell_params = [], {}, {}, {}
    for c, cond in enumerate(conditions):
        line = lines[c]
        line_values = {p: f"{p}__{petab_id(line.name)}" for p in scaled}
        for p in scaled:
            line_nominal = model.default_params(line.name)[model.index("parameters", p)]
            cell_params[line_values[p]] = (p, float(line_nominal))
        basal = tuple(inputs[c] * pretreat)
        key = (line.name, basal)
        if key not in pre_ids:
            pre_ids[key] = f"preeq_{petab_id(line.name)}_{len(pre_ids) + 1}"
            row = {C.CONDITION_ID: pre_ids[key], C.CONDITION_NAME: f"basal {line.name}"}
            row.update({INPUT_PREFIX + u.name: basal[i] for i, u in enumerate(model.inputs)})
            row.update(line_values)
            row.update(slot_columns[-1])
            rows.append(row)
        sim_id = petab_id(cond.id)
        if sim_id in sim_ids.values():
            raise PetabError(f"conditions {cond.id!r} and another map to the PEtab id {sim_id!r}")
        sim_ids[cond.id] = sim_id
        row = {C.CONDITION_ID: sim_id, C.CONDITION_NAME: f"{cond.id} ({line.name})"}
        row.update({INPUT_PREFIX + u.name: inputs[c, i] for i, u in enumerate(model.inputs)})
        row.update(line_values)
        row.update(slot_columns[c])
        params = np.asarray(model.default_params(line.name))
        for state, value in model.treatment_state(params, inputs[c]).items():
            value = float(value)
            if not math.isfinite(value):
                raise PetabError(f"treatment state of {state!r} in {cond.id!r} is {value}")
            row[state] = value
        rows.append(row)
    pre_of = {
        cond.id: pre_ids[(lines[c].name, tuple(inputs[c] * pretreat))]
        for c, cond in enumerate(conditions)
    }
    condition_df = pd.DataFrame(rows).set_index(C.CONDITION_ID)

    # observables: one per (observable, transformation, distribution, scaled?)
    kinds = sorted(
        {
            (m.observable, m.transformation, m.distribution, m.scale is not None)
            for m in measurements
        }
    )
    by_name: dict[str, list] = {}
    for kind in kinds:
        by_name.setdefault(kind[0], []).append(kind)
    obs_ids, obs_rows = {}, []
    for obs_name, variants in by_name.items():
        for kind in variants:
            _, transform, dist, has_scale = kind
            oid = f"obs_{obs_name}"
            if len(variants) > 1:
                oid += f"__{transform}_{dist}" + ("_scaled" if has_scale else "")
            obs_ids[kind] = oid
            expr = obs_exprs[obs_name]
            if has_scale:
                expr = sympy.Symbol(f"observableParameter1_{oid}") * expr
            obs_rows.append(
                {
                    C.OBSERVABLE_ID: oid,
                    C.OBSERVABLE_NAME: obs_name,
                    C.OBSERVABLE_FORMULA: petab_math_str(expr),
                    C.NOISE_FORMULA: f"noiseParameter1_{oid}",
                    C.OBSERVABLE_TRANSFORMATION: transform,
                    C.NOISE_DISTRIBUTION: dist,
                }
            )
    observable_df = pd.DataFrame(obs_rows).set_index(C.OBSERVABLE_ID)

    measurement_df = pd.DataFrame(
        [
            {
                C.OBSERVABLE_ID: obs_ids[
                    (m.observable, m.transformation, m.distribution, m.scale is not None)
                ],
                C.PREEQUILIBRATION_CONDITION_ID: pre_of[m.condition],
                C.SIMULATION_CONDITION_ID: sim_ids[m.condition],
                C.MEASUREMENT: float(m.value),
                C.TIME: float(m.time),
                C.OBSERVABLE_PARAMETERS: "" if m.scale is None else _override(m.scale),
                C.NOISE_PARAMETERS: _override(m.noise),
            }
            for m in measurements
        ]
    )

    nominal = np.asarray(model.default_params(), dtype=np.float64)  # variant switches set
    parameter_rows = [
        _parameter_row(p.name, p, float(nominal[i]), p.name)
        for i, p in enumerate(model.parameters)
        if p.name not in scaled
    ]
    parameter_rows += [
        _parameter_row(pid, specs[parent], nominal, f"{parent} in one cell line")
        for pid, (parent, nominal) in sorted(cell_params.items())
    ]
    for pid, nominal in sorted(noise_parameters.items()):
        if not (math.isfinite(nominal) and nominal > 0):
            raise PetabError(f"noise parameter {pid!r}: nominal value {nominal!r} must be > 0")
        parameter_rows.append(
            {
                C.PARAMETER_ID: pid,
                C.PARAMETER_NAME: pid,
                C.PARAMETER_SCALE: C.LOG10,
                C.LOWER_BOUND: nominal / 1000.0,
                C.UPPER_BOUND: nominal * 1000.0,
                C.NOMINAL_VALUE: nominal,
                C.ESTIMATE: 1,
                C.OBJECTIVE_PRIOR_TYPE: "",
                C.OBJECTIVE_PRIOR_PARAMETERS: "",
            }
        )
    parameter_df = pd.DataFrame(parameter_rows).set_index(C.PARAMETER_ID)

    files = {
        "sbml": f"model_{name}.xml",
        "conditions": f"experimentalCondition_{name}.tsv",
        "measurements": f"measurementData_{name}.tsv",
        "observables": f"observables_{name}.tsv",
        "parameters": f"parameters_{name}.tsv",
    }
    events = None if batch.schedule is None else batch.schedule.events
    (out_dir / files["sbml"]).write_text(build_sbml(model, events), encoding="utf-8")
    petab.write_condition_df(condition_df, out_dir / files["conditions"])
    petab.write_measurement_df(measurement_df, out_dir / files["measurements"])
    petab.write_observable_df(observable_df, out_dir / files["observables"])
    petab.write_parameter_df(parameter_df, out_dir / files["parameters"])
    yaml_path = out_dir / f"{name}.yaml"
    petab.create_problem_yaml(
        sbml_files=out_dir / files["sbml"],
        condition_files=out_dir / files["conditions"],
        measurement_files=out_dir / files["measurements"],
        parameter_file=out_dir / files["parameters"],
        observable_files=out_dir / files["observables"],
        yaml_file=yaml_path,
        relative_paths=True,
    )
    return yaml_path


def _schedule_columns(batch) -> list[dict[str, float]]:
    """Condition-table entries of the dose slots: one dict per condition of the batch,
    then one for a condition without doses (pre-equilibrations); empty dicts when no
    condition has a schedule."""
    if batch.schedule is None:
        return [{} for _ in range(batch.n_conditions + 1)]
    slots = batch.schedule.events.slots
    unused = {}
    for k, (_, _, op) in enumerate(slots):
        time_id, value_id = schedule_ids(k)
        unused[time_id] = UNUSED_DOSE_TIME
        if op != "off":
            unused[value_id] = 0.0
    out = [dict(unused) for _ in range(batch.n_conditions + 1)]
    for row, c in enumerate(batch.schedule.conditions):
        for k, (_, _, op) in enumerate(slots):
            time_id, value_id = schedule_ids(k)
            out[c][time_id] = float(batch.dose_times[row, k])
            if op != "off":
                out[c][value_id] = float(batch.dose_values[row, k])
    return out


def _override(value) -> str | float:
    return value if isinstance(value, str) else float(value)


__all__ = [
    "ExportMeasurement",
    "build_sbml",
    "export_problem",
    "model_expressions",
    "petab_id",
    "schedule_ids",
    "sympy_to_ast",
]
