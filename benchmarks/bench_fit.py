"""Speed of the default fit (issue 4): wall time, compile time, ESS per second of the
slowest parameter, and the time to max R-hat < 1.01 and min ESS >= 400.

    python benchmarks/bench_fit.py                 # runs il6rcc fit configs/default.yaml
    python benchmarks/bench_fit.py --run DIR       # analyses a finished run folder

The run's progress lines (stderr) give the time of every chunk of iterations, so
compile time is the first chunk of each phase minus a steady chunk, and the sampling
rate comes from the steady chunks. R-hat and ESS are recomputed on growing prefixes of
the saved draws (arviz 1.x, rank-normalised) to find when the gates were first met; if
they were not met within the run, the time is extrapolated from the ESS rate (ESS grows
linearly in the number of draws for a chain that has mixed) and marked as such. Nothing
here fails on a time.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _common as C  # noqa: E402

LINE = re.compile(
    r"(warmup|sampling)\s+(\d+)/(\d+) iterations x (\d+) chains \|\s+([\d.]+|inf) it/s"
)


def chunk_times(log: str) -> list[tuple[str, int, float]]:
    """(phase, iterations done, seconds of that chunk) from the progress lines."""
    out, prev = [], 0
    for phase, done, _total, _chains, rate in LINE.findall(log):
        done = int(done)
        n = done - prev
        prev = done
        rate = float(rate)
        out.append((phase, done, n / rate if rate > 0 else float("nan")))
    return out


def gate_times(tree, nuts_seconds_per_draw: float, max_rhat=1.01, min_ess=400.0) -> dict:
    import arviz as az

    theta = tree["posterior"]["theta"]
    n_draws = theta.sizes["draw"]
    first = None
    for n in range(50, n_draws + 1, 25):
        sub = tree["posterior"].to_dataset().isel(draw=slice(0, n))
        rhat = float(np.max(np.asarray(az.rhat(sub, var_names=["theta"])["theta"])))
        ess = float(np.min(np.asarray(az.ess(sub, var_names=["theta"])["theta"])))
        if rhat < max_rhat and ess >= min_ess:
            first = n
            break
    full = tree["posterior"].to_dataset()
    ess = np.asarray(az.ess(full, var_names=["theta"])["theta"])
    rhat = np.asarray(az.rhat(full, var_names=["theta"])["theta"])
    names = list(np.asarray(theta["parameter"]))
    worst = int(np.argmin(ess))
    out = {
        "min_ess_bulk": float(ess[worst]),
        "slowest_parameter": names[worst],
        "max_rhat": float(np.max(rhat)),
        "draws_per_chain": int(n_draws),
    }
    if first is not None:
        out["gates_met_after_draws"] = first
        out["time_to_gates_s"] = first * nuts_seconds_per_draw
        out["time_to_gates_kind"] = "measured"
    else:
        needed = n_draws * min_ess / max(float(ess[worst]), 1e-9)
        out["time_to_gates_s"] = needed * nuts_seconds_per_draw
        out["time_to_gates_kind"] = (
            f"extrapolated from the ESS rate ({needed:.0f} draws per chain; R-hat "
            f"{out['max_rhat']:.3f} at the end of the run)"
        )
    return out


def analyse(run: Path, log: str) -> dict:
    import xarray as xr

    diag = json.loads((run / "diagnostics.json").read_text())
    chunks = chunk_times(log)
    warm = [c for c in chunks if c[0] == "warmup"]
    samp = [c for c in chunks if c[0] == "sampling"]
    steady = np.median([s for _, _, s in samp[1:]]) if len(samp) > 1 else float("nan")
    per_iter = steady / max(samp[1][1] - samp[0][1], 1) if len(samp) > 1 else float("nan")
    compile_s = (warm[0][2] - steady if warm else 0.0) + (samp[0][2] - steady if samp else 0.0)
    tree = xr.open_datatree(run / "posterior.nc", engine="h5netcdf")
    g = gate_times(tree, per_iter)
    tree.close()
    nuts = diag.get("nuts_seconds", float("nan"))
    return {
        "wall_s": diag["wall_seconds"],
        "map_s": diag.get("map_seconds"),
        "nuts_s": nuts,
        "nuts_compile_s_estimate": compile_s,
        "seconds_per_iteration_steady": per_iter,
        "min_ess_bulk_per_s": g["min_ess_bulk"] / nuts if nuts == nuts else None,
        "divergences": diag["divergences"],
        "gates_passed": diag["passed"],
        "failed_gates": diag["failed_gates"],
        "prior_draws_with_failed_solves": diag.get("prior_draws_with_failed_solves"),
        **g,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, help="a finished run folder (with fit.log next to it)")
    ap.add_argument("--config", default="configs/default.yaml")
    ap.add_argument("--out", type=Path, default=C.RESULTS_DIR)
    args = ap.parse_args(argv)
    if args.run is None:
        run = args.out / "fit_default"
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "il6rcc.cli", "fit", args.config, "--out", str(run)],
            capture_output=True,
            text=True,
            check=False,
        )
        log = proc.stderr
        (args.out / "fit_default.log").write_text(log)
        print(f"fit finished in {time.perf_counter() - t0:.0f} s (exit {proc.returncode})")
    else:
        run = args.run
        log_path = run.parent / f"{run.name}.log"
        log = log_path.read_text() if log_path.is_file() else ""
    result = analyse(run, log)
    result["environment"] = C.environment()
    C.write_json("fit", result, args.out)
    for k, v in result.items():
        if k != "environment":
            print(f"{k:32s} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
