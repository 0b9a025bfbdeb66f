"""Convergence diagnostics from arviz 1.x with configurable gates.

Rank-normalised R-hat, bulk and tail ESS (Vehtari et al. 2021), divergent
transitions, E-BFMI per chain and tree-depth saturation. NaN diagnostics count as
failures. A run that misses a gate still writes all its outputs and names the gate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Gates:
    max_rhat: float = 1.01
    min_ess_bulk: float = 400.0
    min_ess_tail: float = 400.0
    max_divergences: int = 0
    min_ebfmi: float = 0.3


def summary_table(tree, var_names=("theta", "theta_cell", "tau", "dose", "sigma")):
    """arviz summary (mean, sd, eti, ess_bulk, ess_tail, r_hat, mcse) as a DataFrame."""
    import arviz as az

    present = [v for v in var_names if v in tree["posterior"].data_vars]
    return az.summary(tree, var_names=present, kind="all", fmt="wide", round_to="none")


def _ebfmi(energy: np.ndarray) -> np.ndarray:
    """E-BFMI per chain (Betancourt 2016): mean squared energy step over energy variance."""
    energy = np.atleast_2d(energy)
    num = np.mean(np.diff(energy, axis=1) ** 2, axis=1)
    den = np.var(energy, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / den, np.nan)


def _name_at(table, values: np.ndarray, pick) -> str:
    """Row name of the worst value ('' when there is no finite value)."""
    if not values.size or not np.isfinite(values).any():
        return ""
    return str(table.index[int(pick(np.where(np.isfinite(values), values, np.nan)))])


def diagnose(tree, gates: Gates, max_tree_depth: int | None = None, mcmc: bool = True) -> dict:
    """Diagnostics and pass/fail gates of a posterior DataTree (JSON-ready dict).

    ``mcmc=False`` (draws from a Laplace or variational approximation): the sampler
    gates (divergences, E-BFMI) do not apply and are reported as ``not applicable``;
    R-hat and ESS then only check that enough independent draws were taken, not that
    the approximation is right."""
    table = summary_table(tree)
    rhat = np.asarray(table["r_hat"], dtype=float)
    ess_bulk = np.asarray(table["ess_bulk"], dtype=float)
    ess_tail = np.asarray(table["ess_tail"], dtype=float)
    stats = tree["sample_stats"]
    diverging = np.asarray(stats["diverging"])
    n_div = int(diverging.sum())
    ebfmi = _ebfmi(np.asarray(stats["energy"], dtype=float)) if "energy" in stats else None
    if ebfmi is None:
        ebfmi = np.array([np.nan])
    depth = np.asarray(stats["tree_depth"]) if "tree_depth" in stats else None
    saturated = (
        float(np.mean(depth >= max_tree_depth)) if depth is not None and max_tree_depth else 0.0
    )
    failed = np.asarray(stats["n_failed"]) if "n_failed" in stats else np.zeros(1)
    n_failed = int(failed.sum())

    def worst(values, fn):
        return float(fn(values)) if values.size and not np.isnan(values).any() else float("nan")

    out = {
        "n_chains": int(diverging.shape[0]),
        "n_draws": int(diverging.shape[1]),
        "max_rhat": worst(rhat, np.max),
        "min_ess_bulk": worst(ess_bulk, np.min),
        "min_ess_tail": worst(ess_tail, np.min),
        "divergences": n_div,
        "min_ebfmi": worst(ebfmi, np.min),
        "ebfmi_per_chain": [float(x) for x in ebfmi],
        "treedepth_saturation": saturated,
        "failed_solves_in_draws": n_failed,
        "draws_with_failed_solves": int(np.sum(failed > 0)),
        "worst_rhat_parameter": _name_at(table, rhat, np.nanargmax),
        "worst_ess_parameter": _name_at(table, ess_bulk, np.nanargmin),
    }
    checks = {
        "max_rhat": (out["max_rhat"], "<", gates.max_rhat),
        "min_ess_bulk": (out["min_ess_bulk"], ">=", gates.min_ess_bulk),
        "min_ess_tail": (out["min_ess_tail"], ">=", gates.min_ess_tail),
        "divergences": (out["divergences"], "<=", gates.max_divergences),
        "min_ebfmi": (out["min_ebfmi"], ">=", gates.min_ebfmi),
    }
    gate_results = {}
    if not mcmc:  # independent draws: no chains to compare, no sampler to diagnose
        for name in ("max_rhat", "divergences", "min_ebfmi"):
            checks.pop(name)
            gate_results[name] = {"value": None, "rule": "not applicable (no MCMC)", "passed": True}
    for name, (value, op, threshold) in checks.items():
        ok = bool(
            np.isfinite(value)
            and (
                value < threshold
                if op == "<"
                else value >= threshold
                if op == ">="
                else value <= threshold
            )
        )
        gate_results[name] = {"value": value, "rule": f"{op} {threshold}", "passed": ok}
    out["gates"] = gate_results
    out["passed"] = all(g["passed"] for g in gate_results.values())
    out["failed_gates"] = [k for k, g in gate_results.items() if not g["passed"]]
    return out


__all__ = ["Gates", "diagnose", "summary_table"]
