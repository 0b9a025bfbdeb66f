"""``il6rcc compare RUN_DIR RUN_DIR ... --out DIR``: which mechanism do the data support?

PSIS-LOO (arviz 1.x) on the pointwise log-likelihood of every evidence row,
qualitative rows included. Where the Pareto k of a row exceeds arviz's sample-size
dependent threshold, importance sampling cannot be trusted for that row, and the
comparison says so and falls back:

* up to ``max_refits`` such rows per run: exact leave-one-out, refitting the run's
  config with the row held out (``data.holdout_rows``: its log-likelihood is recorded
  but not fitted) and using its log predictive density under the refit posterior;
* more rows than that: K-fold cross-validation (every row held out once).

Outputs ``compare.csv`` (elpd, SE, differences, stacking weights, Pareto-k problems
and the rows that caused them, the method used), ``compare.png`` and ``loo.json``.
Any runs with the same observations can be compared (evidence rows, or the
measurements of one PEtab problem); the refits need a model fitted to evidence tables.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np
import yaml
from scipy.special import logsumexp

from .. import _io
from ..errors import Il6rccError
from ._run_folder import open_run


def _open(run_dir: Path):
    run = open_run(run_dir)
    if "log_likelihood" not in run.tree.children:
        raise Il6rccError(f"{run.path}/posterior.nc: no log_likelihood group; cannot compute LOO")
    return run


def _observations(run) -> list[str]:
    ll = run.tree["log_likelihood"][run.log_likelihood_name]
    return [str(x) for x in np.asarray(ll[ll.dims[-1]])]


def _names(runs) -> list[str]:
    names = [run.name for run in runs]
    if len(set(names)) != len(names):
        names = [run.path.name for run in runs]
    if len(set(names)) != len(names):
        names = [f"{i}:{run.path}" for i, run in enumerate(runs)]
    return names


#: a row whose log-likelihood varies less than this over the draws (absolute, log
#: units) does not depend on them: its leave-one-out density is that value, exactly
CONSTANT_ROW_TOL = 1e-9


def _loo(run):
    """PSIS-LOO of a run. Draws of an approximation (MAP + Laplace, SVI: ``lp`` and
    ``log_q`` in sample_stats) are draws of q, not of the posterior: their LOO corrects
    for that (arviz's ``loo_approximate_posterior``, with the true log density ``lp``).
    Rows whose log-likelihood is the same in every draw (a qualitative row the model
    reproduces with certainty) enter with that value and Pareto k 0: smoothing their
    constant ratios is undefined (arviz raises), and nothing about them needs it."""
    import arviz as az

    tree, name = run.tree, run.log_likelihood_name
    ll = tree["log_likelihood"][name]
    row_dim = ll.dims[-1]
    flat = np.asarray(ll).reshape(-1, ll.shape[-1])
    constant = np.ptp(flat, axis=0) < CONSTANT_ROW_TOL
    varying = tree
    if constant.any():
        varying = tree.copy()
        varying["log_likelihood"] = tree["log_likelihood"].isel(
            {row_dim: np.flatnonzero(~constant)}
        )
    stats = tree["sample_stats"] if "sample_stats" in tree.children else None
    approximate = stats is not None and "log_q" in stats and "lp" in stats
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # k-hat problems are reported below
        if approximate:
            loo = az.loo_approximate_posterior(
                varying, stats["lp"], stats["log_q"], pointwise=True, var_name=name
            )
        else:
            loo = az.loo(varying, pointwise=True, var_name=name)
    if not constant.any():
        return loo, approximate
    # the full rows: the varying ones' results, the constant ones exactly (k 0)
    template = ll.isel({d: 0 for d in ll.dims[:-1]}, drop=True)
    values = np.empty(len(constant))
    values[~constant] = np.asarray(loo.elpd_i)
    values[constant] = flat[0, constant]
    k = np.zeros(len(constant))
    k[~constant] = np.asarray(loo.pareto_k)
    new = copy.copy(loo)
    new.elpd_i = template.copy(data=values)
    new.pareto_k = template.copy(data=k)
    new.elpd = float(np.sum(values))
    new.se = float(np.sqrt(len(values) * np.var(values)))
    new.n_data_points = int(len(constant))
    return new, approximate


def _refit_elpd(run_dir: Path, holdout: list[str], tag: str, quiet: bool) -> dict[str, float]:
    """Refit a run with ``holdout`` rows held out; their log predictive densities."""
    from .fit import run_fit

    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    config = copy.deepcopy(config)
    config["data"]["holdout_rows"] = list(holdout)
    config["name"] = f"{config.get('name', 'run')}-holdout-{tag}"
    folder = run_dir / "loo_refits" / tag
    cfg_path = run_dir / "loo_refits" / f"{tag}.yaml"
    _io.write_text(cfg_path, yaml.safe_dump(config, sort_keys=True))
    if not (folder / "posterior.nc").is_file():
        if folder.exists():
            import shutil

            shutil.rmtree(folder)
        run_fit(cfg_path, folder, quiet=quiet)
    refit = _open(folder)
    ll = np.asarray(refit.tree["log_likelihood"][refit.log_likelihood_name])
    rows = _observations(refit)
    flat = ll.reshape(-1, ll.shape[-1])
    return {r: float(logsumexp(flat[:, rows.index(r)]) - np.log(flat.shape[0])) for r in holdout}


def _replace_pointwise(loo, elpd_i: np.ndarray):
    """An ELPD result with its pointwise values replaced (sums and SE recomputed)."""
    new = copy.copy(loo)
    new.elpd_i = loo.elpd_i.copy(data=elpd_i)
    new.elpd = float(np.sum(elpd_i))
    new.se = float(np.sqrt(len(elpd_i) * np.var(elpd_i)))
    return new


def run_compare(
    run_dirs: list[Path],
    out: Path,
    refit: str = "auto",
    max_refits: int = 5,
    k_folds: int = 5,
    quiet: bool = False,
) -> int:
    """Compare fitted runs; see the module docstring."""
    import arviz as az

    run_dirs = [Path(d) for d in run_dirs]
    if len(run_dirs) < 2:
        raise Il6rccError("il6rcc compare needs at least two run folders")
    runs = [_open(d) for d in run_dirs]
    names = _names(runs)
    rows = [_observations(run) for run in runs]
    for run, r in zip(runs[1:], rows[1:], strict=True):
        if r != rows[0]:
            raise Il6rccError(
                f"{run.path}: its observations differ from those of {runs[0].path}; LOO "
                f"comparison needs the same data rows in every run"
            )
    row_ids = np.asarray(rows[0])
    results, report = {}, {}
    for name, d, run in zip(names, run_dirs, runs, strict=True):
        loo, approximate = _loo(run)
        k = np.asarray(loo.pareto_k)
        bad = [str(r) for r in row_ids[k > loo.good_k]]
        method = (
            "psis-loo of an approximation (importance-corrected)" if approximate else "psis-loo"
        )
        elpd_i = np.asarray(loo.elpd_i).copy()
        if bad and refit != "none" and run.kind != "evidence":
            method = "psis-loo (high Pareto k rows not refitted: PEtab runs have no holdout)"
        elif bad and refit != "none":
            if len(bad) <= max_refits:
                for r in bad:
                    elpd_i[list(row_ids).index(r)] = _refit_elpd(d, [r], f"row-{r}", quiet)[r]
                method = f"psis-loo + exact refits of {len(bad)} rows"
            else:
                folds = np.array_split(np.random.default_rng(0).permutation(len(row_ids)), k_folds)
                for f, fold in enumerate(folds):
                    held = [str(row_ids[i]) for i in fold]
                    for r, v in _refit_elpd(d, held, f"fold-{f + 1}of{k_folds}", quiet).items():
                        elpd_i[list(row_ids).index(r)] = v
                method = f"{k_folds}-fold cross-validation ({len(bad)} rows had high Pareto k)"
            loo = _replace_pointwise(loo, elpd_i)
        results[name] = loo
        report[name] = {
            "run_dir": str(d),
            "method": method,
            "elpd": float(loo.elpd),
            "se": float(loo.se),
            "p": float(loo.p),
            "k_threshold": float(loo.good_k),
            "high_k_rows": bad,
            "max_k": float(np.nanmax(k)),
        }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        table = az.compare(results, method="stacking", round_to="none")
    table["method"] = [report[n]["method"] for n in table.index]
    table["n_high_k"] = [len(report[n]["high_k_rows"]) for n in table.index]
    table["high_k_rows"] = [";".join(report[n]["high_k_rows"]) for n in table.index]
    table["max_pareto_k"] = [report[n]["max_k"] for n in table.index]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _io.atomic_write(out / "compare.csv", lambda p: table.to_csv(p, index_label="variant"))
    _io.write_json(out / "loo.json", report)
    _plot(table, results, row_ids, out / "compare.png")
    unreliable = [
        n
        for n in names
        if report[n]["high_k_rows"]
        and not report[n]["method"].startswith(("psis-loo +", f"{k_folds}-fold"))
    ]
    if not quiet:
        print(table[["elpd", "se", "elpd_diff", "dse", "weight", "method"]].to_string())
        if unreliable:
            print(
                f"WARNING: PSIS-LOO is unreliable for {unreliable} (high Pareto k rows); "
                f"rerun without --refit none to refit them"
            )
        print(f"wrote {out / 'compare.csv'}")
    return 0


def _plot(table, results, row_ids, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 0.6 * len(table) + 2.5))
    y = np.arange(len(table))[::-1]
    a.errorbar(table["elpd"], y, xerr=table["se"], fmt="o", capsize=3)
    a.set_yticks(y, table.index)
    a.set_xlabel("elpd_loo (higher is better) +- SE")
    for yi, w in zip(y, table["weight"], strict=True):
        a.annotate(f"w={w:.2f}", (table["elpd"].max(), yi), fontsize=8, ha="left")
    for name, loo in results.items():
        b.plot(np.asarray(loo.pareto_k), ".", label=name, alpha=0.7)
    thr = min(float(loo.good_k) for loo in results.values())
    b.axhline(thr, color="r", lw=0.8)
    b.set_xlabel("evidence row")
    b.set_ylabel("Pareto k")
    b.legend(fontsize=7)
    fig.tight_layout()
    _io.save_figure(fig, path, dpi=110)
    plt.close(fig)


__all__ = ["run_compare"]
