"""``il6rcc report RUN_DIR``: one self-contained HTML page of a run.

Sections: the run (config, model variant, seeds, versions, hashes), the data (rows per
study and kind), the diagnostics with their pass/fail gates, the key posteriors
(median and 90 % interval next to the prior), the findings the posterior reproduces,
and the run's figures embedded as base64 PNG (no external files needed).
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np

from .. import _io
from ..errors import Il6rccError
from ._posterior import reproduced_probability


def _table(headers, rows) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(x) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def _load_run(run_dir: Path):
    needed = ("manifest.json", "diagnostics.json", "posterior.nc")
    missing = [n for n in needed if not (run_dir / n).is_file()]
    if missing:
        raise Il6rccError(
            f"{run_dir}: not a complete run folder (missing {', '.join(missing)}); finish it "
            f"with 'il6rcc fit --resume {run_dir}'"
        )
    import xarray as xr

    manifest = json.loads((run_dir / "manifest.json").read_text())
    diag = json.loads((run_dir / "diagnostics.json").read_text())
    tree = xr.open_datatree(run_dir / "posterior.nc", engine="h5netcdf")
    return manifest, diag, tree


def _posterior_rows(tree):
    post = tree["posterior"].to_dataset()
    prior = tree["prior"].to_dataset() if "prior" in tree.children else None
    rows = []
    for i, name in enumerate(np.asarray(post["parameter"])):
        x = np.asarray(post["theta"])[..., i].ravel()
        q = np.percentile(x, [5, 50, 95])
        if prior is not None:
            p = np.percentile(np.asarray(prior["theta"])[..., i].ravel(), [5, 50, 95])
            shrink = (q[2] / q[0]) / (p[2] / p[0]) if p[2] > p[0] > 0 and q[0] > 0 else np.nan
            prior_text = f"{p[1]:.3g} [{p[0]:.3g}, {p[2]:.3g}]"
        else:
            prior_text, shrink = "", np.nan
        rows.append(
            [
                name,
                f"{q[1]:.3g} [{q[0]:.3g}, {q[2]:.3g}]",
                prior_text,
                f"{shrink:.2f}" if np.isfinite(shrink) else "",
            ]
        )
    return rows


def _findings_rows(tree, limit: int = 400):
    p = reproduced_probability(tree)
    if p is None:
        return []
    pp = tree["posterior_predictive"].to_dataset()
    rows = []
    for r, row_id in enumerate(np.asarray(pp["row"])):
        if np.isfinite(p[r]):
            rows.append(
                [
                    str(np.asarray(pp["row_study"])[r]),
                    str(row_id),
                    str(np.asarray(pp["row_kind"])[r]),
                    str(np.asarray(pp["row_readout"])[r]),
                    f"{p[r]:.2f}",
                ]
            )
    rows.sort(key=lambda row: float(row[-1]))
    return rows[:limit]


def write_report(run_dir: Path, out: Path | None = None) -> Path:
    """Write the HTML report; returns its path (default ``RUN_DIR/report.html``)."""
    run_dir = Path(run_dir)
    manifest, diag, tree = _load_run(run_dir)
    out = Path(out) if out is not None else run_dir / "report.html"
    gates = [
        [name, _fmt(g["value"]), g["rule"], "PASS" if g["passed"] else "FAIL"]
        for name, g in diag["gates"].items()
    ]
    info = [
        ["config", f"{manifest['config']['file']} (sha256 {manifest['config']['sha256'][:12]})"],
        ["model / variant", f"{manifest['model']['name']} / {manifest['model']['variant']}"],
        ["method", diag.get("method", "")],
        ["seed", manifest["seeds"]["inference.seed"]],
        [
            "evidence",
            f"{manifest['data']['n_rows']} rows, {manifest['data']['n_conditions']} "
            f"conditions, {manifest['data']['n_estimated']} estimated parameters",
        ],
        ["git", f"{manifest['git']['sha']}{' (dirty)' if manifest['git']['dirty'] else ''}"],
        ["device", manifest["device"].get("devices", "")],
        ["wall time", f"{diag.get('wall_seconds', float('nan')) / 60:.1f} min"],
        [
            "versions",
            ", ".join(
                f"{k} {v}"
                for k, v in manifest["packages"].items()
                if k in ("il6rcc", "jax", "diffrax", "numpyro", "arviz")
            ),
        ],
    ]
    extra = [
        [k, _fmt(v)]
        for k, v in diag.items()
        if k not in ("gates", "ebfmi_per_chain", "failed_gates", "device")
        and not isinstance(v, dict | list)
    ]
    kinds: dict = {}
    obs = tree["observed_data"].to_dataset()
    for study, kind in zip(np.asarray(obs["row_study"]), np.asarray(obs["row_kind"]), strict=True):
        kinds.setdefault(str(study), {}).setdefault(str(kind), 0)
        kinds[str(study)][str(kind)] += 1
    all_kinds = sorted({k for v in kinds.values() for k in v})
    data_rows = [[s, *[v.get(k, 0) for k in all_kinds], sum(v.values())] for s, v in kinds.items()]
    figures = ""
    for png in sorted((run_dir / "figures").glob("*.png")):
        data = base64.b64encode(png.read_bytes()).decode()
        figures += f"<h3>{html.escape(png.stem)}</h3><img src='data:image/png;base64,{data}'/>"
    status = (
        "all diagnostic gates passed"
        if diag["passed"]
        else ("diagnostic gates FAILED: " + ", ".join(diag["failed_gates"]))
    )
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>il6rcc run {html.escape(manifest["name"])}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:auto}}
table{{border-collapse:collapse;margin:8px 0}}td,th{{border:1px solid #ccc;padding:3px 6px;
font-size:13px}}img{{max-width:100%}}.bad{{color:#b00}}.good{{color:#070}}</style></head><body>
<h1>il6rcc run: {html.escape(manifest["name"])}</h1>
<p class="{"good" if diag["passed"] else "bad"}"><b>{html.escape(status)}</b></p>
<h2>Run</h2>{_table(["item", "value"], info)}
<h2>Data</h2>{_table(["study", *all_kinds, "rows"], data_rows)}
<h2>Diagnostics</h2>{_table(["gate", "value", "rule", "result"], gates)}
{_table(["quantity", "value"], extra)}
<h2>Key posteriors</h2><p>median [5 %, 95 %]; width ratio = posterior / prior 90 % interval
(below 1: the evidence informed the parameter).</p>
{_table(["parameter", "posterior", "prior", "width ratio"], _posterior_rows(tree))}
<h2>Qualitative findings</h2><p>Posterior probability that the model reproduces each
finding (lowest first).</p>
{_table(["study", "row", "kind", "readout", "P(reproduced)"], _findings_rows(tree))}
<h2>Figures</h2>{figures}
</body></html>"""
    _io.write_text(out, page)
    return out


__all__ = ["write_report"]
