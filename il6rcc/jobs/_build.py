"""From a validated config to its :class:`~il6rcc.inference.Posterior`: an ODE model
fitted to evidence tables (model, evidence, priors) or a PEtab problem."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from .. import runtime
from ..configs import LoadedConfig, model_from_config, solver_from_config
from ..data import build_arrays, load_evidence, shipped_evidence_paths
from ..data import columns as C
from ..errors import ConfigError
from ..inference import (
    EvidencePosterior,
    EvidenceProblem,
    Posterior,
    build_priors,
    make_evidence_problem,
    read_prior_table,
)


def evidence_paths(loaded: LoadedConfig) -> list[Path]:
    """The evidence tables a config uses (the shipped ones when it names none)."""
    cfg = loaded.config.data
    tables = [loaded.resolve(t) for t in cfg.tables] or shipped_evidence_paths()
    return tables + [loaded.resolve(t) for t in cfg.digitised]


def prior_table_paths(loaded: LoadedConfig) -> list[Path]:
    return [_resolve_prior_table(loaded, t) for t in loaded.config.priors.tables]


def _resolve_prior_table(loaded: LoadedConfig, name: str) -> Path:
    """``builtin:transfer`` is the prior table shipped with il6rcc.petab_io (derived from
    the Bachmann and Raia fits); anything else is a path relative to the config."""
    if name == "builtin:transfer":
        from .. import petab_io

        return Path(petab_io.__file__).resolve().parent / "priors" / "transfer_priors.tsv"
    return loaded.resolve(name)


def file_hashes(paths) -> dict[str, str]:
    """sha256 of each file, keyed by file name (stable across checkouts)."""
    out = {}
    for p in paths:
        out[Path(p).name] = hashlib.sha256(Path(p).read_bytes()).hexdigest()
    return out


def select_rows(evidence, loaded: LoadedConfig):
    """Apply the config's study / cell-line / row filters; error if nothing is left."""
    cfg = loaded.config.data
    frame = evidence
    if cfg.studies:
        unknown = sorted(set(cfg.studies) - set(frame[C.STUDY_ID]))
        if unknown:
            raise ConfigError(
                f"{loaded.path}: key data.studies: unknown studies {unknown}; valid: "
                f"{', '.join(sorted(set(frame[C.STUDY_ID])))}"
            )
        frame = frame[frame[C.STUDY_ID].isin(cfg.studies)]
    if cfg.cell_lines:
        frame = frame[frame[C.CELL_LINE].apply(lambda s: any(c in s for c in cfg.cell_lines))]
    if cfg.exclude_rows:
        unknown = sorted(set(cfg.exclude_rows) - set(evidence[C.ROW_ID]))
        if unknown:
            raise ConfigError(f"{loaded.path}: key data.exclude_rows: unknown row ids {unknown}")
        frame = frame[~frame[C.ROW_ID].isin(cfg.exclude_rows)]
    if len(frame) == 0:
        raise ConfigError(f"{loaded.path}: key data: the filters leave no evidence rows")
    unknown = sorted(set(cfg.holdout_rows) - set(frame[C.ROW_ID]))
    if unknown:
        raise ConfigError(f"{loaded.path}: key data.holdout_rows: unknown row ids {unknown}")
    return frame


def evidence_problem(loaded: LoadedConfig) -> tuple[EvidenceProblem, dict]:
    """Model, evidence arrays and parameterisation of a config whose model is fitted to
    evidence tables.

    Every user error (model, data, prior tables) surfaces here, before any output is
    written. Returns (problem, info) where info holds the inputs' hashes and sizes.
    """
    cfg = loaded.config
    model = model_from_config(loaded)
    paths = evidence_paths(loaded)
    evidence = select_rows(load_evidence(paths, model=model), loaded)
    arrays = build_arrays(model, evidence)
    tables = [read_prior_table(p) for p in prior_table_paths(loaded)]
    overrides = {
        name: (o.median, o.log10_sd, o.source or "config override")
        for name, o in cfg.priors.overrides.items()
    }
    priors = build_priors(
        model,
        cfg.priors.estimate,
        cfg.priors.cell_line_specific,
        tables,
        overrides,
        cfg.priors.width_factor,
    )
    problem = make_evidence_problem(
        model,
        solver_from_config(loaded),
        arrays,
        priors,
        cfg.likelihood,
        tau_scale=cfg.priors.tau_scale,
        holdout_rows=cfg.data.holdout_rows,
    )
    info = {
        "kind": "evidence",
        "solver": dataclasses.asdict(problem.solver),
        "data_files": file_hashes(paths),
        "prior_tables": file_hashes(prior_table_paths(loaded)),
        "n_rows": arrays.n_rows,
        "n_conditions": arrays.batch.n_conditions,
        "n_estimated": priors.n,
    }
    return problem, info


def petab_files(problem_yaml: Path) -> list[Path]:
    """The files of a PEtab problem (its folder's YAML, TSV and SBML files)."""
    folder = Path(problem_yaml).resolve().parent
    suffixes = (".yaml", ".yml", ".tsv", ".xml", ".sbml")
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in suffixes)


def use_config_devices(loaded: LoadedConfig) -> int | None:
    """Split the host CPU into the devices the config's ``cpu_devices`` asks for (see
    :meth:`il6rcc.configs.RunConfig.cpu_device_request`), before JAX computes anything;
    returns that count (None: none asked for, JAX's default kept)."""
    n = runtime.cpu_device_count(loaded.config.cpu_device_request())
    if n is not None:
        runtime.use_cpu_devices(n)
    return n


def build_posterior(loaded: LoadedConfig) -> tuple[Posterior, dict]:
    """The posterior a config fits, and ``info`` (kind, input hashes and sizes).

    Every user error surfaces here, before any output is written. The CPU devices the
    config asks for are set first (:func:`use_config_devices`)."""
    cfg = loaded.config
    n_cpu = use_config_devices(loaded)
    if cfg.model.petab is None:
        problem, info = evidence_problem(loaded)  # an EvidenceProblem
        return EvidencePosterior(problem), {**info, "cpu_devices": n_cpu}
    from ..petab_io import DEFAULT_SOLVER, PetabPosterior, gradient_solver, load_problem

    problem_yaml = loaded.resolve(cfg.model.petab)
    petab_problem = load_problem(problem_yaml)
    solver = solver_from_config(loaded, DEFAULT_SOLVER)
    posterior = PetabPosterior(petab_problem, solver)
    info = {
        "kind": "petab",
        "solver": dataclasses.asdict(gradient_solver(petab_problem, solver)),  # as used
        "problem_yaml": str(problem_yaml),
        "data_files": file_hashes(petab_files(problem_yaml)),
        "prior_tables": {},
        "n_measurements": petab_problem.n_measurements,
        "n_estimated": len(petab_problem.parameters.estimated_ids),
        "cpu_devices": n_cpu,
    }
    return posterior, info


__all__ = [
    "build_posterior",
    "use_config_devices",
    "evidence_paths",
    "evidence_problem",
    "file_hashes",
    "petab_files",
    "prior_table_paths",
    "select_rows",
]
