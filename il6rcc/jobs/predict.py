"""``il6rcc predict RUN_DIR --out DIR``: posterior predictions of interventions.

For every cell line of the config's ``predict`` section, over posterior draws, at
``predict.time`` hours (each line's parameters follow the one rule of
:class:`~il6rcc.inference.Parameterisation`: a fitted line uses its own posterior
values, a line without data a new draw from the hierarchy, and the cell-line factors
apply exactly as in the fit):

* IFN growth inhibition, 1 - v(IFN + X) / v(X), for X = nothing, tocilizumab, SOCS3
  siRNA, IL-6 siRNA (v: cell number relative to untreated, the MTT readout);
* TKI dose response, 1 - v(TKI + X) / v(X), with and without tocilizumab;
* combination effects against Bliss independence: E_AB - (E_A + E_B - E_A E_B) with
  E = 1 - v, for IFN + tocilizumab and each TKI dose + tocilizumab (> 0: synergy);
* the share of IFN resistance that blocking the IL-6 loop removes:
  (I_tocilizumab - I) / (I_noSOCS3 - I), where I is the IFN inhibition and I_noSOCS3
  the inhibition of a counterfactual cell with SOCS3 transcription fully knocked down
  (SOCS3-dependent resistance; also reported for the IL-6 siRNA).

* in vivo, tumour volume relative to vehicle at ``predict.xenograft_days`` under each
  xenograft regimen of the evidence (its inputs alone and together), every draw at its
  own posterior exposure: in-vivo doses are unknown in every source and enter the fit
  as dose nuisances, so their posterior stands in for the regimen.

In-vitro doses the papers do not report (IFN, tocilizumab) come from the config and
are part of the output. Writes ``predictions.csv`` (posterior mean, SD, 5/50/95 % quantiles)
and ``predictions.png`` (``predictions_xenograft.png`` for the in-vivo panel).

A PEtab run has no intervention panel: its predictions are the posterior predictive of
every measurement of the problem (the simulated observable under each draw).
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from .. import _io
from ..configs import load_config
from ..data import columns
from ..errors import Il6rccError
from ..inference import EvidenceProblem, Parameterisation
from ..models import Condition, ODEModel, make_batch, simulate_arrays
from ._run_folder import RunFolder, open_run

KO = "(SOCS3 knocked out)"


def line_parameter_rows(
    param: Parameterisation,
    model: ODEModel,
    fitted_lines,
    draws: dict,
    line: str,
    z_line: np.ndarray | None = None,
) -> np.ndarray:
    """Parameter matrices [D, n_params] of one cell line over posterior draws.

    ``draws``: ``theta`` [D, n] (shared, natural scale) and, with a hierarchy, ``tau``
    [D, n_hier] and ``theta_cell`` [D, len(fitted_lines), n_hier]. A fitted line takes
    its own ``theta_cell``; another line is a new member of the hierarchy,
    ``u_c = u + tau * z_line`` with ``z_line`` [D, n_hier] (e.g. standard normal draws).
    The values reach the row through :meth:`Parameterisation.parameter_rows` with the
    line's factors: the same rule as the fit's.
    """
    name = model.cell_line(line).name
    theta = np.asarray(draws["theta"], dtype=np.float64)
    natural = theta.copy()
    hier = np.asarray(param.hier_index, dtype=int)
    if hier.size:
        fitted = list(fitted_lines)
        if name in fitted:
            natural[:, hier] = np.asarray(draws["theta_cell"])[:, fitted.index(name)]
        else:
            if z_line is None:
                raise ValueError(f"cell line {name!r} was not fitted: give z_line")
            u = param.to_unconstrained(theta)
            u[:, hier] += np.asarray(draws["tau"]) * np.asarray(z_line)
            natural[:, hier] = np.asarray(param.to_natural(u))[:, hier]
    base = np.repeat(model.default_params(name)[None, None, :], theta.shape[0], axis=0)
    rows = param.parameter_rows(base, natural[:, None, :], param.factors([name]))
    return np.asarray(rows)[:, 0]


def line_rows(problem: EvidenceProblem, draws: dict, cell_lines, seed: int = 0) -> dict:
    """Parameter matrix [D, n_params] per requested cell line of a fitted problem (new
    draws from the hierarchy, with a fixed seed, for lines without data)."""
    rng = np.random.default_rng(seed)
    param = problem.parameterisation
    out = {}
    for line in cell_lines:
        name = problem.model.cell_line(line).name
        z = rng.normal(size=(draws["theta"].shape[0], len(param.hier_index)))
        out[name] = line_parameter_rows(param, problem.model, problem.row_names, draws, name, z)
    return out


def intervention_conditions(p, lines) -> list[Condition]:
    """The conditions every quantity is computed from (ids 'line|label')."""
    ifn, tcz, tki = p.ifn_dose, p.tocilizumab_dose, p.tki
    labels = {
        "ctrl": {},
        "ifn": {"ifn_alpha": ifn},
        "tcz": {"tocilizumab": tcz},
        "ifn+tcz": {"ifn_alpha": ifn, "tocilizumab": tcz},
        "siSOCS3": {"si_socs3": 1.0},
        "ifn+siSOCS3": {"ifn_alpha": ifn, "si_socs3": 1.0},
        "siIL6": {"si_il6": 1.0},
        "ifn+siIL6": {"ifn_alpha": ifn, "si_il6": 1.0},
    }
    for d in p.tki_doses:
        labels[f"tki{d:g}"] = {tki: d}
        labels[f"tki{d:g}+tcz"] = {tki: d, "tocilizumab": tcz}
    conds = []
    for line in lines:
        conds += [Condition(f"{line}|{k}", line, v) for k, v in labels.items()]
        conds += [
            Condition(f"{line} {KO}|{k}", line, v)
            for k, v in labels.items()
            if k in ("ctrl", "ifn", "siSOCS3", "ifn+siSOCS3")
        ]
    return conds


def _quantities(v: dict, lines, p) -> list[dict]:
    """Per-draw quantities from viabilities v['line|label'] (arrays over draws)."""
    out = []

    def add(line, quantity, intervention, dose, values):
        out.append(
            {
                "cell_line": line,
                "quantity": quantity,
                "intervention": intervention,
                "dose": dose,
                "values": values,
            }
        )

    for line in lines:
        g = {k.split("|")[1]: x for k, x in v.items() if k.split("|")[0] == line}
        ko = {k.split("|")[1]: x for k, x in v.items() if k.split("|")[0] == f"{line} {KO}"}
        inhib = {
            "IFN alone": 1 - g["ifn"] / g["ctrl"],
            "IFN + tocilizumab": 1 - g["ifn+tcz"] / g["tcz"],
            "IFN + SOCS3 siRNA": 1 - g["ifn+siSOCS3"] / g["siSOCS3"],
            "IFN + IL-6 siRNA": 1 - g["ifn+siIL6"] / g["siIL6"],
        }
        for k, x in inhib.items():
            add(line, "IFN growth inhibition", k, p.ifn_dose, x)
        e_a, e_b, e_ab = 1 - g["ifn"], 1 - g["tcz"], 1 - g["ifn+tcz"]
        add(
            line,
            "Bliss excess (IFN + tocilizumab)",
            "IFN + tocilizumab",
            p.ifn_dose,
            e_ab - (e_a + e_b - e_a * e_b),
        )
        i_ko = 1 - ko["ifn+siSOCS3"] / ko["siSOCS3"]
        deficit = i_ko - inhib["IFN alone"]
        for arm in ("IFN + tocilizumab", "IFN + IL-6 siRNA"):
            share = (inhib[arm] - inhib["IFN alone"]) / np.where(
                np.abs(deficit) > 1e-9, deficit, np.nan
            )
            add(line, "share of SOCS3-dependent IFN resistance removed", arm, p.ifn_dose, share)
        for d in p.tki_doses:
            t, tt = g[f"tki{d:g}"], g[f"tki{d:g}+tcz"]
            add(line, f"{p.tki} growth inhibition", f"{p.tki} alone", d, 1 - t)
            add(line, f"{p.tki} growth inhibition", f"{p.tki} + tocilizumab", d, 1 - tt / g["tcz"])
            add(
                line,
                f"Bliss excess ({p.tki} + tocilizumab)",
                f"{p.tki} + tocilizumab",
                d,
                (1 - tt) - ((1 - t) + e_b - (1 - t) * e_b),
            )
    return out


STANDARD_INPUTS = ("ifn_alpha", "tocilizumab", "si_socs3", "si_il6")


def simulate_draws(
    model, solver, per_row: dict, conds, times, condition_rows=None, doses_per_draw=None
):
    """All observables of ``conds`` (with their dosing schedules) at ``times`` (sorted,
    distinct) for every draw of the parameter rows ``per_row`` (name -> [D, n_params]),
    draws mapped one after the other: observables [D, n_cond, n_times, n_obs] (NaN
    where a solve failed), success flags [D, n_cond] and the times used.

    ``doses_per_draw``: optional ``{(condition index, input name): [D] doses}``, the
    treatment doses that differ between draws (a nuisance dose's posterior draws); the
    conditions' own doses elsewhere."""
    row_names = list(per_row)
    batch = make_batch(model, conds, row_names=row_names, condition_rows=condition_rows)
    params = np.stack([per_row[r] for r in row_names], axis=1)  # [D, n_rows, n_p]
    inputs = np.repeat(np.asarray(batch.inputs, dtype=np.float64)[None], len(params), axis=0)
    for (c, name), doses in (doses_per_draw or {}).items():
        inputs[:, c, model.index("inputs", name)] = np.asarray(doses, dtype=np.float64)
    t = jnp.asarray(sorted(set(float(x) for x in times)))
    rest = tuple(jnp.asarray(a) for a in batch.arrays[1:])

    scheduled = batch.schedule is not None
    schedule_args = {
        "schedule": batch.schedule,
        "dose_values": jnp.asarray(batch.dose_values) if scheduled else None,
        "dose_times": jnp.asarray(batch.dose_times) if scheduled else None,
    }

    def one(args):
        r, u = args
        obs, _, ok, _ = simulate_arrays(model, solver, r, u, *rest, t, **schedule_args)
        return obs, ok

    obs, ok = jax.jit(lambda ps, us: jax.lax.map(one, (ps, us)))(
        jnp.asarray(params), jnp.asarray(inputs)
    )
    obs, ok = np.asarray(obs), np.asarray(ok)
    return np.where(ok[:, :, None, None], obs, np.nan), ok, list(np.asarray(t))


def _simulate(run: RunFolder, per_row: dict, conds, condition_rows, times) -> tuple:
    return simulate_draws(run.model, run.problem.solver, per_row, conds, times, condition_rows)


def _standard_panel(run: RunFolder, p, per_line: dict, lines) -> tuple[list[dict], np.ndarray]:
    model = run.model
    ko_index = model.index("parameters", "kd_socs3")
    per_row = dict(per_line)
    for line in lines:
        ko_rows = per_line[line].copy()
        ko_rows[:, ko_index] = 1.0  # counterfactual: SOCS3 transcription fully knocked down
        per_row[f"{line} {KO}"] = ko_rows
    conds = intervention_conditions(p, lines)
    condition_rows = [c.id.split("|")[0] for c in conds]
    obs, ok, _ = _simulate(run, per_row, conds, condition_rows, [p.time])
    viability = obs[:, :, 0, model.index("observables", "viability")]
    v = {c.id: viability[:, i] for i, c in enumerate(conds)}
    return _quantities(v, lines, p), ok


def _custom(run: RunFolder, p, per_line: dict) -> tuple[list[dict], np.ndarray]:
    """Custom interventions: the observable (or its ratio to the control) per draw."""
    model = run.model
    conds, rows = [], []
    for i, c in enumerate(p.custom):
        line = model.cell_line(c.cell_line).name
        pair = [x for x in c.to_conditions(f"custom{i}", line) if x is not None]
        conds += pair
        rows += [line] * len(pair)
    obs, ok, times = _simulate(run, per_line, conds, rows, [c.time for c in p.custom])
    ids = [c.id for c in conds]
    out = []
    for i, c in enumerate(p.custom):
        k, t = model.index("observables", c.observable), times.index(c.time)
        x = obs[:, ids.index(f"custom{i}"), t, k]
        quantity = c.observable
        if c.control is not None:
            x = x / obs[:, ids.index(f"custom{i}-control"), t, k]
            quantity = f"{c.observable} (ratio to control)"
        out.append(
            {
                "cell_line": model.cell_line(c.cell_line).name,
                "quantity": quantity,
                "intervention": c.label,
                "dose": np.nan,
                "values": x,
                "time_h": c.time,
            }
        )
    return out, ok


XENOGRAFT = "xenograft"
TUMOUR_VOLUME = "tumour_volume"
XENOGRAFT_QUANTITY = "xenograft tumour volume relative to vehicle"


def xenograft_regimens(nuisance_names) -> dict[str, dict[str, int]]:
    """The evidence's in-vivo regimens: per study, the inputs it dosed in vivo at an
    unknown exposure and the index of each one's nuisance dose (names
    ``study.input.invivo``, see :func:`il6rcc.data.nuisance_name`)."""
    out: dict[str, dict[str, int]] = {}
    for i, name in enumerate(nuisance_names):
        parts = str(name).split(".")
        if len(parts) == 3 and parts[2] == columns.INVIVO:
            out.setdefault(parts[0], {})[parts[1]] = i
    return out


def _xenograft_panel(run: RunFolder, p, per_line: dict, lines, doses: np.ndarray):
    """Tumour volume under each in-vivo regimen of the evidence relative to vehicle,
    at ``p.xenograft_days``, every draw at its own posterior exposure (the regimen's
    dose nuisances: no in-vivo dose is reported as an exposure in any source). Each
    regimen's inputs alone and together."""
    model = run.model
    regimens = xenograft_regimens(run.problem.arrays.nuisance_names)
    conds, rows, per_draw, arms = [], [], {}, []
    for line in lines:
        vehicle = len(conds)
        conds.append(Condition(f"{line}|vehicle", line, {XENOGRAFT: 1.0}))
        for study, inputs in regimens.items():
            names = sorted(inputs)
            for combo in [[n] for n in names] + ([names] if len(names) > 1 else []):
                i = len(conds)
                label = f"{' + '.join(combo)} ({study} regimen)"
                conds.append(
                    Condition(
                        f"{line}|{label}", line, {XENOGRAFT: 1.0, **dict.fromkeys(combo, 1.0)}
                    )
                )
                per_draw.update({(i, n): doses[:, inputs[n]] for n in combo})
                arms.append((line, label, i, vehicle))
        rows += [line] * (len(conds) - len(rows))
    hours = [24.0 * d for d in p.xenograft_days]
    obs, ok, times = simulate_draws(
        model, run.problem.solver, per_line, conds, hours, rows, doses_per_draw=per_draw
    )
    k = model.index("observables", TUMOUR_VOLUME)
    out = []
    for line, label, i, vehicle in arms:
        for h in hours:
            t = times.index(h)
            out.append(
                {
                    "cell_line": line,
                    "quantity": XENOGRAFT_QUANTITY,
                    "intervention": label,
                    "dose": np.nan,
                    "values": obs[:, i, t, k] / obs[:, vehicle, t, k],
                    "time_h": h,
                }
            )
    return out, ok


def _has_xenograft_panel(run: RunFolder, p) -> bool:
    model = run.model
    return bool(
        p.xenograft_days
        and XENOGRAFT in model.input_names
        and TUMOUR_VOLUME in model.observable_names
        and xenograft_regimens(run.problem.arrays.nuisance_names)
    )


def predict_table(run: RunFolder, p) -> tuple[pd.DataFrame, int, int]:
    """Predictions of the ``predict`` section ``p``: the table (posterior mean, SD,
    5/50/95 % quantiles per quantity), failed solves and total solves."""
    if run.kind == "petab":
        return petab_predictions(run, p.draws)
    model = run.model
    draws = run.draws(p.draws)
    lines = [model.cell_line(c).name for c in p.cell_lines]
    lines += [model.cell_line(c.cell_line).name for c in p.custom]
    per_line = line_rows(run.problem, draws, list(dict.fromkeys(lines)))
    inputs = {u.name for u in model.inputs}
    standard = (
        p.standard
        and set(STANDARD_INPUTS) | {p.tki} <= inputs
        and "viability" in model.observable_names
        and "kd_socs3" in model.parameter_names
    )
    if p.standard and not standard and not p.custom:
        raise Il6rccError(
            f"model {model.name!r} lacks what the standard intervention panel needs (inputs "
            f"{', '.join(STANDARD_INPUTS)}, {p.tki}; observable viability); name "
            "interventions under predict.custom and set predict.standard: false"
        )
    quantities, failed, total = [], 0, 0
    parts = []
    if standard:
        parts.append(
            _standard_panel(run, p, per_line, [model.cell_line(c).name for c in p.cell_lines])
        )
    if p.standard and _has_xenograft_panel(run, p):
        parts.append(
            _xenograft_panel(
                run, p, per_line, [model.cell_line(c).name for c in p.cell_lines], draws["dose"]
            )
        )
    if p.custom:
        parts.append(_custom(run, p, per_line))
    for q, ok in parts:
        quantities += q
        failed, total = failed + int((~ok).sum()), total + ok.size
    records = []
    for q in quantities:
        x = q.pop("values")
        x = x[np.isfinite(x)]
        if x.size == 0:
            continue
        lo, med, hi = np.percentile(x, [5, 50, 95])
        records.append(
            {
                "time_h": p.time,
                **q,
                "mean": float(np.mean(x)),
                "sd": float(np.std(x)),
                "q05": lo,
                "q50": med,
                "q95": hi,
                "n_draws": int(x.size),
            }
        )
    return pd.DataFrame.from_records(records), failed, total


def petab_predictions(run: RunFolder, n_draws: int) -> tuple[pd.DataFrame, int, int]:
    """The posterior predictive of every measurement of a PEtab run: the simulated
    observable under ``n_draws`` posterior draws (mean, SD, 5/50/95 % quantiles), next
    to the measured value; failed and total solves."""
    posterior = run.posterior
    problem = posterior.problem
    theta = run.draws(n_draws)["theta"]
    simulated = jax.jit(jax.vmap(posterior.simulated_observables))(jnp.asarray(theta))
    simulated = np.asarray(simulated)
    failed = ~np.isfinite(simulated)
    table = problem.measurement_table.reset_index(drop=True).copy()
    with np.errstate(all="ignore"):
        x = np.where(failed, np.nan, simulated)
        table["mean"] = np.nanmean(x, axis=0)
        table["sd"] = np.nanstd(x, axis=0)
        for q in (5, 50, 95):
            table[f"q{q:02d}"] = np.nanpercentile(x, q, axis=0)
    table["n_draws"] = (~failed).sum(axis=0)
    return table, int(failed.sum()), int(failed.size)


def run_predict(run_dir: Path, out: Path, config: Path | None = None, quiet: bool = False) -> int:
    run = open_run(run_dir)
    p = (load_config(config) if config is not None else run.config).config.predict
    table, failed, total = predict_table(run, p)
    if table.empty or not table["n_draws"].any():
        raise Il6rccError(f"{run_dir}: every prediction failed to solve")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _io.atomic_write(out / "predictions.csv", lambda path: table.to_csv(path, index=False))
    figures = []
    if run.kind == "petab":
        figures.append(_plot_measurements(table, out / "predictions.png"))
        table = table.iloc[0:0].assign(quantity=[], intervention=[])
    standard = table[table["quantity"] == "IFN growth inhibition"]
    if not standard.empty:
        figures.append(_plot(table, p, out / "predictions.png"))
    xenograft = table[table["quantity"] == XENOGRAFT_QUANTITY]
    if not xenograft.empty:
        figures.append(_plot_xenograft(xenograft, out / "predictions_xenograft.png"))
    custom = table[table["intervention"].isin([c.label for c in p.custom])]
    if not custom.empty:
        figures.append(_plot_custom(custom, out / "predictions_custom.png"))
    if not quiet:
        print(f"{failed} of {total} solves failed (excluded)")
        print(
            f"wrote {out / 'predictions.csv'} ({len(table)} rows) and "
            f"{', '.join(f.name for f in figures)}"
        )
    return 0


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plot_measurements(table: pd.DataFrame, path: Path) -> Path:
    """A PEtab run's predictions: posterior median and 90 % interval of every
    measurement's simulated observable against the measured value."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for observable, sub in table.groupby("observableId"):
        ax.errorbar(
            sub["measurement"],
            sub["q50"],
            yerr=[sub["q50"] - sub["q05"], sub["q95"] - sub["q50"]],
            fmt="o",
            ms=3,
            capsize=2,
            label=str(observable),
        )
    lo = float(np.nanmin([table["measurement"].min(), table["q05"].min()]))
    hi = float(np.nanmax([table["measurement"].max(), table["q95"].max()]))
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.6)
    ax.set_xlabel("measured")
    ax.set_ylabel("posterior predictive (median, 90 %)")
    ax.legend(fontsize=6)
    fig.tight_layout()
    _io.save_figure(fig, path, dpi=110)
    plt.close(fig)
    return path


def _plot_xenograft(table: pd.DataFrame, path: Path) -> Path:
    """Tumour volume relative to vehicle over days, one panel per cell line, one line
    (posterior median, 90 % band) per regimen arm."""
    plt = _pyplot()
    lines = list(dict.fromkeys(table["cell_line"]))
    fig, axes = plt.subplots(1, len(lines), figsize=(6.5 * len(lines), 4.2), squeeze=False)
    for line, ax in zip(lines, axes[0], strict=True):
        sub = table[table["cell_line"] == line]
        for arm, g in sub.groupby("intervention", sort=False):
            days = g["time_h"].to_numpy(float) / 24.0
            ax.plot(days, g["q50"], marker="o", ms=3, label=str(arm))
            ax.fill_between(days, g["q05"], g["q95"], alpha=0.12)
        ax.axhline(1.0, color="k", lw=0.6)
        ax.set_yscale("log")
        ax.set_xlabel("days of treatment")
        ax.set_ylabel("tumour volume relative to vehicle")
        ax.set_title(f"{line} xenograft (posterior exposures)", fontsize=9)
        ax.legend(fontsize=6)
    fig.tight_layout()
    _io.save_figure(fig, path, dpi=110)
    plt.close(fig)
    return path


def _plot_custom(table: pd.DataFrame, path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.35 * len(table)))
    y = np.arange(len(table))
    ax.errorbar(
        table["q50"],
        y,
        xerr=[table["q50"] - table["q05"], table["q95"] - table["q50"]],
        fmt="o",
        capsize=3,
    )
    ax.set_yticks(
        y,
        [
            f"{r.cell_line}: {r.intervention}\n{r.quantity} at {r.time_h:g} h"
            for r in table.itertuples()
        ],
        fontsize=7,
    )
    ax.set_xlabel("posterior median and 90 % interval")
    fig.tight_layout()
    _io.save_figure(fig, path, dpi=110)
    plt.close(fig)
    return path


def _plot(table: pd.DataFrame, p, path: Path) -> Path:
    plt = _pyplot()

    lines = list(dict.fromkeys(table["cell_line"]))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    ifn = table[table["quantity"] == "IFN growth inhibition"]
    arms = list(dict.fromkeys(ifn["intervention"]))
    for j, line in enumerate(lines):
        sub = ifn[ifn["cell_line"] == line].set_index("intervention").loc[arms]
        x = np.arange(len(arms)) + 0.35 * j
        axes[0].bar(
            x,
            sub["q50"],
            width=0.35,
            label=line,
            yerr=[sub["q50"] - sub["q05"], sub["q95"] - sub["q50"]],
            capsize=3,
        )
    axes[0].set_xticks(np.arange(len(arms)) + 0.17, arms, rotation=20, fontsize=8)
    axes[0].set_ylabel(f"IFN growth inhibition at {p.time:g} h")
    axes[0].legend()
    tki = table[table["quantity"] == f"{p.tki} growth inhibition"]
    for line in lines:
        for arm, style in ((f"{p.tki} alone", "-"), (f"{p.tki} + tocilizumab", "--")):
            sub = tki[(tki["cell_line"] == line) & (tki["intervention"] == arm)]
            axes[1].plot(sub["dose"], sub["q50"], style, marker="o", label=f"{line}: {arm}")
            axes[1].fill_between(sub["dose"], sub["q05"], sub["q95"], alpha=0.15)
    axes[1].set_xscale("log")
    axes[1].set_xlabel(f"{p.tki} (uM)")
    axes[1].set_ylabel("growth inhibition")
    axes[1].legend(fontsize=7)
    share = table[table["quantity"] == "share of SOCS3-dependent IFN resistance removed"]
    labels = [f"{r.cell_line}: {r.intervention}" for r in share.itertuples()]
    axes[2].barh(
        range(len(share)),
        share["q50"],
        xerr=[share["q50"] - share["q05"], share["q95"] - share["q50"]],
        capsize=3,
    )
    axes[2].set_yticks(range(len(share)), labels, fontsize=7)
    axes[2].set_xlabel("share of SOCS3-dependent IFN resistance removed")
    fig.tight_layout()
    _io.save_figure(fig, path, dpi=110)
    plt.close(fig)
    return path


__all__ = [
    "intervention_conditions",
    "line_parameter_rows",
    "line_rows",
    "petab_predictions",
    "predict_table",
    "run_predict",
    "simulate_draws",
]
