"""Assemble a run's draws into an arviz 1.x ``xarray.DataTree``, by a posterior's layout.

Groups: ``posterior`` (the layout's natural-scale variables), ``sample_stats``
(``lp``, failed solves, and for NUTS divergences, energy, tree depth, step size; for
an approximation the log importance weight of each draw), ``log_likelihood`` (one
value per observation: evidence row or measurement), ``posterior_predictive``,
``observed_data`` and ``prior`` (prior draws of the posterior variables).
"""

from __future__ import annotations

import numpy as np

from ._posterior import DrawLayout


def nuts_sample_stats(stats: dict) -> dict:
    """sample_stats variables of NUTS statistics [chain, draw]."""
    return {
        "diverging": np.asarray(stats["diverging"]).astype(bool),
        "energy": np.asarray(stats["energy"]),
        "n_steps": np.asarray(stats["num_steps"]),
        "tree_depth": np.floor(np.log2(np.asarray(stats["num_steps"]) + 1)).astype(int),
        "acceptance_rate": np.asarray(stats["accept_prob"]),
        "step_size": np.asarray(stats["step_size"]),
    }


def build_datatree(
    layout: DrawLayout,
    draws: dict,
    sample_stats: dict | None = None,
    prior_draws: dict | None = None,
    attrs: dict | None = None,
):
    """A DataTree from recorded draws with leading (chain, draw) axes.

    Args:
        layout: the posterior's :class:`DrawLayout`.
        draws: :meth:`Posterior.record` variables, [chain, draw, ...].
        sample_stats: extra sample statistics [chain, draw] (e.g.
            :func:`nuts_sample_stats`); ``lp`` and ``n_failed`` come from ``draws``.
        prior_draws: the layout's posterior variables of prior draws, [1, draw, ...].
    """
    import arviz as az

    stats = dict(sample_stats or {})
    if "log_density" in draws:
        stats["lp"] = np.asarray(draws["log_density"])
    if "n_failed" in draws:
        stats["n_failed"] = np.asarray(draws["n_failed"])
    groups = {
        "posterior": {k: np.asarray(draws[k]) for k in layout.posterior if k in draws},
        "sample_stats": stats,
        "log_likelihood": {layout.log_likelihood: np.asarray(draws[layout.log_likelihood])},
        "observed_data": {k: np.asarray(v) for k, v in layout.observed.items()},
    }
    if prior_draws:
        groups["prior"] = {
            k: np.asarray(prior_draws[k]) for k in layout.posterior if k in prior_draws
        }
    predictive = {k: np.asarray(draws[k]) for k in layout.predictive if k in draws}
    if predictive:
        groups["posterior_predictive"] = predictive
    dims = {k: list(v) for k, v in layout.dims.items()}
    coords = {k: list(v) for k, v in layout.coords.items()}
    tree = az.from_dict(groups, coords=coords, dims=dims, check_conventions=False)
    if layout.observation_coords:
        extra = {k: (dim, list(values)) for k, (dim, values) in layout.observation_coords.items()}
        for group in ("log_likelihood", "observed_data", "posterior_predictive"):
            if group in tree.children:
                tree[group] = tree[group].to_dataset().assign_coords(extra)
    if attrs:
        tree.attrs.update({k: str(v) for k, v in attrs.items()})
    return tree


__all__ = ["build_datatree", "nuts_sample_stats"]
