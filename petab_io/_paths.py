"""The PEtab problems shipped with il6rcc (package data under ``problems/``)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from ..errors import PetabError, choices

#: The shipped problems (PEtab Benchmark-Models collection, commit 4d20850).
BENCHMARK_PROBLEMS = ("Boehm_JProteomeRes2014", "Bachmann_MSB2011", "Raia_CancerResearch2011")


def problem_path(name: str) -> Path:
    """Path of the YAML file of a shipped problem (see :data:`BENCHMARK_PROBLEMS`)."""
    if name not in BENCHMARK_PROBLEMS:
        raise PetabError(
            f"unknown shipped PEtab problem {name!r}; valid: {choices(BENCHMARK_PROBLEMS)}"
        )
    return Path(str(files("il6rcc.petab_io").joinpath("problems", name, f"{name}.yaml")))


__all__ = ["BENCHMARK_PROBLEMS", "problem_path"]
