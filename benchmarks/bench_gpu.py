"""Batched log-density and gradient throughput (parameter sets per second) on whatever
device JAX runs on, against AMICI's single-core throughput in the same run (issue 16
item 6). ``gpu_check.sh`` runs it on a GPU; the tests run it on the CPU at tiny sizes.

Problems, each against AMICI on the same computation:

* ``circuit``: the circuit benchmark of bench_circuit.py (24 conditions to 72 h, sum of
  log observables) as a function of the log parameters of both cell lines; AMICI:
  forward simulation and forward sensitivities of all parameters, one thread;
* a PEtab problem (``Bachmann_MSB2011`` by default): ``make_llh``; AMICI: the bare
  ``run_simulations`` of bench_petab.py, llh alone and with its gradient by forward and
  by adjoint sensitivities (the faster), one thread.

For each batch size N, N parameter vectors (the reference point plus Gaussian noise of
scale ``--spread`` on the log / PEtab scale, fixed seed) are evaluated in one
``vmap``-ed call, the value alone and with its gradient; compile time is timed apart.
Failed solves (non-finite values) are counted, not hidden. AMICI's throughput is one
parameter set after another on one core; the ratio is il6rcc's batched throughput over
it.

Run: ``python benchmarks/bench_gpu.py --sizes 100 1000 10000`` (``gpu_check.sh``).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import _common as C

C.setup()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

SEED = 20261130


def circuit_density(solver: str):
    """(loss(log_params), x0, description, problem) of the circuit benchmark of
    bench_circuit.py: sum of log observables of 24 conditions at 11 times up to 72 h
    (rtol 1e-6), as a function of the log parameters of both cell lines."""
    import bench_circuit as BC

    from il6rcc.models import RCCCircuit, SolverSettings, simulate_arrays

    prob = BC.Problem(RCCCircuit.variant("main"), BC.default_conditions(), BC.TIMES)
    settings = SolverSettings(solver=solver, rtol=BC.RTOL, atol=BC.ATOL)
    shape = prob.params.shape

    def loss(x):
        params = jnp.exp(x.reshape(shape))
        obs = simulate_arrays(prob.model, settings, params, *prob.arrays, prob.times)[0]
        return jnp.sum(jnp.log(obs))

    x0 = jnp.log(prob.params).ravel()
    return loss, x0, f"24 conditions, {x0.shape[0]} log parameters, {solver}", prob


def petab_density(name: str, solver: str):
    """(llh(theta), theta0, description) of a shipped PEtab problem (its default
    solver settings with ``solver``); theta on the PEtab scales."""
    from il6rcc.petab_io import DEFAULT_SOLVER, load_problem, make_llh, problem_path

    problem = load_problem(problem_path(name))
    llh, table = make_llh(problem, dataclasses.replace(DEFAULT_SOLVER, solver=solver))
    theta0 = jnp.asarray(table.nominal_theta)
    return llh, theta0, f"{theta0.shape[0]} estimated parameters, {solver}"


def batched_throughput(fn, x0, sizes, spread: float, repeats: int, budget_s: float) -> list:
    """Evaluations per second of ``vmap(fn)`` and ``vmap(value_and_grad(fn))`` at each
    batch size (stops before a size when the time budget is spent)."""
    value = jax.jit(jax.vmap(fn))
    both = jax.jit(jax.vmap(jax.value_and_grad(fn)))
    key = jax.random.key(SEED)
    start = time.perf_counter()
    out = []
    for n in sizes:
        if time.perf_counter() - start > budget_s:
            out.append({"n": n, "skipped": f"time budget of {budget_s:.0f} s spent"})
            continue
        x = x0[None, :] + spread * jax.random.normal(key, (n, x0.shape[0]), x0.dtype)
        row = {"n": n}
        for label, f in (("value", value), ("value_and_grad", both)):
            t0 = time.perf_counter()
            compiled = f.lower(x).compile()
            row[f"{label}_compile_s"] = time.perf_counter() - t0
            result = jax.block_until_ready(compiled(x))
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                jax.block_until_ready(compiled(x))
                times.append(time.perf_counter() - t0)
            seconds = statistics.median(times)
            values = result[0] if label == "value_and_grad" else result
            row[f"{label}_s"] = seconds
            row[f"{label}_per_s"] = n / seconds
            row[f"{label}_failed"] = int(np.sum(~np.isfinite(np.asarray(values))))
        out.append(row)
    return out


def amici_petab_throughput(name: str, repeats: int) -> dict:
    """AMICI's evaluations per second on one core for a PEtab problem: the bare
    ``run_simulations`` of bench_petab.py (model build reused from benchmarks/_build)."""
    import bench_petab as B

    from il6rcc.petab_io import DEFAULT_SOLVER

    am = B.prepare_amici(name, DEFAULT_SOLVER.rtol, DEFAULT_SOLVER.atol, fresh=False)
    if "skipped" in am:
        return am
    calls = {k: v for k, v in am.pop("calls").items() if "run_simulations" in k}
    timings = B.interleaved(calls, repeats)
    llh = timings["AMICI run_simulations llh"]["median"]
    grad_key, grad = min(
        ((k, v["median"]) for k, v in timings.items() if "gradient" in k), key=lambda kv: kv[1]
    )
    return {
        "value_per_s": 1.0 / llh,
        "value_and_grad_per_s": 1.0 / grad,
        "gradient_call": grad_key,
        "import_compile_s": am["import_compile_s"],
    }


def amici_circuit_throughput(prob, repeats: int) -> dict:
    """AMICI's evaluations per second on one core for the circuit benchmark: forward,
    and forward sensitivities of all 92 parameters (bench_circuit.py)."""
    import tempfile

    import bench_circuit as BC

    from il6rcc.models import SolverSettings

    obs = np.asarray(prob.forward_fn(SolverSettings(rtol=BC.RTOL, atol=BC.ATOL))(prob.params)[0])
    rounds = BC.Rounds()
    with tempfile.TemporaryDirectory(prefix="il6rcc_gpu_") as tmp:
        am = BC.prepare_amici(prob, obs, rounds, Path(tmp))
        if "skipped" in am:
            return am
        rounds.run(repeats)
        fwd = rounds.stats("amici.fwd.threads1")["median"]
        grad = rounds.stats("amici.grad.threads1")["median"]
    return {
        "value_per_s": 1.0 / fwd,
        "value_and_grad_per_s": 1.0 / grad,
        "gradient_call": "forward sensitivities (92 parameters x 2 cell lines), 1 thread",
        "import_compile_s": am["import_compile_s"],
    }


def report(res: dict) -> str:
    lines = [f"- device: {res['device']}", ""]
    for name, r in res["problems"].items():
        lines.append(f"### {name} ({r['description']})\n")
        am = r.get("amici", {})
        rows = []
        for row in r["batches"]:
            if "skipped" in row:
                rows.append([row["n"], row["skipped"], "", "", "", ""])
                continue
            ratio = ""
            if "value_and_grad_per_s" in am:
                ratio = f"{row['value_and_grad_per_s'] / am['value_and_grad_per_s']:.1f}"
            rows.append(
                [
                    row["n"],
                    f"{row['value_per_s']:.3g}",
                    f"{row['value_and_grad_per_s']:.3g}",
                    ratio,
                    f"{row['value_compile_s']:.0f} / {row['value_and_grad_compile_s']:.0f}",
                    f"{row['value_failed']} / {row['value_and_grad_failed']}",
                ]
            )
        header = ["N", "llh / s", "llh+grad / s", "x AMICI 1 core", "compile s", "failed"]
        lines.append(C.markdown_table(header, rows))
        if "value_per_s" in am:
            lines.append(
                f"\nAMICI, one core: {am['value_per_s']:.3g} llh / s, "
                f"{am['value_and_grad_per_s']:.3g} llh+grad / s ({am['gradient_call']})"
            )
        lines.append("")
    return "\n".join(lines) + "\n"


def combine(out: Path) -> Path:
    """Put AMICI's throughput, measured by a separate ``--amici-only`` run into
    ``out/amici``, beside il6rcc's in ``out/gpu.json`` and rewrite ``out/gpu.md``."""
    import json

    res = json.loads((out / "gpu.json").read_text(encoding="utf-8"))
    amici_path = out / "amici" / "gpu.json"
    if amici_path.exists():
        amici = json.loads(amici_path.read_text(encoding="utf-8"))
        for name, r in res["problems"].items():
            if "amici" in amici["problems"].get(name, {}):
                r["amici"] = amici["problems"][name]["amici"]
        C.write_json("gpu", res, out)
    path = out / "gpu.md"
    path.write_text(report(res), encoding="utf-8")
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    ap.add_argument("--problems", nargs="+", default=["circuit", "Bachmann_MSB2011"])
    ap.add_argument("--spread", type=float, default=0.05)
    ap.add_argument("--solver", default="bdf", help="il6rcc solver (SolverSettings.solver)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--budget-s", type=float, default=300.0, help="per problem")
    ap.add_argument("--no-amici", action="store_true")
    ap.add_argument("--amici-only", action="store_true", help="AMICI's throughput alone")
    ap.add_argument("--out", type=Path, default=C.RESULTS_DIR)
    ap.add_argument("--combine", action="store_true", help="merge out/amici into out/gpu.*")
    args = ap.parse_args(argv)
    if args.combine:
        print(combine(args.out).read_text(encoding="utf-8"))
        return 0
    res = {
        "environment": C.environment(),
        "device": ", ".join(f"{d.platform}:{d.device_kind}" for d in jax.devices()),
        "problems": {},
    }
    for name in args.problems:
        print(f"{name} ...", flush=True)
        if name == "circuit":
            fn, x0, description, prob = circuit_density(args.solver)
        else:
            fn, x0, description = petab_density(name, args.solver)
        r = res["problems"][name] = {"description": description}
        r["batches"] = (
            []
            if args.amici_only
            else batched_throughput(fn, x0, args.sizes, args.spread, args.repeats, args.budget_s)
        )
        if not args.no_amici:
            repeats = max(args.repeats, 3)
            if name == "circuit":
                r["amici"] = amici_circuit_throughput(prob, repeats)
            else:
                r["amici"] = amici_petab_throughput(name, repeats)
        print(report({"device": res["device"], "problems": {name: r}}), flush=True)
    C.write_json("gpu", res, args.out)
    (Path(args.out) / "gpu.md").write_text(report(res), encoding="utf-8")
    print(f"results in {Path(args.out).name}/gpu.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
