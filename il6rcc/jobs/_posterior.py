"""Re-using a fitted run: its problem, and its posterior draws as parameter rows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ..configs import load_config
from ..errors import Il6rccError
from ..inference import problem_data
from ..inference._likelihood import row_prediction, unit_deltas
from ..inference._model import condition_inputs, parameter_rows, simulate_problem
from ._problem import build_problem


@dataclass
class FittedRun:
    """A finished run: config, problem, data arrays and posterior DataTree."""

    run_dir: Path
    loaded: object
    problem: object
    data: dict
    tree: object

    @property
    def model(self):
        return self.problem.model

    def draws(self, n: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
        """Posterior draws flattened over chains: theta [D, n_est], theta_cell
        [D, n_lines, n_hier] (if any), dose [D, n_nuisance] (if any); a random subset of
        ``n`` draws (fixed seed) when given."""
        post = self.tree["posterior"].to_dataset()
        out = {}
        for name in ("theta", "theta_cell", "dose", "tau"):
            if name in post:
                x = np.asarray(post[name])
                out[name] = x.reshape(-1, *x.shape[2:])
        total = out["theta"].shape[0]
        if n is not None and n < total:
            pick = np.sort(np.random.default_rng(seed).choice(total, n, replace=False))
            out = {k: v[pick] for k, v in out.items()}
        return out

    def parameter_rows(self, draws: dict) -> np.ndarray:
        """Full parameter matrices [D, n_lines, n_params] of the fitted cell lines,
        rebuilt exactly as the numpyro model builds them."""
        theta = draws["theta"]
        n_lines = self.problem.base_rows.shape[0]
        theta_rows = np.repeat(theta[:, None, :], n_lines, axis=1)
        hier = self.problem.hier_index
        if hier.size:
            theta_rows[:, :, hier] = draws["theta_cell"]
        data = self.data
        return np.asarray(jax.vmap(lambda t: parameter_rows(data, t))(jnp.asarray(theta_rows)))

    def inputs(self, draws: dict) -> np.ndarray:
        """Condition inputs of the evidence with each draw's nuisance doses: [D, n_c, n_u]."""
        doses = draws.get("dose", np.zeros((draws["theta"].shape[0], 0)))
        return np.asarray(jax.vmap(lambda d: condition_inputs(self.data, d))(jnp.asarray(doses)))


def reproduced_probability(tree) -> np.ndarray | None:
    """Per data row, the share of posterior draws that reproduce a qualitative finding.

    NaN for value rows (they have no finding to reproduce); None when the run has no
    posterior predictive group.
    """
    if "posterior_predictive" not in tree.children:
        return None
    p = np.asarray(tree["posterior_predictive"]["reproduced"], dtype=float)
    p = p.reshape(-1, p.shape[-1])
    finite = np.isfinite(p)
    total = np.where(finite, p, 0.0).sum(axis=0)
    count = finite.sum(axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def load_run(run_dir: Path) -> FittedRun:
    """Open a finished run folder (config, evidence, posterior)."""
    import xarray as xr

    run_dir = Path(run_dir)
    for name in ("config.yaml", "posterior.nc"):
        if not (run_dir / name).is_file():
            raise Il6rccError(f"{run_dir}: no {name} (is it a finished 'il6rcc fit' run?)")
    loaded = load_config(run_dir / "config.yaml")
    problem, _ = build_problem(loaded)
    tree = xr.open_datatree(run_dir / "posterior.nc", engine="h5netcdf")
    data = jax.tree.map(jnp.asarray, problem_data(problem))
    return FittedRun(run_dir, loaded, problem, data, tree)


def evidence_predictions(run: FittedRun, draws: dict) -> np.ndarray:
    """The model's value of every evidence row (as recorded during sampling in the
    posterior predictive ``predicted``), recomputed from the saved draws: [D, n_rows]."""
    problem, data = run.problem, run.data
    rows = jnp.asarray(run.parameter_rows(draws))
    inputs = jnp.asarray(run.inputs(draws))

    def one(r, u):
        obs, ok = simulate_problem(problem, data, r, u)
        delta = unit_deltas(data["ev"], obs, ok)
        return row_prediction(data["ev"], delta, jnp.zeros(data["blots"].shape[0]))

    return np.asarray(jax.jit(lambda r, u: jax.lax.map(lambda a: one(*a), (r, u)))(rows, inputs))


__all__ = ["FittedRun", "evidence_predictions", "load_run"]
