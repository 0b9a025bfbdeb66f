"""``il6rcc report RUN_DIR``: one self-contained HTML page of a run, for any method
(NUTS, Laplace at the MAP, SVI) and any problem (evidence tables or PEtab).

Sections: the run (config, model or PEtab problem, method, seeds, versions, hashes),
the data (rows per study and kind, or measurements per observable), the verdict and the
gates (passed, failed, or not applicable to the method), the key posteriors (median
and 90 % interval next to the prior), the findings the posterior reproduces, and the
run's figures embedded as base64 PNG (no external files needed).
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np

from .. import _io
from ._run_folder import open_run, reproduction_rates


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


def _posterior_rows(tree, ratio_of_widths: bool):
    """Median and 90 % interval of every parameter next to its prior's; the width
    ratio compares the intervals on the log scale (``ratio_of_widths``: natural-scale
    positive values) or as given (values already on a log scale, e.g. PEtab's)."""
    post = tree["posterior"].to_dataset()
    prior = tree["prior"].to_dataset() if "prior" in tree.children else None
    rows = []
    for i, name in enumerate(np.asarray(post["parameter"])):
        x = np.asarray(post["theta"])[..., i].ravel()
        q = np.percentile(x, [5, 50, 95])
        if prior is not None:
            p = np.percentile(np.asarray(prior["theta"])[..., i].ravel(), [5, 50, 95])
            if ratio_of_widths:
                ok = p[2] > p[0] > 0 and q[0] > 0
                shrink = np.log(q[2] / q[0]) / np.log(p[2] / p[0]) if ok else np.nan
            else:
                shrink = (q[2] - q[0]) / (p[2] - p[0]) if p[2] > p[0] else np.nan
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
    p = reproduction_rates(tree)
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


def _data_rows(tree) -> tuple[list[str], list[list]]:
    """Observations per study and kind (evidence rows) or per observable (PEtab)."""
    obs = tree["observed_data"].to_dataset()
    if "row_study" in obs.coords:
        groups = zip(np.asarray(obs["row_study"]), np.asarray(obs["row_kind"]), strict=True)
        label = "study"
    else:
        dim = next(iter(obs.dims))
        key = "observable" if "observable" in obs.coords else dim
        groups = ((str(o), "measurement") for o in np.asarray(obs[key]))
        label = "observable"
    counts: dict = {}
    for group, kind in groups:
        counts.setdefault(str(group), {}).setdefault(str(kind), 0)
        counts[str(group)][str(kind)] += 1
    kinds = sorted({k for v in counts.values() for k in v})
    rows = [[g, *[v.get(k, 0) for k in kinds], sum(v.values())] for g, v in counts.items()]
    return [label, *kinds, "total"], rows


def write_report(run_dir: Path, out: Path | None = None) -> Path:
    """Write the HTML report; returns its path (default ``RUN_DIR/report.html``)."""
    run = open_run(run_dir, need=("manifest.json", "diagnostics.json", "posterior.nc"))
    manifest, diag, tree = run.manifest, run.diagnostics, run.tree
    out = Path(out) if out is not None else run.path / "report.html"
    gates = [
        [
            name,
            _fmt(g["value"]),
            g["rule"],
            {"passed": "PASS", "failed": "FAIL"}.get(g.get("status", ""), "n/a"),
        ]
        for name, g in diag["gates"].items()
    ]
    model = manifest["model"]
    model_text = (
        f"PEtab problem {model['petab']}"
        if "petab" in model
        else f"{model['name']} / {model.get('variant', '')}"
    )
    sizes = ", ".join(f"{k[2:]} {v}" for k, v in manifest["data"].items() if k.startswith("n_"))
    info = [
        ["config", f"{manifest['config']['file']} (sha256 {manifest['config']['sha256'][:12]})"],
        ["model", model_text],
        ["method", diag.get("method", "")],
        ["seed", manifest["seeds"]["inference.seed"]],
        ["data", sizes],
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
    skip = ("gates", "ebfmi_per_chain", "failed_gates", "gates_checked", "device", "verdict")
    extra = [
        [k, _fmt(v)] for k, v in diag.items() if k not in skip and not isinstance(v, dict | list)
    ]
    data_header, data_rows = _data_rows(tree)
    figures = ""
    for png in sorted((run.path / "figures").glob("*.png")):
        encoded = base64.b64encode(png.read_bytes()).decode()
        figures += f"<h3>{html.escape(png.stem)}</h3><img src='data:image/png;base64,{encoded}'/>"
    verdict = diag.get("verdict") or (
        "all diagnostic gates passed" if diag["passed"] else "diagnostic gates FAILED"
    )
    evidence = run.kind == "evidence"
    findings = _findings_rows(tree)
    findings_html = (
        "<h2>Qualitative findings</h2><p>Posterior probability that the model reproduces "
        "each finding (lowest first).</p>"
        + _table(["study", "row", "kind", "readout", "P(reproduced)"], findings)
        if findings
        else ""
    )
    scale_note = (
        "width ratio = posterior / prior 90 % interval on the log scale (below 1: the "
        "data informed the parameter)"
        if evidence
        else "values on the PEtab estimation scales (as named); width ratio = posterior / "
        "prior 90 % interval"
    )
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>il6rcc run {html.escape(manifest["name"])}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:auto}}
table{{border-collapse:collapse;margin:8px 0}}td,th{{border:1px solid #ccc;padding:3px 6px;
font-size:13px}}img{{max-width:100%}}.bad{{color:#b00}}.good{{color:#070}}</style></head><body>
<h1>il6rcc run: {html.escape(manifest["name"])}</h1>
<p class="{"good" if diag["passed"] else "bad"}"><b>{html.escape(verdict)}</b></p>
<h2>Run</h2>{_table(["item", "value"], info)}
<h2>Data</h2>{_table(data_header, data_rows)}
<h2>Diagnostics</h2><p>A gate that does not apply to the method is "n/a", never a pass.</p>
{_table(["gate", "value", "rule", "result"], gates)}
{_table(["quantity", "value"], extra)}
<h2>Key posteriors</h2><p>median [5 %, 95 %]; {scale_note}.</p>
{_table(["parameter", "posterior", "prior", "width ratio"], _posterior_rows(tree, evidence))}
{findings_html}
<h2>Figures</h2>{figures}
</body></html>"""
    _io.write_text(out, page)
    return out


__all__ = ["write_report"]
