"""``il6rcc report-mechanisms SWEEP_DIR --out DIR``: the mechanism question answered
from one sweep of fitted variants (``configs/sweeps/mechanisms.yaml``).

Reads the sweep's index (``sweep.csv``, ``_sweep/``), every complete element through
the run-folder reader (:mod:`._run_folder`) and the outputs of its ``compare`` step
(``DIR/compare/[<group>/]compare.csv`` and ``loo.json``), and writes to ``DIR``:

* ``mechanisms.md``: the command and the commit, which variant the evidence supports
  under each likelihood weighting (stacking weights, elpd differences with SE) and
  how the answer changes between them, each variant's diagnostic gates, the findings
  no variant reproduces, predictions per cell line and the most informative next
  experiments;
* ``compare.csv`` (compare's tables of every weighting, numbers unchanged),
  ``findings.csv`` (row_id, statement_id, variant, weighting, p_reproduced, and the
  statement's text), ``predictions.csv`` (``il6rcc predict``'s table per run, the
  TKI doses those the sources report), ``experiments.csv`` (``il6rcc
  next-experiment``'s ranking), ``elements.csv`` (every element, its status and gates);
* ``figures/``: weights and elpd, findings per statement and variant, predictions.

Everything is written to a temporary folder first and renamed onto ``DIR``. Failed or
unfinished elements are listed in the report; at least two complete elements are
needed. The table assembly (:func:`findings_table`, :func:`unreproduced`,
:func:`conclusion`) is pure, for tests without fits.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .. import _io
from ..errors import Il6rccError
from ._manifest import git_state
from ._run_folder import RunFolder, open_run, reproduction_rates

WEIGHTING_KEY = "likelihood.weighting"
#: a finding counts as reproduced by a variant when its posterior probability is above this
REPRODUCED = 0.5
REPORT = "mechanisms.md"


@dataclass(frozen=True)
class Member:
    """One sweep element: its folder name, the variant (its axis values other than
    the weighting), the likelihood weighting, status, error, and gates."""

    element: str
    variant: str
    weighting: str
    status: str
    error: str
    run: RunFolder | None


# ----------------------------------------------------------------------------- reading
def read_sweep(sweep_dir: Path) -> tuple[dict, list[Member]]:
    """The sweep's record (``_sweep/sweep.yaml``) and its elements (``sweep.csv``)."""
    sweep_dir = Path(sweep_dir)
    index, record_path = sweep_dir / "sweep.csv", sweep_dir / "_sweep" / "sweep.yaml"
    missing = [p.name for p in (index, record_path) if not p.is_file()]
    if missing:
        raise Il6rccError(
            f"{sweep_dir}: not a sweep folder (missing {', '.join(missing)}); expected the "
            "--out folder of 'il6rcc sweep configs/sweeps/mechanisms.yaml'"
        )
    record = yaml.safe_load(record_path.read_text())
    axes = record["config"]["axes"]
    labels = [a.get("label") or a["key"].rsplit(".", 1)[-1] for a in axes if "key" in a]
    weight_labels = [
        a.get("label") or a["key"].rsplit(".", 1)[-1] for a in axes if a.get("key") == WEIGHTING_KEY
    ]
    table = pd.read_csv(index, dtype=str, keep_default_na=False)
    members = []
    for row in table.to_dict("records"):
        name = row["element"]
        variant = ", ".join(
            str(row[lab]) for lab in labels if lab in row and lab not in weight_labels
        )
        run = None
        if row["status"] == "complete":
            run = open_run(
                sweep_dir / row["run_dir"],
                need=("manifest.json", "diagnostics.json", "posterior.nc"),
            )
            weighting = run.config.config.likelihood.weighting
        else:
            weighting = _element_weighting(sweep_dir, name, row, weight_labels)
        members.append(
            Member(name, variant or name, weighting, row["status"], row.get("error", ""), run)
        )
    return record, members


def _element_weighting(sweep_dir: Path, name: str, row: dict, weight_labels) -> str:
    for lab in weight_labels:
        if row.get(lab):
            return str(row[lab])
    config = sweep_dir / "_sweep" / "configs" / f"{name}.yaml"
    try:
        cfg = yaml.safe_load(config.read_text()) or {}
    except OSError:
        return "row"
    return str((cfg.get("likelihood") or {}).get("weighting", "row"))


def read_compare(sweep_dir: Path, members: list[Member]) -> pd.DataFrame:
    """compare.csv of every comparison under ``DIR/compare``, one table: the columns of
    compare.csv unchanged (its ``variant`` column, compare's name of the run, is
    ``run``), with ``weighting``, ``variant`` and ``element``. Checks that each
    weighting's complete elements were compared together and nothing else was."""
    by_dir = {m.run.path.resolve(): m for m in members if m.run is not None}
    by_name = {m.element: m for m in members if m.run is not None}
    root = Path(sweep_dir) / "compare"
    folders = sorted(p.parent for p in root.rglob("loo.json")) if root.is_dir() else []
    problems, parts, covered = [], [], {}
    for folder in folders:
        loo = json.loads((folder / "loo.json").read_text())
        table = pd.read_csv(folder / "compare.csv")
        name_of = {}
        for name, info in loo.items():
            # by path, or by element folder name when the sweep folder has moved since
            member = by_dir.get(Path(info["run_dir"]).resolve()) or by_name.get(
                Path(info["run_dir"]).name
            )
            if member is None:
                problems.append(
                    f"{folder}: compares {info['run_dir']}, not a complete element of this "
                    "sweep now (stale: rerun the sweep to redo its compare step)"
                )
                continue
            name_of[name] = member
            covered.setdefault(member.element, []).append(folder)
        weightings = sorted({m.weighting for m in name_of.values()})
        if len(weightings) > 1:
            problems.append(
                f"{folder}: compares runs fitted with different likelihood weightings "
                f"({', '.join(weightings)}); their log densities differ, so they are not "
                "rivals: set 'compare_by: [weighting]' in the sweep file"
            )
        table = table.rename(columns={"variant": "run"})
        table = table[table["run"].isin(list(name_of))]
        table.insert(0, "element", [name_of[r].element for r in table["run"]])
        table.insert(0, "variant", [name_of[r].variant for r in table["run"]])
        table.insert(0, "weighting", [name_of[r].weighting for r in table["run"]])
        table["compare_dir"] = str(folder.relative_to(sweep_dir))
        parts.append(table)
    for w in sorted({m.weighting for m in members}):
        done = [m.element for m in members if m.run is not None and m.weighting == w]
        if len(done) < 2:
            continue
        uncovered = [e for e in done if e not in covered]
        if uncovered:
            problems.append(
                f"{root}: no comparison covers the complete elements {uncovered} (weighting "
                f"{w}); rerun 'il6rcc sweep' with 'then: [compare, report]' (complete "
                "elements are skipped) to compare them"
            )
    if problems:
        raise Il6rccError("\n".join(problems))
    if not parts:
        return pd.DataFrame(columns=["weighting", "variant", "element", "run"])
    return pd.concat(parts, ignore_index=True)


# ----------------------------------------------------------------------------- tables
def findings_table(per_run: list[tuple[str, str, pd.DataFrame]]) -> pd.DataFrame:
    """findings.csv from (variant, weighting, frame with row_id, statement_id,
    statement, p_reproduced, ...) per run: one row per finding and run; value rows
    (no finding to reproduce: p NaN) are left out."""
    parts = []
    for variant, weighting, frame in per_run:
        f = frame[np.isfinite(frame["p_reproduced"].astype(float))].copy()
        f.insert(2, "variant", variant)
        f.insert(3, "weighting", weighting)
        parts.append(f)
    columns = ["row_id", "statement_id", "variant", "weighting", "p_reproduced"]
    if not parts:
        return pd.DataFrame(columns=columns)
    table = pd.concat(parts, ignore_index=True)
    rest = [c for c in table.columns if c not in columns]
    return table[columns + rest]


def unreproduced(findings: pd.DataFrame, threshold: float = REPRODUCED) -> pd.DataFrame:
    """The findings that no variant reproduces (P <= ``threshold`` under every
    variant), per weighting: row, statement, its text and the best variant's P."""
    if findings.empty:
        return pd.DataFrame(
            columns=["weighting", "statement_id", "statement", "row_id", "best_p", "best_variant"]
        )
    keys = ["weighting", "row_id"]
    best = findings.loc[findings.groupby(keys)["p_reproduced"].idxmax()]
    out = best[best["p_reproduced"] <= threshold]
    out = out.rename(columns={"p_reproduced": "best_p", "variant": "best_variant"})
    cols = ["weighting", "statement_id", "statement", "row_id", "best_p", "best_variant"]
    cols = [c for c in cols if c in out.columns]
    return out[cols].sort_values(["weighting", "statement_id", "row_id"]).reset_index(drop=True)


def conclusion(compare: pd.DataFrame) -> dict[str, dict]:
    """Per weighting: the variants by stacking weight, the best one, and the elpd
    difference of the runner-up (with its SE) as compare computed them."""
    out = {}
    for w, sub in compare.groupby("weighting", sort=True):
        sub = sub.sort_values("weight", ascending=False)
        best = sub.iloc[0]
        by_elpd = sub.sort_values("elpd", ascending=False)
        second = by_elpd.iloc[1] if len(by_elpd) > 1 else None
        out[str(w)] = {
            "best": str(best["variant"]),
            "weight": float(best["weight"]),
            "order": [str(v) for v in sub["variant"]],
            "top_elpd": str(by_elpd.iloc[0]["variant"]),
            "runner_up": None if second is None else str(second["variant"]),
            "elpd_diff": None if second is None else float(second["elpd_diff"]),
            "dse": None if second is None else float(second["dse"]),
        }
    return out


def change_text(concl: dict[str, dict]) -> str:
    """How the conclusion changes between the weightings (one paragraph)."""
    if {"row", "statement"} - set(concl):
        have = ", ".join(sorted(concl)) or "none"
        return (
            "Not assessed: the comparison needs both weightings (row and statement) with "
            f"two or more complete variants each; compared here: {have}."
        )
    r, s = concl["row"], concl["statement"]
    if r["best"] == s["best"]:
        head = (
            f"The conclusion holds under statement-level weighting: {r['best']} carries the "
            f"largest stacking weight under both ({r['weight']:.2f} with every row weight "
            f"1, {s['weight']:.2f} with every statement weight 1)."
        )
    else:
        head = (
            f"The conclusion changes under statement-level weighting: the largest stacking "
            f"weight goes to {r['best']} ({r['weight']:.2f}) with every row weight 1, but "
            f"to {s['best']} ({s['weight']:.2f}) with every statement weight 1; the answer "
            "depends on how many rows each published sentence became."
        )
    common = [v for v in r["order"] if v in s["order"]]
    rank_r = {v: i for i, v in enumerate(r["order"])}
    rank_s = {v: i for i, v in enumerate(s["order"])}
    moved = [v for v in common if abs(rank_r[v] - rank_s[v]) >= 2]
    tail = (
        f" Variants whose weight rank moves by two or more places: {', '.join(moved)}."
        if (moved)
        else " No variant's weight rank moves by more than one place."
    )
    return head + tail


def _unreliable(compare: pd.DataFrame) -> pd.DataFrame:
    """compare's rows whose PSIS-LOO has high-k rows that were not refitted."""
    if "n_high_k" not in compare:
        return compare.iloc[0:0]
    method = compare["method"].astype(str)
    return compare[
        (compare["n_high_k"].astype(float) > 0)
        & method.str.startswith("psis-loo")
        & ~method.str.startswith("psis-loo +")
    ]


def _row_count(r) -> str:
    """'N rows', naming them when there are few."""
    n = int(float(r.n_high_k))
    rows = [x for x in str(r.high_k_rows).split(";") if x and x != "nan"]
    if n <= 10 and rows:
        return f"{n} row{'s' if n != 1 else ''} ({', '.join(rows)})"
    return f"{n} rows"


def loo_caveat(sub: pd.DataFrame, members: list[Member]) -> str:
    """Why one weighting's comparison is indicative only, or '' when nothing says so:
    variants whose PSIS-LOO has unrefitted high-k rows, a negative effective number of
    parameters (p_loo < 0: the importance weights, not the data, decide the estimate),
    and variants whose posterior failed a diagnostic gate."""
    reasons = []
    unrel = _unreliable(sub)
    if not unrel.empty:
        worst = int(unrel["n_high_k"].astype(float).max())
        reasons.append(
            f"PSIS-LOO unreliable for {len(unrel)} of {len(sub)} variants, up to {worst} "
            "rows each with Pareto k above the threshold"
        )
    if "p" in sub:
        negative = sub[sub["p"].astype(float) < 0]
        if not negative.empty:
            reasons.append(f"p_loo < 0 for {', '.join(str(v) for v in negative['variant'])}")
    elements = set(sub["element"].astype(str)) if "element" in sub else set()
    failed = [
        m.variant
        for m in members
        if m.element in elements and m.run is not None and not m.run.diagnostics.get("passed")
    ]
    if failed:
        reasons.append(f"posterior gates failed for {', '.join(failed)}")
    return "indicative only: " + "; ".join(reasons) if reasons else ""


# ----------------------------------------------------------------------------- per run
def _run_findings(run: RunFolder) -> pd.DataFrame:
    rows = run.findings.set_index("row_id")
    p = reproduction_rates(run.tree)
    ids = [str(r) for r in np.asarray(run.tree["posterior_predictive"]["row"])]
    if p is None:
        p = np.full(len(ids), np.nan)
    frame = pd.DataFrame({"row_id": ids, "p_reproduced": p})
    frame["statement_id"] = [rows.loc[r, "statement_id"] for r in ids]
    for col in ("statement", "study_id", "kind", "observable_id"):
        frame[col] = [rows.loc[r, col] for r in ids]
    return frame[
        ["row_id", "statement_id", "p_reproduced", "statement", "study_id", "kind", "observable_id"]
    ]


def predict_section(run: RunFolder):
    """The run's ``predict`` section, its TKI doses replaced by those the sources
    report for that TKI (when the model has the standard panel and the evidence
    states any); IFN and tocilizumab doses, unreported in vitro, stay the config's."""
    from ..data import reported_doses

    p = run.config.config.predict
    if not p.standard or p.tki not in run.model.input_names:
        return p
    doses = reported_doses(run.problem.arrays, run.model).get(p.tki)
    if doses is None or not doses.values:
        return p
    return p.model_copy(update={"tki_doses": list(doses.values)})


def _predictions(members: list[Member], say) -> tuple[pd.DataFrame, list[str]]:
    from .predict import predict_table

    parts, notes = [], []
    for m in members:
        if m.run is None:
            continue
        say(f"report: predictions of {m.element}...")
        table, failed, total = predict_table(m.run, predict_section(m.run))
        if failed:
            notes.append(f"{m.element}: {failed} of {total} solves failed (excluded)")
        table.insert(0, "element", m.element)
        table.insert(0, "variant", m.variant)
        table.insert(0, "weighting", m.weighting)
        parts.append(table)
    return (pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()), notes


def _experiments(members: list[Member], draws: int, say) -> tuple[pd.DataFrame, str]:
    """``il6rcc next-experiment``'s ranking over the complete variants of one
    weighting (row when it has two, else statement), equal prior weights."""
    from .design import default_candidates, rank_experiments
    from .predict import line_rows

    for w in ("row", "statement"):
        runs = [m for m in members if m.run is not None and m.weighting == w]
        if len(runs) >= 2:
            break
    else:
        return pd.DataFrame(), "not computed: no weighting has two complete variants"
    model = runs[0].run.model
    lines = {c.name for c in model.cell_lines}
    cands = [
        c
        for c in default_candidates()
        if set(c.treatment) | set(c.control) <= set(model.input_names)
        and c.readout in model.observable_names
        and c.cell_line in lines
    ]
    if not cands:
        return pd.DataFrame(), (
            "not applicable: the models lack the candidate experiments' inputs, readouts "
            "or cell lines (il6rcc.jobs.design.default_candidates)"
        )
    say(f"report: next experiments over {len(runs)} variants ({w} weighting)...")
    hypotheses = {}
    for m in runs:
        d = m.run.draws(draws)
        rows = line_rows(m.run.problem, d, sorted({c.cell_line for c in cands}))
        hypotheses[m.variant] = (m.run.model, m.run.problem.solver, rows)
    table = rank_experiments(hypotheses, cands)
    return table, f"{len(runs)} variants fitted with {w} weighting, equal prior weights"


# ----------------------------------------------------------------------------- writing
def _fmt(x, digits: int = 2) -> str:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return str(x)
    return "n/a" if not np.isfinite(x) else f"{x:.{digits}f}"


def _md_table(headers: list[str], rows: list[list]) -> str:
    def cell(c) -> str:
        return str(c).replace("|", "/").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _gates(m: Member) -> tuple[str, str]:
    if m.run is None:
        return "n/a", f"{m.status}: {m.error or 'not run'}"
    diag = m.run.diagnostics
    verdict = (
        "passed" if diag.get("passed") else "FAILED: " + ", ".join(diag.get("failed_gates", []))
    )
    return str(diag.get("method", "")), verdict


def _short(text: str, n: int = 70) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _commits(members: list[Member]) -> str:
    shas = set()
    for m in members:
        if m.run is not None:
            g = m.run.manifest.get("git", {})
            shas.add(f"{g.get('sha', 'unknown')}{' (dirty)' if g.get('dirty') else ''}")
    return ", ".join(sorted(shas)) or "unknown"


def write_markdown(
    path: Path,
    *,
    command: str,
    sweep_command: str,
    members: list[Member],
    compare: pd.DataFrame,
    findings: pd.DataFrame,
    missing: pd.DataFrame,
    predictions: pd.DataFrame,
    experiments: pd.DataFrame,
    experiments_note: str,
    notes: list[str],
) -> None:
    git = git_state()
    concl = conclusion(compare) if not compare.empty else {}
    out = [
        "# Which mechanism makes 786-O resist IFN and TKIs?",
        "",
        f"Generated {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')} by `{command}` "
        f"at commit {git['sha']}{' (dirty)' if git['dirty'] else ''}, from the sweep "
        f"`{sweep_command}` (fits at commit {_commits(members)}). The tables beside this file "
        "(compare.csv, findings.csv, predictions.csv, experiments.csv, elements.csv) hold "
        "every number below.",
        "",
        "## Answer",
        "",
    ]
    for w, c in concl.items():
        diff = (
            f"; the runner-up by elpd, {c['runner_up']}, is {_fmt(abs(c['elpd_diff']), 1)} +- "
            f"{_fmt(c['dse'], 1)} (SE) below {c['top_elpd']}"
            if c["runner_up"]
            else ""
        )
        caveat = loo_caveat(compare[compare["weighting"].astype(str) == w], members)
        out.append(
            f"- **{w} weighting**: stacking weight {c['weight']:.2f} on {c['best']}{diff}"
            + (f" ({caveat})" if caveat else "")
            + "."
        )
    out += ["", change_text(concl), ""]
    failed = [m for m in members if m.run is None]
    gate_failed = [m for m in members if m.run is not None and not m.run.diagnostics.get("passed")]
    if failed:
        out.append(
            f"Not in the comparison (failed or unfinished): {', '.join(m.element for m in failed)}."
        )
    if gate_failed:
        out.append(
            "Posteriors that failed a diagnostic gate (their numbers are reported but not "
            f"trusted): {', '.join(m.element for m in gate_failed)}."
        )
    out += ["", "## Variants and their diagnostic gates", ""]
    rows = []
    for m in members:
        method, verdict = _gates(m)
        rows.append([m.variant, m.weighting, m.status, method, verdict])
    out += [_md_table(["variant", "weighting", "status", "method", "gates"], rows), ""]
    out += ["## Stacking weights and elpd differences", "", "![weights](figures/weights.png)", ""]
    for w, sub in compare.groupby("weighting", sort=True):
        sub = sub.sort_values("elpd", ascending=False)
        out += [f"**{w} weighting** (PSIS-LOO over the evidence rows):", ""]
        out.append(
            _md_table(
                ["variant", "stacking weight", "elpd", "SE", "elpd diff", "SE of diff", "method"],
                [
                    [
                        r.variant,
                        _fmt(r.weight),
                        _fmt(r.elpd, 1),
                        _fmt(r.se, 1),
                        _fmt(r.elpd_diff, 1),
                        _fmt(r.dse, 1),
                        r.method,
                    ]
                    for r in sub.itertuples()
                ],
            )
        )
        out.append("")
    unreliable = _unreliable(compare)
    if not unreliable.empty:
        out += [
            "PSIS-LOO is unreliable for rows with a high Pareto k that were not refitted "
            "(compare_refit: none; compare.csv's high_k_rows lists them): "
            + "; ".join(
                f"{r.variant} ({r.weighting}): {_row_count(r)}" for r in unreliable.itertuples()
            )
            + ".",
            "",
        ]
    out += [
        "## Findings",
        "",
        "Posterior probability that each variant reproduces each qualitative finding, "
        "averaged over the rows of each published statement "
        "([figures/findings.png](figures/findings.png); per row in findings.csv).",
        "",
        "![findings](figures/findings.png)",
        "",
        f"### Findings no variant reproduces (P <= {REPRODUCED} under every variant)",
        "",
    ]
    if missing.empty:
        out.append("None: every finding is reproduced by at least one variant.")
    else:
        out.append(
            _md_table(
                ["weighting", "statement", "row", "best P", "best variant"],
                [
                    [
                        r.weighting,
                        f"{r.statement_id}: {_short(r.statement, 90)}",
                        r.row_id,
                        _fmt(r.best_p),
                        r.best_variant,
                    ]
                    for r in missing.itertuples()
                ],
            )
        )
    out += ["", "## Predictions", ""]
    if predictions.empty:
        out.append("No predictions (every solve failed).")
    else:
        out += [
            "Posterior median [5 %, 95 %] per variant (row weighting; both weightings in "
            "predictions.csv). TKI doses are those the sources report; IFN and tocilizumab "
            "doses, which the sources do not report in vitro, are the config's "
            "(`predict` section), shown in the dose column.",
            "",
            "![predictions](figures/predictions.png)",
            "",
            _prediction_table(predictions),
        ]
    out += [
        "",
        "In-vivo predictions (quantity 'xenograft tumour volume relative to vehicle', "
        "time in hours after the start of treatment): each xenograft regimen of the "
        "evidence, its drugs alone and together, every posterior draw at its own "
        "exposure. No source reports an in-vivo exposure (only regimens such as "
        "sorafenib 30 mg/kg/day), so the exposures are the fit's dose nuisances: their "
        "posterior, not a number chosen here, stands in for each regimen.",
        "",
        "## The most informative next experiments",
        "",
        f"Mutual information between variant and outcome ({experiments_note}).",
        "",
    ]
    if not experiments.empty:
        top = experiments.head(3)
        out.append(
            _md_table(
                ["experiment", "readout", "time (h)", "bits (direction)", "bits (fold change)"],
                [
                    [
                        r.experiment,
                        r.readout,
                        _fmt(r.time_h, 0),
                        _fmt(r.information_bits_direction, 3),
                        _fmt(r.information_bits_fold_change, 3),
                    ]
                    for r in top.itertuples()
                ],
            )
        )
    if notes:
        out += ["", "## Notes", "", *[f"- {n}" for n in notes]]
    _io.write_text(path, "\n".join(out) + "\n")


def _prediction_table(predictions: pd.DataFrame) -> str:
    sub = predictions[predictions["weighting"] == "row"]
    if sub.empty:
        sub = predictions[predictions["weighting"] == predictions["weighting"].iloc[0]]
    variants = list(dict.fromkeys(sub["variant"]))
    keys = ["cell_line", "quantity", "intervention", "dose", "time_h"]
    sub = sub.assign(
        dose=sub["dose"].astype(float).map(lambda d: "" if not np.isfinite(d) else f"{d:g}"),
        time_h=sub["time_h"].astype(float).map(lambda t: f"{t:g}"),
    )
    rows = []
    for key, g in sub.groupby(keys, sort=False):
        cells = {r.variant: f"{r.q50:.2f} [{r.q05:.2f}, {r.q95:.2f}]" for r in g.itertuples()}
        rows.append([*key, *[cells.get(v, "") for v in variants]])
    return _md_table([*keys, *variants], rows)


# ----------------------------------------------------------------------------- figures
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_weights(compare: pd.DataFrame, path: Path) -> None:
    plt = _pyplot()
    groups = list(compare.groupby("weighting", sort=True))
    n = max(len(g) for _, g in groups) if groups else 1
    fig, axes = plt.subplots(
        len(groups) or 1, 2, figsize=(11, (0.35 * n + 1.2) * max(len(groups), 1)), squeeze=False
    )
    for (w, sub), (a, b) in zip(groups, axes, strict=False):
        sub = sub.sort_values("elpd", ascending=True)
        y = np.arange(len(sub))
        diff = -sub["elpd_diff"].astype(float).abs()  # below the best, whatever the sign convention
        a.errorbar(diff, y, xerr=sub["dse"].astype(float), fmt="o")
        a.axvline(0, color="k", lw=0.6)
        a.set_yticks(y, sub["variant"], fontsize=8)
        a.set_xlabel("elpd difference to the best (+- SE)")
        a.set_title(f"{w} weighting", fontsize=9)
        b.barh(y, sub["weight"].astype(float))
        b.set_yticks(y, sub["variant"], fontsize=8)
        b.set_xlim(0, 1)
        b.set_xlabel("stacking weight")
    fig.tight_layout()
    _io.save_figure(fig, path, dpi=110)
    plt.close(fig)


def statement_matrix(findings: pd.DataFrame, weighting: str) -> pd.DataFrame:
    """Mean P(reproduced) per statement (rows, labelled by id, text and row count) and
    variant (columns) under one weighting."""
    sub = findings[findings["weighting"] == weighting]
    n_rows = sub.groupby("statement_id")["row_id"].nunique()
    text = sub.groupby("statement_id")["statement"].first()
    mat = sub.pivot_table(
        index="statement_id", columns="variant", values="p_reproduced", aggfunc="mean", sort=False
    )
    mat.index = [
        f"{sid}: {_short(text[sid], 60)}" + (f" ({n_rows[sid]} rows)" if n_rows[sid] > 1 else "")
        for sid in mat.index
    ]
    return mat


def plot_findings(findings: pd.DataFrame, path: Path) -> None:
    plt = _pyplot()
    weightings = sorted(findings["weighting"].unique()) or ["row"]
    mats = [statement_matrix(findings, w) for w in weightings]
    # one row per statement in every panel, labelled once (on the left)
    index = list(dict.fromkeys(label for m in mats for label in m.index))
    mats = [m.reindex(index) for m in mats]
    n = max([len(m) for m in mats] + [1])
    width = max([m.shape[1] for m in mats] + [1])
    fig, axes = plt.subplots(
        1, len(mats), figsize=(4.5 + 0.45 * width * len(mats) + 3, 0.22 * n + 2), squeeze=False
    )
    for w, mat, ax in zip(weightings, mats, axes[0], strict=True):
        im = ax.imshow(mat.to_numpy(float), vmin=0, vmax=1, cmap="RdYlGn", aspect="auto")
        ax.set_xticks(range(mat.shape[1]), mat.columns, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(len(mat)), mat.index if ax is axes[0][0] else [], fontsize=6)
        ax.set_title(f"P(finding reproduced), {w} weighting", fontsize=9)
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.5)
    _io.save_figure(fig, path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_predictions(predictions: pd.DataFrame, path: Path) -> None:
    plt = _pyplot()
    sub = predictions[predictions["weighting"] == predictions["weighting"].iloc[0]]
    panels = list(sub.groupby(["cell_line", "quantity"], sort=False))
    variants = list(dict.fromkeys(sub["variant"]))
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 2.6 * len(panels)), squeeze=False)
    for ((line, quantity), g), ax in zip(panels, axes[:, 0], strict=True):
        timed = g["time_h"].nunique() > 1  # e.g. the xenograft panel: one point per day
        labels = list(
            dict.fromkeys(
                f"{r.intervention}"
                + (f" @ {r.dose:g}" if np.isfinite(float(r.dose)) else "")
                + (f", day {r.time_h / 24:g}" if timed else "")
                for r in g.itertuples()
            )
        )
        for j, v in enumerate(variants):
            gv = g[g["variant"] == v]
            x = np.arange(len(gv)) + (j - len(variants) / 2) * 0.8 / max(len(variants), 1)
            ax.errorbar(
                x,
                gv["q50"],
                yerr=[gv["q50"] - gv["q05"], gv["q95"] - gv["q50"]],
                fmt="o",
                ms=3,
                capsize=2,
                label=v,
            )
        ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right", fontsize=7)
        ax.set_title(f"{line}: {quantity}", fontsize=9)
    axes[0, 0].legend(fontsize=6, ncol=4)
    fig.tight_layout()
    _io.save_figure(fig, path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- the job
def _sweep_command(record: dict, sweep_dir: Path) -> str:
    def rel(p) -> str:
        try:
            r = os.path.relpath(p)
        except ValueError:
            return str(p)
        return str(p) if r.startswith("..") else r

    return f"il6rcc sweep {rel(record['sweep_file'])} --out {rel(sweep_dir)}"


def _check_target(out: Path) -> None:
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / REPORT).is_file())):
        raise Il6rccError(
            f"{out}: exists and holds no previous report ({REPORT}); choose an empty or new "
            "--out (the report replaces the whole folder)"
        )


def write_mechanisms_report(
    sweep_dir: str | Path,
    out: str | Path,
    draws: int = 50,
    command: str | None = None,
    quiet: bool = False,
) -> Path:
    """Write the report (see the module docstring); returns ``out``."""
    sweep_dir, out = Path(sweep_dir), Path(out)
    _check_target(out)

    def say(message: str) -> None:
        if not quiet:
            print(message, file=sys.stderr, flush=True)

    record, members = read_sweep(sweep_dir)
    complete = [m for m in members if m.run is not None]
    if len(complete) < 2:
        not_done = [
            f"{m.element} ({m.status}: {m.error or 'not run'})" for m in members if m.run is None
        ]
        raise Il6rccError(
            f"{sweep_dir}: {len(complete)} complete element(s); the report needs at least two. "
            f"Not complete: {'; '.join(not_done) or 'none'}. Rerun the sweep to finish them."
        )
    compare = read_compare(sweep_dir, members)
    findings = findings_table([(m.variant, m.weighting, _run_findings(m.run)) for m in complete])
    missing = unreproduced(findings)
    predictions, notes = _predictions(members, say)
    experiments, experiments_note = _experiments(members, draws, say)
    command = command or "il6rcc " + " ".join(sys.argv[1:])
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        (staging / "figures").mkdir()
        elements = pd.DataFrame(
            [
                {
                    "element": m.element,
                    "variant": m.variant,
                    "weighting": m.weighting,
                    "status": m.status,
                    "method": _gates(m)[0],
                    "gates": _gates(m)[1],
                }
                for m in members
            ]
        )
        elements.to_csv(staging / "elements.csv", index=False)
        compare.to_csv(staging / "compare.csv", index=False)
        findings.to_csv(staging / "findings.csv", index=False)
        predictions.to_csv(staging / "predictions.csv", index=False)
        experiments.to_csv(staging / "experiments.csv", index=False)
        if not compare.empty:
            plot_weights(compare, staging / "figures" / "weights.png")
        if not findings.empty:
            plot_findings(findings, staging / "figures" / "findings.png")
        if not predictions.empty:
            plot_predictions(predictions, staging / "figures" / "predictions.png")
        write_markdown(
            staging / REPORT,
            command=command,
            sweep_command=_sweep_command(record, sweep_dir),
            members=members,
            compare=compare,
            findings=findings,
            missing=missing,
            predictions=predictions,
            experiments=experiments,
            experiments_note=experiments_note,
            notes=notes,
        )
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
        staging.rename(out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    say(f"wrote {out / REPORT}")
    return out


__all__ = [
    "Member",
    "change_text",
    "conclusion",
    "findings_table",
    "loo_caveat",
    "read_compare",
    "read_sweep",
    "statement_matrix",
    "unreproduced",
    "write_mechanisms_report",
]
