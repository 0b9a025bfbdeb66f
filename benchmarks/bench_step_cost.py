"""Where a PEtab llh's time goes: fixed cost per call against cost per step, for
il6rcc and AMICI, by solving one problem at several tolerances (issue 16.5, Boehm).

For each tolerance (rtol = atol), il6rcc's llh with the given solver settings and
AMICI's bare ``run_simulations`` llh (CVODES, one thread) are compiled / built once,
their steps counted, and all calls timed interleaved in one process (minimum over the
rounds, see ``bench_petab.interleaved``). A least-squares line through (steps, ms) for
each side gives its time per step (slope) and its fixed cost per call (intercept: the
call's own overhead, observables and the likelihood, set-up). Nothing here is timed in
a test. Run: ``python benchmarks/bench_step_cost.py --problem Boehm_JProteomeRes2014``.
"""

from __future__ import annotations

import argparse
import os
import sys

# one BLAS thread, as AMICI's one thread; before numpy loads OpenBLAS (bench_petab.py)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import _common as C
import bench_petab as B
import numpy as np

TOLERANCES = (1e-6, 1e-7, 1e-8, 1e-9, 1e-10)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problem", default="Boehm_JProteomeRes2014")
    ap.add_argument("--solvers", nargs="+", default=["bdf", "kvaerno5"])
    ap.add_argument("--tolerances", nargs="+", type=float, default=list(TOLERANCES))
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--min-seconds", type=float, default=30.0)
    ap.add_argument("--name", default="step_cost")
    args = ap.parse_args(argv)
    calls, steps = {}, {}
    for tol in args.tolerances:
        for solver in args.solvers:
            changes = {"rtol": tol, "atol": tol} | ({"solver": "bdf"} if solver == "bdf" else {})
            il = B.prepare_il6rcc(args.problem, solver, changes, gradient=False, warm=False)
            key = f"il6rcc {solver} {tol:g}"
            calls[key] = next(iter(il["calls"].values()))
            steps[key] = il["steps"]
        am = B.prepare_amici(args.problem, tol, tol, fresh=False, gradients=())
        key = f"AMICI run_simulations {tol:g}"
        calls[key] = am["calls"]["AMICI run_simulations llh"]
        steps[key] = am["steps"] + am.get("preequilibration_steps", 0)
        print(f"{tol:g}: prepared", flush=True)
    timings = B.interleaved(calls, args.repeats, min_seconds=args.min_seconds)
    rows, fits = [], {}
    for key, t in timings.items():
        rows.append([key, steps[key], C.ms(t["min"]), C.ms(t["median"]), C.ms(t["cpu_median"])])
    for side in [f"il6rcc {s}" for s in args.solvers] + ["AMICI run_simulations"]:
        keys = [k for k in timings if k.rsplit(" ", 1)[0] == side]
        x = np.array([steps[k] for k in keys], float)
        y = np.array([1e3 * timings[k]["min"] for k in keys])
        slope, intercept = np.polyfit(x, y, 1)
        fits[side] = {"us_per_step": 1e3 * slope, "fixed_ms": intercept}
    text = [
        f"### {args.problem}: time per step and fixed cost per call\n",
        C.markdown_table(
            ["call (tolerance)", "steps", "min ms", "median ms", "CPU ms (median)"], rows
        ),
        "",
        C.markdown_table(
            ["side", "us per step (slope of min ms)", "fixed ms per call (intercept)"],
            [[k, f"{v['us_per_step']:.1f}", f"{v['fixed_ms']:.2f}"] for k, v in fits.items()],
        ),
        "",
    ]
    env = C.environment()
    C.write_json(args.name, {"environment": env, "steps": steps, "timings": timings, "fits": fits})
    (C.RESULTS_DIR / f"{args.name}.md").write_text("\n".join(text) + "\n", encoding="utf-8")
    print("\n".join(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
