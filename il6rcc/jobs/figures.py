"""Figures of a fitted run (matplotlib, PNG, written atomically), for every method:
rank histograms, traces and energy for MCMC chains; the importance weights of an
approximation's draws; prior against posterior; predictive checks and findings for
models fitted to evidence tables."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .. import _io
from ._run_folder import reproduction_rates


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _theta(tree, group="posterior"):
    ds = tree[group].to_dataset() if group in tree.children else None
    if ds is None or "theta" not in ds:
        return None, []
    values = np.asarray(ds["theta"])  # chain, draw, parameter
    return values, list(np.asarray(ds["parameter"]))


def _ordered_parameters(tree, names, limit=12):
    """Parameters with the worst R-hat first (all of them if few)."""
    import arviz as az

    try:
        rhat = np.asarray(az.rhat(tree, var_names=["theta"])["theta"])
        order = np.argsort(-np.nan_to_num(rhat, nan=np.inf))
    except (KeyError, ValueError):
        order = np.arange(len(names))
    return [int(i) for i in order[:limit]]


def _grid(n):
    ncol = min(4, max(n, 1))
    return math.ceil(max(n, 1) / ncol), ncol


def rank_and_trace(tree, out: Path, log_scale: bool = True) -> list[Path]:
    """Rank histograms and traces (of log10 values when ``log_scale``)."""
    plt = _plt()
    values, names = _theta(tree)
    if values is None:
        return []
    chosen = _ordered_parameters(tree, names)
    nrow, ncol = _grid(len(chosen))
    paths = []
    for kind in ("ranks", "trace"):
        fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 2.6 * nrow), squeeze=False)
        for ax, i in zip(axes.flat, chosen, strict=False):
            positive = bool(np.all(values[:, :, i] > 0))
            x = np.log10(values[:, :, i]) if log_scale and positive else values[:, :, i]
            if kind == "trace":
                for c in range(x.shape[0]):
                    ax.plot(x[c], lw=0.6, label=f"chain {c + 1}")
            else:
                ranks = np.argsort(np.argsort(x.ravel())).reshape(x.shape)
                bins = np.linspace(0, ranks.size, 21)
                for c in range(x.shape[0]):
                    ax.hist(ranks[c], bins=bins, histtype="step", label=f"chain {c + 1}")
            ax.set_title(names[i], fontsize=8)
            ax.tick_params(labelsize=7)
        for ax in list(axes.flat)[len(chosen) :]:
            ax.set_visible(False)
        axes.flat[0].legend(fontsize=6)
        title = (
            "rank histograms per chain (uniform = well mixed)"
            if kind == "ranks"
            else ("traces of log10(parameter)" if log_scale else "traces")
        )
        fig.suptitle(title + "; worst R-hat first", fontsize=10)
        fig.tight_layout()
        paths.append(_io.save_figure(fig, out / f"{kind}.png", dpi=110))
        plt.close(fig)
    return paths


def prior_vs_posterior(tree, out: Path, log_scale: bool = True) -> Path | None:
    """Histograms of every parameter's prior and posterior draws (of log10 values when
    ``log_scale`` and the values are positive)."""
    plt = _plt()
    post, names = _theta(tree)
    prior, _ = _theta(tree, "prior")
    if post is None or prior is None:
        return None
    n = len(names)
    nrow, ncol = _grid(n)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.3 * nrow), squeeze=False)
    for ax, i in zip(axes.flat, range(n), strict=False):
        a, b = prior[:, :, i].ravel(), post[:, :, i].ravel()
        if log_scale and np.all(a > 0) and np.all(b > 0):
            a, b = np.log10(a), np.log10(b)
        lo, hi = np.percentile(np.concatenate([a, b]), [0.5, 99.5])
        bins = np.linspace(lo, hi, 30)
        ax.hist(a, bins=bins, density=True, alpha=0.4, label="prior")
        ax.hist(b, bins=bins, density=True, alpha=0.6, label="posterior")
        ax.set_title(names[i], fontsize=7)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=6)
    fig.suptitle("prior vs posterior" + (", log10 scale" if log_scale else ""), fontsize=10)
    fig.tight_layout()
    path = _io.save_figure(fig, out / "prior_posterior.png", dpi=100)
    plt.close(fig)
    return path


def value_checks(tree, problem, out: Path) -> Path:
    """Posterior predictive of every quantitative row against its measured value."""
    plt = _plt()
    arrays = problem.arrays
    kinds = np.asarray(arrays.row_kind)
    rows = np.flatnonzero(kinds == 0)
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.45 * max(len(rows), 1)))
    if rows.size == 0 or "posterior_predictive" not in tree.children:
        ax.text(0.5, 0.5, "no quantitative rows in the evidence", ha="center", va="center")
        ax.set_axis_off()
    else:
        pred = np.asarray(tree["posterior_predictive"]["predicted"])  # chain, draw, row
        sigma = _row_sigma(tree, arrays)
        rng = np.random.default_rng(0)
        labels = []
        for y, r in enumerate(rows):
            mean = pred[:, :, r].ravel()
            draws = mean + rng.normal(size=mean.shape) * sigma[r]
            lo, mid, hi = np.percentile(draws, [5, 50, 95])
            ax.plot([lo, hi], [y, y], color="C0", lw=3, alpha=0.6)
            ax.plot(mid, y, "o", color="C0")
            ax.plot(arrays.row_value[r], y, "x", color="C3", ms=9)
            labels.append(f"{arrays.row_study[r]}: {arrays.row_ids[r]} ({arrays.row_readout[r]})")
        ax.set_yticks(range(len(rows)), labels, fontsize=7)
        ax.set_xlabel(
            "log value (blue: posterior predictive 90% interval and median; red x: measured)",
            fontsize=8,
        )
    fig.tight_layout()
    path = _io.save_figure(fig, out / "ppc_values.png", dpi=110)
    plt.close(fig)
    return path


def _row_sigma(tree, arrays) -> np.ndarray:
    sd = np.asarray(arrays.row_log_sd, dtype=float).copy()
    post = tree["posterior"].to_dataset()
    if "sigma" in post:
        names = list(np.asarray(post["noise_group"]))
        s = np.asarray(post["sigma"]).reshape(-1, len(names)).mean(axis=0)
        for r in np.flatnonzero(~np.isfinite(sd)):
            group = arrays.noise_groups[int(arrays.row_noise_group[r])]
            if group in names:
                sd[r] = s[names.index(group)]
    return np.where(np.isfinite(sd), sd, 0.0)


def findings(tree, problem, out: Path) -> Path | None:
    """Posterior probability that the model reproduces each qualitative finding."""
    plt = _plt()
    p = reproduction_rates(tree)
    if p is None:
        return None
    arrays = problem.arrays
    rows = [
        r
        for r in np.argsort(
            [f"{s}|{i}" for s, i in zip(arrays.row_study, arrays.row_ids, strict=True)]
        )
        if np.isfinite(p[r])
    ]
    fig, ax = plt.subplots(figsize=(8, 1.0 + 0.16 * len(rows)))
    from ..data import ROW_KINDS

    colors = {k: f"C{i}" for i, k in enumerate(ROW_KINDS)}
    for y, r in enumerate(rows):
        kind = ROW_KINDS[int(arrays.row_kind[r])]
        ax.barh(y, p[r], color=colors[kind])
    ax.set_yticks(
        range(len(rows)), [f"{arrays.row_study[r]}: {arrays.row_ids[r]}" for r in rows], fontsize=5
    )
    ax.axvline(0.5, color="k", lw=0.5)
    ax.set_xlim(0, 1)
    ax.set_xlabel("posterior probability that the model reproduces the finding")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for k, c in colors.items() if k != "value"]
    ax.legend(handles, [k for k in colors if k != "value"], fontsize=7, loc="lower right")
    fig.tight_layout()
    path = _io.save_figure(fig, out / "findings.png", dpi=110)
    plt.close(fig)
    return path


def energy(tree, out: Path) -> Path | None:
    plt = _plt()
    stats = tree["sample_stats"].to_dataset()
    if "energy" not in stats:
        return None
    e = np.asarray(stats["energy"])
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.hist(
        (e - e.mean(axis=1, keepdims=True)).ravel(),
        bins=40,
        alpha=0.5,
        density=True,
        label="marginal energy",
    )
    ax.hist(np.diff(e, axis=1).ravel(), bins=40, alpha=0.5, density=True, label="energy transition")
    ax.legend(fontsize=8)
    ax.set_title("energy (similar widths: good E-BFMI)", fontsize=10)
    fig.tight_layout()
    path = _io.save_figure(fig, out / "energy.png", dpi=110)
    plt.close(fig)
    return path


def importance(tree, out: Path) -> Path | None:
    """The importance weights of an approximation's draws against the true density:
    sorted normalised weights (a few dominating weights mean a poor approximation)."""
    stats = tree["sample_stats"].to_dataset()
    if "log_weight" not in stats:
        return None
    plt = _plt()
    # the kept draws were resampled with these weights: one value per distinct draw
    w = np.unique(np.exp(np.asarray(stats["log_weight"]).ravel()))
    w = np.sort(w[np.isfinite(w)])[::-1]
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    ax.plot(np.arange(1, w.size + 1), w / max(w.sum(), 1e-300), marker=".", lw=0.8)
    ax.axhline(1.0 / max(w.size, 1), color="k", lw=0.6, ls="--", label="equal weights")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("draw (sorted by weight)")
    ax.set_ylabel("normalised importance weight")
    ax.legend(fontsize=8)
    ax.set_title("importance weights of the approximation's draws (PSIS)", fontsize=10)
    fig.tight_layout()
    path = _io.save_figure(fig, out / "importance.png", dpi=110)
    plt.close(fig)
    return path


def write_figures(tree, posterior, out: Path) -> list[Path]:
    """The figures of a run (``posterior``: the run's :class:`Posterior`; the
    predictive checks and findings need a model fitted to evidence tables)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    from ..inference import EvidencePosterior

    evidence = isinstance(posterior, EvidencePosterior)
    problem = posterior.problem if evidence else None
    n_chains = int(tree["posterior"].sizes.get("chain", 1))
    paths = rank_and_trace(tree, out, log_scale=evidence) if n_chains >= 2 else []
    for p in (
        prior_vs_posterior(tree, out, log_scale=evidence),
        value_checks(tree, problem, out) if evidence else None,
        findings(tree, problem, out) if evidence else None,
        energy(tree, out),
        importance(tree, out),
    ):
        if p is not None:
            paths.append(p)
    return paths


__all__ = [
    "energy",
    "findings",
    "importance",
    "prior_vs_posterior",
    "rank_and_trace",
    "value_checks",
    "write_figures",
]
