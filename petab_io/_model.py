""":class:`SbmlModel`: an imported SBML model as an il6rcc :class:`~il6rcc.models.ODEModel`.

The model is frozen and compares (and hashes) by the SHA-256 of its SBML text, so
``jax.jit`` compiles one executable per model however often it is imported. Its
equations are expression trees (:mod:`._math`), evaluated node by node with
``jax.numpy`` while JAX traces, so there is no per-step interpretation cost. Models
with at least :data:`TAPE_MIN_STATES` states evaluate their vector field as a
:class:`._tape.Tape` instead (a few vectorised operations per expression depth, and
a coloured sparse Jacobian): node by node, Chen_MSB2009's 500 states took 97 s to
compile the vector field and 196 s its Jacobian; small models run faster node by
node.

Inputs: for each state ``x`` the model has an input ``x__initial`` (a value) and an
input ``x__initial_set`` (1 to use that value as the initial state, 0 to use the
SBML initial value). With all inputs 0 the model starts where the SBML says, so it
can be simulated with :func:`il6rcc.models.simulate` like any other model; PEtab
conditions use the inputs for initial-value overrides and pre-equilibration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import ClassVar

import jax.numpy as jnp
import numpy as np

from ..models import InputSpec, ObservableSpec, ODEModel, ParameterSpec
from ._fluxes import FluxJacobian, flux_jacobian
from ._math import JaxBackend, LazyEnv, evaluate
from ._sbml import SbmlSpec
from ._tape import Tape, build_tape
from ._tape import vector_field as tape_vector_field

#: Models with at least this many states evaluate their vector field with a tape.
TAPE_MIN_STATES = 60


@dataclass(frozen=True)
class SbmlModel(ODEModel):
    """An SBML model compiled for simulation (see the module docstring).

    Attributes:
        key: identifies the model (SHA-256 of the SBML text); equality and hash use it.
        spec: the compiled SBML (:class:`SbmlSpec`).

    Parameters are the SBML's constant parameters and compartment sizes, in the
    model's own units (time unit: whatever the SBML model uses). Observables are the
    states themselves; PEtab observables are computed from them by the problem.
    """

    key: str
    spec: SbmlSpec = field(compare=False, repr=False)

    equilibrate: ClassVar[bool] = False

    @classmethod
    def from_spec(cls, spec: SbmlSpec) -> SbmlModel:
        return cls(key=spec.digest, spec=spec)

    # ------------------------------------------------------------------ declarations
    @property
    def name(self) -> str:
        return self.spec.model_id

    @property
    def states(self) -> tuple[str, ...]:
        return self.spec.state_ids

    @cached_property
    def parameters(self) -> tuple[ParameterSpec, ...]:
        out = []
        for pid, value in zip(self.spec.parameter_ids, self.spec.parameter_values, strict=True):
            finite = value == value and abs(value) != float("inf")
            kind = "compartment size" if pid in self.spec.compartment_ids else "parameter"
            out.append(
                ParameterSpec(
                    pid,
                    float(value) if finite else 0.0,
                    "SBML model units",
                    f"SBML {kind}" + ("" if finite else " (no value in the SBML; 0 used)"),
                    source=f"SBML model {self.spec.model_id}",
                    scale="lin",
                )
            )
        return tuple(out)

    @cached_property
    def inputs(self) -> tuple[InputSpec, ...]:
        values = tuple(
            InputSpec(f"{s}__initial", "state units", f"initial value of {s!r} when set")
            for s in self.states
        )
        flags = tuple(
            InputSpec(
                f"{s}__initial_set",
                "indicator",
                f"1: start {s!r} at {s}__initial; 0: at its SBML initial value",
                indicator=True,
            )
            for s in self.states
        )
        return values + flags

    @cached_property
    def observables(self) -> tuple[ObservableSpec, ...]:
        return tuple(ObservableSpec(s, "state units", f"state {s!r}") for s in self.states)

    # ------------------------------------------------------------------ equations
    def expression_env(self, t, y, params, extra=None) -> LazyEnv:
        """Values of every model id (states, parameters, rules, reaction rates) at
        time ``t`` and state ``y`` [n_states] with parameters ``params`` [n_params];
        ``extra`` adds or overrides values (e.g. PEtab observable parameters)."""
        values = {pid: params[i] for i, pid in enumerate(self.spec.parameter_ids)}
        values.update({sid: y[i] for i, sid in enumerate(self.spec.state_ids)})
        values.update(extra or {})
        return LazyEnv(values, dict(self.spec.definitions), time=t, where=self.spec.model_id)

    @cached_property
    def tape(self) -> Tape:
        """The derivatives as a vectorised evaluation plan (:mod:`._tape`)."""
        spec = self.spec
        return build_tape(
            spec.derivatives, spec.state_ids, spec.parameter_ids, dict(spec.definitions)
        )

    @cached_property
    def _tape_field(self):
        flux = self.flux_jacobian
        return tape_vector_field(self.tape, flux.jacobian if flux is not None else None)

    @property
    def jacobian_pattern(self):
        """The tape's structural pattern of df/dy for models evaluated by a tape
        (at least :data:`TAPE_MIN_STATES` states), else None."""
        if self.n_states < TAPE_MIN_STATES:
            return None
        return self.tape.pattern[:, : self.n_states]

    @property
    def sparse_jacobian(self) -> tuple:
        """``(pattern, values)`` for :meth:`SolverSettings.make_solver`: the Jacobian's
        pattern and :meth:`jacobian_values` (tape models), or ``(None, None)``."""
        pattern = self.jacobian_pattern
        return (pattern, self.jacobian_values) if pattern is not None else (None, None)

    @cached_property
    def flux_jacobian(self) -> FluxJacobian | None:
        """df/dy through the reaction fluxes (:mod:`._fluxes`) for tape models whose
        derivatives are stoichiometric sums and rate rules, else None."""
        pattern = self.jacobian_pattern
        return None if pattern is None else flux_jacobian(self.spec, pattern)

    def jacobian_values(self, t, y, params):
        """df/dy at the entries of ``jacobian_pattern | I`` (row-major, 0 on added
        diagonal entries). Through the fluxes where :attr:`flux_jacobian` exists (a
        sweep with as many tangents as the rates' columns need colours); otherwise
        read off the tape's compressed df/dy (one coloured sweep over the states, no
        products). For tape models only."""
        flux = self.flux_jacobian
        if flux is not None:
            return flux.values(t, y, params)
        n = self.n_states
        pattern = self.jacobian_pattern
        rows, cols = np.nonzero(pattern | np.eye(n, dtype=bool))
        compressed = self.tape.compressed_jacobian(t, y, params, states_only=True)[1]
        values = compressed[rows, self.tape.state_colour[cols]]
        return jnp.where(pattern[rows, cols], values, 0.0)

    def vector_field(self, t, y, params, inputs):
        if self.n_states >= TAPE_MIN_STATES:
            return self._tape_field(t, y, params)
        env = self.expression_env(t, y, params)
        rates = [evaluate(d, env, t, JaxBackend) for d in self.spec.derivatives]
        return jnp.stack([jnp.asarray(r, dtype=y.dtype) for r in rates])

    def observe(self, t, y, params, inputs):
        return y

    def initial_guess(self, params, inputs):
        """Initial state [n_states]: the SBML initial values, replaced by
        ``inputs[i]`` where ``inputs[n_states + i]`` is 1."""
        n = self.n_states
        values = {pid: params[i] for i, pid in enumerate(self.spec.parameter_ids)}
        definitions: dict = dict(self.spec.definitions)
        env = LazyEnv(values, definitions, time=0.0, where=f"{self.spec.model_id} initial values")
        for i, (sid, expr) in enumerate(
            zip(self.spec.state_ids, self.spec.initial_values, strict=True)
        ):

            def thunk(i=i, expr=expr):
                sbml = jnp.asarray(evaluate(expr, env, 0.0, JaxBackend), dtype=params.dtype)
                return jnp.where(inputs[n + i] > 0.5, inputs[i], sbml)

            definitions[sid] = thunk
        return jnp.stack([jnp.asarray(env(sid), dtype=params.dtype) for sid in self.states])


__all__ = ["TAPE_MIN_STATES", "SbmlModel"]
