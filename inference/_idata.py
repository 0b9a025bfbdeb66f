"""Assemble sampler output into an arviz 1.x ``xarray.DataTree``.

Groups: ``posterior`` (natural-scale parameters, cell-line parameters, doses, noise),
``sample_stats`` (divergences, energy, lp, tree depth, step size, failed solves),
``log_likelihood`` (``evidence``: one value per data row, qualitative rows included),
``observed_data`` (measured log values and stated directions per row), ``prior``
(prior draws of the same variables), and optionally ``posterior_predictive``.
"""

from __future__ import annotations

import numpy as np

from ..data import ROW_KINDS, EvidenceArrays
from ._model import Problem


def _coords(problem: Problem) -> dict:
    arrays = problem.arrays
    pri = problem.priors
    return {
        "parameter": list(pri.names),
        "cell_line": list(problem.row_names),
        "hier_parameter": [pri.names[i] for i in problem.hier_index],
        "nuisance": list(arrays.nuisance_names),
        "noise_group": [arrays.noise_groups[i] for i in problem.sd_groups],
        "blot": list(arrays.scale_groups),
        "row": list(arrays.row_ids),
    }


DIMS = {
    "theta": ["parameter"],
    "theta_cell": ["cell_line", "hier_parameter"],
    "tau": ["hier_parameter"],
    "dose": ["nuisance"],
    "sigma": ["noise_group"],
    "blot_scale": ["blot"],
    "evidence": ["row"],
    "reproduced": ["row"],
    "value": ["row"],
    "direction": ["row"],
    "predicted": ["row"],
}

POSTERIOR_VARS = ("theta", "theta_cell", "tau", "dose", "sigma", "blot_scale")


def posterior_dict(draws: dict) -> dict:
    """Natural-scale variables out of numpyro's constrained + deterministic sites."""
    return {k: np.asarray(draws[k]) for k in POSTERIOR_VARS if k in draws}


def observed_dict(arrays: EvidenceArrays) -> dict:
    """Per row: measured log value (NaN for qualitative rows) and stated direction
    (+1/-1 for sign, rank and interaction rows, 0 otherwise)."""
    direction = np.zeros(arrays.n_rows)
    np.add.at(direction, np.asarray(arrays.unit_row), np.asarray(arrays.unit_direction))
    return {"value": np.asarray(arrays.row_value), "direction": np.sign(direction)}


def build_datatree(
    problem: Problem,
    draws: dict,
    stats: dict,
    prior_draws: dict | None = None,
    posterior_predictive: dict | None = None,
    attrs: dict | None = None,
):
    """A DataTree from arrays with leading (chain, draw) axes.

    Args:
        draws: numpyro sites (must include ``log_lik``; ``theta`` etc. as available).
        stats: sampler statistics: diverging, energy, potential_energy, num_steps,
            accept_prob, step_size, and optionally n_failed.
        prior_draws: prior variables with leading (chain=1, draw) axes.
        posterior_predictive: e.g. ``reproduced`` and ``predicted`` per row.
    """
    import arviz as az

    arrays = problem.arrays
    sample_stats = {
        "diverging": np.asarray(stats["diverging"]).astype(bool),
        "energy": np.asarray(stats["energy"]),
        "lp": -np.asarray(stats["potential_energy"]),
        "n_steps": np.asarray(stats["num_steps"]),
        "tree_depth": np.floor(np.log2(np.asarray(stats["num_steps"]) + 1)).astype(int),
        "acceptance_rate": np.asarray(stats["accept_prob"]),
        "step_size": np.asarray(stats["step_size"]),
    }
    if "n_failed" in draws:
        sample_stats["n_failed"] = np.asarray(draws["n_failed"])
    data = {
        "posterior": posterior_dict(draws),
        "sample_stats": sample_stats,
        "log_likelihood": {"evidence": np.asarray(draws["log_lik"])},
        "observed_data": observed_dict(arrays),
    }
    if prior_draws:
        data["prior"] = posterior_dict(prior_draws)
    if posterior_predictive:
        data["posterior_predictive"] = posterior_predictive
    coords = _coords(problem)
    dims = {k: v for k, v in DIMS.items()}
    tree = az.from_dict(data, coords=coords, dims=dims, check_conventions=False)
    kinds = [ROW_KINDS[int(k)] for k in arrays.row_kind]
    row_meta = {
        "row_kind": ("row", kinds),
        "row_study": ("row", list(arrays.row_study)),
        "row_readout": ("row", list(arrays.row_readout)),
        "row_source": ("row", list(arrays.row_source)),
    }
    for group in ("log_likelihood", "observed_data", "posterior_predictive"):
        if group in tree.children:
            tree[group] = tree[group].to_dataset().assign_coords(row_meta)
    if attrs:
        tree.attrs.update({k: str(v) for k, v in attrs.items()})
    return tree


__all__ = ["DIMS", "POSTERIOR_VARS", "build_datatree", "observed_dict", "posterior_dict"]
