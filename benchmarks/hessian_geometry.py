"""Geometry of the default job's posterior at its MAP: where the stiff directions come
from, and what the tumour-volume contrast scale does to them.

Not a timing benchmark. Steps (one heavy JAX process, about 30-60 min on 2 shared
cores):

1. the default job's problem (``configs/default.yaml``), MAP from the prior median
   (one start, ``--steps`` L-BFGS iterations), the Hessian of the negative log
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
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from il6rcc.configs import SHIPPED, load_config  # noqa: E402
from il6rcc.inference import model_fn, prior_fn, problem_data  # noqa: E402
from il6rcc.inference._lbfgs import BatchedObjective, fd_hessian_batched  # noqa: E402
from il6rcc.inference._map import (  # noqa: E402
    hessian_directions,
    map_multistart,
    potential_and_unravel,
)
from il6rcc.inference._model import coordinate_names  # noqa: E402
from il6rcc.jobs._problem import build_problem  # noqa: E402

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
    problem, info = build_problem(load_config(args.config))
    data = jax.tree.map(jnp.asarray, problem_data(problem))
    arrays = problem.arrays
    say = lambda msg: print(f"[{time.perf_counter() - t0:7.0f} s] {msg}", flush=True)  # noqa: E731
    say(f"{info['n_rows']} rows, {arrays.n_units} units, {info['n_conditions']} conditions")

    res = map_multistart(
        jax.random.PRNGKey(0), model_fn(problem), 1, args.steps, 1e-6, data=data, progress=say
    )
    objective = res.objective
    value, grad = objective(res.x[None, :])
    say(f"MAP: -log posterior {res.potential:.4f}, |grad| {np.linalg.norm(grad):.3g}")
    names = coordinate_names(
        problem,
        potential_and_unravel(jax.random.PRNGKey(0), model_fn(problem), data)[1],
        len(res.x),
    )
    posterior = _spectrum(res.hessian)
    say(f"posterior Hessian: {posterior}")

    # the prior's own curvature (no ODE solves), to isolate the likelihood's
    prior_potential, _, _, _ = potential_and_unravel(jax.random.PRNGKey(0), prior_fn(problem), data)
    prior_objective = BatchedObjective(prior_potential, data, batch=1)
    h_prior = fd_hessian_batched(prior_objective, res.x)

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
        d = dict(data)
        d["row_weight"] = jnp.asarray(rows_xeno, dtype=jnp.float64)
        ev = dict(d["ev"])
        if scale is not None:
            ev["row_contrast_scale"] = jnp.ones_like(ev["row_contrast_scale"])
        d["ev"] = ev
        objective.data = d  # same compiled program: only data change
        h = fd_hessian_batched(objective, res.x) - h_prior
        spec = _spectrum(h)
        spec["directions"] = hessian_directions(h, names, k=2)[:2]
        proxies[label] = spec
        say(f"xenograft rows only, {label}: max eigenvalue {spec['max']:.4g}")
    objective.data = data

    out = {
        "config": args.config,
        "steps": args.steps,
        "map_potential": res.potential,
        "map_grad_norm": float(np.linalg.norm(grad)),
        "map_steps": int(res.steps[0]),
        "posterior_hessian": posterior,
        "posterior_directions": hessian_directions(res.hessian, names),
        "xenograft_rows": xeno_ids,
        "xenograft_likelihood_hessian": proxies,
        "seconds": time.perf_counter() - t0,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    np.savez(Path(args.out).with_suffix(".npz"), x=res.x, hessian=res.hessian, prior=h_prior)
    say(f"written {args.out}")


if __name__ == "__main__":
    main()
