"""AMICI helpers for the benchmarks: import (timed), solver settings, edata order.

AMICI's generated extension modules load only when the venv's own ``swig`` is first
on ``PATH``; :func:`ensure_swig_path` arranges that for this process and the build
subprocesses it starts.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

from _common import with_venv_path


def available() -> tuple[bool, str]:
    """Whether AMICI (with its compiled core) can be used, and why not."""
    try:
        import amici
        import amici.sim.sundials as asd
    except ImportError as err:  # pragma: no cover - depends on the environment
        return False, f"amici not importable: {err}"
    if not getattr(asd, "has_clibs", False):
        return False, "amici has no compiled core (has_clibs is False)"
    return True, amici.__version__


def ensure_swig_path() -> None:
    with_venv_path()


def quiet() -> None:
    """AMICI logs every condition at DEBUG level; keep the benchmark output readable.
    Call after importing AMICI modules (their loggers set their own levels)."""
    for name in list(logging.root.manager.loggerDict):
        if name.split(".")[0] in ("amici", "petab"):
            logging.getLogger(name).setLevel(logging.WARNING)


def import_problem(problem, out_dir: Path, model_name: str, **kwargs):
    """Import and compile a PEtab problem with AMICI; returns (model, seconds)."""
    from amici.importers.petab.v1 import import_petab_problem

    ensure_swig_path()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # third-party deprecation notices
        model = import_petab_problem(
            problem,
            output_dir=str(out_dir),
            model_name=model_name,
            compile_=True,
            verbose=logging.WARNING,
            **kwargs,
        )
    seconds = time.perf_counter() - t0
    quiet()
    return model, seconds


def make_solver(model, rtol: float, atol: float, max_steps: int = 100_000):
    """CVODES (BDF, AMICI's default) with the given tolerances."""
    solver = model.create_solver()
    solver.set_relative_tolerance(rtol)
    solver.set_absolute_tolerance(atol)
    solver.set_max_steps(max_steps)
    return solver


def solver_description(solver) -> dict:
    import amici.sim.sundials as asd

    def name(enum, value):
        for key in dir(asd):
            if key.startswith(enum + "_") and getattr(asd, key) == value:
                return key[len(enum) + 1 :]
        return str(value)

    return {
        "integrator": "CVODES BDF (AMICI default)",
        "rtol": solver.get_relative_tolerance(),
        "atol": solver.get_absolute_tolerance(),
        "linear_solver": name("LinearSolver", solver.get_linear_solver()),
        "internal_sensitivity_method": name(
            "InternalSensitivityMethod", solver.get_internal_sensitivity_method()
        ),
        "sensitivity_method": name("SensitivityMethod", solver.get_sensitivity_method()),
    }


def run(model, solver, edatas, order: str, num_threads: int = 1):
    """``run_simulations`` with sensitivity order ``none`` or ``first`` (forward)."""
    import amici.sim.sundials as asd

    solver.set_sensitivity_method(asd.SensitivityMethod.forward)
    solver.set_sensitivity_order(
        asd.SensitivityOrder.first if order == "first" else asd.SensitivityOrder.none
    )
    return asd.run_simulations(model, solver, edatas, num_threads=num_threads)
