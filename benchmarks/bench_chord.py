"""The circuit's gradient under the checkpoint settings before and after 2026-12-01
(issue 13, item 4), interleaved.

    python benchmarks/bench_chord.py

The 24 conditions of ``bench_circuit.py`` (2 cell lines x 12 treatments, default
parameters) at the default job's solver settings (Kvaerno5, rtol 1e-5, atol 1e-7,
max_steps 300) to 96 h: the gradient of sum(log observables) with respect to both
parameter rows, compiled once per setting (about a minute each on 2 quiet cores), then
timed in rounds, one call of each per round. Writes ``results/chord.md`` and
``results/chord.json``. Nothing here asserts a time.
"""

from __future__ import annotations

import os
import time

import _common as C

C.setup()

import jax  # noqa: E402
import numpy as np  # noqa: E402
from bench_circuit import Problem, default_conditions  # noqa: E402

from il6rcc.models import RCCCircuit, SolverSettings  # noqa: E402

TIMES = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 12.0, 24.0, 36.0, 48.0, 72.0, 96.0)
KW = {"rtol": 1e-5, "atol": 1e-7, "max_steps": 300}
#: The recorded run (results/chord.md) also had a third row, the InverseChord root
#: finder that was in models/_chord.py at commit 8f1c3e6 (removed: no gain).
VARIANTS = {
    "before: chord, checkpoints 24": SolverSettings(checkpoints=24, **KW),
    "shipped: chord, checkpoints per step": SolverSettings(**KW),
}


def main(rounds: int = 8) -> int:
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
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for key, (g, _, _) in fns.items():
            start = time.perf_counter()
            jax.block_until_ready(g(p))
            times[key].append(time.perf_counter() - start)
    ref = next(iter(fns.values()))[1]
    base = float(np.median(next(iter(times.values()))))
    rows, records = [], []
    for key, (_, grad, compile_s) in fns.items():
        diff = float(np.max(np.abs(grad - ref)) / np.max(np.abs(ref)))
        med = float(np.median(times[key]))
        rows.append([key, C.ms(med), C.ms(min(times[key])), f"{med / base:.2f}", f"{diff:.1e}"])
        records.append(
            {
                "variant": key,
                "median_ms": 1e3 * med,
                "min_ms": 1e3 * min(times[key]),
                "ratio_to_before": med / base,
                "grad_rel_diff_vs_before": diff,
                "compile_s": compile_s,
                "times_s": times[key],
            }
        )
    table = C.markdown_table(
        ["settings", "gradient median", "min", "/ before", "gradient rel. diff vs before"], rows
    )
    header = (
        f"Gradient of the circuit's 24 conditions to 96 h (rtol 1e-5), {rounds} interleaved "
        f"rounds; load average at start {env.get('load_average_at_start')}, "
        f"at end {[round(x, 2) for x in os.getloadavg()]}."
    )
    print(header + "\n\n" + table)
    C.write_json("chord", {"environment": env, "records": records}, C.RESULTS_DIR)
    (C.RESULTS_DIR / "chord.md").write_text(header + "\n\n" + table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
