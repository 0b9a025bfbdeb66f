"""``il6rcc next-experiment RUN_DIR... --out DIR``: which experiment would settle it?

Each run is one mechanism hypothesis (a fitted variant), with prior weight 1/H (or
weights given). A candidate experiment is (cell line, treatment, control, readout,
time); its outcome is the contrast delta = log y(treatment) - log y(control) observed
either as a direction (probit noise, the way the Fukushima studies report) or as a
log fold change with Gaussian noise. The expected information it gives about which
hypothesis is true is the mutual information

    I(H; Y) = H(Y) - sum_h w_h H(Y | h),

computed over posterior draws of each hypothesis (exactly for the direction; by Monte
Carlo for the fold change). Candidates are ranked by it (bits). With ``--parameter``,
the hypotheses are instead the quartiles of one parameter's posterior in one run.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import logsumexp
from scipy.stats import norm

from .. import _io
from ..errors import Il6rccError
from ..models import Condition
from .predict import simulate_draws


@dataclass(frozen=True)
class Candidate:
    cell_line: str
    treatment: dict
    control: dict
    readout: str
    time_h: float

    @property
    def label(self) -> str:
        def text(d):
            return "+".join(f"{k}" if v == 1.0 else f"{k}={v:g}" for k, v in d.items()) or "none"

        return f"{self.cell_line}: {text(self.treatment)} vs {text(self.control)}"


def default_candidates(ifn=1000.0, tcz=30.0, tki="sorafenib", tki_dose=5.0) -> list[Candidate]:
    """A panel of feasible experiments in the two reference lines."""
    pairs = [
        ({"ifn_alpha": ifn}, {}),
        ({"ifn_alpha": ifn, "tocilizumab": tcz}, {"ifn_alpha": ifn}),
        ({"ifn_alpha": ifn, "si_socs3": 1.0}, {"ifn_alpha": ifn}),
        ({"ifn_alpha": ifn, "si_il6": 1.0}, {"ifn_alpha": ifn}),
        ({"ifn_alpha": ifn, "si_il6r": 1.0}, {"ifn_alpha": ifn}),
        ({"ifn_alpha": ifn, "si_ifnar": 1.0}, {"ifn_alpha": ifn}),
        ({"il6": 10.0}, {}),
        ({"tocilizumab": tcz}, {}),
        ({tki: tki_dose}, {}),
        ({tki: tki_dose, "tocilizumab": tcz}, {tki: tki_dose}),
        # perturbations that separate the IL-6 routes (classic vs trans-signalling):
        # sgp130Fc blocks trans-signalling only, Hyper-IL-6 needs no IL-6R, an anti-IL-6
        # antibody removes the ligand (doses assumed: 50 nM, 10 ng/mL, 67 nM = 10 ug/mL)
        ({"ifn_alpha": ifn, "sgp130fc": 50.0}, {"ifn_alpha": ifn}),
        ({"hyper_il6": 10.0, "tocilizumab": tcz}, {"tocilizumab": tcz}),
        ({"ifn_alpha": ifn, "anti_il6": 67.0}, {"ifn_alpha": ifn}),
    ]
    readouts = [
        "socs3_mrna",
        "pstat1",
        "pstat3",
        "il6_mrna",
        "pakt",
        "pnfkb",
        "viability",
        "sulf2_mrna",
    ]
    out = []
    for line, (treat, ctrl), readout, t in itertools.product(
        ["786-O", "ACHN"], pairs, readouts, [2.0, 24.0, 72.0]
    ):
        out.append(Candidate(line, treat, ctrl, readout, t))
    return out


def _conditions(cands: list[Candidate]):
    keys, conds = {}, []
    for c in cands:
        for part in (c.treatment, c.control):
            key = (c.cell_line, tuple(sorted(part.items())))
            if key not in keys:
                keys[key] = len(conds)
                conds.append(Condition(f"c{len(conds)}", c.cell_line, dict(part)))
    return keys, conds


def candidate_deltas(model, solver, rows_by_line: dict, cands: list[Candidate]) -> np.ndarray:
    """delta [n_draws, n_candidates] for one hypothesis (parameter rows per cell line,
    each [n_draws, n_params])."""
    keys, conds = _conditions(cands)
    times = np.unique([c.time_h for c in cands])
    obs, ok, _ = simulate_draws(model, solver, rows_by_line, conds, times)
    out = np.full((obs.shape[0], len(cands)), np.nan)
    for j, c in enumerate(cands):
        a = keys[(c.cell_line, tuple(sorted(c.treatment.items())))]
        b = keys[(c.cell_line, tuple(sorted(c.control.items())))]
        t = int(np.searchsorted(times, c.time_h))
        o = model.index("observables", c.readout)
        good = ok[:, a] & ok[:, b]
        with np.errstate(divide="ignore", invalid="ignore"):
            out[:, j] = np.where(good, np.log(obs[:, a, t, o] / obs[:, b, t, o]), np.nan)
    return out


def _entropy(p):
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return -(p * np.log2(p) + (1 - p) * np.log2(1 - p))


def information(deltas: list[np.ndarray], weights, sign_scale=0.3, value_sd=0.3, n_mc=2000, seed=0):
    """Mutual information (bits) between hypothesis and outcome, per candidate.

    Returns (mi_sign, mi_value, p_up [H, n_candidates], mean_delta [H, n_candidates])."""
    w = np.asarray(weights, dtype=float)
    w = w / w.sum()
    p_up = np.stack([np.nanmean(norm.cdf(d / sign_scale), axis=0) for d in deltas])
    mean = np.stack([np.nanmean(d, axis=0) for d in deltas])
    mi_sign = _entropy(w @ p_up) - w @ _entropy(p_up)
    rng = np.random.default_rng(seed)
    n_cand = deltas[0].shape[1]
    mi_value = np.zeros(n_cand)
    for j in range(n_cand):
        cols = [d[:, j][np.isfinite(d[:, j])] for d in deltas]
        if any(c.size == 0 for c in cols):
            mi_value[j] = np.nan
            continue
        total = 0.0
        for h, col in enumerate(cols):
            y = rng.choice(col, n_mc) + value_sd * rng.normal(size=n_mc)
            # log p(y | h') as mixtures over each hypothesis's draws
            logp = np.stack(
                [
                    logsumexp(norm.logpdf(y[:, None], c[None, :], value_sd), axis=1)
                    - np.log(c.size)
                    for c in cols
                ]
            )
            log_mix = logsumexp(logp + np.log(w)[:, None], axis=0)
            total += w[h] * np.mean(logp[h] - log_mix)
        mi_value[j] = total / np.log(2)
    return mi_sign, mi_value, p_up, mean


def rank_experiments(hypotheses: dict, cands: list[Candidate], weights=None) -> pd.DataFrame:
    """Rank candidates; ``hypotheses``: name -> (model, solver, rows_by_line)."""
    names = list(hypotheses)
    deltas = [candidate_deltas(*hypotheses[n], cands) for n in names]
    weights = np.ones(len(names)) if weights is None else np.asarray(weights)
    mi_sign, mi_value, p_up, mean = information(deltas, weights)
    table = pd.DataFrame(
        {
            "experiment": [c.label for c in cands],
            "cell_line": [c.cell_line for c in cands],
            "readout": [c.readout for c in cands],
            "time_h": [c.time_h for c in cands],
            "information_bits_direction": mi_sign,
            "information_bits_fold_change": mi_value,
        }
    )
    for i, n in enumerate(names):
        table[f"P(up | {n})"] = p_up[i]
        table[f"mean log fold change | {n}"] = mean[i]
    return table.sort_values(
        ["information_bits_direction", "information_bits_fold_change"], ascending=False
    ).reset_index(drop=True)


def run_next_experiment(
    run_dirs, out, draws: int = 100, parameter: str | None = None, quiet: bool = False
) -> int:
    from ._run_folder import open_run
    from .predict import line_rows

    runs = [open_run(Path(d)) for d in run_dirs]
    petab = [str(run.path) for run in runs if run.kind != "evidence"]
    if petab:
        raise Il6rccError(
            f"next-experiment needs models fitted to evidence tables (their cell lines and "
            f"perturbations); PEtab runs: {', '.join(petab)}"
        )
    cands = default_candidates()
    lines = sorted({c.cell_line for c in cands})
    hypotheses = {}
    if parameter is None:
        if len(runs) < 2:
            raise Il6rccError("next-experiment needs two or more fitted variants (or --parameter)")
        for run in runs:
            d = run.draws(draws)
            rows = line_rows(run.problem, d, lines)
            hypotheses[f"{run.name} [{run.model.variant_name}]"] = (
                run.model,
                run.problem.solver,
                rows,
            )
    else:
        run = runs[0]
        names = run.problem.parameterisation.names
        if parameter not in names:
            raise Il6rccError(
                f"--parameter {parameter!r} was not estimated in {run.run_dir}; "
                f"estimated: {', '.join(names)}"
            )
        d = run.draws(draws * 4)
        x = d["theta"][:, names.index(parameter)]
        edges = np.quantile(x, [0, 0.25, 0.5, 0.75, 1.0])
        for q in range(4):
            pick = (x >= edges[q]) & (x <= edges[q + 1])
            sub = {k: v[pick] for k, v in d.items()}
            rows = line_rows(run.problem, sub, lines)
            hypotheses[f"{parameter} quartile {q + 1}"] = (run.model, run.problem.solver, rows)
    table = rank_experiments(hypotheses, cands)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _io.atomic_write(out / "experiments.csv", lambda p: table.to_csv(p, index=False))
    if not quiet:
        print(
            table.head(10)[
                [
                    "experiment",
                    "readout",
                    "time_h",
                    "information_bits_direction",
                    "information_bits_fold_change",
                ]
            ].to_string()
        )
        print(f"wrote {out / 'experiments.csv'}")
    return 0


__all__ = [
    "Candidate",
    "default_candidates",
    "information",
    "rank_experiments",
    "run_next_experiment",
]
