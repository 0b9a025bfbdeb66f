"""Solver and adjoint registries, and the frozen solver settings.

Names map to diffrax classes so that a typo fails when a config is loaded, with the
list of valid choices. Implicit (stiff) solvers are the default: the circuit couples
minute-scale phosphorylation with day-scale growth.
"""

from __future__ import annotations

from dataclasses import dataclass

import diffrax
import numpy as np
import optimistix as optx
from pydantic import ConfigDict

from ..errors import ModelSpecError, choices
from ._batching import BATCHING, Batching
from ._bdf import BDF
from ._chord import StepChord
from ._sparse_lu import sparse_solver_for

#: Solver classes by name. Implicit (ESDIRK) solvers get a chord root finder, see
#: :meth:`SolverSettings.make_solver`; ``bdf``/``ndf`` (variable-order multistep, one
#: implicit equation per step, Jacobian and LU reused across steps: see
#: :class:`il6rcc.models.BDF`) get the controller's tolerances.
SOLVERS: dict[str, type[diffrax.AbstractSolver]] = {
    "bdf": BDF,
    "ndf": BDF,
    "kvaerno5": diffrax.Kvaerno5,
    "kvaerno4": diffrax.Kvaerno4,
    "kvaerno3": diffrax.Kvaerno3,
    "tsit5": diffrax.Tsit5,
    "dopri5": diffrax.Dopri5,
    "dopri8": diffrax.Dopri8,
}

IMPLICIT_SOLVERS = frozenset({"kvaerno5", "kvaerno4", "kvaerno3"})
MULTISTEP_SOLVERS = frozenset({"bdf", "ndf"})

#: Root finders for the implicit stages, all iterating to a tolerance 100x tighter than
#: the step controller's (``root_tol_factor``). ``chord`` is optimistix's chord method:
#: at each of Kvaerno5's six implicit stages it forms the stage Jacobian at the stage's
#: predictor and factorises it (LU). ``step_chord`` (default) iterates every stage with
#: the Jacobian diffrax forms once per step, inverted once (each iteration a
#: matrix-vector product): 0.66x the gradient time of ``chord`` on the circuit, the same
#: gradient to 2e-12; ``step_chord_lu`` the same with lineax's LU solve per iteration (see
#: :class:`il6rcc.models._chord.StepChord`, and benchmarks/RESULTS.md for the
#: measured cost). ``newton`` linearises at every iteration. diffrax's own default
#: (``verychord``) stops after a fixed contraction test; on the circuit it made
#: Kvaerno5 reject over half of its steps (930 steps for a system at rest over 72 h
#: instead of 5) and the gradient 15x slower (benchmarks/RESULTS.md).
ROOT_FINDERS = ("chord", "step_chord", "step_chord_lu", "newton", "verychord")

#: Checkpoints of the reverse pass when ``checkpoints`` is not set: one per step up to
#: ``max_steps``, at most this many (each holds one step's loop state, a few vectors
#: of the state's size per condition).
MAX_DEFAULT_CHECKPOINTS = 1024

#: How the basal steady state is approached (see :func:`il6rcc.models.basal_state`).
EQUILIBRATION = ("ptc", "ptc_integrate", "integrate")

ADJOINTS: dict[str, type[diffrax.AbstractAdjoint]] = {
    "recursive_checkpoint": diffrax.RecursiveCheckpointAdjoint,
    "direct": diffrax.DirectAdjoint,
    "forward": diffrax.ForwardMode,
    "backsolve": diffrax.BacksolveAdjoint,
}

#: The adjoint name that leaves the choice to the caller (see ``SolverSettings.adjoint``).
AUTO = "auto"


@dataclass(frozen=True)
class SolverSettings:
    """How ODEs are solved: the ``solver`` section of a job config (validated there,
    with unknown keys refused; defaults live here, once).

    Attributes:
        solver: name in :data:`SOLVERS`.
        rtol, atol: tolerances of the PID step-size controller.
        max_steps: step budget per solve; a solve that needs more is flagged as failed.
        adjoint: name in :data:`ADJOINTS` (how gradients flow through the solve), or
            ``auto``: the caller chooses (the PEtab path: forward sensitivities for
            problems with few estimated parameters, see
            :func:`il6rcc.petab_io.gradient_solver`; elsewhere ``recursive_checkpoint``).
        root_finder: name in :data:`ROOT_FINDERS`, for implicit solvers (``chord``:
            the root finder before 2026-12-01).
        batching: ``vmap`` solves all conditions in lock-step (one vectorised loop);
            ``map`` solves them one after another (each takes only its own steps);
            ``shard`` splits the lock-step batch over the process's devices (on CPU:
            the host devices set with the config's ``cpu_devices``; one device:
            the same as ``vmap``). See :mod:`il6rcc.models._batching`.
        equilibration: how the basal steady state is approached before Newton's method
            polishes it: ``ptc`` (pseudo-transient continuation, default),
            ``ptc_integrate`` (with integration as fallback) or ``integrate`` (solve
            the ODE up to a steady-state event).
        equilibration_time: horizon (h) of that integration.
        steady_state_tol: max |dy/dt| / max(|y|, 1) accepted as a steady state.
        root_tol_factor: tolerance of the implicit stages' root finder relative to
            rtol/atol (CVODES uses 0.1).
        root_norm: ``max`` or ``rms``, the norm of its convergence test. With ``max``
            and a tolerance tighter than rounding allows on one component, every step
            is rejected: Laske_PLOSComputBiol2019 (stoichiometries up to 2932, states
            near 1e6) stalls at t = 2.7 of 10 with max/1e-2, reaches t = 4.3 in 1e5
            steps with max/0.1, and finishes in 395 steps with rms/0.1 (CVODES's
            weighted RMS norm).
        checkpoints: checkpoints of ``recursive_checkpoint``'s reverse pass; None
            (default): one per step up to ``max_steps`` (at most
            :data:`MAX_DEFAULT_CHECKPOINTS`), so a solve within its step budget is
            not recomputed in the reverse pass. diffrax's own default is about
            sqrt(2 max_steps) (24 for 300 steps): a solve of more steps is run
            forward again, in part, during the reverse pass.
    """

    __pydantic_config__ = ConfigDict(extra="forbid")

    solver: str = "kvaerno5"
    rtol: float = 1e-6
    atol: float = 1e-8
    max_steps: int = 4096
    adjoint: str = "recursive_checkpoint"
    root_finder: str = "step_chord"
    batching: Batching = "vmap"
    equilibration: str = "ptc"
    equilibration_time: float = 1e4
    steady_state_tol: float = 1e-8
    root_tol_factor: float = 1e-2
    root_norm: str = "max"
    checkpoints: int | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.solver not in SOLVERS:
            problems.append(f"solver {self.solver!r} is unknown; valid: {choices(SOLVERS)}")
        if self.adjoint not in ADJOINTS and self.adjoint != AUTO:
            problems.append(
                f"adjoint {self.adjoint!r} is unknown; valid: {choices([*ADJOINTS, AUTO])}"
            )
        if self.root_finder not in ROOT_FINDERS:
            problems.append(
                f"root_finder {self.root_finder!r} is unknown; valid: {choices(ROOT_FINDERS)}"
            )
        if self.equilibration not in EQUILIBRATION:
            problems.append(
                f"equilibration {self.equilibration!r} is unknown; valid: {choices(EQUILIBRATION)}"
            )
        if self.root_norm not in ("max", "rms"):
            problems.append(f"root_norm {self.root_norm!r} is unknown; valid: 'max', 'rms'")
        if self.batching not in BATCHING:
            problems.append(f"batching {self.batching!r} is unknown; valid: {choices(BATCHING)}")
        for name in ("rtol", "atol", "equilibration_time", "steady_state_tol", "root_tol_factor"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and not isinstance(value, bool) and value > 0):
                problems.append(f"{name} must be a number > 0, got {value!r}")
        if not (
            isinstance(self.max_steps, int)
            and not isinstance(self.max_steps, bool)
            and self.max_steps > 0
        ):
            problems.append(f"max_steps must be an integer > 0, got {self.max_steps!r}")
        if self.checkpoints is not None and not (
            isinstance(self.checkpoints, int)
            and not isinstance(self.checkpoints, bool)
            and self.checkpoints > 0
        ):
            problems.append(f"checkpoints must be an integer > 0 or null, got {self.checkpoints!r}")
        if problems:
            raise ModelSpecError("invalid solver settings: " + "; ".join(problems))

    def make_solver(
        self, jacobian_pattern: np.ndarray | None = None, jacobian_values=None
    ) -> diffrax.AbstractSolver:
        """The solver. ``jacobian_pattern`` [n_states, n_states] (the structural
        nonzeros of df/dy, see :attr:`ODEModel.jacobian_pattern`) lets the BDF solver
        factorise sparsely where that pays (:func:`il6rcc.models.sparse_solver_for`);
        ``jacobian_values(t, y, args)`` gives df/dy at the entries of ``pattern | I``
        (row-major order; see :meth:`ODEModel.jacobian_values`) if the model has a
        cheaper way than coloured directional derivatives."""
        cls = SOLVERS[self.solver]
        if self.solver in MULTISTEP_SOLVERS:
            sparsity = sparse_solver_for(jacobian_pattern)
            return BDF(
                rtol=self.rtol,
                atol=self.atol,
                method=self.solver,
                sparsity=sparsity,
                jacobian_values=jacobian_values if sparsity is not None else None,
            )
        if self.solver not in IMPLICIT_SOLVERS or self.root_finder == "verychord":
            return cls()
        tol = {"rtol": self.rtol * self.root_tol_factor, "atol": self.atol * self.root_tol_factor}
        tol["norm"] = optx.rms_norm if self.root_norm == "rms" else optx.max_norm
        if self.root_finder == "chord":
            root = optx.Chord(**tol)
        elif self.root_finder in ("step_chord", "step_chord_lu"):
            root = StepChord(**tol, inverse=self.root_finder == "step_chord")
        else:
            root = optx.Newton(**tol)
        return cls(root_finder=root)

    def make_adjoint(self) -> diffrax.AbstractAdjoint:
        name = "recursive_checkpoint" if self.adjoint == AUTO else self.adjoint
        if name == "recursive_checkpoint":
            n = self.checkpoints or min(self.max_steps, MAX_DEFAULT_CHECKPOINTS)
            return diffrax.RecursiveCheckpointAdjoint(checkpoints=n)
        return ADJOINTS[name]()

    def make_controller(self) -> diffrax.PIDController:
        return diffrax.PIDController(rtol=self.rtol, atol=self.atol)


__all__ = [
    "ADJOINTS",
    "EQUILIBRATION",
    "IMPLICIT_SOLVERS",
    "MAX_DEFAULT_CHECKPOINTS",
    "MULTISTEP_SOLVERS",
    "ROOT_FINDERS",
    "SOLVERS",
    "SolverSettings",
]
