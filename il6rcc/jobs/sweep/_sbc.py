"""Simulation-based calibration (Talts et al. 2018, arXiv:1804.06788) as a sweep axis.

For replicate r of ``{sbc: {replicates: R, seed: S}}``: parameters drawn from the prior
(PRNG key ``fold_in(PRNGKey(S), r)``), evidence values simulated from the model at them
plus the rows' own measurement noise, written as a copy of the element's evidence
tables (same rows, same relative spreads, new values) under
``DIR/_sweep/sbc/<element>/`` with the true parameters (``truth.json``). The element then
fits that copy as an ordinary run (MCMC seed r unless an axis sets ``inference.seed``).
``then: [sbc]`` ranks each true parameter among its posterior draws (thinned by
``sbc_thin``): for a calibrated inference the ranks are uniform. Outputs
``DIR/sbc/ranks.csv``, ``DIR/sbc/summary.csv`` (chi-square p-value of uniformity per
parameter) and ``DIR/sbc/ranks.png``.

Simulated rows must be quantitative value rows with a published spread and one
sampling time (qualitative rows and fitted noise levels have no simulator here yet);
anything else is refused with the rows named.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ... import _io
from ...errors import ConfigError
from ._element import META

#: the likelihood's code of a value row (data.ROW_KINDS order)
VALUE_KIND = 0


def _sbc_dir(out: Path, name: str) -> Path:
    return Path(out) / META / "sbc" / name


def _simulate(problem, key) -> tuple[np.ndarray, np.ndarray, dict]:
    """One prior draw of the problem's posterior, its predicted row values and the rows'
    noise; (None, None, {}) where a solve fails."""
    import jax
    import jax.numpy as jnp

    from ...inference import EvidencePosterior

    posterior = EvidencePosterior(problem)
    data = posterior.data
    k_prior, k_noise = jax.random.split(key)
    x = jnp.asarray(posterior.prior_sample(k_prior, 1, data)[0])
    sim = jax.jit(posterior.record)(x, data)
    if int(np.asarray(sim["n_failed"])):
        return None, None, {}
    sd = np.asarray(data.ev["row_sd"])
    values = np.asarray(sim["predicted"]) + np.asarray(jax.random.normal(k_noise, sd.shape)) * sd
    theta = np.asarray(sim["theta"])
    names = problem.parameterisation.names
    return values, theta, {n: float(v) for n, v in zip(names, theta, strict=True)}


def _check_rows(problem, where: str) -> None:
    a = problem.arrays
    bad = []
    for i, row in enumerate(a.row_ids):
        n_times = int(np.sum(np.isfinite(np.asarray(a.row_time_logw)[i])))
        if int(a.row_kind[i]) != VALUE_KIND:
            bad.append(f"{row} (not a value row)")
        elif not np.isfinite(a.row_log_sd[i]):
            bad.append(f"{row} (no published spread)")
        elif n_times != 1 or int(a.row_scale_group[i]) >= 0:
            bad.append(f"{row} (unknown sampling time or blot scale)")
    if bad:
        shown = ", ".join(bad[:8]) + (f" and {len(bad) - 8} more" if len(bad) > 8 else "")
        raise ConfigError(
            f"{where}: sbc axis: SBC simulates quantitative value rows with a published "
            f"spread and one sampling time; these rows are not: {shown}. Restrict the base "
            f"config's evidence (data.tables, data.exclude_rows) to such rows"
        )


def _write_tables(loaded, problem, values: np.ndarray, folder: Path) -> list[str]:
    """Copies of the config's tables with the simulated values (each row's value and
    spread scaled by one factor, so its relative spread, hence its log SD, is kept);
    returns the new ``data.tables``."""
    import pandas as pd

    from ...data import columns as C

    ids = problem.arrays.row_ids
    target = dict(zip(ids, values, strict=True))
    # the value the likelihood sees (unit factor applied), per row
    current = dict(zip(ids, np.exp(np.asarray(problem.arrays.row_value)), strict=True))
    tables = []
    for name in loaded.config.data.tables:
        path = loaded.resolve(name)
        frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
        if C.ROW_ID not in frame.columns or C.VALUE not in frame.columns:
            tables.append(str(path))
            continue
        for i, row_id in enumerate(frame[C.ROW_ID]):
            if row_id in target:
                old = float(frame.at[i, C.VALUE])
                ratio = float(np.exp(target[row_id]) / current[row_id])
                frame.at[i, C.VALUE] = f"{old * ratio:.12g}"
                if frame.at[i, C.SPREAD]:
                    frame.at[i, C.SPREAD] = f"{float(frame.at[i, C.SPREAD]) * ratio:.12g}"
        dest = folder / path.name
        _io.atomic_write(dest, lambda p, f=frame: f.to_csv(p, sep="\t", index=False))
        tables.append(str(dest))
    return tables


def prepare_sbc(plan, out: Path, dry_run: bool = False) -> dict[str, dict]:
    """Simulate the data of every SBC element (once: kept under ``DIR/_sweep/sbc``);
    returns the job-config overrides of each element."""
    import jax

    from ...configs import load_config
    from .._build import evidence_problem

    spec = next(a.sbc for a in plan.config.axes if hasattr(a, "sbc"))
    extra: dict[str, dict] = {}
    cache: dict[str, tuple] = {}
    verified: set[str] = set()
    for el in plan.elements:
        overrides = dict(el.overrides)
        group = json.dumps(overrides, sort_keys=True, default=str)
        if group not in cache:
            loaded = load_config(plan.base, overrides)
            problem, _ = evidence_problem(loaded)
            _check_rows(problem, f"{plan.path}: element {el.name}")
            cache[group] = (loaded, problem)
        loaded, problem = cache[group]
        folder = _sbc_dir(out, el.name)
        tables_file = folder / "tables.json"
        seed_extra = (
            {} if "inference.seed" in el.overrides else {"inference.seed": el.sbc_replicate}
        )
        if tables_file.is_file():
            extra[el.name] = {"data.tables": json.loads(tables_file.read_text()), **seed_extra}
            continue
        if dry_run:
            extra[el.name] = seed_extra
            continue
        key = jax.random.fold_in(jax.random.PRNGKey(spec.seed), el.sbc_replicate)
        values, theta, truth = None, None, {}
        for attempt in range(20):  # redraw (recorded) where the model cannot be solved
            values, theta, truth = _simulate(problem, jax.random.fold_in(key, attempt))
            if values is not None:
                break
        if values is None:
            raise ConfigError(
                f"{plan.path}: element {el.name}: 20 prior draws in a row had failed ODE "
                "solves; SBC needs a prior under which the model solves"
            )
        tables = _write_tables(loaded, problem, values, folder)
        if group not in verified:  # once per base config: the writer inverts its units
            _verify(loaded, tables, values, problem, el.name, plan.path)
            verified.add(group)
        _io.write_json(folder / "truth.json", {"theta": truth, "redraws": attempt})
        _io.write_json(tables_file, tables)
        extra[el.name] = {"data.tables": tables, **seed_extra}
    return extra


def _verify(loaded, tables, values, problem, name, sweep_path) -> None:
    """The copied tables must reproduce the simulated log values and the rows' log SDs."""
    from ...configs import load_config
    from .._build import evidence_problem

    copy, _ = evidence_problem(
        load_config(loaded.path, {**dict(loaded.overrides), "data.tables": tables})
    )
    ok_values = np.allclose(np.asarray(copy.arrays.row_value), values, rtol=0, atol=1e-9)
    ok_sd = np.allclose(copy.arrays.row_log_sd, problem.arrays.row_log_sd, rtol=1e-9)
    if not (ok_values and ok_sd):
        raise ConfigError(
            f"{sweep_path}: element {name}: the simulated tables do not reproduce the "
            "simulated values and the rows' spreads (a unit this SBC writer cannot invert)"
        )


def summarise_sbc(plan, out: Path, complete: list[str], say) -> bool:
    """Rank statistics of the complete SBC elements -> DIR/sbc/."""
    import pandas as pd
    import xarray as xr
    from scipy.stats import chisquare

    thin = plan.config.sbc_thin
    records = []
    for el in plan.elements:
        if el.sbc_replicate is None or el.name not in complete:
            continue
        truth = json.loads((_sbc_dir(out, el.name) / "truth.json").read_text())["theta"]
        tree = xr.open_datatree(Path(out) / el.name / "posterior.nc", engine="h5netcdf")
        theta = tree["posterior"]["theta"]
        names = [str(n) for n in np.asarray(theta["parameter"])]
        draws = np.asarray(theta).reshape(-1, len(names))[::thin]
        tree.close()
        for j, n in enumerate(names):
            records.append(
                {
                    "element": el.name,
                    "replicate": el.sbc_replicate,
                    "parameter": n,
                    "truth": truth[n],
                    "rank": int(np.sum(draws[:, j] < truth[n])),
                    "n_draws": draws.shape[0],
                }
            )
    if not records:
        say("sbc: no complete replicates")
        return False
    ranks = pd.DataFrame.from_records(records)
    folder = Path(out) / "sbc"
    _io.atomic_write(folder / "ranks.csv", lambda p: ranks.to_csv(p, index=False))
    rows = []
    n_draws = int(ranks["n_draws"].min())
    for name, group in ranks.groupby("parameter", sort=False):
        n = len(group)
        bins = int(max(2, min(20, n // 5)))
        counts = np.histogram(group["rank"], bins=bins, range=(0, n_draws + 1))[0]
        rows.append(
            {
                "parameter": name,
                "replicates": n,
                "bins": bins,
                "chi2_pvalue": float(chisquare(counts).pvalue),
                "mean_rank_fraction": float(np.mean(group["rank"] / group["n_draws"])),
            }
        )
    summary = pd.DataFrame.from_records(rows)
    _io.atomic_write(folder / "summary.csv", lambda p: summary.to_csv(p, index=False))
    _figure(ranks, summary, n_draws, folder / "ranks.png")
    worst = summary.sort_values("chi2_pvalue").iloc[0]
    say(
        f"sbc: {summary['replicates'].max()} replicates; lowest uniformity p-value "
        f"{worst['chi2_pvalue']:.3g} ({worst['parameter']}); {folder / 'summary.csv'}"
    )
    return True


def _figure(ranks, summary, n_draws: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.stats import binom

    n_par = len(summary)
    cols = min(n_par, 4)
    fig, axes = plt.subplots(
        (n_par + cols - 1) // cols,
        cols,
        figsize=(3.2 * cols, 2.6 * ((n_par + cols - 1) // cols)),
        squeeze=False,
    )
    for ax, (_, s) in zip(axes.flat, summary.iterrows(), strict=False):
        r = ranks[ranks["parameter"] == s["parameter"]]["rank"]
        bins = int(s["bins"])
        ax.hist(r, bins=bins, range=(0, n_draws + 1), color="0.6", edgecolor="k")
        lo, hi = binom.ppf([0.005, 0.995], len(r), 1 / bins)
        ax.axhspan(lo, hi, color="tab:blue", alpha=0.15, label="99% band if uniform")
        ax.set_title(f"{s['parameter']} (p={s['chi2_pvalue']:.2g})", fontsize=9)
        ax.set_xlabel("rank of the truth")
    for ax in list(axes.flat)[n_par:]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    _io.save_figure(fig, path, dpi=110)
    plt.close(fig)


__all__ = ["prepare_sbc", "summarise_sbc"]
