"""Log-likelihood and gradient time of published PEtab problems: il6rcc vs AMICI
(issue 7, "Speed").

For Boehm_JProteomeRes2014 and Bachmann_MSB2011 (shipped with il6rcc), in one run:

* il6rcc: ``il6rcc.petab_io.make_llh`` at the nominal parameters (its default solver:
  Kvaerno5, rtol = atol = 1e-8, conditions one after another), the llh and its
  gradient (``jax.grad``) w.r.t. the estimated parameters on their PEtab scales;
  loading the problem, tracing and compiling timed apart;
* AMICI: its PEtab import (compile timed apart), CVODES with the same tolerances, the
  llh and its gradient from forward sensitivities (``simulate_petab`` with the
  parameter mapping and ExpData prepared once; and ``run_simulations`` alone).

Both must give the same llh (rtol 1e-3); the gradients are compared too. Run:
``python benchmarks/bench_petab.py`` (``make bench`` runs everything).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import _common as C

C.setup()  # float64 and EQX_ON_ERROR=nan before JAX/equinox are imported

import jax  # noqa: E402
import numpy as np  # noqa: E402

from il6rcc.petab_io import DEFAULT_SOLVER, load_problem, make_llh, problem_path  # noqa: E402

PROBLEMS = ("Boehm_JProteomeRes2014", "Bachmann_MSB2011")
#: Published reference llh at the nominal parameters (AMICI benchmark collection).
REFERENCE_LLH = {
    "Boehm_JProteomeRes2014": -138.22199693517703,
    "Bachmann_MSB2011": 418.40573341425295,
}
LLH_RTOL = 1e-3


def run_il6rcc(name: str, repeats: int, solver=None) -> dict:
    solver = solver or DEFAULT_SOLVER
    t0 = time.perf_counter()
    problem = load_problem(problem_path(name))
    out: dict = {"load_s": time.perf_counter() - t0}
    llh, table = make_llh(problem, solver)
    theta = jax.numpy.asarray(table.nominal_theta)
    value, out["llh_timing"] = C.time_jitted(llh, theta, repeats=repeats)
    grad, out["grad_timing"] = C.time_jitted(jax.jit(jax.grad(llh)), theta, repeats=repeats)
    out["llh"] = float(value)
    out["gradient"] = dict(zip(table.estimated_ids, np.asarray(grad).tolist(), strict=True))
    out["n_estimated"] = len(table.estimated_ids)
    out["solver"] = {k: v for k, v in dataclasses.asdict(solver).items()}
    if type(solver).__name__ != "SolverSettings":
        out["solver"]["prototype"] = type(solver).__name__
    return out


def run_amici(name: str, repeats: int, rtol: float, atol: float, workdir: Path) -> dict:
    import _amici_tools as A

    ok, why = A.available()
    if not ok:
        return {"skipped": why}
    import petab.v1 as petab
    from amici.sim.sundials.petab.v1 import (
        LLH,
        SLLH,
        create_edatas,
        fill_in_parameters,
        simulate_petab,
    )
    from amici.sim.sundials.petab.v1._parameter_mapping import create_parameter_mapping

    A.quiet()

    out: dict = {}
    problem = petab.Problem.from_yaml(problem_path(name))
    if petab.measurement_table_has_timepoint_specific_mappings(problem.measurement_df):
        # AMICI refuses timepoint-specific overrides; flattening keeps the llh
        petab.flatten_timepoint_specific_output_overrides(problem)
        out["flattened"] = True
    model, out["import_compile_s"] = A.import_problem(problem, workdir / name, f"{name}_bench")
    A.quiet()
    solver = A.make_solver(model, rtol, atol)
    out["solver"] = A.solver_description(solver)
    t0 = time.perf_counter()
    conditions = problem.get_simulation_conditions_from_measurement_df()
    mapping = create_parameter_mapping(
        petab_problem=problem,
        simulation_conditions=conditions,
        scaled_parameters=True,
        amici_model=model,
    )
    edatas = create_edatas(
        amici_model=model, petab_problem=problem, simulation_conditions=conditions
    )
    x_scaled = dict(zip(problem.x_ids, problem.get_x_nominal(scaled=True), strict=True))
    free = set(mapping.free_symbols)
    x_scaled = {k: v for k, v in x_scaled.items() if k in free}
    out["setup_s"] = time.perf_counter() - t0
    out["n_simulations"] = len(edatas)

    def petab_call(order: str):
        import amici.sim.sundials as asd

        solver.set_sensitivity_method(asd.SensitivityMethod.forward)
        solver.set_sensitivity_order(
            asd.SensitivityOrder.first if order == "first" else asd.SensitivityOrder.none
        )
        return simulate_petab(
            problem,
            amici_model=model,
            solver=solver,
            problem_parameters=x_scaled,
            edatas=edatas,
            parameter_mapping=mapping,
            scaled_parameters=True,
            scaled_gradients=True,
        )

    result = petab_call("first")
    out["llh"] = float(result[LLH])
    out["gradient"] = {k: float(v) for k, v in (result[SLLH] or {}).items()}
    out["status"] = sorted({int(r.status) for r in result["rdatas"]})
    out["llh_timing"] = C.repeat(lambda: petab_call("none"), repeats)
    out["grad_timing"] = C.repeat(lambda: petab_call("first"), repeats)
    # the simulations alone (parameters filled in once)
    fill_in_parameters(
        edatas=edatas,
        problem_parameters=x_scaled,
        scaled_parameters=True,
        parameter_mapping=mapping,
        amici_model=model,
    )
    out["sim_llh_timing"] = C.repeat(lambda: A.run(model, solver, edatas, "none"), repeats)
    out["sim_grad_timing"] = C.repeat(lambda: A.run(model, solver, edatas, "first"), repeats)
    rd = A.run(model, solver, edatas, "first")
    out["steps"] = [int(np.asarray(r.numsteps)[-1]) for r in rd]
    return out


def compare(il: dict, am: dict) -> dict:
    common = sorted(set(il["gradient"]) & set(am.get("gradient", {})))
    if not common:
        return {"llh_rel_diff": abs(il["llh"] - am["llh"]) / abs(am["llh"])}
    a = np.array([il["gradient"][k] for k in common])
    b = np.array([am["gradient"][k] for k in common])
    return {
        "llh_rel_diff": abs(il["llh"] - am["llh"]) / abs(am["llh"]),
        "grad_rel_diff": float(np.max(np.abs(a - b)) / np.max(np.abs(b))),
        "n_gradient_entries_compared": len(common),
    }


def report(res: dict) -> str:
    rows = []
    for name, r in res["problems"].items():
        il, am = r["il6rcc"], r.get("amici", {})
        ilc = il["llh_timing"]["trace_s"] + il["llh_timing"]["compile_s"]
        igc = il["grad_timing"]["trace_s"] + il["grad_timing"]["compile_s"]
        rows.append(
            [f"{name} il6rcc", f"{il['llh']:.6f}", C.ms(il["llh_timing"]["median"]),
             C.ms(il["grad_timing"]["median"]),
             C.ratio(il["llh_timing"]["median"], am.get("llh_timing", {}).get("median")),
             C.ratio(il["grad_timing"]["median"], am.get("grad_timing", {}).get("median")),
             f"load {il['load_s']:.1f} + compile {ilc:.1f} (llh) / {igc:.1f} (grad)"]
        )  # fmt: skip
        if "proto" in r:
            p = r["proto"]
            rows.append(
                [f"{name} il6rcc PROTOTYPE InverseChord", f"{p['llh']:.6f}",
                 C.ms(p["llh_timing"]["median"]), C.ms(p["grad_timing"]["median"]),
                 C.ratio(p["llh_timing"]["median"], am.get("llh_timing", {}).get("median")),
                 C.ratio(p["grad_timing"]["median"], am.get("grad_timing", {}).get("median")),
                 ""]
            )  # fmt: skip
        if "llh_timing" in am:
            rows.append(
                [f"{name} AMICI simulate_petab", f"{am['llh']:.6f}",
                 C.ms(am["llh_timing"]["median"]),
                 C.ms(am["grad_timing"]["median"]), "1", "1",
                 f"import+compile {am['import_compile_s']:.1f}, setup {am['setup_s']:.1f}"]
            )  # fmt: skip
            rows.append(
                [f"{name} AMICI run_simulations only", "", C.ms(am["sim_llh_timing"]["median"]),
                 C.ms(am["sim_grad_timing"]["median"]), "", "", ""]
            )  # fmt: skip
        elif "skipped" in am:
            rows.append([f"{name} AMICI", "skipped", "", "", "", "", am["skipped"]])
    header = ["", "llh", "llh ms", "llh+grad ms", "llh / AMICI", "grad / AMICI", "s apart"]
    text = [C.markdown_table(header, rows), ""]
    for name, r in res["problems"].items():
        c = r.get("check", {})
        ref = REFERENCE_LLH[name]
        il_ok = abs(r["il6rcc"]["llh"] - ref) <= LLH_RTOL * abs(ref)
        text.append(
            f"- {name}: il6rcc llh {r['il6rcc']['llh']:.6f} (reference {ref}, "
            f"{'within' if il_ok else 'OUTSIDE'} rtol {LLH_RTOL}); "
            + (
                f"il6rcc vs AMICI llh rel diff {c['llh_rel_diff']:.1e}"
                + (
                    f", gradient {c['grad_rel_diff']:.1e} (max |diff| / max |grad|, "
                    f"{c['n_gradient_entries_compared']} entries)"
                    if "grad_rel_diff" in c
                    else ""
                )
                if c
                else "AMICI not run"
            )  # fmt: skip
        )
    return "\n".join(text) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=PROBLEMS)
    ap.add_argument("--no-amici", action="store_true")
    ap.add_argument("--no-prototype", action="store_true", help="skip the InverseChord prototype")
    ap.add_argument("--out", type=Path, default=C.RESULTS_DIR)
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    res: dict = {"environment": C.environment(), "problems": {}}
    for name in args.problems:
        r = res["problems"][name] = {}
        print(f"{name}: il6rcc ...", flush=True)
        r["il6rcc"] = run_il6rcc(name, args.repeats)
        il = r["il6rcc"]
        print(
            f"  llh {il['llh']:.6f}; llh {C.ms(il['llh_timing']['median'])} ms, gradient "
            f"{C.ms(il['grad_timing']['median'])} ms",
            flush=True,
        )
        if not args.no_prototype:
            from _prototypes import InverseChordSettings

            proto = InverseChordSettings(**dataclasses.asdict(DEFAULT_SOLVER))
            print(f"{name}: il6rcc with the InverseChord prototype ...", flush=True)
            r["proto"] = run_il6rcc(name, args.repeats, proto)
            p = r["proto"]
            print(
                f"  llh {C.ms(p['llh_timing']['median'])} ms, gradient "
                f"{C.ms(p['grad_timing']['median'])} ms",
                flush=True,
            )
        if not args.no_amici:
            print(f"{name}: AMICI ...", flush=True)
            with tempfile.TemporaryDirectory(prefix="il6rcc_bench_") as tmp:
                am = r["amici"] = run_amici(
                    name, args.repeats, DEFAULT_SOLVER.rtol, DEFAULT_SOLVER.atol, Path(tmp)
                )
            if "skipped" not in am:
                r["check"] = compare(il, am)
                print(
                    f"  llh {am['llh']:.6f}; llh {C.ms(am['llh_timing']['median'])} ms, "
                    f"gradient {C.ms(am['grad_timing']['median'])} ms",
                    flush=True,
                )
    res["environment"]["load_average_at_end"] = C.load_average()
    res["wall_s"] = time.perf_counter() - t_start
    text = report(res)
    print("\n" + text)
    print(f"total wall time {res['wall_s']:.0f} s")
    C.write_json("petab", res, args.out)
    (Path(args.out) / "petab.md").write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
