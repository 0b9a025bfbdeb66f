"""Geometry of the default job's posterior at its MAP: where the stiff directions come
from, and what the tumour-volume contrast scale does to them.

Not a timing benchmark. Steps (one heavy JAX process, about 30-60 min on 2 shared
cores):

1. the default job's problem (``configs/default.yaml``), MAP from the prior median
   (one start, ``--steps`` BFGS iterations), the Hessian of the negative log
   posterior by central differences of gradients (as ``il6rcc fit`` computes it), its
   unfloored eigenvalues (all positive: a minimum; the condition number is then
   max / min) and the gradient norm there;
2. the proxy of issue 13: at the same point, the Hessian of the negative
   log-likelihood of the xenograft rows alone (rows whose background has a xenograft),
   once with the growth-rate contrast scale of ``assays.tsv`` (as fitted) and once with
   it set to 1 (a constant probit on the log volume, as before): the eigenvalues they
   add to the posterior's curvature.

Usage: ``python benchmarks/hessian_geometry.py [--steps 300] [--out results/geometry.json]``
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from il6rcc import runtime

runtime.setup()

import jax  # noqa: E402
import numpy as np  # noqa: E402

from il6rcc.configs import SHIPPED, load_config  # noqa: E402
from il6rcc.inference import (  # noqa: E402
    EvidencePosterior,
    MapSettings,
    hessian_directions,
    laplace_approximation,
    map_multistart,
)
from il6rcc.jobs import evidence_problem  # noqa: E402

HERE = Path(__file__).resolve().parent


def _spectrum(h: np.ndarray) -> dict:
    w = np.linalg.eigvalsh(0.5 * (h + h.T))
    return {
        "max": float(w.max()),
        "min": float(w.min()),
        "n_negative": int(np.sum(w < 0)),
        "condition_number": float(w.max() / w.min()) if w.min() > 0 else float("inf"),
        "top5": [float(v) for v in w[::-1][:5]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(SHIPPED / "default.yaml"))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--out", default=str(HERE / "results" / "geometry.json"))
    args = parser.parse_args()
    t0 = time.perf_counter()
    problem, info = evidence_problem(load_config(args.config))
    posterior = EvidencePosterior(problem)
    data = posterior.data
    arrays = problem.arrays
    say = lambda msg: print(f"[{time.perf_counter() - t0:7.0f} s] {msg}", flush=True)  # noqa: E731
    say(f"{info['n_rows']} rows, {arrays.n_units} units, {info['n_conditions']} conditions")

    settings = MapSettings(n_starts=1, max_steps=args.steps, tol=1e-6)
    res = map_multistart(posterior, jax.random.PRNGKey(0), settings, progress=say)
    lap = laplace_approximation(posterior, res.x)
    grad = lap.gradient
    say(f"MAP: -log posterior {res.value:.4f}, |grad| {np.linalg.norm(grad):.3g}")
    names = list(posterior.coordinate_names)
    spectrum = _spectrum(lap.hessian)
    say(f"posterior Hessian: {spectrum}")

    def hessian_with(d) -> np.ndarray:
        """Hessian of the negative log density with other data (the same program)."""
        return laplace_approximation(posterior, res.x, data=d).hessian

    # the prior's own curvature (every row weight 0: no likelihood), to isolate the
    # likelihood's
    h_prior = hessian_with(data._replace(row_weight=np.zeros(arrays.n_rows)))

    xeno = np.array(["xenograft" in cid for cid in arrays.batch.ids])
    rows_xeno = np.zeros(arrays.n_rows, dtype=bool)
    for u, r in enumerate(np.asarray(arrays.unit_row)):
        terms = np.flatnonzero(np.asarray(arrays.term_unit) == u)
        if xeno[np.asarray(arrays.term_cond)[terms]].any():
            rows_xeno[r] = True
    xeno_ids = [arrays.row_ids[r] for r in np.flatnonzero(rows_xeno)]
    say(f"{len(xeno_ids)} xenograft rows: {xeno_ids}")

    proxies = {}
    for label, scale in (("growth-rate scale", None), ("constant probit", 1.0)):
        ev = dict(data.ev)
        if scale is not None:
            ev["row_contrast_scale"] = np.ones_like(ev["row_contrast_scale"])
        d = data._replace(row_weight=rows_xeno.astype(np.float64), ev=ev)
        h = hessian_with(d) - h_prior
        spec = _spectrum(h)
        spec["directions"] = hessian_directions(h, names, k=2)[:2]
        proxies[label] = spec
        say(f"xenograft rows only, {label}: max eigenvalue {spec['max']:.4g}")

    out = {
        "config": args.config,
        "steps": args.steps,
        "map_potential": res.value,
        "map_grad_norm": float(np.linalg.norm(grad)),
        "map_steps": int(res.steps[0]),
        "posterior_hessian": spectrum,
        "posterior_directions": hessian_directions(lap.hessian, names),
        "xenograft_rows": xeno_ids,
        "xenograft_likelihood_hessian": proxies,
        "seconds": time.perf_counter() - t0,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    np.savez(Path(args.out).with_suffix(".npz"), x=res.x, hessian=lap.hessian, prior=h_prior)
    say(f"written {args.out}")


if __name__ == "__main__":
    main()
