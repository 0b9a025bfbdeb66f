"""Does anything in a benchmark process slow AMICI's calls? (issue 16.4)

``bench_petab.py`` interleaves il6rcc's compiled calls with AMICI's in one process. On
2026-12-01 AMICI's bare llh of Blasi_CellSystems2016 never went below 10.8 ms there,
against 1.5 ms in a process of its own. This script times AMICI's bare
``run_simulations`` llh of one problem right after each of several neighbours, in
rounds (so that load falls on every condition alike), in one process:

* a pause (nothing before the call but a sleep),
* a JAX program: il6rcc's llh of ``--jax-problem`` (compiled in this process first),
  unless ``--jax-problem none``,
* each of AMICI's other calls (``simulate_petab``, forward and adjoint gradients),
* pure-Python busy work on the calling thread.

Per call: wall time, the calling thread's CPU time, the CPU time the process's other
threads used meanwhile (XLA's worker threads, if they spin after a JAX call), the time
Python's cyclic garbage collector ran, minor page faults. Run:
``python benchmarks/amici_interference.py --problem Blasi_CellSystems2016
--jax-problem Boehm_JProteomeRes2014 --rounds 30``; it prints a markdown table.
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time

import bench_petab as B
import numpy as np


def _gc_timer() -> list[float]:
    """Seconds spent in garbage collections, accumulated in ``[0]``."""
    total, started = [0.0], [0.0]

    def callback(phase, info):
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            total[0] += time.perf_counter() - started[0]

    gc.callbacks.append(callback)
    return total


def _busy(seconds: float) -> None:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        pass


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problem", default="Blasi_CellSystems2016")
    ap.add_argument("--jax-problem", default="Boehm_JProteomeRes2014")
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args(argv)
    gc_time = _gc_timer()
    neighbours = {"a 20 ms pause": lambda: time.sleep(0.02)}
    if args.jax_problem != "none":
        il = B.prepare_il6rcc(args.jax_problem, "kvaerno5", {}, gradient=False, warm=False)
        neighbours[f"il6rcc's llh of {args.jax_problem} (JAX)"] = next(iter(il["calls"].values()))
    am = B.prepare_amici(args.problem, 1e-8, 1e-8, fresh=False)
    calls = am["calls"]
    bare = calls.pop("AMICI run_simulations llh")
    neighbours |= calls
    neighbours["100 ms of Python busy work"] = lambda: _busy(0.1)
    rows: dict[str, list] = {k: [] for k in neighbours}
    for _ in range(args.rounds):
        for key, before in neighbours.items():
            before()
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            g0, w0, t0, p0 = (
                gc_time[0],
                time.perf_counter(),
                time.thread_time(),
                time.process_time(),
            )
            bare()
            w1, t1, p1 = time.perf_counter(), time.thread_time(), time.process_time()
            f1 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            rows[key].append((w1 - w0, t1 - t0, (p1 - p0) - (t1 - t0), gc_time[0] - g0, f1 - f0))
    print(
        f"AMICI run_simulations llh of {args.problem}, {args.rounds} rounds, "
        f"load {B.C.load_average()}\n"
    )
    print(
        "| right after | wall min ms | wall median ms | thread CPU min ms | thread CPU median ms "
        "| other threads' CPU median ms | GC ms (mean) | minor faults (median) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for key, values in rows.items():
        w, t, o, g, f = (np.asarray(v) for v in zip(*values, strict=True))
        print(
            f"| {key} | {1e3 * w.min():.2f} | {1e3 * np.median(w):.2f} | {1e3 * t.min():.2f} "
            f"| {1e3 * np.median(t):.2f} | {1e3 * np.median(o):.2f} | {1e3 * g.mean():.2f} "
            f"| {np.median(f):g} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
