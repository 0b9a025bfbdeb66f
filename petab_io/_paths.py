"""The PEtab problems shipped with il6rcc (package data under ``problems/``)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from ..errors import PetabError, choices

#: The shipped problems (PEtab Benchmark-Models collection, commit 4d20850).
BENCHMARK_PROBLEMS = (
    "Boehm_JProteomeRes2014",
    "Bachmann_MSB2011",
    "Raia_CancerResearch2011",
    "Smith_BMCSystBiol2013",
    "Blasi_CellSystems2016",
    "Laske_PLOSComputBiol2019",
    "Chen_MSB2009",
    "Zhao_QuantBiol2020",
)

#: Reference log-likelihoods at the nominal parameters (problems/README.md): AMICI's
#: benchmark tests (Boehm, Bachmann, Smith), AMICI 1.1 at rtol = atol = 1e-8 (Blasi,
#: Chen), libpetab's ``calculate_llh`` on the shipped ``simulatedData`` table (Laske,
#: Zhao; AMICI 1.1 agrees within 1e-5 relative). Raia has none agreed.
REFERENCE_LLH = {
    "Boehm_JProteomeRes2014": -138.22199693517703,
    "Bachmann_MSB2011": 418.40573341425295,
    "Smith_BMCSystBiol2013": -888198.436541014,
    "Blasi_CellSystems2016": 642.820115677515,
    "Laske_PLOSComputBiol2019": -315.90591052606436,
    "Chen_MSB2009": -130591.75276552222,
    "Zhao_QuantBiol2020": -777.3442667498433,
}


def problem_path(name: str) -> Path:
    """Path of the YAML file of a shipped problem (see :data:`BENCHMARK_PROBLEMS`)."""
    if name not in BENCHMARK_PROBLEMS:
        raise PetabError(
            f"unknown shipped PEtab problem {name!r}; valid: {choices(BENCHMARK_PROBLEMS)}"
        )
    return Path(str(files("il6rcc.petab_io").joinpath("problems", name, f"{name}.yaml")))


__all__ = ["BENCHMARK_PROBLEMS", "REFERENCE_LLH", "problem_path"]
