"""Log-likelihood and gradient of published PEtab problems: il6rcc against AMICI at
its best (issues 7 and 16).

For each problem (every Benchmark-Models problem il6rcc ships, :data:`PROBLEMS`, with
SBML events in Smith_BMCSystBiol2013, steady-state measurements in
Blasi_CellSystems2016; the large Chen_MSB2009 apart, see below), in one process:

* il6rcc: ``il6rcc.petab_io.make_llh`` at the nominal parameters with the solver
  settings given (default: the PEtab default, and the BDF solver), the llh and its
  gradient (``jax.grad``; by forward sensitivities or reverse mode through diffrax's
  checkpointed adjoint, as the setting's ``adjoint`` chooses, see
  ``il6rcc.petab_io.gradient_solver``) w.r.t. the estimated parameters on their PEtab
  scales. Compile time (tracing + XLA) is
  taken apart, cold (empty persistent cache) and warm (in-memory caches cleared, the
  persistent cache kept: what a second run of a job pays).
* AMICI: its PEtab import (compile time recorded when the model is built; built
  models are reused between runs from ``benchmarks/_build``), CVODES with the same
  tolerances and AMICI's default ``max_steps`` (which also sets the spacing of the
  adjoint's checkpoints), one thread. The llh alone, and its gradient by forward and
  by adjoint sensitivities, each through the bare ``run_simulations`` (parameters
  filled in once) and through ``simulate_petab`` (parameter mapping and ExpData
  prepared once).

All timed calls run interleaved, one call of each per round, so that load from other
processes falls on all alike; the tables give the median and the minimum over the
rounds of wall time, and the process CPU time (which load inflates less). Ratios are
il6rcc over the peer's **best** call for that quantity (the fastest of the bare and the
``simulate_petab`` calls; for the gradient also of forward and adjoint). Both must give
the published llh (rtol 1e-3) before anything is timed: a side that does not is not
timed, and an AMICI call that fails (status != 0) is not timed either; gradients are
compared too. The summary records (:func:`records`) take il6rcc's faster setting for
each quantity, as they take the peer's faster call.

Run: ``python benchmarks/bench_petab.py`` (``make bench`` runs everything). The large
Chen_MSB2009 (500 states) is measured apart, into ``results/petab_chen.*``:
``OPENBLAS_NUM_THREADS=1 python benchmarks/bench_petab.py --problems Chen_MSB2009
--settings bdf --repeats 3 --no-warmup --no-il6rcc-gradient --amici-gradients
bare-adjoint --name petab_chen`` (one il6rcc llh takes 10-30 s on loaded cores); its
gradient apart (``--repeats 1 --no-warm-compile --name petab_chen_gradient``, without
``--no-il6rcc-gradient``: compiling it took 5 min and one call 13 min on loaded
cores, and it disagrees with AMICI's; see RESULTS.md). Models
evaluated by a tape also get their solver kernels timed (dense, and the sparse ones the
BDF uses) and their Jacobian's sparsity reported (:func:`kernel_costs`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _common as C

#: Run as a script: an empty persistent compilation cache of this run's own, for cold
#: compile times. It is named before ``runtime.setup()``: JAX keeps the folder it had
#: at its first compilation, so switching folders later in ``main()`` left the user's
#: cache in use (and "cold" compile times were warm ones when it held the programs).
OWN_CACHE = tempfile.mkdtemp(prefix="il6rcc_bench_cache_") if __name__ == "__main__" else None
if OWN_CACHE is not None:
    os.environ["IL6RCC_JAX_CACHE"] = OWN_CACHE
    # One BLAS thread, as AMICI's one thread (a 500 x 500 LU took 170 ms with
    # OpenBLAS's default threads against 10 ms with one, under load: RESULTS.md, Chen).
    # Set before numpy loads OpenBLAS; recorded in the environment.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
C.setup()  # float64 and EQX_ON_ERROR=nan before JAX/equinox are imported

import jax  # noqa: E402
import numpy as np  # noqa: E402

from il6rcc import runtime  # noqa: E402
from il6rcc.petab_io import (  # noqa: E402
    BENCHMARK_PROBLEMS,
    DEFAULT_SOLVER,
    REFERENCE_LLH,
    gradient_solver,
    load_problem,
    make_llh,
    problem_path,
)

#: Measured by ``make bench``; any other shipped problem with ``--problems`` (e.g. the
#: large Chen_MSB2009). Published reference llh at the nominal parameters:
#: ``REFERENCE_LLH`` (Raia has none agreed, see the petab README; its check is against
#: AMICI only).
PROBLEMS = tuple(p for p in BENCHMARK_PROBLEMS if p != "Chen_MSB2009")
LLH_RTOL = 1e-3
#: il6rcc settings measured by default: label -> changes to the PEtab default solver.
#: The PEtab default's gradients are ``adjoint="auto"``: forward sensitivities for
#: problems with few estimated parameters, reverse mode otherwise; the ``-reverse`` and
#: ``-forward`` settings force one, to measure where the crossover lies.
SETTINGS = {
    "bdf": {"solver": "bdf"},
    "kvaerno5": {},
    "bdf-reverse": {"solver": "bdf", "adjoint": "recursive_checkpoint"},
    "kvaerno5-reverse": {"adjoint": "recursive_checkpoint"},
    "kvaerno5-forward": {"adjoint": "forward"},
    # Smith_BMCSystBiol2013 (109 states, 25 parameters): reverse mode through the BDF
    # asked for 29.6 GB (1024 checkpoints of the solver's loop state), see RESULTS.md
    "bdf-forward": {"solver": "bdf", "adjoint": "forward"},
}
DEFAULT_SETTINGS = ("bdf", "kvaerno5")
BUILD_DIR = Path(__file__).resolve().parent / "_build"


# ---------------------------------------------------------------- il6rcc
def compile_timed(fn, *args) -> tuple[object, dict]:
    t0 = time.perf_counter()
    lowered = fn.lower(*args)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    return compiled, {"trace_s": t1 - t0, "xla_s": t2 - t1, "total_s": t2 - t0}


def prepare_il6rcc(
    name: str, label: str, changes: dict, gradient: bool = True, warm: bool = True
) -> dict:
    """Compile (cold, and warm unless ``warm`` is false) and evaluate il6rcc's llh, and
    its gradient unless ``gradient`` is false (for models whose reverse-mode gradient
    takes too long to time); returns the results and the calls to time."""
    solver = dataclasses.replace(DEFAULT_SOLVER, **changes)
    t0 = time.perf_counter()
    problem = load_problem(problem_path(name))
    load_s = time.perf_counter() - t0

    def build():
        llh, table = make_llh(problem, solver)
        return llh, jax.jit(jax.grad(llh)), jax.numpy.asarray(table.nominal_theta), table

    llh, grad, theta, table = build()
    llh_c, llh_compile = compile_timed(llh, theta)
    compile_cold = {"llh": llh_compile}
    if gradient:
        grad_c, compile_cold["grad"] = compile_timed(grad, theta)
    # A second run of a job: nothing in memory, compiled programs in the persistent
    # cache (tracing is paid again).
    compile_warm = {}
    if warm:
        jax.clear_caches()
        llh2, grad2, _, _ = build()
        compile_warm["llh"] = compile_timed(llh2, theta)[1]
        if gradient:
            compile_warm["grad"] = compile_timed(grad2, theta)[1]
    from il6rcc.petab_io._likelihood import _evaluate

    steps = int(np.sum(np.asarray(_evaluate(problem, solver, theta)[3])))
    out = {
        "label": label,
        "solver": dataclasses.asdict(solver),
        "gradient_by": gradient_solver(problem, solver).adjoint,
        "load_s": load_s,
        "compile": compile_cold,
        "compile_warm": compile_warm,
        "llh": float(llh_c(theta)),
        "gradient": {},
        "steps": steps,
        "calls": {f"il6rcc {label} llh": lambda: jax.block_until_ready(llh_c(theta))},
    }
    if gradient:
        values = np.asarray(grad_c(theta)).tolist()
        out["gradient"] = dict(zip(table.estimated_ids, values, strict=True))
        out["calls"][f"il6rcc {label} gradient"] = lambda: jax.block_until_ready(grad_c(theta))
    return out


def count_work(name: str, changes: dict) -> dict:
    """Steps and work of one llh evaluation with a BDF solver, rejected steps included
    (host-side counts, see _counting.py; not timed)."""
    import _counting

    from il6rcc.petab_io._likelihood import _evaluate

    problem = load_problem(problem_path(name))
    settings = _counting.CountingSettings(**{**dataclasses.asdict(DEFAULT_SOLVER), **changes})
    theta = jax.numpy.asarray(problem.parameters.nominal_theta)
    _counting.reset()
    steps = int(np.sum(np.asarray(_evaluate(problem, settings, theta)[3])))
    work = _counting.counts()
    if steps == 0:  # Newton steady states only (Blasi): nothing integrated
        return {"steps": 0, **work}
    return {
        "steps": steps,
        **work,
        "rhs_per_step": work["rhs"] / steps,
        "jacobians_per_step": work["jacobians"] / steps,
        "factorisations_per_step": work["factorisations"] / steps,
    }


def kernel_costs(name: str, repeats: int = 20) -> dict | None:
    """Milliseconds per call of the BDF's kernels on ``name``'s model, for models whose
    vector field is a tape (petab_io/_tape.py): the right-hand side, its Jacobian by
    the tape's coloured sweep and by ``jax.jacfwd`` (what the dense BDF calls), the
    dense LU factorisation of ``I - c J`` and one solve with it, and, where the sparse
    LU is chosen (``sparse_solver_for``), what the BDF then calls: the Jacobian's
    nonzeros off the coloured sweep, the sparse factorisation and solve. At a random
    positive state and parameters (the costs do not depend on the values); the
    Jacobian's sparsity too."""
    problem = load_problem(problem_path(name))
    model = problem.model
    if not hasattr(model, "tape") or model.n_states < 60:
        return None
    tape = model.tape
    f = model._tape_field
    rng = np.random.default_rng(0)
    jnp = jax.numpy
    y = jnp.asarray(rng.uniform(0.1, 1.0, tape.n_states))
    p = jnp.asarray(rng.uniform(0.1, 1.0, tape.n_params))
    jac = tape.jacobian(0.0, y, p)[1][:, : tape.n_states]
    matrix = jnp.eye(tape.n_states) - 0.01 * jac
    lu = jax.scipy.linalg.lu_factor(matrix)
    from il6rcc.models import sparse_solver_for

    sparse = sparse_solver_for(model.jacobian_pattern)
    kernels = {
        "rhs": (lambda y, p: f(0.0, y, p), (y, p)),
        "jacobian_tape": (lambda y, p: tape.jacobian(0.0, y, p)[1], (y, p)),
        "jacobian_jacfwd": (lambda y, p: jax.jacfwd(lambda z: f(0.0, z, p))(y), (y, p)),
        "lu_factor": (jax.scipy.linalg.lu_factor, (matrix,)),
        "lu_solve": (jax.scipy.linalg.lu_solve, (lu, y)),
    }
    if sparse is not None:  # what the BDF calls for this model
        values = jnp.asarray(np.asarray(matrix)[sparse.rows, sparse.cols])
        factors = sparse.factorise(values)
        kernels["jacobian_values"] = (lambda y, p: model.jacobian_values(0.0, y, p), (y, p))
        if getattr(model, "flux_jacobian", None) is not None:
            # what the BDF read before the fluxes: df/dy's own sweep over the states
            rows, cols = sparse.rows, sparse.cols
            kernels["jacobian_values_tape"] = (
                lambda y, p: tape.compressed_jacobian(0.0, y, p, states_only=True)[1][
                    rows, tape.state_colour[cols]
                ],
                (y, p),
            )
        kernels["sparse_factor"] = (sparse.factorise, (values,))
        kernels["sparse_solve"] = (sparse.solve, (factors, y))
    out: dict = {}
    for key, (fn, args) in kernels.items():
        compiled = jax.jit(fn).lower(*args).compile()
        jax.block_until_ready(compiled(*args))
        timing = C.repeat(lambda c=compiled, a=args: jax.block_until_ready(c(*a)), repeats)
        out[f"{key}_ms"] = 1e3 * timing["median"]
    pattern = tape.pattern[:, : tape.n_states]
    if sparse is not None:
        out.update(
            sparse_fill=sparse.fill,
            sparse_levels=sparse.n_levels,
            sparse_tail=sparse.n_tail,
            sparse_colours=sparse.n_colours,
        )
    out.update(
        n_states=tape.n_states,
        jacobian_nonzeros=int(pattern.sum()),
        jacobian_density=float(pattern.mean()),
        max_nonzeros_per_row=int(pattern.sum(axis=1).max()),
        colours=tape.n_colours,
        state_colours=tape.n_state_colours,
        jacobian_columns=int(tape.pattern.shape[1]),
    )
    flux = getattr(model, "flux_jacobian", None)
    if flux is not None:
        out.update(flux_colours=flux.n_colours, flux_terms=int(flux.flux.size))
    return out


# ---------------------------------------------------------------- AMICI
def _amici_model(problem, name: str, fresh: bool):
    """The AMICI model of ``problem``, built once per AMICI version into
    ``_build/``; returns (model, seconds the import and compilation took)."""
    import _amici_tools as A
    import amici

    folder = BUILD_DIR / f"amici-{amici.__version__}" / name
    record = folder / "import.json"
    if fresh or not record.exists():
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        folder.parent.mkdir(parents=True, exist_ok=True)
        model, seconds = A.import_problem(problem, folder, name)
        record.write_text(json.dumps({"import_compile_s": seconds}), encoding="utf-8")
        return model, seconds
    from amici.importers.petab.v1 import import_petab_problem

    A.ensure_swig_path()
    model = import_petab_problem(problem, output_dir=str(folder), model_name=name, compile_=False)
    A.quiet()
    return model, json.loads(record.read_text(encoding="utf-8"))["import_compile_s"]


#: AMICI's gradient calls: (entry point, sensitivity method); all timed by default.
AMICI_GRADIENTS = {
    "bare-forward": ("run_simulations", "forward"),
    "bare-adjoint": ("run_simulations", "adjoint"),
    "petab-forward": ("simulate_petab", "forward"),
    "petab-adjoint": ("simulate_petab", "adjoint"),
}


def prepare_amici(
    name: str, rtol: float, atol: float, fresh: bool, gradients=tuple(AMICI_GRADIENTS)
) -> dict:
    """AMICI's model, values and calls to time; ``gradients``: which of
    :data:`AMICI_GRADIENTS` to time (large models: the fastest only)."""
    import _amici_tools as A

    ok, why = A.available()
    if not ok:
        return {"skipped": why}
    import amici.sim.sundials as asd
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
    model, out["import_compile_s"] = _amici_model(problem, name, fresh)
    A.quiet()
    solver = model.create_solver()
    solver.set_relative_tolerance(rtol)
    solver.set_absolute_tolerance(atol)
    out["solver"] = A.solver_description(solver)
    out["solver"]["max_steps"] = solver.get_max_steps()
    out["solver"]["steady_state"] = {
        "computation_mode": str(model.get_steady_state_computation_mode()),
        "sensitivity_mode": str(model.get_steady_state_sensitivity_mode()),
        "tolerance_factor": solver.get_steady_state_tolerance_factor(),
        "sensitivity_tolerance_factor": solver.get_steady_state_sensi_tolerance_factor(),
        "newton_max_steps": solver.get_newton_max_steps(),
    }
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
    out["n_simulations"] = len(edatas)

    def configure(method: str | None):
        if method is None:
            solver.set_sensitivity_order(asd.SensitivityOrder.none)
        else:
            solver.set_sensitivity_method(getattr(asd.SensitivityMethod, method))
            solver.set_sensitivity_order(asd.SensitivityOrder.first)

    def petab_call(method: str | None):
        configure(method)
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

    for method in sorted({AMICI_GRADIENTS[g][1] for g in gradients}):
        result = petab_call(method)
        out[f"gradient_{method}"] = {k: float(v) for k, v in (result[SLLH] or {}).items()}
        out[f"status_{method}"] = sorted({int(r.status) for r in result["rdatas"]})
    result = petab_call(None)
    out["llh"] = float(result[LLH])
    out["status_none"] = sorted({int(r.status) for r in result["rdatas"]})

    fill_in_parameters(
        edatas=edatas,
        problem_parameters=x_scaled,
        scaled_parameters=True,
        parameter_mapping=mapping,
        amici_model=model,
    )

    def bare(method: str | None):
        configure(method)
        return asd.run_simulations(model, solver, edatas, num_threads=1)

    rdatas = bare(None)
    out["steps"] = int(sum(int(np.asarray(r.numsteps)[-1]) for r in rdatas))
    out["rhs_evaluations"] = int(sum(int(np.asarray(r.num_rhs_evals)[-1]) for r in rdatas))

    def total(field):  # pre-/post-equilibration: [Newton, integration, Newton] steps
        values = [getattr(r, field, None) for r in rdatas]
        return int(sum(np.sum(np.asarray(v)) for v in values if v is not None))

    out["preequilibration_steps"] = total("preeq_numsteps")
    out["postequilibration_steps"] = total("posteq_numsteps")
    # the bare call must compute what simulate_petab does (same llh, status 0)
    out["llh_bare"] = float(sum(r.llh for r in rdatas))
    out["status_bare"] = sorted({int(r.status) for r in rdatas})
    for method in sorted({AMICI_GRADIENTS[g][1] for g in gradients}):
        out[f"status_bare_{method}"] = sorted({int(r.status) for r in bare(method)})
    out["calls"] = {}
    failed = out["not_timed"] = []
    if out["status_bare"] == [0]:
        out["calls"]["AMICI run_simulations llh"] = lambda: bare(None)
    else:
        failed.append(f"run_simulations llh: status {out['status_bare']}")
    if out["status_none"] == [0]:
        out["calls"]["AMICI simulate_petab llh"] = lambda: petab_call(None)
    else:
        failed.append(f"simulate_petab llh: status {out['status_none']}")
    for g in gradients:
        entry, method = AMICI_GRADIENTS[g]
        status = out[f"status_bare_{method}" if entry == "run_simulations" else f"status_{method}"]
        if status != [0]:
            failed.append(f"{entry} gradient {method}: status {status}")
            continue
        call = bare if entry == "run_simulations" else petab_call
        out["calls"][f"AMICI {entry} gradient {method}"] = lambda c=call, m=method: c(m)
    return out


# ---------------------------------------------------------------- timing, checks
#: Suffix of the peer's calls repeated alone in each round (see :func:`interleaved`).
ALONE = " (alone)"


def _usage() -> tuple[int, int, int]:
    """The process's minor and major page faults and involuntary context switches."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_minflt, r.ru_majflt, r.ru_nivcsw


def _thread_cpu() -> dict[str, tuple[str, int]]:
    """CPU clock ticks (user + system) of each of the process's threads, by id: name."""
    out = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            stat = (task / "stat").read_text().rsplit(")", 1)[1].split()
            name = (task / "comm").read_text().strip()
        except OSError:  # the thread ended
            continue
        out[task.name] = (name, int(stat[11]) + int(stat[12]))
    return out


def _thread_cpu_since(before: dict) -> dict[str, float]:
    """Seconds of CPU each thread (by name; threads of one name summed) used since
    ``before`` (:func:`_thread_cpu`), the busiest first."""
    tick = os.sysconf("SC_CLK_TCK")
    used: dict[str, float] = {}
    for tid, (name, ticks) in _thread_cpu().items():
        spent = (ticks - before.get(tid, (name, 0))[1]) / tick
        used[name] = used.get(name, 0.0) + spent
    return dict(sorted(used.items(), key=lambda kv: -kv[1]))


def interleaved(
    calls: dict,
    rounds: int,
    warmup: bool = True,
    min_seconds: float = 0.0,
    max_rounds: int = 50,
    alone: tuple[str, ...] = (),
    pause: float = 0.05,
    threads_used: dict | None = None,
) -> dict:
    """Every call once per round (after one warm-up call each, unless ``warmup`` is
    false: the preparation has called each compiled il6rcc function once already):
    ``rounds`` rounds, and more (up to ``max_rounds``) until ``min_seconds`` have
    passed, so that cheap problems get enough rounds for their minima to settle.

    The calls named in ``alone`` (the peer's) are called again in each round, after a
    ``pause`` (seconds) that follows the last call of the round, each twice back to
    back and the second timed, as ``<key> (alone)``: the same load as the interleaved
    calls, but nothing of ours right before them and the peer's caches warm (as in an
    optimiser's loop), so that whatever our calls leave behind (threads, evicted
    caches) cannot slow the peer unseen (AMICI's bare llh of Blasi: 1.2 ms right after
    its own calls, 1.9 ms after a pause; ``amici_interference.py``). Per call: wall
    and process CPU time, minor and major page faults and involuntary context
    switches (``getrusage``)."""
    if warmup:
        for fn in calls.values():
            fn()
    schedule = [(k, fn) for k, fn in calls.items()]
    extra = [(k + ALONE, calls[k]) for k in calls if k in alone]
    keys = [k for k, _ in schedule + extra]
    times: dict = {
        k: {"wall": [], "cpu": [], "other": [], "minflt": [], "majflt": [], "nivcsw": []}
        for k in keys
    }
    threads = _thread_cpu()
    t0 = time.perf_counter()
    done = 0
    while done < rounds or (time.perf_counter() - t0 < min_seconds and done < max_rounds):
        done += 1
        for part in (schedule, extra):
            if part is extra and extra:
                time.sleep(pause)
            for key, fn in part:
                if part is extra:  # back to back with itself: its caches warm
                    fn()
                u0 = _usage()
                c0, h0, w0 = time.process_time(), time.thread_time(), time.perf_counter()
                fn()
                w1, h1, c1 = time.perf_counter(), time.thread_time(), time.process_time()
                u1 = _usage()
                times[key]["wall"].append(w1 - w0)
                times[key]["cpu"].append(c1 - c0)
                times[key]["other"].append((c1 - c0) - (h1 - h0))
                for i, field in enumerate(("minflt", "majflt", "nivcsw")):
                    times[key][field].append(u1[i] - u0[i])
    if threads_used is not None:  # CPU seconds of each thread over the rounds
        threads_used.update(_thread_cpu_since(threads))
    return {
        k: {
            "median": statistics.median(v["wall"]),
            "min": min(v["wall"]),
            "cpu_median": statistics.median(v["cpu"]),
            "cpu_min": min(v["cpu"]),
            # CPU time of the process's other threads during the call (XLA's workers
            # run il6rcc's programs; during a peer's call it is what they burn idle)
            "other_threads_cpu_median": statistics.median(v["other"]),
            "minor_faults_median": statistics.median(v["minflt"]),
            "major_faults_median": statistics.median(v["majflt"]),
            "involuntary_switches_median": statistics.median(v["nivcsw"]),
            "runs": v["wall"],
            "cpu_runs": v["cpu"],
            "other_threads_cpu_runs": v["other"],
        }
        for k, v in times.items()
    }


def reference_check(name: str, ils: list[dict], am: dict) -> dict:
    """Whether each il6rcc setting and AMICI (both of its calls) give the problem's
    reference llh within :data:`LLH_RTOL` (Raia, which has none agreed: against
    AMICI's). Nothing is timed for a side that fails."""
    ref = REFERENCE_LLH.get(name)
    source = "published reference"
    if ref is None and "llh" in am:
        ref, source = am["llh"], "AMICI's llh (no agreed reference)"
    out: dict = {"reference": ref, "source": source, "rtol": LLH_RTOL}
    if ref is None:
        return out

    def within(value):
        return bool(np.isfinite(value) and abs(value - ref) <= LLH_RTOL * abs(ref))

    for il in ils:
        out[f"il6rcc {il['label']}"] = within(il["llh"])
    if "llh" in am:
        out["AMICI"] = within(am["llh"]) and within(am["llh_bare"])
    return out


def gradient_difference(a: dict, b: dict) -> dict:
    common = sorted(set(a) & set(b))
    if not common:
        return {}
    x = np.array([a[k] for k in common])
    y = np.array([b[k] for k in common])
    return {
        "max_abs_diff_over_max_abs": float(np.max(np.abs(x - y)) / np.max(np.abs(y))),
        "entries": len(common),
    }


def peer_keys(timings: dict) -> dict[str, list[str]]:
    """The peer's calls for each quantity: bare and ``simulate_petab``, interleaved and
    alone (:func:`interleaved`); the best of them is the reference."""
    amici = [k for k in timings if k.startswith("AMICI")]
    return {
        "llh": [k for k in amici if " llh" in k],
        "gradient": [k for k in amici if " gradient " in k],
    }


def best(timings: dict, keys: list[str], stat: str = "min") -> tuple[str, float] | None:
    present = [(timings[k][stat], k) for k in keys if k in timings]
    if not present:
        return None
    value, key = min(present)
    return key, value


#: The measures a ratio is taken in (see :func:`records`): wall time and process CPU
#: time (il6rcc's XLA threads included), the minimum over the rounds of each.
MEASURES = {"wall": "min", "CPU": "cpu_min"}


def records(name: str, r: dict) -> list[dict]:
    """Summary records for one problem (see run_all.py): for each quantity, il6rcc's
    faster setting against the peer's faster call, only where both gave the reference
    llh; compile: the setting's llh + gradient, cold.

    The ratio is the larger (the less favourable to il6rcc) of the ratio of wall-time
    minima and that of CPU-time minima, each side's best taken in each measure. On a
    loaded machine the wall-time minimum favours the shorter call: a call shorter than
    the scheduler's time slice sometimes runs unpreempted, a longer one never does
    (2026-12-01, Zhao: AMICI's 15 ms of CPU never took under 28.8 ms of wall in 8
    rounds, il6rcc's 4 ms took 3.9), so a faster il6rcc looked faster still. CPU time
    is not stretched by preemption; where il6rcc's XLA threads work in parallel it
    exceeds the wall time, and the wall ratio then decides. Results recorded before
    CPU minima were kept: the wall ratio only."""
    t = r["timings"]
    am = r.get("amici", {})
    out = []
    peers = peer_keys(t)
    for quantity in ("llh", "gradient"):
        keys = [f"il6rcc {il['label']} {quantity}" for il in r["il6rcc"]]
        ratios = {}
        for measure, stat in MEASURES.items():
            if not all(stat in t[k] for k in [*keys, *peers[quantity]] if k in t):
                continue
            ours = best(t, keys, stat)
            peer = best(t, peers[quantity], stat)
            if ours is not None and peer is not None:
                ratios[measure] = (ours[1] / peer[1], ours, peer)
        if not ratios:
            continue
        measure = max(ratios, key=lambda m: ratios[m][0])
        ratio, ours, peer = ratios[measure]
        label = ours[0].split()[1]
        il = next(i for i in r["il6rcc"] if i["label"] == label)
        # gradient_by: recorded since the PEtab default's adjoint became "auto"
        by = il.get("gradient_by") or il.get("solver", {}).get("adjoint", "?")
        how = f", {by}" if quantity == "gradient" else ""
        what = "min over rounds" if measure == "wall" else "CPU time, min over rounds"
        out.append(
            {
                "problem": name,
                "quantity": quantity,
                "il6rcc": f"{label}{how} (rtol=atol=1e-8; {what})",
                "il6rcc_ms": 1e3 * ours[1],
                "peer": f"{peer[0]} (CVODES, rtol={am['solver']['rtol']}, "
                f"atol={am['solver']['atol']}, 1 thread; {what})",
                "peer_ms": 1e3 * peer[1],
                "ratio": ratio,
                "measure": measure,
                **{f"ratio_{m.lower()}": v[0] for m, v in ratios.items()},
            }
        )
    if "import_compile_s" in am:
        main = r["il6rcc"][0]
        cold = sum(v["total_s"] for v in main["compile"].values())
        out.append(
            {
                "problem": name,
                "quantity": "compile",
                "il6rcc": f"{main['label']}: llh"
                + (" + gradient" if "grad" in main["compile"] else "")
                + ", trace + XLA, empty persistent cache",
                "il6rcc_ms": 1e3 * cold,
                "peer": "AMICI PEtab import + C++ compilation of the model",
                "peer_ms": 1e3 * am["import_compile_s"],
                "ratio": cold / am["import_compile_s"],
            }
        )
    return out


def report(res: dict) -> str:
    text = []
    for name, r in res["problems"].items():
        t = r["timings"]
        am = r.get("amici", {})
        ref = REFERENCE_LLH.get(name)
        text.append(f"### {name}\n")
        rows = []
        peers = peer_keys(t)
        for key, timing in t.items():
            ratio = cpu_ratio = ""
            if key.startswith("il6rcc"):
                keys = peers["llh" if key.endswith("llh") else "gradient"]
                peer = best(t, keys)
                if peer is not None:
                    ratio = f"{timing['min'] / peer[1]:.2f}"
                    cpu_peer = best(t, keys, "cpu_median")[1]
                    cpu_ratio = f"{timing['cpu_median'] / cpu_peer:.2f}"
            cpu = C.ms(timing["cpu_median"])
            row = [key, C.ms(timing["min"]), C.ms(timing["median"]), cpu, ratio, cpu_ratio]
            if "minor_faults_median" in timing:  # recorded since 2026-12-01
                row += [
                    C.ms(timing["other_threads_cpu_median"]),
                    f"{timing['minor_faults_median']:g} / {timing['major_faults_median']:g}",
                    f"{timing['involuntary_switches_median']:g}",
                ]
            rows.append(row)
        header = [
            "call",
            "min ms",
            "median ms",
            "CPU ms (median)",
            "/ AMICI best",
            "CPU / AMICI best CPU",
        ]
        if any("minor_faults_median" in v for v in t.values()):
            header += [
                "other threads' CPU ms (median)",
                "page faults minor / major (median)",
                "involuntary switches (median)",
            ]
            rows = [r + [""] * (len(header) - len(r)) for r in rows]
        text.append(C.markdown_table(header, rows))
        text.append("")
        if r.get("thread_cpu_s"):
            busy = ", ".join(f"{k} {v:.2f}" for k, v in list(r["thread_cpu_s"].items())[:6])
            text.append(f"CPU seconds per thread over the rounds (busiest first): {busy}\n")
        for il in r["il6rcc"]:
            cold = il["compile"]
            warm = il.get("compile_warm", {})
            ok = "no reference"
            if ref is not None:
                within = abs(il["llh"] - ref) <= LLH_RTOL * abs(ref)
                ok = f"reference {ref}: {'within' if within else 'OUTSIDE'} rtol {LLH_RTOL}"
            peer = "forward" if "gradient_forward" in am else "adjoint"
            diff = gradient_difference(il["gradient"], am.get(f"gradient_{peer}", {}))

            def warm_text(part, warm=warm):
                if part not in warm:
                    return ""
                return f", warm {warm[part]['total_s']:.1f} s"

            compile_text = (
                f"; compile cold llh {cold['llh']['total_s']:.1f} s "
                f"(trace {cold['llh']['trace_s']:.1f}){warm_text('llh')}"
            )
            if "grad" in cold:
                compile_text += (
                    f"; gradient ({il['gradient_by']}) cold {cold['grad']['total_s']:.1f} s "
                    f"(trace {cold['grad']['trace_s']:.1f}){warm_text('grad')}"
                    + (" (warm: a second run, persistent cache)" if warm else "")
                )
            else:
                compile_text += "; gradient not measured (--no-il6rcc-gradient)"
            text.append(
                f"- il6rcc {il['label']}: llh {il['llh']:.6f} ({ok}); "
                f"{il['steps']} steps"
                + (
                    f" ({il['work']['rhs_per_step']:.2f} RHS, "
                    f"{il['work']['jacobians_per_step']:.3f} Jacobians and "
                    f"{il['work']['factorisations_per_step']:.3f} factorisations per step, "
                    f"rejected steps included)"
                    if "rhs_per_step" in il.get("work", {})
                    else ""
                )
                + compile_text
                + (
                    f"; gradient vs AMICI {peer}: max |diff| / max |grad| "
                    f"{diff['max_abs_diff_over_max_abs']:.1e} ({diff['entries']} entries)"
                    if diff
                    else ""
                )
            )
        check = r.get("reference_check", {})
        if check.get("reference") is not None:
            verdicts = ", ".join(
                f"{k} {'within' if v else 'OUTSIDE (not timed)'}"
                for k, v in check.items()
                if isinstance(v, bool)
            )
            text.append(
                f"- llh check against the {check['source']} {check['reference']:.6f} "
                f"(rtol {check['rtol']}): {verdicts}"
            )
        if am.get("not_timed"):
            text.append(f"- AMICI calls not timed (failed): {'; '.join(am['not_timed'])}")
        if "llh" in am:
            adj = gradient_difference(
                am.get("gradient_adjoint", {}), am.get("gradient_forward", {})
            ).get("max_abs_diff_over_max_abs", float("nan"))
            text.append(
                f"- AMICI: llh {am['llh']:.6f}; {am['steps']} steps"
                + (
                    f", {am['rhs_evaluations'] / am['steps']:.2f} RHS per step (llh only)"
                    if am["steps"]
                    else ""
                )
                + (
                    f"; steady states: {am.get('preequilibration_steps', 0)} "
                    f"pre- and {am.get('postequilibration_steps', 0)} post-equilibration "
                    "steps (Newton + integration)"
                    if "postequilibration_steps" in am
                    else ""
                )
                + "; "
                f"import + compile "
                f"{am['import_compile_s']:.0f} s; max_steps {am['solver']['max_steps']}; "
                f"adjoint vs forward gradient {adj:.1e}"
            )
        elif "skipped" in am:
            text.append(f"- AMICI skipped: {am['skipped']}")
        k = r.get("kernels")
        if k:
            text.append(
                f"- Kernels (median ms per call): RHS {k['rhs_ms']:.3f}, Jacobian by the "
                f"tape's coloured sweep {k['jacobian_tape_ms']:.2f} and by jax.jacfwd "
                f"{k['jacobian_jacfwd_ms']:.2f}, LU factorisation {k['lu_factor_ms']:.2f}, "
                f"LU solve {k['lu_solve_ms']:.3f}; df/dy has {k['jacobian_nonzeros']} "
                f"nonzeros of {k['n_states']}^2 (density {k['jacobian_density']:.4f}, at most "
                f"{k['max_nonzeros_per_row']} in a row), {k['colours']} colours for "
                f"{k['jacobian_columns']} columns (states, parameters, time)"
            )
            if "sparse_factor_ms" in k:
                text.append(
                    f"- Sparse kernels (what the BDF calls; median ms per call): Jacobian "
                    f"values {k['jacobian_values_ms']:.2f}, sparse LU factorisation "
                    f"{k['sparse_factor_ms']:.3f} (guards and probe solve included), sparse "
                    f"solve {k['sparse_solve_ms']:.3f}; L + U of the sparse part "
                    f"{k['sparse_fill']} nonzeros in {k['sparse_levels']} levels, dense "
                    f"tail {k['sparse_tail']} x {k['sparse_tail']}"
                )
            if "flux_colours" in k:
                text.append(
                    f"- Jacobian values through the fluxes (df/dy = diag(1/V) N dv/dy): "
                    f"{k['flux_colours']} colours for the rates' state columns against "
                    f"{k['state_colours']} for df/dy's, {k['flux_terms']} terms; median ms "
                    f"{k['jacobian_values_ms']:.3f} against {k['jacobian_values_tape_ms']:.3f} "
                    f"by df/dy's own sweep"
                )
        text.append("")
    return "\n".join(text) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="timed rounds (at least)")
    ap.add_argument(
        "--min-seconds", type=float, default=20.0,
        help="further rounds (at most 50) until the timed rounds took this long",
    )  # fmt: skip
    ap.add_argument(
        "--no-warmup", action="store_true",
        help="no untimed call before the rounds (for large models whose calls take minutes)",
    )  # fmt: skip
    ap.add_argument(
        "--name", default="petab",
        help="results file stem: <out>/<name>.{json,md} (e.g. petab_chen for Chen_MSB2009, "
        "so that the default problems' results are kept)",
    )  # fmt: skip
    ap.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=BENCHMARK_PROBLEMS)
    ap.add_argument(
        "--settings", nargs="+", default=list(DEFAULT_SETTINGS), choices=list(SETTINGS),
        help="il6rcc solver settings to measure (the first is the one in the summary)",
    )  # fmt: skip
    ap.add_argument("--no-amici", action="store_true")
    ap.add_argument(
        "--amici-gradients", nargs="*", default=list(AMICI_GRADIENTS),
        choices=list(AMICI_GRADIENTS),
        help="AMICI gradient calls to time (entry point - sensitivity method)",
    )  # fmt: skip
    ap.add_argument(
        "--no-il6rcc-gradient", action="store_true",
        help="time il6rcc's llh only (for models whose reverse-mode gradient is too slow)",
    )  # fmt: skip
    ap.add_argument("--fresh-amici", action="store_true", help="rebuild the AMICI models")
    ap.add_argument(
        "--no-warm-compile", action="store_true",
        help="skip the second (warm, persistent cache) compilation of each function",
    )  # fmt: skip
    ap.add_argument(
        "--no-peer-alone", action="store_true",
        help="do not repeat AMICI's calls alone (after a pause) in each round",
    )  # fmt: skip
    ap.add_argument("--out", type=Path, default=C.RESULTS_DIR)
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    res: dict = {"environment": C.environment(), "problems": {}}
    res["environment"]["compilation_cache"] = (
        "empty at start (a folder of this run's own)"
        if OWN_CACHE is not None and runtime.compilation_cache_dir() == OWN_CACHE
        else "the caller's persistent cache (compile times are not cold if it holds them)"
    )
    try:
        for name in args.problems:
            print(f"{name}: il6rcc ...", flush=True)
            ils = [
                prepare_il6rcc(
                    name,
                    k,
                    SETTINGS[k],
                    not args.no_il6rcc_gradient,
                    not args.no_warm_compile,
                )
                for k in args.settings
            ]
            am = {}
            if not args.no_amici:
                print(f"{name}: AMICI ...", flush=True)
                am = prepare_amici(
                    name,
                    DEFAULT_SOLVER.rtol,
                    DEFAULT_SOLVER.atol,
                    args.fresh_amici,
                    args.amici_gradients,
                )
            check = reference_check(name, ils, am)
            calls = {}
            for il in ils:
                il_calls = il.pop("calls")
                if check.get(f"il6rcc {il['label']}", True):
                    calls.update(il_calls)
            am_calls = am.pop("calls", {})
            if check.get("AMICI", True):
                calls.update(am_calls)
            print(f"{name}: {args.repeats} interleaved rounds of {len(calls)} calls", flush=True)
            threads_used: dict = {}
            timings = interleaved(
                calls,
                args.repeats,
                warmup=not args.no_warmup,
                min_seconds=args.min_seconds,
                alone=() if args.no_peer_alone else tuple(k for k in calls if k in am_calls),
                threads_used=threads_used,
            )
            res["problems"][name] = {
                "il6rcc": ils,
                "amici": am,
                "reference_check": check,
                "timings": timings,
                "thread_cpu_s": threads_used,
            }
            for il in ils:
                if il["solver"]["solver"] in ("bdf", "ndf"):
                    il["work"] = count_work(name, SETTINGS[il["label"]])
            kernels = kernel_costs(name)
            if kernels is not None:
                res["problems"][name]["kernels"] = kernels
            write_results(res, args.name, args.out)  # each problem as it finishes
            print(report({"problems": {name: res["problems"][name]}}), flush=True)
    finally:
        if OWN_CACHE is not None:
            shutil.rmtree(OWN_CACHE, ignore_errors=True)
    res["wall_s"] = time.perf_counter() - t_start
    write_results(res, args.name, args.out)
    print(f"total wall time {res['wall_s']:.0f} s")
    return 0


def write_results(res: dict, name: str, out: Path) -> None:
    """``<out>/<name>.json`` (with the summary records) and ``<name>.md``."""
    res["environment"]["load_average_at_end"] = C.load_average()
    res["summary"] = [rec for n, r in res["problems"].items() for rec in records(n, r)]
    C.write_json(name, res, out)
    (Path(out) / f"{name}.md").write_text(report(res), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
