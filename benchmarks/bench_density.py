"""Cost of one value and gradient of a job's log posterior density (issue 13, item 4).

    python benchmarks/bench_density.py                          # configs/default.yaml
    python benchmarks/bench_density.py --variant base --variant solver.solver=bdf

Each ``--variant`` is a comma-separated list of dotted config overrides (``base``: the
config as shipped). Every variant's ``value_and_grad`` (the one every method calls) is
traced and compiled apart (trace, XLA compile: reported separately, the persistent
compilation cache off unless ``--cache``), then all variants are timed interleaved, one
call of each per round, at the prior centre and at points jittered around it (the same
points for every variant), so that load from other processes falls on all alike. A
variant whose value or gradient is not finite at a point is reported as such. Nothing
here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _common as C  # noqa: E402


def _overrides(spec: str) -> dict[str, str]:
    if spec == "base":
        return {}
    pairs = [item.split("=", 1) for item in spec.split(",")]
    bad = [item for item in pairs if len(item) != 2]
    if bad:
        raise SystemExit(f"--variant {spec!r}: expected KEY=VALUE[,KEY=VALUE...] or 'base'")
    return dict(pairs)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(C.REPO / "configs" / "default.yaml"))
    ap.add_argument("--variant", action="append", help="overrides, or 'base' (repeatable)")
    ap.add_argument("--repeats", type=int, default=6, help="timed rounds after the first")
    ap.add_argument("--jitter", type=float, default=0.05, help="SD of the points around x0")
    ap.add_argument("--cache", action="store_true", help="keep the persistent compile cache")
    ap.add_argument("--out", type=Path, default=C.RESULTS_DIR)
    args = ap.parse_args(argv)
    if not args.cache:
        os.environ["IL6RCC_JAX_CACHE"] = "off"
    C.setup()

    import jax
    import jax.numpy as jnp
    import numpy as np

    from il6rcc.configs import load_config
    from il6rcc.jobs import build_posterior

    env = C.environment()
    variants: dict[str, dict] = {}
    for spec in args.variant or ["base"]:
        posterior, _ = build_posterior(load_config(args.config, _overrides(spec)))
        x0 = np.asarray(posterior.initial_point(), dtype=np.float64)
        fn = jax.jit(  # what every method calls (CompiledPosterior.value_and_grad)
            lambda x, data, post=posterior: jax.value_and_grad(
                lambda y: -post.log_density(y, data)
            )(x)
        )
        t0 = time.perf_counter()
        lowered = fn.lower(jnp.asarray(x0), posterior.data)
        t1 = time.perf_counter()
        compiled = lowered.compile()
        t2 = time.perf_counter()
        variants[spec] = {
            "fn": compiled,
            "data": posterior.data,
            "x0": x0,
            "trace_s": t1 - t0,
            "compile_s": t2 - t1,
            "times": [],
            "values": [],
            "grads": [],
        }
        print(f"{spec}: trace {t1 - t0:.1f} s, XLA compile {t2 - t1:.1f} s", flush=True)
    dim = len(next(iter(variants.values()))["x0"])
    rng = np.random.default_rng(0)
    points = [np.zeros(dim)] + [args.jitter * rng.standard_normal(dim) for _ in range(args.repeats)]
    for dx in points:
        for v in variants.values():
            x = jnp.asarray(v["x0"] + dx)
            start = time.perf_counter()
            value, grad = v["fn"](x, v["data"])
            jax.block_until_ready(grad)
            v["times"].append(time.perf_counter() - start)
            finite = bool(np.isfinite(float(value)) and np.all(np.isfinite(np.asarray(grad))))
            v["values"].append(float(value) if finite else None)
            v["grads"].append(np.asarray(grad) if finite else None)

    first = next(iter(variants.values()))

    def agreement(v) -> tuple[float | None, float | None]:
        """Largest relative difference from the first variant over the points where
        both are finite: of the value, and of the gradient (max |difference| / max |g|)."""
        pairs = [
            (a, b, ga, gb)
            for a, b, ga, gb in zip(
                v["values"], first["values"], v["grads"], first["grads"], strict=True
            )
            if a is not None and b is not None
        ]
        if not pairs:
            return None, None
        dv = max(abs(a - b) / abs(b) for a, b, _, _ in pairs)
        dg = max(float(np.max(np.abs(ga - gb)) / np.max(np.abs(gb))) for _, _, ga, gb in pairs)
        return dv, dg

    rows, records = [], []
    for spec, v in variants.items():
        dv, dg = agreement(v)
        timed = v["times"][1:]  # the first call of a compiled function is not timed
        n_bad = sum(x is None for x in v["values"])
        rows.append(
            [
                spec,
                C.ms(float(np.median(timed))),
                C.ms(float(np.min(timed))),
                f"{v['trace_s']:.1f}",
                f"{v['compile_s']:.1f}",
                f"{n_bad}/{len(v['values'])}",
                "" if v["values"][0] is None else f"{v['values'][0]:.6f}",
                "-" if dv is None else f"{dv:.1e} / {dg:.1e}",
            ]
        )
        records.append(
            {
                "variant": spec,
                "median_ms": 1e3 * float(np.median(timed)),
                "min_ms": 1e3 * float(np.min(timed)),
                "trace_s": v["trace_s"],
                "compile_s": v["compile_s"],
                "non_finite": n_bad,
                "neg_log_density_at_x0": v["values"][0],
                "neg_log_density": v["values"],
                "max_rel_diff_value_vs_first": dv,
                "max_rel_diff_grad_vs_first": dg,
            }
        )
    table = C.markdown_table(
        [
            "variant",
            "value+grad median",
            "min",
            "trace s",
            "XLA compile s",
            "non-finite points",
            "-log p at x0",
            "rel. diff value / grad vs first",
        ],
        rows,
    )
    load = env.get("load_average_at_start")
    header = (
        f"Value and gradient of {Path(args.config).name}'s log density ({dim} coordinates), "
        f"{args.repeats} interleaved rounds; load average at start {load}."
    )
    print(header + "\n\n" + table)
    config = Path(args.config).resolve()
    shown = config.relative_to(C.REPO) if config.is_relative_to(C.REPO) else config.name
    payload = {"environment": env, "config": str(shown), "records": records}
    C.write_json("density", payload, args.out)
    (args.out / "density.md").write_text(header + "\n\n" + table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
