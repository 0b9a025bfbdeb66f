"""Time to the first value and gradient of a log density in a fresh process: without
any cache, on a first run that exports the program and fills the caches, and on a
second run that reads the exported program and the compiled XLA program back (issue 16
item 3: a second run spends at most 10 % of the first run's compile time).

Each job runs in three fresh processes, one after the other: ``off``
(``IL6RCC_JAX_CACHE=off``: plain ``jax.jit``, what every process paid before the
caches), ``first`` (an empty cache folder: trace, export, compile, write) and
``second`` (the same folder). JAX's own events split the time into tracing to a
jaxpr, lowering to MLIR and the backend (XLA) compile.

Run: ``python benchmarks/bench_exported.py [--jobs default boehm]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import _common as C

_BOEHM = C.REPO / "petab_io/problems/Boehm_JProteomeRes2014/Boehm_JProteomeRes2014.yaml"
#: label -> (config, overrides)
JOBS = {
    "default": ("configs/default.yaml", {}),
    "boehm": ("configs/petab.yaml", {"model.petab": str(_BOEHM)}),
}

_CHILD = """
import json, os, sys, time
t_start = time.perf_counter()
from il6rcc import runtime
runtime.setup()
import jax
events = {"trace_s": 0.0, "lower_s": 0.0, "backend_s": 0.0, "xla_cache_hits": 0}
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
        events["xla_cache_hits"] += 1
jax.monitoring.register_event_duration_secs_listener(duration)
jax.monitoring.register_event_listener(event)
from il6rcc.configs import load_config
from il6rcc.jobs import build_posterior
config, overrides = sys.argv[2], json.loads(sys.argv[3])
posterior, _ = build_posterior(load_config(config, overrides))
x = posterior.initial_point()
before = dict(events)
t0 = time.perf_counter()
value, grad = posterior.compiled.value_and_grad(x, posterior.data)
t1 = time.perf_counter()
posterior.compiled.value_and_grad(x + 0.01, posterior.data)
t2 = time.perf_counter()
f = posterior.compiled._value_and_grad
out = {k: events[k] - before[k] for k in events}
out.update(
    start_to_posterior_s=t0 - t_start,
    first_value_and_grad_s=t1 - t0,
    second_call_s=t2 - t1,
    value=value,
    grad_norm=float((grad**2).sum() ** 0.5),
    exported=f.exports,
    read_back=f.hits,
    fallbacks=f.fallbacks,
)
with open(sys.argv[1], "w") as fh:
    json.dump(out, fh)
"""


def run(config: str, overrides: dict, cache: str, scratch: Path) -> dict:
    record = scratch / "events.json"
    record.unlink(missing_ok=True)
    env = dict(os.environ, IL6RCC_JAX_CACHE=cache, EQX_ON_ERROR="nan")
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(record), config, json.dumps(overrides)],
        cwd=C.REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not record.exists():
        return {"failed": done.stderr[-2000:]}
    return json.loads(record.read_text(encoding="utf-8"))


def report(res: dict) -> str:
    rows = []
    for label, runs in res["jobs"].items():
        for kind, r in runs.items():
            if "failed" in r:
                rows.append([label, kind, "failed", "", "", "", "", ""])
                continue
            rows.append(
                [
                    label,
                    kind,
                    f"{r['first_value_and_grad_s']:.1f}",
                    f"{r['trace_s']:.1f}",
                    f"{r['lower_s']:.1f}",
                    f"{r['backend_s']:.1f}",
                    f"{r['exported']} / {r['read_back']} / {r['fallbacks']}",
                    f"{r['second_call_s'] * 1e3:.0f}",
                ]
            )
    header = [
        "job",
        "run",
        "to first value+grad s",
        "trace s",
        "lower s",
        "XLA compile s",
        "exported / read / jitted",
        "next call ms",
    ]
    return C.markdown_table(header, rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--jobs", nargs="+", default=list(JOBS), choices=list(JOBS))
    args = ap.parse_args()
    res: dict = {"environment": C.environment(), "jobs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        for label in args.jobs:
            config, overrides = JOBS[label]
            cache = str(scratch / f"cache-{label}")
            runs = {}
            for kind, folder in (("off", "off"), ("first", cache), ("second", cache)):
                runs[kind] = run(config, overrides, folder, scratch)
                print(label, kind, json.dumps(runs[kind])[:400], flush=True)
            res["jobs"][label] = runs
    res["load_average_after"] = C.load_average()
    C.write_json("exported", res)
    md = report(res)
    (C.RESULTS_DIR / "exported.md").write_text(md + "\n", encoding="utf-8")
    print(md)


if __name__ == "__main__":
    main()
