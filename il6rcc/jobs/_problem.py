"""From a validated config to the inference problem (model, evidence, priors)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..configs import LoadedConfig, model_from_config, solver_from_config
from ..data import build_arrays, load_evidence, shipped_evidence_paths
from ..data import columns as C
from ..errors import ConfigError
from ..inference import build_priors, make_problem, read_prior_table


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


def build_problem(loaded: LoadedConfig):
    """Model, evidence arrays, priors and the numpyro problem of a config.

    Every user error (model, data, prior tables) surfaces here, before any output is
    written. Returns (problem, info) where info holds the inputs' hashes.
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
    problem = make_problem(
        model,
        solver_from_config(loaded),
        arrays,
        priors,
        cfg.likelihood,
        tau_scale=cfg.priors.tau_scale,
        holdout_rows=cfg.data.holdout_rows,
    )
    info = {
        "data_files": file_hashes(paths),
        "prior_tables": file_hashes(prior_table_paths(loaded)),
        "n_rows": arrays.n_rows,
        "n_conditions": arrays.batch.n_conditions,
        "n_estimated": priors.n,
    }
    return problem, info


__all__ = ["build_problem", "evidence_paths", "file_hashes", "prior_table_paths", "select_rows"]
