"""Diagnostics with gates that can fail, and a verdict that names what was checked.

MCMC (NUTS): rank-normalised R-hat, bulk and tail ESS (Vehtari et al. 2021; arviz
1.x), divergent transitions after warmup, E-BFMI per chain, tree-depth saturation.
Approximations (Laplace at the MAP, SVI): Pareto k-hat and effective sample size of
their draws' importance weights against the true log density (Yao et al. 2018, see
:func:`il6rcc.inference.importance_check`); a Laplace approximation also needs its
MAP to be a mode (a positive-definite Hessian before flooring, not a saddle).

A gate that does not apply to the method is *not applicable*: it is listed as such
and never counts as passed. A run passes when every gate that applies was checked and
passed; NaN values fail. A run that misses a gate still writes all its outputs, and
its one-line verdict names the gates that were checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import numpy as np
from pydantic import ConfigDict, Field

from ._laplace import SADDLE_TOLERANCE


@dataclass(frozen=True)
class Gates:
    """Thresholds of the diagnostic gates: the ``diagnostics`` section of a job config.

    MCMC: rank-normalised R-hat, bulk and tail ESS, divergences after warmup, E-BFMI
    per chain. Approximations (Laplace, SVI): Pareto k-hat of the importance weights of
    their draws against the true log density (``max_pareto_k``, Yao et al. 2018) and
    the ESS of those weights (``min_ess_bulk``).
    """

    __pydantic_config__ = ConfigDict(extra="forbid")

    max_rhat: Annotated[float, Field(gt=0)] = 1.01
    min_ess_bulk: Annotated[float, Field(gt=0)] = 400.0
    min_ess_tail: Annotated[float, Field(gt=0)] = 400.0
    max_divergences: Annotated[int, Field(ge=0)] = 0
    min_ebfmi: Annotated[float, Field(gt=0)] = 0.3
    max_pareto_k: Annotated[float, Field(gt=0)] = 0.7


MCMC_GATES = ("max_rhat", "min_ess_bulk", "min_ess_tail", "divergences", "min_ebfmi")
#: Gates of each method (the others are not applicable to it).
METHOD_GATES = {
    "nuts": MCMC_GATES,
    "map": ("map_is_mode", "pareto_k", "importance_ess"),
    "svi": ("pareto_k", "importance_ess"),
}
#: Gates listed for each method: its own, and those a reader might expect that do not
#: apply (the MCMC gates of an approximation), marked "not applicable".
LISTED_GATES = {
    "nuts": MCMC_GATES,
    "map": ("map_is_mode", "pareto_k", "importance_ess", *MCMC_GATES),
    "svi": ("pareto_k", "importance_ess", "map_is_mode", *MCMC_GATES),
}
ALL_GATES = (
    "max_rhat",
    "min_ess_bulk",
    "min_ess_tail",
    "divergences",
    "min_ebfmi",
    "map_is_mode",
    "pareto_k",
    "importance_ess",
)
#: Why a gate does not apply to a method.
NOT_APPLICABLE = {
    "max_rhat": "not applicable: independent draws of an approximation, no chains to compare",
    "min_ess_bulk": "not applicable: the importance ESS measures the approximation's draws",
    "min_ess_tail": "not applicable: the importance ESS measures the approximation's draws",
    "divergences": "not applicable: no Hamiltonian trajectories",
    "min_ebfmi": "not applicable: no Hamiltonian trajectories",
    "map_is_mode": "not applicable: the draws do not come from the MAP's Gaussian",
    "pareto_k": "not applicable: MCMC draws are not importance-weighted",
    "importance_ess": "not applicable: MCMC draws are not importance-weighted",
}


def summary_table(tree, var_names=("theta", "theta_cell", "tau", "dose", "sigma"), mcmc=True):
    """arviz summary (mean, sd, eti, ess_bulk, ess_tail, r_hat, mcse) as a DataFrame.

    ``mcmc=False`` (draws of an approximation, resampled with importance weights):
    the chain diagnostics (R-hat, ESS, MCSE) do not apply and are NaN."""
    import arviz as az

    present = [v for v in var_names if v in tree["posterior"].data_vars]
    table = az.summary(tree, var_names=present, kind="all", fmt="wide", round_to="none")
    if not mcmc:
        for column in table.columns:
            if column.startswith(("ess", "r_hat", "mcse")):
                table[column] = np.nan
    return table


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


def _worst(values: np.ndarray, fn) -> float:
    return float(fn(values)) if values.size and not np.isnan(values).any() else float("nan")


def _check(value, op: str, threshold) -> bool:
    if value is None or not np.isfinite(value):
        return False
    return bool(
        value < threshold if op == "<" else value >= threshold if op == ">=" else value <= threshold
    )


def diagnose(
    tree,
    gates: Gates,
    method: str,
    max_tree_depth: int | None = None,
    importance=None,
    map_min_eigenvalue: float | None = None,
) -> dict:
    """Diagnostics and gates of a posterior DataTree (a JSON-ready dict).

    Args:
        method: ``nuts``, ``map`` (Laplace at the MAP) or ``svi``.
        importance: the :class:`~il6rcc.inference.ImportanceCheck` of an
            approximation's draws (methods ``map`` and ``svi``).
        map_min_eigenvalue: smallest eigenvalue of the MAP's unfloored Hessian
            (method ``map``; negative: a saddle).
    """
    mcmc = method == "nuts"
    table = summary_table(tree)
    rhat = np.asarray(table["r_hat"], dtype=float)
    ess_bulk = np.asarray(table["ess_bulk"], dtype=float)
    ess_tail = np.asarray(table["ess_tail"], dtype=float)
    stats = tree["sample_stats"]
    shape = np.asarray(tree["log_likelihood"][next(iter(tree["log_likelihood"].data_vars))]).shape
    failed = np.asarray(stats["n_failed"]) if "n_failed" in stats else np.zeros(1)
    out: dict = {
        "method": method,
        "n_chains": int(shape[0]),
        "n_draws": int(shape[1]),
        "failed_solves_in_draws": int(failed.sum()),
        "draws_with_failed_solves": int(np.sum(failed > 0)),
    }
    values: dict = {}
    if mcmc:
        diverging = np.asarray(stats["diverging"])
        ebfmi = _ebfmi(np.asarray(stats["energy"], dtype=float))
        depth = np.asarray(stats["tree_depth"]) if "tree_depth" in stats else None
        out.update(
            max_rhat=_worst(rhat, np.max),
            min_ess_bulk=_worst(ess_bulk, np.min),
            min_ess_tail=_worst(ess_tail, np.min),
            divergences=int(diverging.sum()),
            min_ebfmi=_worst(ebfmi, np.min),
            ebfmi_per_chain=[float(x) for x in ebfmi],
            treedepth_saturation=(
                float(np.mean(depth >= max_tree_depth))
                if depth is not None and max_tree_depth
                else 0.0
            ),
            worst_rhat_parameter=_name_at(table, rhat, np.nanargmax),
            worst_ess_parameter=_name_at(table, ess_bulk, np.nanargmin),
        )
        values.update(
            max_rhat=(out["max_rhat"], "<", gates.max_rhat),
            min_ess_bulk=(out["min_ess_bulk"], ">=", gates.min_ess_bulk),
            min_ess_tail=(out["min_ess_tail"], ">=", gates.min_ess_tail),
            divergences=(out["divergences"], "<=", gates.max_divergences),
            min_ebfmi=(out["min_ebfmi"], ">=", gates.min_ebfmi),
        )
    if importance is not None:
        out.update(
            pareto_k=importance.pareto_k,
            importance_ess=importance.ess,
            importance_draws=importance.n_draws,
            importance_failed_draws=importance.n_failed,
        )
        values.update(
            pareto_k=(importance.pareto_k, "<", gates.max_pareto_k),
            importance_ess=(importance.ess, ">=", gates.min_ess_bulk),
        )
    if map_min_eigenvalue is not None:
        out["map_min_eigenvalue"] = float(map_min_eigenvalue)
        out["map_saddle"] = bool(map_min_eigenvalue < -SADDLE_TOLERANCE)
        values["map_is_mode"] = (map_min_eigenvalue, ">=", -SADDLE_TOLERANCE)
    applicable = METHOD_GATES[method]
    gate_results = {}
    for name in LISTED_GATES[method]:
        if name not in applicable:
            gate_results[name] = {
                "value": None,
                "rule": NOT_APPLICABLE[name],
                "status": "not applicable",
                "passed": None,
            }
        elif name not in values:  # applies, but nothing was measured: a failure
            gate_results[name] = {
                "value": None,
                "rule": "not measured",
                "status": "failed",
                "passed": False,
            }
        else:
            value, op, threshold = values[name]
            ok = _check(value, op, threshold)
            gate_results[name] = {
                "value": None if value is None else float(value),
                "rule": f"{op} {threshold:g}",
                "status": "passed" if ok else "failed",
                "passed": ok,
            }
    checked = [k for k, g in gate_results.items() if g["status"] != "not applicable"]
    out["gates"] = gate_results
    out["gates_checked"] = checked
    out["failed_gates"] = [k for k in checked if not gate_results[k]["passed"]]
    out["passed"] = bool(checked) and not out["failed_gates"]
    out["verdict"] = verdict(out)
    return out


def verdict(diag: dict) -> str:
    """One line: which gates were checked, with their values, and whether they passed."""
    gates = diag["gates"]

    def show(name: str) -> str:
        g = gates[name]
        value = "n/a" if g["value"] is None else f"{g['value']:.4g}"
        return f"{name} {value} (needs {g['rule']})"

    checked = diag["gates_checked"]
    skipped = [k for k, g in gates.items() if g["status"] == "not applicable"]
    if diag["passed"]:
        head = f"{diag['method']}: all {len(checked)} gates checked passed: " + ", ".join(
            show(k) for k in checked
        )
    else:
        head = f"{diag['method']}: gates FAILED: " + ", ".join(
            show(k) for k in diag["failed_gates"]
        )
        passed = [k for k in checked if gates[k]["passed"]]
        if passed:
            head += "; passed: " + ", ".join(passed)
    return head + ("; not applicable: " + ", ".join(skipped) if skipped else "")


__all__ = [
    "ALL_GATES",
    "LISTED_GATES",
    "METHOD_GATES",
    "Gates",
    "diagnose",
    "summary_table",
    "verdict",
]
