"""A PEtab problem as arrays: :class:`PetabProblem` and :func:`load_problem`.

Values that the tables give (PEtab parameters, numbers in condition and measurement
tables, SBML defaults) are gathered into one *pool* vector: first the PEtab
parameters (linear scale, in the order of the parameter table), then numeric
constants. Every model parameter of every condition, every initial-value override
and every observable/noise placeholder of every measurement is an index into that
pool, so the whole mapping is one differentiable gather.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pandas as pd
from petab.v1 import C

from ..errors import PetabError
from ._lint import library_lint, lint, placeholders
from ._math import Expr, free_symbols, parse_formula
from ._model import SbmlModel
from ._sbml import read_sbml
from ._tables import PetabTables, cell_is_empty, read_tables, split_overrides


@dataclass(frozen=True, eq=False)
class ParameterTable:
    """The PEtab parameter table as arrays ([n] = one entry per PEtab parameter).

    Attributes:
        ids, names: parameter ids and display names.
        scales: ``lin``, ``log`` (natural) or ``log10``: the scale of estimation.
        lower, upper, nominal: [n] bounds and nominal values on the linear scale.
        estimate: [n] bool, True for estimated parameters.
        prior_types: objective prior type ('' where none is given: flat within bounds).
        prior_parameters: [n, 2] the prior's two parameters (NaN where none).
    """

    ids: tuple[str, ...]
    names: tuple[str, ...]
    scales: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    nominal: np.ndarray
    estimate: np.ndarray
    prior_types: tuple[str, ...]
    prior_parameters: np.ndarray

    @property
    def estimated_index(self) -> np.ndarray:
        """[n_estimated] positions of the estimated parameters."""
        return np.flatnonzero(self.estimate)

    @property
    def estimated_ids(self) -> tuple[str, ...]:
        return tuple(self.ids[i] for i in self.estimated_index)

    def _scale_index(self, scale: str) -> np.ndarray:
        return np.array([s == scale for s in self.scales])

    def to_scale(self, values: np.ndarray) -> np.ndarray:
        """[n] linear values -> their parameter scales (host-side numpy)."""
        values = np.asarray(values, dtype=np.float64).copy()
        with np.errstate(divide="ignore", invalid="ignore"):
            values[self._scale_index("log")] = np.log(values[self._scale_index("log")])
            values[self._scale_index("log10")] = np.log10(values[self._scale_index("log10")])
        return values

    @property
    def nominal_theta(self) -> np.ndarray:
        """[n_estimated] nominal values of the estimated parameters on their scales."""
        return self.to_scale(self.nominal)[self.estimated_index]

    @property
    def bounds_theta(self) -> tuple[np.ndarray, np.ndarray]:
        """([n_estimated], [n_estimated]) bounds of the estimated parameters on their scales."""
        idx = self.estimated_index
        return self.to_scale(self.lower)[idx], self.to_scale(self.upper)[idx]

    def values(self, theta) -> jnp.ndarray:
        """[n] linear values of all PEtab parameters: nominal values, with the estimated
        ones replaced by ``theta`` [n_estimated] (on their scales) transformed back."""
        theta = jnp.asarray(theta, dtype=jnp.float64)
        idx = self.estimated_index
        scales = np.array(self.scales)[idx]
        out = jnp.asarray(self.nominal, dtype=jnp.float64)
        for scale in ("lin", "log", "log10"):
            sel = np.flatnonzero(scales == scale)
            if sel.size == 0:
                continue
            x = theta[sel]
            if scale == "log":
                x = jnp.exp(x)
            elif scale == "log10":
                x = jnp.power(10.0, x)
            out = out.at[idx[sel]].set(x)
        return out

    def to_frame(self) -> pd.DataFrame:
        """The table in PEtab layout (indexed by ``parameterId``)."""
        priors = ["" if np.isnan(p).all() else f"{p[0]!r};{p[1]!r}" for p in self.prior_parameters]
        return pd.DataFrame(
            {
                C.PARAMETER_ID: self.ids,
                C.PARAMETER_NAME: self.names,
                C.PARAMETER_SCALE: self.scales,
                C.LOWER_BOUND: self.lower,
                C.UPPER_BOUND: self.upper,
                C.NOMINAL_VALUE: self.nominal,
                C.ESTIMATE: self.estimate.astype(int),
                C.OBJECTIVE_PRIOR_TYPE: self.prior_types,
                C.OBJECTIVE_PRIOR_PARAMETERS: priors,
            }
        ).set_index(C.PARAMETER_ID)


@dataclass(frozen=True)
class Observable:
    """One row of the observable table.

    ``formula`` and ``noise_formula`` are expression trees; their placeholders
    ``observableParameter<k>_<id>`` and ``noiseParameter<k>_<id>`` take per-measurement
    values. ``transformation``: ``lin``, ``log``, ``log10``; ``noise_distribution``:
    ``normal`` or ``laplace``.
    """

    id: str
    formula: Expr
    noise_formula: Expr
    transformation: str
    noise_distribution: str
    n_observable_parameters: int
    n_noise_parameters: int


@dataclass(frozen=True, eq=False)
class PetabProblem:
    """A PEtab problem ready to simulate (host-side numpy arrays).

    Shapes: ``n_cond`` conditions used, ``n_sim`` simulations (pairs of
    pre-equilibration and simulation condition), ``n_times`` distinct measurement
    times, ``n_meas`` measurements, ``n_pool`` = PEtab parameters + constants.

    Attributes:
        name: problem name (the YAML file's stem).
        model: the imported SBML model.
        parameters: the PEtab parameter table.
        observables: the observable table, in its order.
        condition_ids: [n_cond] conditions used by the measurements.
        simulations: [n_sim] (pre-equilibration condition id or None, condition id).
        times: [n_times] sorted distinct finite measurement times (the model's time
            unit); ``[0.0]`` when every measurement is a steady-state one.
        constants: [n_pool - n_parameters] numbers referenced from the tables.
        condition_parameter_index: [n_cond, n_params] pool index of each model parameter.
        condition_initial_index: [n_cond, n_states] pool index of initial-value overrides.
        condition_initial_set: [n_cond, n_states] 1.0 where a condition sets a state.
        simulation_condition_index, preequilibration_index: [n_sim] condition positions
            (-1: no pre-equilibration).
        measurement_simulation_index, measurement_time_index,
        measurement_observable_index: [n_meas] positions of each measurement; the
            time index of a steady-state measurement (``time = inf``) is ``n_times``.
        simulation_t_end: [n_sim] last finite measurement time of each simulation (0
            when it has none).
        steady_state_simulations: simulations with steady-state measurements.
        measurements: [n_meas] measured values.
        observable_parameter_index, noise_parameter_index: [n_meas, k] pool indices of the
            placeholders' values (padded).
        measurement_table: the measurement table as read.
        output_parameter_ids: PEtab parameters that formulas use directly.
    """

    name: str
    model: SbmlModel
    parameters: ParameterTable
    observables: tuple[Observable, ...]
    condition_ids: tuple[str, ...]
    simulations: tuple[tuple[str | None, str], ...]
    times: np.ndarray
    constants: np.ndarray
    condition_parameter_index: np.ndarray
    condition_initial_index: np.ndarray
    condition_initial_set: np.ndarray
    simulation_condition_index: np.ndarray
    preequilibration_index: np.ndarray
    measurement_simulation_index: np.ndarray
    measurement_time_index: np.ndarray
    measurement_observable_index: np.ndarray
    measurements: np.ndarray
    observable_parameter_index: np.ndarray
    noise_parameter_index: np.ndarray
    measurement_table: pd.DataFrame
    output_parameter_ids: tuple[str, ...]
    simulation_t_end: np.ndarray
    steady_state_simulations: tuple[int, ...]

    @property
    def n_measurements(self) -> int:
        return len(self.measurements)

    def pool(self, parameter_values) -> jnp.ndarray:
        """[n_pool] PEtab parameter values [n_parameters] followed by the constants."""
        return jnp.concatenate([jnp.asarray(parameter_values), jnp.asarray(self.constants)])


class _Pool:
    def __init__(self, n_parameters: int) -> None:
        self.n = n_parameters
        self.values: list[float] = []
        self.index: dict[float, int] = {}

    def constant(self, value: float) -> int:
        key = float(value)
        if key != key:  # NaN: one slot
            key = math.nan
            for i, v in enumerate(self.values):
                if v != v:
                    return self.n + i
        elif key in self.index:
            return self.index[key]
        self.values.append(key)
        self.index[key] = self.n + len(self.values) - 1
        return self.index[key]


def _parse_observables(t: PetabTables) -> tuple[dict[str, tuple[Expr, Expr]], list[str]]:
    formulas, errors = {}, []
    for pos, (oid, row) in enumerate(t.observable.iterrows()):
        where = f"{t.observable_file} line {pos + 2} (observable {oid!r})"
        try:
            obs = parse_formula(row.get(C.OBSERVABLE_FORMULA), where=f"{where}, observableFormula")
            noise = parse_formula(row.get(C.NOISE_FORMULA), where=f"{where}, noiseFormula")
        except PetabError as err:
            errors.append(str(err))
            continue
        formulas[oid] = (obs, noise)
    return formulas, errors


def _parameter_table(t: PetabTables) -> ParameterTable:
    df = t.parameter
    n = len(df)

    def column(name, default=np.nan):
        if name not in df.columns:
            return np.full(n, default, dtype=np.float64)
        return pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=np.float64)

    prior_types, prior_params = [], np.full((n, 2), np.nan)
    for i, (_, row) in enumerate(df.iterrows()):
        kind = (
            ""
            if cell_is_empty(row.get(C.OBJECTIVE_PRIOR_TYPE))
            else str(row[C.OBJECTIVE_PRIOR_TYPE])
        )
        prior_types.append(kind.strip())
        raw = row.get(C.OBJECTIVE_PRIOR_PARAMETERS)
        if kind and not cell_is_empty(raw):
            prior_params[i] = [float(v) for v in str(raw).split(C.PARAMETER_SEPARATOR)]
    names = (
        [str(v) if not cell_is_empty(v) else pid for pid, v in df[C.PARAMETER_NAME].items()]
        if C.PARAMETER_NAME in df.columns
        else list(df.index)
    )
    scales = [
        "lin" if cell_is_empty(v) else str(v).strip() for v in df[C.PARAMETER_SCALE].to_list()
    ]
    return ParameterTable(
        ids=tuple(df.index),
        names=tuple(names),
        scales=tuple(scales),
        lower=column(C.LOWER_BOUND),
        upper=column(C.UPPER_BOUND),
        nominal=column(C.NOMINAL_VALUE),
        estimate=column(C.ESTIMATE, 0.0) == 1.0,
        prior_types=tuple(prior_types),
        prior_parameters=prior_params,
    )


def load_problem(yaml_path: str | Path) -> PetabProblem:
    """Read, check and prepare a PEtab v1 problem.

    Every problem found by the checks (:mod:`._lint`) and every formula that does not
    parse is reported in one :class:`PetabError`.
    """
    return problem_from_tables(read_tables(yaml_path))


def problem_from_tables(t: PetabTables) -> PetabProblem:  # noqa: C901 - sequential assembly
    """The :class:`PetabProblem` of already-read tables: checked and prepared as by
    :func:`load_problem`, which reads them first."""
    library = library_lint(t.yaml_path)
    try:
        spec = read_sbml(t.sbml_path)
    except PetabError as err:
        raise PetabError(_report(t.yaml_path.name, library, [str(err)])) from None
    model = SbmlModel.from_spec(spec)
    formulas, errors = _parse_observables(t)
    errors += lint(t, spec, formulas)
    if library or errors:
        raise PetabError(_report(t.yaml_path.name, library, errors))
    parameters = _parameter_table(t)
    petab_index = {pid: i for i, pid in enumerate(parameters.ids)}
    pool = _Pool(len(parameters.ids))

    def resolve(entry) -> int:
        if isinstance(entry, str):
            return petab_index[entry.strip()]
        return pool.constant(float(entry))

    meas = t.measurement
    preeq_col = (
        meas[C.PREEQUILIBRATION_CONDITION_ID]
        if C.PREEQUILIBRATION_CONDITION_ID in meas.columns
        else pd.Series([None] * len(meas))
    )
    pairs = [
        (None if cell_is_empty(p) else str(p), str(s))
        for p, s in zip(preeq_col, meas[C.SIMULATION_CONDITION_ID], strict=True)
    ]
    simulations = tuple(dict.fromkeys(pairs))
    condition_ids = tuple(dict.fromkeys(c for pair in simulations for c in pair if c is not None))

    cdf = t.condition
    n_cond, n_par, n_st = len(condition_ids), model.n_params, model.n_states
    par_index = np.zeros((n_cond, n_par), dtype=np.int32)
    init_index = np.full((n_cond, n_st), pool.constant(0.0), dtype=np.int32)
    init_set = np.zeros((n_cond, n_st), dtype=np.float64)
    missing = []
    for c, cid in enumerate(condition_ids):
        row = cdf.loc[cid]
        for j, pid in enumerate(spec.parameter_ids):
            value = row.get(pid) if pid in cdf.columns else None
            if value is not None and not cell_is_empty(value):
                par_index[c, j] = resolve(_number_or_id(value))
            elif pid in petab_index:
                par_index[c, j] = petab_index[pid]
            elif math.isnan(spec.parameter_values[j]):
                missing.append(f"{pid!r} (condition {cid!r})")
            else:
                par_index[c, j] = pool.constant(spec.parameter_values[j])
        for j, sid in enumerate(spec.state_ids):
            value = row.get(sid) if sid in cdf.columns else None
            if value is not None and not cell_is_empty(value):
                init_index[c, j] = resolve(_number_or_id(value))
                init_set[c, j] = 1.0
    if missing:
        raise PetabError(
            f"{t.yaml_path.name}: model parameter(s) {', '.join(missing[:10])} have no value in "
            f"the SBML model and none in {t.parameter_file} or {t.condition_file}"
        )

    all_times = meas[C.TIME].astype(float).to_numpy()
    finite = np.isfinite(all_times)
    times = np.array(sorted(set(all_times[finite])) or [0.0], dtype=np.float64)
    observable_ids = tuple(t.observable.index)
    observables = []
    for oid, row in t.observable.iterrows():
        obs, noise = formulas[oid]
        observables.append(
            Observable(
                id=oid,
                formula=obs,
                noise_formula=noise,
                transformation=_text_or(row.get(C.OBSERVABLE_TRANSFORMATION), "lin"),
                noise_distribution=_text_or(row.get(C.NOISE_DISTRIBUTION), "normal"),
                n_observable_parameters=placeholders(obs, "observable", oid),
                n_noise_parameters=placeholders(noise, "noise", oid),
            )
        )
    k_obs = max([o.n_observable_parameters for o in observables] + [1])
    k_noise = max([o.n_noise_parameters for o in observables] + [1])
    n_meas = len(meas)
    filler = pool.constant(0.0)
    obs_index = np.full((n_meas, k_obs), filler, dtype=np.int32)
    noise_index = np.full((n_meas, k_noise), filler, dtype=np.int32)
    sim_position = {pair: i for i, pair in enumerate(simulations)}
    time_position = {float(v): i for i, v in enumerate(times)}
    time_position[math.inf] = len(times)
    sim_of_meas = np.array([sim_position[p] for p in pairs], dtype=np.int32)
    t_end = np.zeros(len(simulations))
    np.maximum.at(t_end, sim_of_meas[finite], all_times[finite])
    steady = tuple(sorted({int(i) for i in sim_of_meas[~finite]}))
    for i, row in enumerate(meas.to_dict("records")):
        for k, entry in enumerate(split_overrides(row.get(C.OBSERVABLE_PARAMETERS))):
            obs_index[i, k] = resolve(entry)
        for k, entry in enumerate(split_overrides(row.get(C.NOISE_PARAMETERS))):
            noise_index[i, k] = resolve(entry)

    model_ids = spec.known_ids
    used = set()
    for obs, noise in formulas.values():
        used |= free_symbols(obs) | free_symbols(noise)
    output_ids = tuple(p for p in parameters.ids if p in used and p not in model_ids)
    condition_position = {cid: i for i, cid in enumerate(condition_ids)}
    return PetabProblem(
        name=t.name,
        model=model,
        parameters=parameters,
        observables=tuple(observables),
        condition_ids=condition_ids,
        simulations=simulations,
        times=times,
        constants=np.array(pool.values, dtype=np.float64),
        condition_parameter_index=par_index,
        condition_initial_index=init_index,
        condition_initial_set=init_set,
        simulation_condition_index=np.array(
            [condition_position[s] for _, s in simulations], dtype=np.int32
        ),
        preequilibration_index=np.array(
            [-1 if p is None else condition_position[p] for p, _ in simulations], dtype=np.int32
        ),
        measurement_simulation_index=sim_of_meas,
        measurement_time_index=np.array(
            [time_position[float(v)] for v in meas[C.TIME]], dtype=np.int32
        ),
        measurement_observable_index=np.array(
            [observable_ids.index(o) for o in meas[C.OBSERVABLE_ID]], dtype=np.int32
        ),
        measurements=meas[C.MEASUREMENT].to_numpy(dtype=np.float64),
        observable_parameter_index=obs_index,
        noise_parameter_index=noise_index,
        measurement_table=meas,
        output_parameter_ids=output_ids,
        simulation_t_end=t_end,
        steady_state_simulations=steady,
    )


def _report(name: str, library: list[str], ours: list[str]) -> str:
    """One message: the petab library's lint errors first, then il6rcc's findings."""
    parts = []
    if library:
        parts.append(
            f"{name}: the petab library's lint (petablint) reports {len(library)} error(s):"
            + "".join(f"\n  - {m}" for m in library)
        )
    if ours:
        parts.append(f"{name}: {len(ours)} problem(s) found:" + "".join(f"\n  - {m}" for m in ours))
    return "\n".join(parts)


def _number_or_id(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value).strip()


def _text_or(value, default: str) -> str:
    return default if cell_is_empty(value) else str(value).strip()


__all__ = ["Observable", "ParameterTable", "PetabProblem", "load_problem", "problem_from_tables"]
