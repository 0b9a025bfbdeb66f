"""Prototypes of changes to ``models/_solvers.py``, measured by the benchmarks.

They are subclasses of :class:`il6rcc.models.SolverSettings` (frozen dataclasses, so
``simulate_arrays`` compiles once per setting), used exactly where a
``SolverSettings`` is: nothing in ``models/`` is changed.

The chord root finders that reuse diffrax's once-per-step Jacobian (``InverseChord``,
``StepJacobianChord``) were prototyped here; they are shipped, with the fix of their
NaN gradients on Robertson's problem, as ``models/_chord.py`` (``root_finder:
step_chord``, the default, and ``step_chord_lu``; benchmarks/RESULTS.md).
"""

from __future__ import annotations

import dataclasses

import diffrax

from il6rcc.models import SolverSettings


@dataclasses.dataclass(frozen=True)
class MoreCheckpointsSettings(SolverSettings):
    """SolverSettings with ``RecursiveCheckpointAdjoint(checkpoints=512)``: no
    recomputation in the backward pass for solves of up to 512 steps (diffrax's
    default is about sqrt(2 max_steps) = 90 checkpoints for max_steps 4096)."""

    checkpoints: int = 512

    def make_adjoint(self):
        return diffrax.RecursiveCheckpointAdjoint(checkpoints=self.checkpoints)
