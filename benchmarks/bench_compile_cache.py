"""Compile time of a first and a second run of il6rcc jobs with the persistent
compilation cache (issue 16 item 3: a second run of a job spends at most 10 % of the
first run's compile time).

Each job runs twice, each time in a fresh process, with one empty cache folder of its
own at the start (``IL6RCC_JAX_CACHE``). Compile time is what JAX reports for the run:
tracing to a jaxpr, lowering to MLIR and the backend compilation, which on the second
run is mostly reading the compiled program back from the cache (tracing and lowering
are paid again; only XLA's compilation is cached).

Run: ``python benchmarks/bench_compile_cache.py`` (``make bench`` runs everything).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as C

_PROBLEMS = "petab_io/problems"
#: (label, il6rcc command-line arguments); ``{out}`` is a scratch folder per run.
JOBS = (
    ("petab llh Boehm",
     ["petab", "llh", f"{_PROBLEMS}/Boehm_JProteomeRes2014/Boehm_JProteomeRes2014.yaml"]),
    ("petab llh Bachmann",
     ["petab", "llh", f"{_PROBLEMS}/Bachmann_MSB2011/Bachmann_MSB2011.yaml"]),
    ("simulate (configs/simulate.yaml)",
     ["simulate", "configs/simulate.yaml", "--out", "{out}"]),
    ("fit (tests/fixtures/tiny_job, MAP)",
     ["fit", "tests/fixtures/tiny_job/tiny.yaml", "--method", "map", "--out", "{out}"]),
)  # fmt: skip

#: Runs the il6rcc command line in this process and records JAX's compile events.
_RUNNER = """
import json, sys, time
import jax
events = {"trace_s": 0.0, "lower_s": 0.0, "backend_s": 0.0, "cache_hits": 0, "cache_writes": 0}
names = {
    "/jax/core/compile/jaxpr_trace_duration": "trace_s",
    "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower_s",
    "/jax/core/compile/backend_compile_duration": "backend_s",
}
def duration(name, seconds, **kw):
    if name in names:
        events[names[name]] += seconds
def event(name, **kw):
    if name == "/jax/compilation_cache/cache_hits":
        events["cache_hits"] += 1
    elif name == "/jax/compilation_cache/cache_misses":
        events["cache_writes"] += 1
jax.monitoring.register_event_duration_secs_listener(duration)
jax.monitoring.register_event_listener(event)
from il6rcc.cli import main
t0 = time.perf_counter()
code = main(sys.argv[2:])
events["wall_s"] = time.perf_counter() - t0
events["exit"] = code
with open(sys.argv[1], "w") as f:
    json.dump(events, f)
"""


def run_job(args: list[str], cache: str, scratch: Path) -> dict:
    record = scratch / "events.json"
    argv = [a.replace("{out}", str(scratch / "out")) for a in args]
    env = dict(os.environ, IL6RCC_JAX_CACHE=cache)
    done = subprocess.run(
        [sys.executable, "-c", _RUNNER, str(record), *argv],
        cwd=C.REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not record.exists():
        return {"failed": done.stderr[-2000:]}
    out = json.loads(record.read_text(encoding="utf-8"))
    out["compile_s"] = out["trace_s"] + out["lower_s"] + out["backend_s"]
    return out


def report(res: dict) -> str:
    rows = []
    for label, r in res["jobs"].items():
        first, second = r["first"], r["second"]
        if "failed" in first or "failed" in second:
            rows.append([label, "failed", "", "", "", ""])
            continue
        rows.append(
            [
                label,
                f"{first['compile_s']:.1f} ({first['backend_s']:.1f})",
                f"{second['compile_s']:.1f} ({second['backend_s']:.1f})",
                f"{100 * second['compile_s'] / first['compile_s']:.0f} %",
                f"{first['wall_s']:.0f} / {second['wall_s']:.0f}",
                f"{first['cache_writes']} / {second['cache_hits']}",
            ]
        )
    header = [
        "job",
        "first run compile s (XLA)",
        "second run compile s (XLA)",
        "second / first",
        "wall s first / second",
        "entries written / read",
    ]
    return C.markdown_table(header, rows) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", nargs="+", type=int, help="indices into JOBS (default: all)")
    ap.add_argument("--out", type=Path, default=C.RESULTS_DIR)
    ap.add_argument("--repeats", type=int, default=1, help="ignored (run_all passes it)")
    args = ap.parse_args(argv)
    res: dict = {"environment": C.environment(), "jobs": {}}
    t0 = time.perf_counter()
    for i, (label, job) in enumerate(JOBS):
        if args.jobs and i not in args.jobs:
            continue
        with tempfile.TemporaryDirectory(prefix="il6rcc_cache_bench_") as tmp:
            cache = str(Path(tmp) / "cache")
            r = res["jobs"][label] = {"argv": job}
            for run in ("first", "second"):
                scratch = Path(tmp) / run
                scratch.mkdir()
                r[run] = run_job(job, cache, scratch)
                print(f"{label}: {run} run {r[run]}", flush=True)
    res["wall_s"] = time.perf_counter() - t0
    text = report(res)
    print("\n" + text)
    C.write_json("compile_cache", res, args.out)
    (Path(args.out) / "compile_cache.md").write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
