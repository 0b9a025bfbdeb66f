"""NUTS preconditioners (issue 4): the Laplace mass matrix at the MAP against numpyro's
adapted dense and diagonal mass matrices, on the same problem, starts and budgets.

    python benchmarks/bench_mass_matrix.py                       # Boehm, all three
    python benchmarks/bench_mass_matrix.py --problem circuit-twin --kinds laplace \
        --warmup 25 --samples 50 --chains 1                      # the circuit, one chain

Problems:

* ``boehm``: the Boehm et al. 2014 STAT5 dimerisation PEtab problem (11 parameters,
  a sloppy JAK-STAT posterior, one gradient about 16 ms): cheap enough for all three
  preconditioners at full budgets.
* ``circuit-twin``: the default job's circuit problem (81 coordinates, 71 conditions;
  one gradient about 1 s on 2 cores) with its evidence replaced by the quantitative
  twin of the recovery test (tests/test_recovery.py). Adapted mass matrices need
  hundreds of gradients per iteration here before they have adapted, so only short
  runs are affordable: it measures what one NUTS iteration costs on the circuit.

Reported per preconditioner: leapfrog steps (= gradients) per iteration in warmup and
sampling, divergences, step size, min bulk and tail ESS and max rank R-hat over the
unconstrained coordinates (arviz 1.x), ESS per 1000 gradients, seconds per iteration
in steady chunks (compilation excluded) and ESS per second. Nothing here fails on a time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _common as C  # noqa: E402

C.setup()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from il6rcc.inference import (  # noqa: E402
    ChainRunner,
    MapSettings,
    NutsSettings,
    chain_starts,
    laplace_approximation,
    map_multistart,
    run_chains,
)

REPO = C.REPO
CACHED = ("x", "inverse_mass_matrix", "potential", "condition_number", "n_floored", "seconds")


def boehm():
    from il6rcc.petab_io import DEFAULT_SOLVER, PetabPosterior, load_problem, problem_path

    problem = load_problem(problem_path("Boehm_JProteomeRes2014"))
    return PetabPosterior(problem, DEFAULT_SOLVER), 8


def circuit_twin():
    sys.path.insert(0, str(REPO / "tests"))
    from test_recovery import _circuit_truth

    from il6rcc.configs import SHIPPED, load_config
    from il6rcc.inference import EvidencePosterior, simulated_evidence, truth_point
    from il6rcc.jobs import evidence_problem

    problem, _ = evidence_problem(load_config(SHIPPED / "default.yaml"))
    twin = simulated_evidence(problem, truth_point(problem, **_circuit_truth(problem)), 0.3)
    return EvidencePosterior(twin), 1


PROBLEMS = {"boehm": boehm, "circuit-twin": circuit_twin}


def run_kind(kind, posterior, data, res, settings, inits, key, chunk):
    runner = ChainRunner(
        posterior, data, settings, res.inverse_mass_matrix if kind.startswith("laplace") else None
    )
    state = runner.init(key, inits)
    chunks, draws, stats = [], [], []

    def on_chunk(_st, done, chunk_stats, chunk_draws, seconds):
        steps = np.asarray(chunk_stats["num_steps"])
        phase = "warmup" if done <= settings.num_warmup else "sampling"
        chunks.append((phase, steps.shape[1], seconds, int(steps.sum())))
        if phase == "sampling":
            draws.append(np.asarray(chunk_draws["theta"]))
            stats.append({k: np.asarray(v) for k, v in chunk_stats.items()})

    t0 = time.perf_counter()
    run_chains(runner, state, 0, chunk, on_chunk, lambda line: print(line, flush=True))
    wall = time.perf_counter() - t0
    z = np.concatenate(draws, axis=1)  # [chain, draw, n]
    st = {k: np.concatenate([s[k] for s in stats], axis=1) for k in stats[0]}
    return summarise(kind, chunks, z, st, wall, settings)


def summarise(kind, chunks, z, st, wall, settings) -> dict:
    import arviz as az
    import xarray as xr

    ds = xr.Dataset({"z": (("chain", "draw", "coord"), z)})
    ess_bulk = float(np.min(np.asarray(az.ess(ds, method="bulk")["z"])))
    ess_tail = float(np.min(np.asarray(az.ess(ds, method="tail")["z"])))
    rhat = float(np.max(np.asarray(az.rhat(ds)["z"]))) if settings.num_chains > 1 else float("nan")
    grads = {p: sum(c[3] for c in chunks if c[0] == p) for p in ("warmup", "sampling")}
    iters = {p: sum(c[1] for c in chunks if c[0] == p) for p in ("warmup", "sampling")}
    # steady seconds per iteration: sampling chunks after the first (which compiles)
    steady = [c for c in chunks if c[0] == "sampling"][1:] or [
        c for c in chunks if c[0] == "sampling"
    ]
    sec_per_it = sum(c[2] for c in steady) / sum(c[1] for c in steady)
    sampling_s = sec_per_it * iters["sampling"]
    # compilation: the first chunk of each phase minus its gradients at the steady cost
    sec_per_grad = sum(c[2] for c in steady) / max(sum(c[3] for c in steady), 1)
    firsts = [next(c for c in chunks if c[0] == p) for p in ("warmup", "sampling")]
    compile_s = sum(max(0.0, c[2] - sec_per_grad * c[3]) for c in firsts)
    return {
        "kind": kind,
        "chains": settings.num_chains,
        "warmup": settings.num_warmup,
        "samples": settings.num_samples,
        "wall_s": wall,
        "compile_s_approx": compile_s,
        "steps_per_it_warmup": grads["warmup"] / max(iters["warmup"] * settings.num_chains, 1),
        "steps_per_it_sampling": grads["sampling"] / (iters["sampling"] * settings.num_chains),
        "divergences": int(np.sum(st["diverging"])),
        "step_size": float(np.mean(st["step_size"][:, -1])),
        "min_ess_bulk": ess_bulk,
        "min_ess_tail": ess_tail,
        "max_rhat": rhat,
        "ess_per_1000_grads": 1000 * ess_bulk / grads["sampling"],
        "seconds_per_it": sec_per_it / settings.num_chains,
        "ess_per_s": ess_bulk / sampling_s,
        "gradients_total": grads["warmup"] + grads["sampling"],
    }


def report(name: str, res, rows: list[dict]) -> str:
    lines = [
        f"### NUTS preconditioners on `{name}`",
        "",
        f"MAP: -log posterior {res.potential:.4f}, Hessian condition number "
        f"{res.condition_number:.3g} ({res.n_floored} eigenvalues floored), {res.seconds:.0f} s.",
        "",
    ]
    header = [
        "mass matrix",
        "chains x (warmup + draws)",
        "steps/it warmup",
        "steps/it sampling",
        "divergences",
        "min ESS bulk / tail",
        "max R-hat",
        "ESS per 1000 gradients",
        "s per iteration",
        "ESS/s",
        "wall (s)",
    ]
    body = [
        [
            r["kind"],
            f"{r['chains']} x ({r['warmup']} + {r['samples']})",
            f"{r['steps_per_it_warmup']:.1f}",
            f"{r['steps_per_it_sampling']:.1f}",
            r["divergences"],
            f"{r['min_ess_bulk']:.0f} / {r['min_ess_tail']:.0f}",
            f"{r['max_rhat']:.3f}",
            f"{r['ess_per_1000_grads']:.1f}",
            f"{r['seconds_per_it']:.2f}",
            f"{r['ess_per_s']:.2f}",
            f"{r['wall_s']:.0f}",
        ]
        for r in rows
    ]
    return "\n".join(lines) + C.markdown_table(header, body) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problem", choices=sorted(PROBLEMS), default="boehm")
    ap.add_argument("--kinds", default="laplace,laplace_adapt,dense,diag")
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--max-tree-depth", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chunk", type=int, default=25, help="iterations per progress line")
    ap.add_argument("--map-cache", help="npz file: reuse the MAP of an earlier run")
    args = ap.parse_args(argv)

    posterior, n_starts = PROBLEMS[args.problem]()
    data = jax.tree.map(jnp.asarray, posterior.data)
    key_map, key_init, key_run = jax.random.split(jax.random.PRNGKey(args.seed), 3)
    cache = Path(args.map_cache) if args.map_cache else None
    if cache is not None and cache.is_file():
        with np.load(cache) as f:
            res = SimpleNamespace(**{k: f[k].item() if f[k].ndim == 0 else f[k] for k in f.files})
    else:
        t0 = time.perf_counter()
        found = map_multistart(
            posterior, key_map, MapSettings(n_starts=n_starts, max_steps=300), data, progress=print
        )
        lap = laplace_approximation(posterior, found.x, data)
        res = SimpleNamespace(
            x=found.x,
            inverse_mass_matrix=lap.covariance,
            potential=found.value,
            condition_number=lap.condition_number,
            n_floored=lap.n_floored,
            seconds=time.perf_counter() - t0,
        )
        if cache is not None:
            np.savez(cache, **{k: getattr(res, k) for k in CACHED})
    print(f"MAP {res.potential:.4f}, condition {res.condition_number:.3g}, {res.seconds:.0f} s")
    inits = chain_starts(
        posterior, data, key_init, res.x, res.inverse_mass_matrix, args.chains, stride=100
    )
    rows = []
    for kind in args.kinds.split(","):
        settings = NutsSettings(
            num_warmup=args.warmup,
            num_samples=args.samples,
            num_chains=args.chains,
            mass_matrix=kind,
            max_tree_depth=args.max_tree_depth,
        )
        print(f"--- {kind}")
        rows.append(run_kind(kind, posterior, data, res, settings, inits, key_run, args.chunk))
        print(rows[-1])
    text = report(args.problem, res, rows)
    print(text)
    payload = {"environment": C.environment(), "problem": args.problem, "results": rows}
    payload["map"] = {"potential": res.potential, "condition_number": res.condition_number}
    C.write_json(f"mass_matrix_{args.problem}", payload)
    (C.RESULTS_DIR / f"mass_matrix_{args.problem}.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
