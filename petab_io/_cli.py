"""Entry points behind ``il6rcc petab llh`` and ``il6rcc petab export``, and the
built-in example used by the export until the evidence tables are wired in.

Both functions expect float64 to be on (the ``il6rcc`` command calls
:func:`il6rcc.runtime.setup`); user errors raise :class:`~il6rcc.errors.PetabError`
(or another :class:`~il6rcc.errors.Il6rccError`), which the command reports.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import PetabError, choices
from ..models import VARIANTS, Condition, ODEModel, RCCCircuit, SolverSettings, simulate
from ._export import ExportMeasurement, export_problem
from ._likelihood import DEFAULT_SOLVER, log_likelihood
from ._problem import load_problem

#: Conditions of the built-in example export: IFN-a with and without SOCS3 siRNA in
#: 786-O, exogenous IL-6 in ACHN (doses as in ``configs/simulate.yaml``).
EXAMPLE_CONDITIONS = (
    Condition("786O_ctrl", "786-O"),
    Condition("786O_IFN", "786-O", {"ifn_alpha": 1000.0}),
    Condition("786O_IFN_siSOCS3", "786-O", {"ifn_alpha": 1000.0, "si_socs3": 1.0}),
    Condition("ACHN_ctrl", "ACHN"),
    Condition("ACHN_IL6", "ACHN", {"il6": 10.0}),
)

#: Times (h after treatment start) of the built-in example.
EXAMPLE_TIMES = (0.5, 1.0, 4.0, 24.0, 72.0)

#: (observable, transformation, noise, scale) of the example's synthetic measurements;
#: string noise/scale entries are parameters with the nominal values in
#: :data:`EXAMPLE_NOISE_PARAMETERS`.
EXAMPLE_READOUTS = (
    ("pstat1", "lin", "sd_pstat1", None),
    ("pstat3", "lin", "sd_pstat3", "scale_pstat3"),
    ("socs3_mrna", "log", 0.3, None),
    ("viability", "lin", "sd_viability", None),
)
EXAMPLE_NOISE_PARAMETERS = {
    "sd_pstat1": 0.05,
    "sd_pstat3": 0.05,
    "scale_pstat3": 2.0,
    "sd_viability": 0.05,
}


def synthetic_measurements(
    model: ODEModel,
    conditions: Sequence[Condition],
    times: Sequence[float],
    readouts=EXAMPLE_READOUTS,
    noise_parameters=EXAMPLE_NOISE_PARAMETERS,
    solver: SolverSettings | None = None,
) -> list[ExportMeasurement]:
    """Synthetic measurements: the model at its default parameters, times a fixed
    pattern of +-10 % deviations (deterministic, no random numbers), for each readout
    ``(observable, transformation, noise, scale)``. For examples and tests only: these
    are not evidence."""
    sim = simulate(model, None, list(conditions), np.asarray(times, dtype=np.float64), solver)
    if not sim.success.all():
        raise PetabError("the model could not be simulated at its defaults for the example")
    out = []
    k = 0
    for c, cond in enumerate(conditions):
        for observable, transform, noise, scale in readouts:
            values = sim.observable(observable)[c]
            factor = noise_parameters.get(scale, 1.0) if isinstance(scale, str) else scale or 1.0
            for t, v in zip(times, values, strict=True):
                deviation = 1.0 + 0.1 * np.sin(1.7 * k)  # fixed pattern in [0.9, 1.1]
                k += 1
                out.append(
                    ExportMeasurement(
                        observable,
                        cond.id,
                        float(t),
                        float(v * factor * deviation),
                        noise,
                        transform,
                        "normal",
                        scale,
                    )
                )
    return out


def llh_main(
    problem_yaml: str, rtol: float = 1e-8, atol: float = 1e-8, max_steps: int | None = None
) -> int:
    """Print a PEtab problem's log-likelihood at its nominal parameters; the last line
    of output is the bare number. Returns the exit status (0)."""
    start = time.perf_counter()
    problem = load_problem(problem_yaml)
    solver = replace(
        DEFAULT_SOLVER, rtol=rtol, atol=atol, max_steps=max_steps or DEFAULT_SOLVER.max_steps
    )
    model = problem.model
    print(
        f"problem {problem.name}: {model.n_states} states, {model.n_params} model parameters, "
        f"{len(problem.parameters.ids)} PEtab parameters "
        f"({len(problem.parameters.estimated_index)} estimated), "
        f"{len(problem.simulations)} simulations, {problem.n_measurements} measurements"
    )
    value = log_likelihood(problem, solver=solver)
    print(
        f"solver {solver.solver}, rtol {rtol:g}, atol {atol:g}; "
        f"{time.perf_counter() - start:.1f} s including compilation"
    )
    print("log-likelihood at the nominal parameters:")
    print(repr(value))
    return 0


def _model_and_conditions(config_or_variant: str):
    if config_or_variant in VARIANTS:
        model = RCCCircuit.variant(config_or_variant)
        return model, list(EXAMPLE_CONDITIONS), list(EXAMPLE_TIMES), config_or_variant
    path = Path(config_or_variant)
    if not path.is_file():
        raise PetabError(
            f"{config_or_variant!r} is neither a circuit variant ({choices(VARIANTS)}) nor a "
            f"config file"
        )
    from ..configs import load_config, model_from_config

    loaded = load_config(path)
    model = model_from_config(loaded)
    section = loaded.config.simulate
    if section is not None and section.experiments:
        conditions = [
            Condition(e.id, e.cell_line, dict(e.perturbations)) for e in section.experiments
        ]
        times = list(section.times)
    else:
        conditions, times = list(EXAMPLE_CONDITIONS), list(EXAMPLE_TIMES)
    return model, conditions, times, path.stem


def export_main(config_or_variant: str, out_dir) -> int:
    """Write the RCC circuit as a PEtab problem into ``out_dir``.

    ``config_or_variant``: a circuit variant name (``main``, ...) or a config file (its
    model variant and, when present, its ``simulate`` experiments and times). Until the
    evidence export exists, the measurements are synthetic (see
    :func:`synthetic_measurements`); a README in ``out_dir`` says so. Returns 0.
    """
    model, conditions, times, label = _model_and_conditions(str(config_or_variant))
    measurements = synthetic_measurements(model, conditions, times)
    out_dir = Path(out_dir)
    yaml_path = export_problem(
        model, conditions, measurements, out_dir, noise_parameters=EXAMPLE_NOISE_PARAMETERS
    )
    (out_dir / "README.md").write_text(
        f"# PEtab export of the il6rcc RCC circuit ({label})\n\n"
        f"Model variant: {model.variant_name or model.name}. Time unit: hours.\n"
        f"Written by `il6rcc petab export`.\n\n"
        f"The measurements are SYNTHETIC (the model at its default parameters with a fixed\n"
        f"+-10 % deviation pattern), for checking that other tools reproduce il6rcc's\n"
        f"likelihood; they are not evidence.\n",
        encoding="utf-8",
    )
    print(f"wrote {yaml_path} ({len(conditions)} conditions, {len(measurements)} measurements)")
    print(str(yaml_path))
    return 0


__all__ = [
    "EXAMPLE_CONDITIONS",
    "EXAMPLE_NOISE_PARAMETERS",
    "EXAMPLE_READOUTS",
    "EXAMPLE_TIMES",
    "export_main",
    "llh_main",
    "synthetic_measurements",
]
