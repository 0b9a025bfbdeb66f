"""The one reader of run folders (written by :mod:`il6rcc.jobs.fit`), for ``report``,
``compare``, ``predict``, ``next-experiment``, the notebooks and sweeps.

A :class:`RunFolder` reads ``manifest.json``, ``diagnostics.json`` and ``posterior.nc``
when asked, and rebuilds the run's :class:`~il6rcc.inference.Posterior` from its
``config.yaml`` only when something needs the model (predictions).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ..errors import Il6rccError


@dataclass(frozen=True, eq=False)
class RunFolder:
    """A run folder. ``path``: the folder; everything else is read when first used."""

    path: Path

    # ------------------------------------------------------------------ files
    @cached_property
    def manifest(self) -> dict:
        return json.loads((self.path / "manifest.json").read_text())

    @cached_property
    def diagnostics(self) -> dict:
        return json.loads((self.path / "diagnostics.json").read_text())

    @cached_property
    def tree(self):
        """The posterior DataTree (``posterior.nc``)."""
        import xarray as xr

        return xr.open_datatree(self.path / "posterior.nc", engine="h5netcdf")

    @cached_property
    def config(self):
        """The run's validated config (:class:`il6rcc.configs.LoadedConfig`)."""
        from ..configs import load_config

        return load_config(self.path / "config.yaml")

    @cached_property
    def posterior(self):
        """The run's :class:`~il6rcc.inference.Posterior`, rebuilt from its config."""
        from ._build import build_posterior

        return build_posterior(self.config)[0]

    @cached_property
    def findings(self):
        """The run's evidence rows as a biologist reads them: ``row_id``, ``study_id``,
        ``kind``, ``observable_id``, ``statement_id`` (the row's primary statement),
        ``statement`` (its summary in ``statements.tsv``; the row's quote when it has
        none) and ``quote`` (a pandas frame; evidence runs only)."""
        import pandas as pd

        from ..configs import model_from_config
        from ..data import columns as C
        from ..data import load_evidence, load_statements
        from ._build import evidence_paths, select_rows

        paths = evidence_paths(self.config)
        rows = select_rows(load_evidence(paths, model=model_from_config(self.config)), self.config)
        summaries = load_statements(paths)
        primary = [s.split(",")[0].strip() for s in rows[C.STATEMENT_IDS]]
        text = [
            summaries.get(sid) or quote for sid, quote in zip(primary, rows[C.QUOTE], strict=True)
        ]
        return pd.DataFrame(
            {
                "row_id": list(rows[C.ROW_ID]),
                "study_id": list(rows[C.STUDY_ID]),
                "kind": list(rows[C.KIND]),
                "observable_id": list(rows[C.OBSERVABLE_ID]),
                "statement_id": primary,
                "statement": text,
                "quote": list(rows[C.QUOTE]),
            }
        )

    # ------------------------------------------------------------------ facts
    @property
    def name(self) -> str:
        return self.manifest.get("name", self.path.name)

    @property
    def kind(self) -> str:
        """``evidence`` (an ODE model fitted to evidence tables) or ``petab``."""
        return self.manifest.get("kind", "evidence")

    @property
    def method(self) -> str:
        return self.diagnostics.get("method", self.manifest["inference"]["method"])

    @property
    def mcmc(self) -> bool:
        """Whether the draws are MCMC chains (rank plots, R-hat and energy apply)."""
        return self.method == "nuts"

    @property
    def model(self):
        return self.posterior.problem.model

    @property
    def problem(self):
        return self.posterior.problem

    @property
    def log_likelihood_name(self) -> str:
        return next(iter(self.tree["log_likelihood"].data_vars))

    def draws(self, n: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
        """Posterior variables flattened over chains ([D, ...]); a random subset of
        ``n`` draws (fixed seed) when given."""
        post = self.tree["posterior"].to_dataset()
        out = {}
        for name in post.data_vars:
            x = np.asarray(post[name])
            out[str(name)] = x.reshape(-1, *x.shape[2:])
        total = next(iter(out.values())).shape[0]
        if n is not None and n < total:
            pick = np.sort(np.random.default_rng(seed).choice(total, n, replace=False))
            out = {k: v[pick] for k, v in out.items()}
        return out


def open_run(run_dir: str | Path, need: tuple[str, ...] = ("posterior.nc",)) -> RunFolder:
    """A run folder, checked to hold ``need`` (a clear error naming what is missing)."""
    path = Path(run_dir)
    if not (path / "manifest.json").is_file():
        raise Il6rccError(f"{path}: not a run folder (no manifest.json)")
    missing = [n for n in need if not (path / n).is_file()]
    if missing:
        raise Il6rccError(
            f"{path}: not a complete run folder (missing {', '.join(missing)}); finish it "
            f"with 'il6rcc fit --resume {path}'"
        )
    return RunFolder(path)


def reproduction_rates(tree) -> np.ndarray | None:
    """Per data row, the share of posterior draws that reproduce a qualitative finding.

    NaN for value rows (they have no finding to reproduce); None when the run has no
    ``reproduced`` variable (e.g. a PEtab run).
    """
    if "posterior_predictive" not in tree.children:
        return None
    if "reproduced" not in tree["posterior_predictive"].data_vars:
        return None
    p = np.asarray(tree["posterior_predictive"]["reproduced"], dtype=float)
    p = p.reshape(-1, p.shape[-1])
    finite = np.isfinite(p)
    total = np.where(finite, p, 0.0).sum(axis=0)
    count = finite.sum(axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


__all__ = ["RunFolder", "open_run", "reproduction_rates"]
