"""Conditions sharded over CPU devices against one lock-step batch (issue 13, item 4).

    python benchmarks/bench_sharding.py [--rounds 6] [--calls 3]

One value and gradient of a job's log density (default: configs/default.yaml, all its
evidence conditions), with ``solver.batching: vmap`` on one CPU device (as shipped)
against ``solver.batching: shard`` on ``--devices`` CPU devices (``cpu_devices``).

JAX fixes its device count per process, so each setting runs in a worker process of its
own. The workers are started one after the other (each traces and compiles, then
reports ready) and then take turns: in every round each worker times ``--calls``
calls at the same points (the prior centre, then points jittered around it), the
order of the two alternating from round to round, and only one of them computes at a
time. Medians are over all timed calls; the ratio is vmap / shard (> 1: sharding is
faster). The load average before and after says how busy the machine was. Nothing here
asserts a time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _common as C  # noqa: E402

SETTINGS = {"vmap": ("vmap", 1), "shard": ("shard", None)}


def worker(batching: str, devices: int, config: str, jitter: float, calls: int) -> int:
    """Build, compile and answer ``go`` lines with one JSON line of call times."""
    C.setup()
    import jax
    import jax.numpy as jnp
    import numpy as np

    from il6rcc.configs import load_config
    from il6rcc.jobs import build_posterior

    t0 = time.perf_counter()
    posterior, info = build_posterior(
        load_config(config, {"solver.batching": batching, "cpu_devices": devices})
    )
    x0 = np.asarray(posterior.initial_point(), dtype=np.float64)
    fn = jax.jit(lambda x, d: jax.value_and_grad(lambda y: -posterior.log_density(y, d))(x))
    compiled = fn.lower(jnp.asarray(x0), posterior.data).compile()
    jax.block_until_ready(compiled(jnp.asarray(x0), posterior.data))  # first call untimed
    rng = np.random.default_rng(0)
    ready = {
        "ready": True,
        "devices": jax.device_count(),
        "n_conditions": info["n_conditions"],
        "dim": len(x0),
        "setup_s": time.perf_counter() - t0,
    }
    print(json.dumps(ready), flush=True)
    for line in sys.stdin:
        if line.strip() != "go":
            break
        points = [np.zeros_like(x0)] + [
            jitter * rng.standard_normal(len(x0)) for _ in range(calls - 1)
        ]
        times, values = [], []
        for dx in points:
            x = jnp.asarray(x0 + dx)
            start = time.perf_counter()
            value, grad = compiled(x, posterior.data)
            jax.block_until_ready(grad)
            times.append(time.perf_counter() - start)
            finite = bool(np.isfinite(float(value)) and np.all(np.isfinite(np.asarray(grad))))
            values.append(float(value) if finite else None)
        print(json.dumps({"times": times, "values": values}), flush=True)
    return 0


def _start(name: str, args) -> tuple[subprocess.Popen, dict]:
    batching, devices = SETTINGS[name]
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        batching,
        "--devices",
        str(devices or args.devices),
        "--config",
        args.config,
        "--jitter",
        str(args.jitter),
        "--calls",
        str(args.calls),
    ]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line:
        raise SystemExit(f"worker {name} ended before it was ready (exit {proc.wait()})")
    return proc, json.loads(line)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(C.REPO / "configs" / "default.yaml"))
    ap.add_argument("--devices", type=int, default=2, help="CPU devices of the shard worker")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--calls", type=int, default=3, help="timed calls per worker per round")
    ap.add_argument("--jitter", type=float, default=0.05)
    ap.add_argument("--out", type=Path, default=C.RESULTS_DIR)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.devices, args.config, args.jitter, args.calls)

    load_start = C.load_average()
    workers, ready = {}, {}
    for name in SETTINGS:  # one after the other: one process traces and compiles at a time
        workers[name], ready[name] = _start(name, args)
        print(f"{name}: ready {ready[name]}", flush=True)
    times = {name: [] for name in SETTINGS}
    values = {name: [] for name in SETTINGS}
    round_ratio = []
    for r in range(args.rounds):
        order = list(SETTINGS) if r % 2 == 0 else list(reversed(SETTINGS))
        medians = {}
        for name in order:
            proc = workers[name]
            proc.stdin.write("go\n")
            proc.stdin.flush()
            result = json.loads(proc.stdout.readline())
            times[name] += result["times"]
            values[name] += result["values"]
            medians[name] = sorted(result["times"])[len(result["times"]) // 2]
        round_ratio.append(medians["vmap"] / medians["shard"])
        print(f"round {r + 1}: {medians} ratio {round_ratio[-1]:.2f}", flush=True)
    for proc in workers.values():
        proc.stdin.close()
        proc.wait()
    load_end = C.load_average()

    import numpy as np

    med = {name: float(np.median(t)) for name, t in times.items()}
    pairs = [(a, b) for a, b in zip(values["vmap"], values["shard"], strict=True)]
    rel = [abs(a - b) / abs(a) for a, b in pairs if a is not None and b is not None]
    n_bad = {name: sum(v is None for v in vals) for name, vals in values.items()}
    rows = [
        [
            f"{name} ({ready[name]['devices']} device{'s' if ready[name]['devices'] > 1 else ''})",
            C.ms(med[name]),
            C.ms(float(np.min(times[name]))),
            len(times[name]),
            f"{ready[name]['setup_s']:.0f}",
            n_bad[name],
        ]
        for name in SETTINGS
    ]
    table = C.markdown_table(
        ["batching", "value+grad median", "min", "calls", "build+compile s", "non-finite"], rows
    )
    ratio = med["vmap"] / med["shard"]
    lines = [
        f"Value and gradient of {Path(args.config).name}'s log density "
        f"({ready['vmap']['dim']} coordinates, {ready['vmap']['n_conditions']} conditions), "
        f"{args.rounds} alternating rounds of {args.calls} calls per worker; load average "
        f"{load_start} at start, {load_end} at end.",
        "",
        table,
        "",
        f"vmap / shard (medians): {ratio:.2f}; per round: "
        + ", ".join(f"{x:.2f}" for x in round_ratio),
        f"largest relative difference of the two -log densities at the same point: "
        f"{max(rel) if rel else float('nan'):.1e}",
    ]
    text = "\n".join(lines)
    print(text)
    env = C.environment()
    env["load_average_at_end"] = load_end
    env["load_average_at_start"] = load_start
    env["jax_devices"] = {name: r["devices"] for name, r in ready.items()}  # the workers'
    payload = {
        "environment": env,
        "config": Path(args.config).name,
        "rounds": args.rounds,
        "calls_per_round": args.calls,
        "workers": ready,
        "times_s": times,
        "median_s": med,
        "ratio_vmap_over_shard": ratio,
        "round_ratios": round_ratio,
        "max_relative_value_difference": max(rel) if rel else None,
        "non_finite": n_bad,
    }
    C.write_json("sharding", payload, args.out)
    (args.out / "sharding.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
