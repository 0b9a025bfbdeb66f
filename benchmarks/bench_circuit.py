"""Speed of the RCC circuit: il6rcc vs scipy ``solve_ivp`` vs AMICI, and where il6rcc's
time goes (issue 2, "Speed").

One run measures, on the default condition set (786-O and ACHN x 12 treatments = 24
conditions, outputs at 11 times up to 72 h, rtol 1e-6, atol 1e-8, default parameters):

* il6rcc: ``simulate_arrays`` jitted, forward, and the gradient of
  ``sum(log(observables))`` w.r.t. all parameters ([2 cell lines, 92]); tracing and
  compiling timed apart from the run time;
* scipy ``solve_ivp`` BDF and LSODA (forward) with the model's vector field jitted
  by JAX as right-hand side and ``jax.jacfwd`` as Jacobian; the gradient by BDF
  forward sensitivities (augmented system, see ``_scipy_circuit.py``);
* AMICI on the same model exported with ``il6rcc.petab_io.export_problem``: forward, and
  the same gradient from forward sensitivities (``sy``) of all 92 model parameters;
  import/compile timed apart; 1 and 2 OpenMP threads.

All three are checked to compute the same thing (max relative difference of the
observables and of the gradient). Unless ``--no-analysis``, also where il6rcc's time
goes: pre-equilibration vs treatment, ``vmap`` vs ``map``, solvers, root finders,
adjoints, steps per condition, compile times, and prototypes of further fixes
(``_prototypes.py``; see RESULTS.md).

Everything is compiled (and called once) first; then the timed calls run in rounds,
one call of every measurement per round, so that load from other processes falls on
all of them alike. Times are the median and min over the rounds.

Run: ``python benchmarks/bench_circuit.py`` (``make bench`` runs everything).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _common as C

C.setup()  # float64 and EQX_ON_ERROR=nan before JAX/equinox are imported

import diffrax  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from _prototypes import MoreCheckpointsSettings  # noqa: E402

from il6rcc.models import (  # noqa: E402
    Condition,
    RCCCircuit,
    SolverSettings,
    basal_states,
    make_batch,
    simulate_arrays,
)

RTOL, ATOL = 1e-6, 1e-8
TIMES = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 12.0, 24.0, 36.0, 48.0, 72.0)
IFN = 1000.0  # IU/mL, as configs/simulate.yaml
TCZ = 30.0  # nM tocilizumab
TREATMENTS = {
    "ctrl": {},
    "IFN": {"ifn_alpha": IFN},
    "IFN_TCZ": {"ifn_alpha": IFN, "tocilizumab": TCZ},
    "IFN_siSOCS3": {"ifn_alpha": IFN, "si_socs3": 1.0},
    "IFN_siIFNAR": {"ifn_alpha": IFN, "si_ifnar": 1.0},
    "IFN_siIL6": {"ifn_alpha": IFN, "si_il6": 1.0},
    "IFN_siIL6R": {"ifn_alpha": IFN, "si_il6r": 1.0},
    "TCZ": {"tocilizumab": TCZ},
    "sor0.5": {"sorafenib": 0.5},
    "sor5": {"sorafenib": 5.0},
    "sun5": {"sunitinib": 5.0},
    "paz10": {"pazopanib": 10.0},
}
CELL_LINES = ("786-O", "ACHN")


def default_conditions() -> list[Condition]:
    """The benchmark's condition set: 2 cell lines x 12 treatments."""
    return [
        Condition(f"{line}_{name}", line, dict(doses))
        for line in CELL_LINES
        for name, doses in TREATMENTS.items()
    ]


#: il6rcc settings measured in the analysis: (key, label, settings factory, parts,
#: gradient mode, max timed calls or None, extra). ``extra`` ones run with
#: ``--analysis full`` only. The default and verychord are always measured.
VARIANTS = [
    ("bdf", "bdf (one implicit equation per step, Jacobian and LU reused)",
     lambda: SolverSettings(solver="bdf"), ("fwd", "grad"), "reverse", None, False),
    ("bdf_map", "bdf + batching = map", lambda: SolverSettings(solver="bdf", batching="map"),
     ("fwd", "grad"), "reverse", None, False),
    ("kvaerno3", "kvaerno3 + chord", lambda: SolverSettings(solver="kvaerno3"),
     ("fwd", "grad"), "reverse", None, False),
    ("tsit5", "tsit5 (explicit)", lambda: SolverSettings(solver="tsit5"),
     ("fwd", "grad"), "reverse", None, False),
    ("map", "batching = map (one condition after another)",
     lambda: SolverSettings(batching="map"), ("fwd", "grad"), "reverse", None, False),
    ("adjoint_direct", "adjoint = direct", lambda: SolverSettings(adjoint="direct"),
     ("grad",), "reverse", None, False),
    ("adjoint_forward", "adjoint = forward (jax.jacfwd, 184 tangents)",
     lambda: SolverSettings(adjoint="forward"), ("grad",), "forward", 2, False),
    ("root_chord", "kvaerno5 + optimistix chord (Jacobian and LU per stage; before 2026-12-01)",
     lambda: SolverSettings(root_finder="chord"), ("fwd", "grad"), "reverse", None, False),
    ("proto_tsit5_checkpoints", "PROTOTYPE tsit5 + 512 checkpoints",
     lambda: MoreCheckpointsSettings(solver="tsit5"), ("grad",), "reverse", None, False),
    ("root_newton", "kvaerno5 + Newton root finder",
     lambda: SolverSettings(root_finder="newton"), ("fwd", "grad"), "reverse", None, True),
    ("equilibration_integrate", "pre-equilibration by integration (before PTC)",
     lambda: SolverSettings(equilibration="integrate"), ("fwd", "grad"), "reverse", None, True),
    ("root_step_chord_lu", "kvaerno5 + step_chord_lu (the step's Jacobian, LU per iteration)",
     lambda: SolverSettings(root_finder="step_chord_lu"), ("fwd", "grad"), "reverse", None, True),
]  # fmt: skip


# --------------------------------------------------------------------- timing
class Rounds:
    """Timed calls registered first, then run round-robin (see the module doc)."""

    def __init__(self):
        self.calls: dict[str, tuple] = {}
        self.times: dict[str, list[float]] = {}

    def add(self, key: str, fn, cap: int | None = None) -> None:
        self.calls[key] = (fn, cap)
        self.times[key] = []

    def run(self, rounds: int) -> None:
        for r in range(rounds):
            for key, (fn, cap) in self.calls.items():
                if cap is not None and r >= cap:
                    continue
                t0 = time.perf_counter()
                fn()
                self.times[key].append(time.perf_counter() - t0)

    def stats(self, key: str) -> dict:
        t = self.times[key]
        return {"median": statistics.median(t), "min": min(t), "runs": t}


class Problem:
    def __init__(self, model, conditions, times):
        self.model = model
        self.conditions = conditions
        self.batch = make_batch(model, conditions)
        self.times = jnp.asarray(times, dtype=jnp.float64)
        self.params = jnp.asarray(
            np.stack([model.default_params(r) for r in self.batch.row_names]), dtype=jnp.float64
        )
        b = self.batch
        self.arrays = tuple(jnp.asarray(a) for a in b.arrays)

    def forward_fn(self, settings):
        model, arrays, times = self.model, self.arrays, self.times
        return jax.jit(lambda p: simulate_arrays(model, settings, p, *arrays, times))

    def gradient_fn(self, settings, mode: str = "reverse"):
        model, arrays, times = self.model, self.arrays, self.times

        def loss(p):
            obs = simulate_arrays(model, settings, p, *arrays, times)[0]
            return jnp.sum(jnp.log(obs))

        return jax.jit(jax.jacfwd(loss) if mode == "forward" else jax.grad(loss))


def prepare_il6rcc(prob, settings, rounds: Rounds, key, parts=("fwd", "grad"),
                   grad_mode="reverse", cap=None) -> dict:  # fmt: skip
    """Compile (timed) and call once; register the timed calls under ``key.fwd`` and
    ``key.grad``."""
    out: dict = {"settings": _describe(settings)}
    p = prob.params
    if "fwd" in parts:
        compiled, t_trace, t_compile = C.compile_jitted(prob.forward_fn(settings), p)
        obs, _, ok, steps = jax.block_until_ready(compiled(p))
        out["fwd"] = {"trace_s": t_trace, "compile_s": t_compile}
        out["observables"] = np.asarray(obs)
        out["success"] = bool(np.all(np.asarray(ok)))
        out["steps"] = np.asarray(steps).tolist()
        rounds.add(f"{key}.fwd", lambda c=compiled: jax.block_until_ready(c(p)), cap)
    if "grad" in parts:
        compiled, t_trace, t_compile = C.compile_jitted(prob.gradient_fn(settings, grad_mode), p)
        out["grad"] = {"trace_s": t_trace, "compile_s": t_compile}
        out["gradient"] = np.asarray(jax.block_until_ready(compiled(p)))
        rounds.add(f"{key}.grad", lambda c=compiled: jax.block_until_ready(c(p)), cap)
    return out


def _describe(settings) -> dict:
    d = dataclasses.asdict(settings)
    if type(settings) is not SolverSettings:
        d["prototype"] = type(settings).__name__
    return d


def prepare_basal(prob: Problem, settings, rounds: Rounds) -> dict:
    """Pre-equilibration alone: ``basal_states``, the part of ``simulate_arrays`` that
    solves the basal groups one after another; and the steps an integration to a
    steady-state event would take (the approach used before PTC)."""
    model = prob.model
    _, _, _, basal_param_index, basal_inputs, basal_reference_index = prob.arrays

    def basal(p):
        return basal_states(
            model, settings, p, basal_param_index, basal_inputs, basal_reference_index
        )

    out: dict = {"basal_groups": int(basal_param_index.shape[0])}
    for part, fn in (("fwd", basal), ("grad", jax.grad(lambda p: jnp.sum(basal(p)[0])))):
        compiled, t_trace, t_compile = C.compile_jitted(jax.jit(fn), prob.params)
        res = jax.block_until_ready(compiled(prob.params))
        if part == "fwd":
            out["basal_ok"] = bool(np.all(np.asarray(res[1])))
        out[part] = {"trace_s": t_trace, "compile_s": t_compile}
        rounds.add(f"basal.{part}", lambda c=compiled: jax.block_until_ready(c(prob.params)))

    def approach_steps(p, u):
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(lambda t, y, a: model.vector_field(t, y, *a)),
            settings.make_solver(),
            t0=0.0,
            t1=1e4,
            dt0=None,
            y0=model.initial_guess(p, u),
            args=(p, u),
            stepsize_controller=settings.make_controller(),
            event=diffrax.Event(diffrax.steady_state_event(rtol=1e-8, atol=1e-10)),
            max_steps=settings.max_steps,
            throw=False,
        )
        return sol.stats["num_steps"]

    steps = jax.jit(jax.vmap(approach_steps))(prob.params[basal_param_index], basal_inputs)
    out["integration_approach_steps"] = np.asarray(steps).tolist()
    return out


# --------------------------------------------------------------------- scipy
def prepare_scipy(prob: Problem, rounds: Rounds, cap: int) -> dict:
    from _scipy_circuit import ScipyCircuit

    sc = ScipyCircuit(
        prob.model, prob.batch, np.asarray(prob.params), np.asarray(prob.times), RTOL, ATOL, 1e4
    )
    t0 = time.perf_counter()
    sc.warm_up()
    out: dict = {"jax_compile_s": time.perf_counter() - t0}
    for method in ("BDF", "LSODA"):
        sc.stats = type(sc.stats)()
        out[f"{method}_observables"] = sc.forward(method)
        out[f"{method}_stats"] = dataclasses.asdict(sc.stats)
        rounds.add(f"scipy.{method}.fwd", lambda m=method: sc.forward(m), cap)
    sc.stats = type(sc.stats)()
    out["gradient"], out["BDF_sens_observables"] = sc.gradient()
    out["BDF_sens_stats"] = dataclasses.asdict(sc.stats)
    rounds.add("scipy.BDF.grad", sc.gradient, cap)
    return out


# --------------------------------------------------------------------- AMICI
def prepare_amici(prob: Problem, il_obs: np.ndarray, rounds: Rounds, workdir: Path) -> dict:
    import _amici_tools as A

    ok, why = A.available()
    if not ok:
        return {"skipped": why}
    import amici.sim.sundials as asd
    import petab.v1 as petab
    from amici.sim.sundials.petab.v1 import create_parameterized_edatas

    from il6rcc.petab_io import ExportMeasurement, export_problem
    from il6rcc.petab_io._export import petab_id

    A.quiet()

    model, conditions, times = prob.model, prob.conditions, np.asarray(prob.times)
    out: dict = {}
    # every observable at every time of every condition, so that AMICI computes all
    # of them (the values and noise do not matter for the timing)
    measurements = [
        ExportMeasurement(name, cond.id, float(t), float(il_obs[c, k, j]), 1.0)
        for c, cond in enumerate(conditions)
        for k, t in enumerate(times)
        for j, name in enumerate(model.observable_names)
    ]
    t0 = time.perf_counter()
    yaml_path = export_problem(model, conditions, measurements, workdir / "petab")
    out["export_s"] = time.perf_counter() - t0
    problem = petab.Problem.from_yaml(yaml_path)
    # all parameters as AMICI parameters, so that it gives sensitivities of each
    am, out["import_compile_s"] = A.import_problem(
        problem,
        workdir / "amici",
        "rcc_circuit_bench",
        non_estimated_parameters_as_constants=False,
    )
    A.quiet()
    t0 = time.perf_counter()
    nominal = dict(zip(problem.x_ids, problem.x_nominal, strict=True))
    edatas = list(create_parameterized_edatas(am, problem, nominal))
    free = list(am.get_free_parameter_ids())
    plist = [free.index(p) for p in model.parameter_names]
    linear = asd.parameter_scaling_from_int_vector([0] * len(free))
    for e in edatas:  # linear scale, sensitivities w.r.t. the 92 model parameters
        values, scales = np.asarray(e.free_parameters), np.asarray(e.pscale)
        e.free_parameters = np.where(
            scales == 2, 10.0**values, np.where(scales == 1, np.exp(values), values)
        )
        e.pscale = linear
        e.plist = plist
    out["edata_setup_s"] = time.perf_counter() - t0
    order = {e.id.split("+")[0]: i for i, e in enumerate(edatas)}
    edatas = [edatas[order[petab_id(c.id)]] for c in conditions]
    oids = list(am.get_observable_ids())
    operm = [oids.index(f"obs_{o}") for o in model.observable_names]

    solver = A.make_solver(am, RTOL, ATOL)
    out["solver"] = A.solver_description(solver)
    out["n_sensitivity_parameters"] = len(plist)
    for threads in (1, 2):
        for order_, part in (("none", "fwd"), ("first", "grad")):
            rdatas = A.run(am, solver, edatas, order_, threads)  # warm-up
            out[f"status_{part}_threads{threads}"] = sorted({int(r.status) for r in rdatas})
            rounds.add(
                f"amici.{part}.threads{threads}",
                lambda o=order_, th=threads: A.run(am, solver, edatas, o, th),
            )
    rdatas = A.run(am, solver, edatas, "first", 1)
    y = np.stack([np.asarray(r.y)[:, operm] for r in rdatas])
    grad = np.zeros(np.asarray(prob.params).shape)
    for c, r in enumerate(rdatas):
        sy = np.asarray(r.sy)[:, :, operm]  # [n_t, n_plist, n_obs]
        grad[prob.batch.param_index[c]] += np.einsum("tpo,to->p", sy, 1.0 / y[c])
    out["observables"] = y
    out["gradient"] = grad
    out["steps_treatment"] = [int(np.asarray(r.numsteps)[-1]) for r in rdatas]
    out["steps_preequilibration"] = [int(np.sum(np.asarray(r.preeq_numsteps))) for r in rdatas]
    out["preeq_status"] = sorted({str(s) for r in rdatas for s in r.preeq_status})
    return out


# --------------------------------------------------------------------- checks
def max_rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.abs(b)))


def grad_rel(a, b) -> float:
    """Max |a - b| relative to max |b| (entries of the gradient span many decades)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


# --------------------------------------------------------------------- report
def _med(res: dict, key: str) -> float | None:
    t = res["timings"].get(key)
    return t["median"] if t else None


def _ctime(r: dict) -> float:
    return sum(r[p]["trace_s"] + r[p]["compile_s"] for p in ("fwd", "grad") if p in r)


def _steps(r: dict) -> str:
    return f"max {max(r['steps'])}, sum {sum(r['steps'])}" if "steps" in r else "-"


def report(res: dict) -> str:
    """Markdown tables of one run."""
    il, vc = res["il6rcc"], res["il6rcc_verychord"]
    am = res.get("amici", {})
    amf, amg = _med(res, "amici.fwd.threads1"), _med(res, "amici.grad.threads1")
    ilf, ilg = _med(res, "il6rcc.fwd"), _med(res, "il6rcc.grad")
    rows = []

    def row(name, f, g, compile_s, note=""):
        rows.append(
            [name, C.ms(f), C.ms(g), C.ratio(f, amf), C.ratio(g, amg),
             "-" if compile_s is None else f"{compile_s:.1f}", note]
        )  # fmt: skip

    row("il6rcc kvaerno5 + chord (default)", ilf, ilg, _ctime(il),
        "compile: trace + XLA, forward and gradient")  # fmt: skip
    row("il6rcc kvaerno5 + verychord (before the fix)", _med(res, "verychord.fwd"),
        _med(res, "verychord.grad"), _ctime(vc))  # fmt: skip
    if "scipy" in res:
        sc = res["scipy"]
        row("scipy solve_ivp BDF", _med(res, "scipy.BDF.fwd"), _med(res, "scipy.BDF.grad"),
            sc["jax_compile_s"], "gradient: BDF forward sensitivities; compile: JAX jit of "
            "f, J, ...")  # fmt: skip
        row("scipy solve_ivp LSODA", _med(res, "scipy.LSODA.fwd"), None, None, "forward only")
    if "import_compile_s" in am:
        row("AMICI (CVODES BDF), 1 thread", amf, amg, am["import_compile_s"],
            "gradient: forward sensitivities, 92 parameters; compile: import + C++")  # fmt: skip
        row("AMICI, 2 OpenMP threads", _med(res, "amici.fwd.threads2"),
            _med(res, "amici.grad.threads2"), None)  # fmt: skip
    header = ["", "forward ms", "gradient ms", "fwd / AMICI", "grad / AMICI", "compile s", ""]
    text = [C.markdown_table(header, rows)]
    text.append(
        "\nAgreement (max relative difference of the 24 x 11 x 29 observables; gradient: "
        "max |difference| / max |gradient|):\n"
    )
    text.append(
        C.markdown_table(
            ["pair", "observables", "gradient"],
            [
                [k, f"{v['obs']:.1e}", "-" if v.get("grad") is None else f"{v['grad']:.1e}"]
                for k, v in res["checks"].items()
            ],
        )  # fmt: skip
    )
    vcg = _med(res, "verychord.grad")
    text.append(
        f"\nRatios: il6rcc gradient / AMICI gradient {C.ratio(ilg, amg)} (target <= 3); "
        f"il6rcc gradient / scipy BDF gradient {C.ratio(ilg, _med(res, 'scipy.BDF.grad'))}; "
        f"il6rcc forward / AMICI forward {C.ratio(ilf, amf)}; / scipy BDF forward "
        f"{C.ratio(ilf, _med(res, 'scipy.BDF.fwd'))}; / scipy LSODA forward "
        f"{C.ratio(ilf, _med(res, 'scipy.LSODA.fwd'))}.\n"
        f"verychord -> chord: gradient {C.ms(vcg)} -> {C.ms(ilg)} ms "
        f"({C.ratio(vcg, ilg)}x), treatment steps (sum over conditions) "
        f"{sum(vc['steps'])} -> {sum(il['steps'])}.\n"
        f"Steps per condition, il6rcc default: {il['steps']}; AMICI treatment: "
        f"{am.get('steps_treatment', '-')}, AMICI pre-equilibration: "
        f"{am.get('steps_preequilibration', '-')}."
    )
    if "basal" in res:
        s = res["basal"]
        bf, bg = _med(res, "basal.fwd"), _med(res, "basal.grad")
        text.append("\nWhere the default's time goes (median ms):\n")
        text.append(
            C.markdown_table(
                ["part", "forward", "gradient", "compile s", "steps"],
                [
                    ["full simulate_arrays", C.ms(ilf), C.ms(ilg), f"{_ctime(il):.1f}", _steps(il)],
                    [
                        f"pre-equilibration (PTC + Newton, {s['basal_groups']} basal groups)",
                        C.ms(bf),
                        C.ms(bg),
                        f"{_ctime(s):.1f}",
                        f"by integration: {s['integration_approach_steps']}",
                    ],
                    [
                        "treatment solve (24 conditions, vmap) = full - pre-equilibration",
                        C.ms(ilf - bf),
                        C.ms(ilg - bg),
                        "",
                        _steps(il),
                    ],
                ],
            )  # fmt: skip
        )
    if "analysis" in res:
        rows = [["kvaerno5 + chord (default)", C.ms(ilf), C.ms(ilg), f"{_ctime(il):.1f}",
                 _steps(il), "-"],
                ["kvaerno5 + verychord (before the fix)", C.ms(_med(res, "verychord.fwd")),
                 C.ms(vcg), f"{_ctime(vc):.1f}", _steps(vc),
                 f"{grad_rel(vc['gradient'], il['gradient']):.0e}"]]  # fmt: skip
        for key, v in res["analysis"].items():
            if "skipped" in v:
                rows.append([v["label"], "skipped", "", "", "", v["skipped"][:60]])
                continue
            f, g = _med(res, f"{key}.fwd"), _med(res, f"{key}.grad")
            rows.append(
                [v["label"], C.ms(f) if f else "(as default)", C.ms(g), f"{_ctime(v):.1f}",
                 _steps(v), f"{v['grad_rel_diff_vs_default']:.0e}"]
            )  # fmt: skip
        text.append(
            "\nVariants (full simulate_arrays, median ms; compile: trace + XLA, s; grad diff: "
            "max |gradient - default's| / max |default's|):\n"
        )
        text.append(
            C.markdown_table(
                ["variant", "forward", "gradient", "compile s", "treatment steps", "grad diff"],
                rows,
            )
        )
    return "\n".join(text) + "\n"


# --------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="timed rounds")
    ap.add_argument(
        "--analysis",
        choices=("none", "core", "full"),
        default="core",
        help="where-the-time-goes variants: none, the core set (default) or all",
    )
    ap.add_argument("--no-analysis", action="store_true", help="same as --analysis none")
    ap.add_argument("--no-scipy", action="store_true")
    ap.add_argument("--no-amici", action="store_true")
    ap.add_argument("--out", type=Path, default=C.RESULTS_DIR, help="results folder")
    args = ap.parse_args(argv)
    analysis = "none" if args.no_analysis else args.analysis
    t_start = time.perf_counter()
    res: dict = {"environment": C.environment()}
    model = RCCCircuit.variant("main")
    prob = Problem(model, default_conditions(), TIMES)
    res["problem"] = {
        "model": f"RCCCircuit.variant('main'), {model.n_states} states, {model.n_params} "
        f"parameters, {len(model.observables)} observables",
        "conditions": [c.id for c in prob.conditions],
        "basal_groups": len(prob.batch.basal_param_index),
        "times_h": list(TIMES),
        "rtol": RTOL,
        "atol": ATOL,
        "scalar": "sum(log(observables)) over conditions, times and observables",
        "gradient_wrt": f"params [{len(prob.batch.row_names)} cell lines, {model.n_params}]",
    }
    rounds = Rounds()
    slow_cap = max(1, min(args.repeats, 3))  # for calls of seconds each

    def log(msg):
        print(f"[{time.perf_counter() - t_start:5.0f} s] {msg}", flush=True)

    log(f"compiling il6rcc default ({prob.batch.n_conditions} conditions) ...")
    il = res["il6rcc"] = prepare_il6rcc(prob, SolverSettings(), rounds, "il6rcc")
    f, g = il["fwd"], il["grad"]
    log(
        f"  compile fwd {f['trace_s'] + f['compile_s']:.1f} s, "
        f"grad {g['trace_s'] + g['compile_s']:.1f} s"
    )
    log("compiling il6rcc with root_finder='verychord' (before the fix) ...")
    res["il6rcc_verychord"] = prepare_il6rcc(
        prob, SolverSettings(root_finder="verychord"), rounds, "verychord", cap=slow_cap
    )
    checks = {}
    if not args.no_scipy:
        log("scipy solve_ivp: compiling the JAX pieces, first solves ...")
        sc = res["scipy"] = prepare_scipy(prob, rounds, slow_cap)
        checks["il6rcc vs scipy BDF (sensitivity run)"] = {
            "obs": max_rel(sc["BDF_sens_observables"], il["observables"]),
            "grad": grad_rel(sc["gradient"], il["gradient"]),
        }
        checks["il6rcc vs scipy BDF"] = {"obs": max_rel(sc["BDF_observables"], il["observables"])}
        checks["il6rcc vs scipy LSODA"] = {
            "obs": max_rel(sc["LSODA_observables"], il["observables"])
        }
    if not args.no_amici:
        log("AMICI: export, import and compile, first solves ...")
        tmp = tempfile.TemporaryDirectory(prefix="il6rcc_bench_")  # kept until the end
        am = res["amici"] = prepare_amici(prob, il["observables"], rounds, Path(tmp.name))
        if "skipped" in am:
            log(f"  AMICI skipped: {am['skipped']}")
        else:
            log(f"  import+compile {am['import_compile_s']:.1f} s")
            checks["il6rcc vs AMICI"] = {
                "obs": max_rel(am["observables"], il["observables"]),
                "grad": grad_rel(am["gradient"], il["gradient"]),
            }
    checks["il6rcc verychord vs chord"] = {
        "obs": max_rel(res["il6rcc_verychord"]["observables"], il["observables"]),
        "grad": grad_rel(res["il6rcc_verychord"]["gradient"], il["gradient"]),
    }
    res["checks"] = checks
    if analysis != "none":
        log("compiling the pre-equilibration alone ...")
        res["basal"] = prepare_basal(prob, SolverSettings(), rounds)
        res["analysis"] = {}
        for key, label, make, parts, mode, cap, extra in VARIANTS:
            if extra and analysis != "full":
                continue
            try:
                settings = make()
            except Exception as err:  # noqa: BLE001 - a setting this version lacks
                res["analysis"][key] = {"label": label, "skipped": f"{type(err).__name__}: {err}"}
                log(f"  {label}: skipped ({err})")
                continue
            log(f"compiling {label} ...")
            v = prepare_il6rcc(prob, settings, rounds, key, parts, mode, cap)
            v["label"] = label
            v["grad_rel_diff_vs_default"] = grad_rel(v["gradient"], il["gradient"])
            if "observables" in v:
                v["obs_rel_diff_vs_default"] = max_rel(v["observables"], il["observables"])
            res["analysis"][key] = v
    log(f"timing: {args.repeats} rounds of {len(rounds.calls)} measurements ...")
    rounds.run(args.repeats)
    res["timings"] = {k: rounds.stats(k) for k in rounds.calls}
    res["environment"]["load_average_at_end"] = C.load_average()
    res["wall_s"] = time.perf_counter() - t_start
    text = report(res)
    print("\n" + text)
    log(f"done; total wall time {res['wall_s']:.0f} s")
    C.write_json("circuit", _strip(res), args.out)
    (Path(args.out) / "circuit.md").write_text(text, encoding="utf-8")
    return 0


def _strip(res: dict) -> dict:
    """The JSON without the big arrays (observables); gradients as their norm."""
    out = {}
    for k, v in res.items():
        if isinstance(v, dict):
            out[k] = _strip(v)
        elif k.endswith("observables"):
            continue
        elif k == "gradient":
            out["gradient_norm"] = float(np.linalg.norm(np.asarray(v)))
        else:
            out[k] = v
    return out


if __name__ == "__main__":
    sys.exit(main())
