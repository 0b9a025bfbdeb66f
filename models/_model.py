"""The model API: what an ODE model declares.

A model is a frozen, hashable object (so ``jax.jit`` compiles once per model and
variant) whose class declares

* ``states``: the names of the state variables,
* ``parameters``: :class:`ParameterSpec` entries (unit, default, literature source),
* ``inputs``: :class:`InputSpec` entries, the condition inputs (perturbations),
* ``observables``: :class:`ObservableSpec` entries,
* ``cell_lines``: :class:`CellLine` entries, named parameter sets over the defaults,

and implements ``vector_field(t, y, params, inputs)`` and ``observe(t, y, params, inputs)``
as pure JAX functions of flat arrays. The basal (untreated) state is not typed in: it is
computed as the steady state of the vector field under the pre-treatment inputs
(see :func:`il6rcc.models.basal_state`).

A user model lives in any Python file::

    from il6rcc.models import ODEModel, ParameterSpec, ObservableSpec

    class Decay(ODEModel):
        name = "decay"
        states = ("x",)
        parameters = (ParameterSpec("k", 0.5, "1/h", "decay rate"),)
        observables = (ObservableSpec("x", "a.u.", "amount"),)
        equilibrate = False

        def vector_field(self, t, y, params, inputs):
            return -params[0] * y

        def observe(self, t, y, params, inputs):
            return y

        def initial_guess(self, params, inputs):
            return jnp.ones(1)

and a config points at it with ``model: path/to/file.py:Decay``.

A :class:`Condition` holds a model's inputs constant from treatment start; timed doses
(a bolus into a state, an input switched on and washed out, repeated every few hours)
go in its ``schedule``, a :class:`~il6rcc.models.DosingSchedule`::

    Condition("pulsed", "default", schedule=DosingSchedule((
        Bolus("x", amount=1.5, time=1.0, every=12.0, count=3),
    )))
"""

from __future__ import annotations

import abc
import inspect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import jax.numpy as jnp
import numpy as np

from ..errors import ModelSpecError, choices
from ._dosing import DosingSchedule
from ._types import Inputs, ObservableValues, Params, State

Scale = Literal["log", "logit", "lin"]


@dataclass(frozen=True)
class ParameterSpec:
    """One model parameter.

    Attributes:
        name: identifier (PEtab-style: letters, digits, underscore).
        default: nominal value, in ``unit``.
        unit: physical unit (time unit is hours throughout il6rcc).
        description: what the parameter means.
        source: where the default comes from: a DOI/PMID/PEtab reference with the value
            and its conversion, or ``"assumed: <reason>"`` when no source exists.
        scale: how the parameter is transformed for inference: ``log`` for positive
            rates and amounts, ``logit`` for fractions in (0, 1), ``lin`` otherwise.
        log10_sd: default prior width in decades (log-scale parameters) used when a
            config does not set one; wider when the source is weaker.
        estimable: False for structural constants (e.g. mechanism switches) that
            inference must never sample.
    """

    name: str
    default: float
    unit: str
    description: str
    source: str = "assumed: no measured value available"
    scale: Scale = "log"
    log10_sd: float = 1.0
    estimable: bool = True

    def __post_init__(self) -> None:
        problems = []
        if not self.name.isidentifier():
            problems.append(f"name {self.name!r} is not an identifier")
        if not math.isfinite(self.default):
            problems.append(f"default {self.default!r} is not finite")
        if self.scale == "log" and self.default <= 0:
            problems.append(f"default {self.default!r} must be > 0 on log scale")
        if self.scale == "logit" and not 0 < self.default < 1:
            problems.append(f"default {self.default!r} must be in (0, 1) on logit scale")
        if self.scale not in ("log", "logit", "lin"):
            problems.append(f"scale {self.scale!r} is not one of 'log', 'logit', 'lin'")
        if not self.log10_sd > 0:
            problems.append(f"log10_sd {self.log10_sd!r} must be > 0")
        if problems:
            raise ModelSpecError(f"parameter {self.name!r}: " + "; ".join(problems))


@dataclass(frozen=True)
class InputSpec:
    """One condition input (a perturbation).

    Attributes:
        name: identifier used in configs and data tables (e.g. ``ifn_alpha``).
        unit: dose unit (``indicator`` for on/off perturbations such as an siRNA).
        description: what it is.
        pretreatment: True for perturbations already established before treatment
            starts (siRNA knock-down, stable over-expression, in-vivo setting); they
            are applied during pre-equilibration to the basal state.
        indicator: True when the value must be 0 or 1.
        phase: True for the input that the simulator sets to 0 during pre-equilibration
            and to 1 once treatment starts (users do not set it).
    """

    name: str
    unit: str
    description: str
    pretreatment: bool = False
    indicator: bool = False
    phase: bool = False


@dataclass(frozen=True)
class ObservableSpec:
    """One observable: a function of the state that an assay reads out.

    ``relative`` observables are in arbitrary units: only ratios between conditions
    carry information (qPCR, western blots). ``absolute`` ones have a physical unit.
    """

    name: str
    unit: str
    description: str
    relative: bool = True


@dataclass(frozen=True)
class CellLine:
    """A named parameter set: multiplicative factors on the model defaults.

    ``source`` says where the differences come from (or that they are assumed).
    """

    name: str
    description: str = ""
    factors: Mapping[str, float] = field(default_factory=dict)
    source: str = ""
    aliases: tuple[str, ...] = ()

    def __hash__(self) -> int:
        return hash((self.name, tuple(sorted(self.factors.items())), self.aliases))


#: Declarations a model may leave out, and what they then are.
OPTIONAL_DECLARATIONS = {"inputs": (), "cell_lines": (CellLine("default"),)}


@dataclass(frozen=True)
class ODEModel(abc.ABC):
    """The interface of all il6rcc models: abstract, and every concrete model is final
    (the equinox pattern: a model that needs a variation of another wraps it or shares
    an abstract base with it; it never subclasses a concrete model).

    A model declares ``name``, ``states``, ``parameters`` and ``observables`` (and, when
    it has them, ``inputs`` and ``cell_lines``; left out they are none and one
    ``default`` line), as class attributes or as properties, and implements
    ``vector_field`` and ``observe``. Instances are frozen dataclasses: two instances
    with equal fields (e.g. the same mechanism variant) are equal and hash equal, so
    jitted simulation compiles once.
    """

    #: States whose basal value is fixed by ``initial_guess`` instead of solved for
    #: (integrators of growth, whose derivative is zero at any basal state).
    accumulator_states: ClassVar[tuple[str, ...]] = ()
    #: States that can never be negative (concentrations, fractions): a steady state
    #: with one of them negative is rejected as outside the model's domain.
    nonnegative_states: ClassVar[tuple[str, ...]] = ()
    #: Whether the basal state is computed as a steady state (True) or is
    #: ``initial_guess`` itself (False, e.g. models with explicit initial values).
    equilibrate: ClassVar[bool] = True
    #: Pre-treatment inputs that define a condition's reference (e.g. untreated cells of
    #: the same line and setting): when set, the simulator also solves the basal state
    #: under these inputs alone and passes it to :meth:`anchor`. None: no reference.
    reference_inputs: ClassVar[tuple[str, ...] | None] = None

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        for base in cls.__mro__[1:]:
            if base is not ODEModel and issubclass(base, ODEModel) and not inspect.isabstract(base):
                raise TypeError(
                    f"{cls.__name__} subclasses {base.__name__}, a concrete model: concrete "
                    f"models are final. Share an abstract base (one that leaves a member "
                    f"abstract) or wrap the model instead."
                )
        for name, default in OPTIONAL_DECLARATIONS.items():
            if getattr(getattr(cls, name, None), "__isabstractmethod__", False):
                setattr(cls, name, default)  # left out: none (set before ABC counts it)

    # ------------------------------------------------------------------ declarations
    @property
    @abc.abstractmethod
    def name(self) -> str:
        """The model's name."""

    @property
    @abc.abstractmethod
    def states(self) -> tuple[str, ...]:
        """Names of the state variables."""

    @property
    @abc.abstractmethod
    def parameters(self) -> tuple[ParameterSpec, ...]:
        """The parameters (unit, default, literature source)."""

    @property
    @abc.abstractmethod
    def inputs(self) -> tuple[InputSpec, ...]:
        """The condition inputs (perturbations); none when a model leaves them out."""

    @property
    @abc.abstractmethod
    def observables(self) -> tuple[ObservableSpec, ...]:
        """What assays read out, in the order :meth:`observe` returns them."""

    @property
    @abc.abstractmethod
    def cell_lines(self) -> tuple[CellLine, ...]:
        """Named parameter sets over the defaults; one ``default`` line when left out."""

    # ------------------------------------------------------------------ interface
    @abc.abstractmethod
    def vector_field(self, t: float, y: State, params: Params, inputs: Inputs) -> State:
        """dy/dt, time in hours."""

    @abc.abstractmethod
    def observe(self, t: float, y: State, params: Params, inputs: Inputs) -> ObservableValues:
        """All observables at one time point, in the order of ``observables``."""

    @property
    def jacobian_pattern(self) -> np.ndarray | None:
        """[n_states, n_states] the structural nonzeros of d(vector_field)/dy, if the
        model knows them (large models: the BDF solver then factorises sparsely), else
        None. The default is None."""
        return None

    def initial_guess(self, params: Params, inputs: Inputs) -> State:
        """Starting point of the basal steady-state search (or the initial state when
        ``equilibrate`` is False). The default is all ones."""
        return jnp.ones(len(self.states))

    def treatment_state(self, params: Params, inputs: Inputs) -> Mapping[str, jnp.ndarray]:
        """States set when treatment starts, by name (e.g. a bolus of exogenous ligand).
        The default sets none."""
        return {}

    def anchor(self, y: State, y_ref: State, params: Params, inputs: Inputs) -> State:
        """The basal state ``y`` completed from the reference state ``y_ref`` (see
        :attr:`reference_inputs`); the default returns ``y``."""
        return y

    @property
    def program(self) -> ODEModel:
        """The instance whose equations are compiled. A model whose variants differ only
        in parameter values returns one shared instance, so all variants share one
        compiled program; the default is the model itself."""
        return self

    def perturb(self, y: State, params: Params, inputs: Inputs) -> State:
        """State right after treatment starts: the basal state with
        :meth:`treatment_state` applied."""
        for name, value in self.treatment_state(params, inputs).items():
            y = y.at[self.index("states", name)].set(value)
        return y

    # ------------------------------------------------------------------ derived
    @property
    def n_states(self) -> int:
        return len(self.states)

    @property
    def n_params(self) -> int:
        return len(self.parameters)

    @property
    def n_inputs(self) -> int:
        return len(self.inputs)

    @property
    def n_observables(self) -> int:
        return len(self.observables)

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(u.name for u in self.inputs)

    @property
    def observable_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.observables)

    @property
    def cell_line_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.cell_lines)

    @property
    def variant_name(self) -> str:
        """A label of the mechanism variant; models without variants return ``""``."""
        return ""

    def index(self, kind: str, name: str) -> int:
        """Position of ``name`` among the model's ``kind`` ('states', 'parameters',
        'inputs' or 'observables'); a clear error listing the valid names otherwise."""
        names = {
            "states": self.states,
            "parameters": self.parameter_names,
            "inputs": self.input_names,
            "observables": self.observable_names,
        }[kind]
        try:
            return names.index(name)
        except ValueError:
            raise ModelSpecError(
                f"model {self.name!r} has no {kind[:-1]} {name!r}; valid: {choices(names)}"
            ) from None

    def unpack(self, params: Params) -> dict[str, jnp.ndarray]:
        """Parameters by name (for use inside ``vector_field``; trace-time only)."""
        return {p.name: params[i] for i, p in enumerate(self.parameters)}

    def named_states(self, y: State) -> dict[str, jnp.ndarray]:
        """States by name (trace-time only)."""
        return {name: y[i] for i, name in enumerate(self.states)}

    def named_inputs(self, inputs: Inputs) -> dict[str, jnp.ndarray]:
        """Inputs by name (trace-time only)."""
        return {u.name: inputs[i] for i, u in enumerate(self.inputs)}

    def cell_line(self, name: str) -> CellLine:
        """The cell line called ``name`` (or one of its aliases)."""
        for line in self.cell_lines:
            if name == line.name or name in line.aliases:
                return line
        raise ModelSpecError(
            f"model {self.name!r} has no cell line {name!r}; valid: {choices(self.cell_line_names)}"
        )

    def default_params(self, cell_line: str | None = None) -> np.ndarray:
        """Default parameter vector, with the cell line's factors applied."""
        values = np.array([p.default for p in self.parameters], dtype=np.float64)
        if cell_line is not None:
            for pname, factor in self.cell_line(cell_line).factors.items():
                values[self.index("parameters", pname)] *= factor
        return values

    def params_from_mapping(
        self, values: Mapping[str, float], cell_line: str | None = None
    ) -> np.ndarray:
        """Default parameters with some replaced by name."""
        out = self.default_params(cell_line)
        for pname, v in values.items():
            out[self.index("parameters", pname)] = v
        return out

    def pretreatment_mask(self) -> np.ndarray:
        """1.0 for inputs present during pre-equilibration, 0.0 for treatments."""
        return np.array([1.0 if u.pretreatment else 0.0 for u in self.inputs])

    def phase_mask(self) -> np.ndarray:
        """1.0 for the treatment-phase input (set to 1 by the simulator), else 0.0."""
        return np.array([1.0 if u.phase else 0.0 for u in self.inputs])

    def validate(self) -> None:
        """Check the declarations; raise :class:`ModelSpecError` listing every problem."""
        problems: list[str] = []
        for kind, names in (
            ("state", self.states),
            ("parameter", self.parameter_names),
            ("input", self.input_names),
            ("observable", self.observable_names),
            ("cell line", self.cell_line_names),
        ):
            seen = set()
            for n in names:
                if n in seen:
                    problems.append(f"duplicate {kind} name {n!r}")
                seen.add(n)
        pnames = set(self.parameter_names)
        for line in self.cell_lines:
            for pname, factor in line.factors.items():
                if pname not in pnames:
                    problems.append(f"cell line {line.name!r} scales unknown parameter {pname!r}")
                if not (math.isfinite(factor) and factor > 0):
                    problems.append(
                        f"cell line {line.name!r}: factor of {pname!r} must be > 0, got {factor!r}"
                    )
        for s in self.accumulator_states:
            if s not in self.states:
                problems.append(f"accumulator state {s!r} is not a state")
        if problems:
            raise ModelSpecError(f"model {self.name!r} is invalid: " + "; ".join(problems))


@dataclass(frozen=True)
class Condition:
    """One experimental condition: a cell line and the perturbations applied to it.

    ``perturbations`` maps input names to doses in the input's unit (indicators: 1),
    held from the start of treatment to the end. Inputs not named are 0.
    ``schedule`` adds timed doses: boluses into states and exposures to inputs that
    start and are washed out at given times (:class:`DosingSchedule`).
    """

    id: str
    cell_line: str
    perturbations: Mapping[str, float] = field(default_factory=dict)
    schedule: DosingSchedule | None = None

    def __hash__(self) -> int:
        return hash(
            (self.id, self.cell_line, tuple(sorted(self.perturbations.items())), self.schedule)
        )


def condition_inputs(model: ODEModel, conditions: Sequence[Condition]) -> np.ndarray:
    """Input matrix [n_conditions, n_inputs] (the treatment-phase input set to 1);
    every problem reported in one error."""
    problems: list[str] = []
    inputs = np.zeros((len(conditions), model.n_inputs))
    specs = {u.name: (i, u) for i, u in enumerate(model.inputs) if not u.phase}
    for c, cond in enumerate(conditions):
        try:
            model.cell_line(cond.cell_line)
        except ModelSpecError as err:
            problems.append(f"condition {cond.id!r}: {err}")
        for name, dose in cond.perturbations.items():
            if name not in specs:
                problems.append(
                    f"condition {cond.id!r}: unknown perturbation {name!r}; valid: {choices(specs)}"
                )
                continue
            i, spec = specs[name]
            try:
                value = float(dose)
            except (TypeError, ValueError):
                problems.append(
                    f"condition {cond.id!r}: dose of {name!r} must be a number, got {dose!r}"
                )
                continue
            if not math.isfinite(value) or value < 0:
                problems.append(
                    f"condition {cond.id!r}: dose of {name!r} must be a finite number >= 0 "
                    f"({spec.unit}), got {dose!r}"
                )
            elif spec.indicator and value not in (0.0, 1.0):
                problems.append(
                    f"condition {cond.id!r}: {name!r} is an on/off perturbation; expected 0 "
                    f"or 1, got {dose!r}"
                )
            else:
                inputs[c, i] = value
    if problems:
        raise ModelSpecError("invalid conditions:\n  " + "\n  ".join(problems))
    return inputs + model.phase_mask()[None, :]


__all__ = [
    "CellLine",
    "Condition",
    "InputSpec",
    "ODEModel",
    "ObservableSpec",
    "ParameterSpec",
    "condition_inputs",
]
