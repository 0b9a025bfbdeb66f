"""The circuit's gradient under the root finders of the implicit stages (issue 13,
item 4), interleaved: ``chord`` (optimistix's, one Jacobian and LU per stage) against
``step_chord`` (the step's Jacobian, inverted once, for every stage, see
``models/_chord.py``) and ``step_chord_lu`` (the same with an LU solve per iteration).

    python benchmarks/bench_chord.py [ROUNDS]

The 24 conditions of ``bench_circuit.py`` (2 cell lines x 12 treatments, default
parameters) at the default job's solver settings (Kvaerno5, rtol 1e-5, atol 1e-7,
max_steps 300) to 96 h: the gradient of sum(log observables) with respect to both
parameter rows, compiled once per setting (about a minute each on 2 quiet cores), then
timed in rounds, one call of each per round. Writes ``results/step_chord.md`` and
``results/step_chord.json``. Nothing here asserts a time. The first recorded run
(``results/chord.md``, 2026-12-01) compared the reverse pass's checkpoints instead:
``SolverSettings(checkpoints=24)`` against one checkpoint per step.
"""

from __future__ import annotations

import os
import sys
import time

import _common as C

C.setup()

import jax  # noqa: E402
import numpy as np  # noqa: E402
from bench_circuit import Problem, default_conditions  # noqa: E402

from il6rcc.models import RCCCircuit, SolverSettings  # noqa: E402

TIMES = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 12.0, 24.0, 36.0, 48.0, 72.0, 96.0)
KW = {"rtol": 1e-5, "atol": 1e-7, "max_steps": 300}
VARIANTS = {
    "chord (per stage)": SolverSettings(root_finder="chord", **KW),
    "step_chord_lu": SolverSettings(root_finder="step_chord_lu", **KW),
    "step_chord": SolverSettings(root_finder="step_chord", **KW),
}
NAME = "step_chord"


def main(rounds: int = 24) -> int:
    env = C.environment()
    prob = Problem(RCCCircuit(), default_conditions(), TIMES)
    p = prob.params
    fns = {}
    for key, settings in VARIANTS.items():
        t0 = time.perf_counter()
        g = jax.jit(prob.gradient_fn(settings)).lower(p).compile()
        compile_s = time.perf_counter() - t0
        fns[key] = (g, np.asarray(g(p)), compile_s)
        print(f"{key}: compile {compile_s:.0f} s", flush=True)
    # wall time, and the CPU time of the process (all threads): on a shared machine the
    # second is less sensitive to what else runs
    times: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for key, (g, _, _) in fns.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            jax.block_until_ready(g(p))
            times[key].append(time.perf_counter() - start)
            cpu[key].append(time.process_time() - start_cpu)
    first = next(iter(fns))
    ref = fns[first][1]
    base, base_cpu = float(np.median(times[first])), float(np.median(cpu[first]))
    rows, records = [], []
    for key, (_, grad, compile_s) in fns.items():
        diff = float(np.max(np.abs(grad - ref)) / np.max(np.abs(ref)))
        med, med_cpu = float(np.median(times[key])), float(np.median(cpu[key]))
        # per round against the first variant: the load changes less within a round
        ratios = np.asarray(times[key]) / np.asarray(times[first])
        rows.append(
            [
                key,
                C.ms(med),
                C.ms(min(times[key])),
                f"{med / base:.2f}",
                f"{np.median(ratios):.2f}",
                C.ms(med_cpu),
                f"{med_cpu / base_cpu:.2f}",
                f"{diff:.1e}",
                str(int(np.sum(~np.isfinite(grad)))),
            ]
        )
        records.append(
            {
                "variant": key,
                "median_ms": 1e3 * med,
                "min_ms": 1e3 * min(times[key]),
                "ratio_to_first": med / base,
                "median_round_ratio_to_first": float(np.median(ratios)),
                "cpu_median_ms": 1e3 * med_cpu,
                "cpu_ratio_to_first": med_cpu / base_cpu,
                "grad_rel_diff_vs_first": diff,
                "non_finite_gradient_entries": int(np.sum(~np.isfinite(grad))),
                "compile_s": compile_s,
                "times_s": times[key],
                "cpu_times_s": cpu[key],
            }
        )
    table = C.markdown_table(
        [
            "root finder",
            "wall median ms",
            "min ms",
            "/ chord",
            "median of per-round / chord",
            "CPU median ms",
            "CPU / chord",
            "gradient rel. diff vs chord",
            "non-finite entries",
        ],
        rows,
    )
    header = (
        f"Gradient of the circuit's 24 conditions to 96 h (rtol 1e-5), {rounds} interleaved "
        f"rounds; load average at start {env.get('load_average_at_start')}, "
        f"at end {[round(x, 2) for x in os.getloadavg()]}."
    )
    print(header + "\n\n" + table)
    C.write_json(NAME, {"environment": env, "records": records}, C.RESULTS_DIR)
    (C.RESULTS_DIR / f"{NAME}.md").write_text(header + "\n\n" + table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*(int(a) for a in sys.argv[1:2])))
