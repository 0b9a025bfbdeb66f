"""Helpers shared by the benchmarks: environment report, timing, result files.

Benchmarks are not tests: nothing here asserts a time. Every script calls
:func:`il6rcc.runtime.setup` before JAX is used (float64, ``EQX_ON_ERROR=nan``).
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata as _md
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Repository root (the benchmarks live in ``<repo>/benchmarks``).
REPO = Path(__file__).resolve().parents[1]
#: Where ``run_all.py`` and the scripts write their JSON and Markdown results.
RESULTS_DIR = Path(__file__).resolve().parent / "results"

PACKAGES = (
    "jax",
    "jaxlib",
    "diffrax",
    "equinox",
    "optimistix",
    "lineax",
    "numpy",
    "scipy",
    "amici",
    "petab",
    "python-libsbml",
)


def setup() -> None:
    """float64 and non-fatal solver errors, before anything imports JAX."""
    import il6rcc.runtime

    il6rcc.runtime.setup()


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = _md.version(name)
        except _md.PackageNotFoundError:
            out[name] = "not installed"
    return out


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def environment() -> dict[str, Any]:
    """Machine, thread settings and versions, for the results file."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    env = {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {cores} CPU cores available to this process",
        "cpu_model": _cpu_model(),
        "cores": cores,
        "threads": {
            "XLA_FLAGS": os.environ.get(
                "XLA_FLAGS", "(unset: XLA's CPU thread pool uses all cores)"
            ),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "(unset)"),
            "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "(unset)"),
        },
        "load_average_at_start": load_average(),
        "versions": versions(),
        # file names only: a recorded result must not carry the machine's paths
        "argv": [Path(a).name if os.sep in a else a for a in sys.argv],
    }
    try:
        import jax

        env["jax_devices"] = [f"{d.platform}:{d.device_kind}" for d in jax.devices()]
    except Exception:  # noqa: BLE001 - report only
        env["jax_devices"] = []
    return env


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def repeat(fn: Callable[[], Any], n: int) -> dict[str, Any]:
    """Run ``fn`` ``n`` times; wall times in seconds (median, min, all)."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"median": statistics.median(times), "min": min(times), "runs": times}


def compile_jitted(fn, *args):
    """Trace+lower and compile a ``jax.jit`` function ahead of time.

    Returns ``(compiled, seconds tracing+lowering, seconds compiling)``.
    """
    t0 = time.perf_counter()
    lowered = fn.lower(*args)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    return compiled, t1 - t0, t2 - t1


def time_jitted(fn, *args, repeats: int) -> tuple[Any, dict[str, Any]]:
    """Compile ``fn`` for ``args`` (timed apart), then time ``repeats`` calls.

    Returns ``(output of the first call, timings)``; timings hold ``trace_s``,
    ``compile_s``, ``first_call_s`` and the run-time ``median``/``min``/``runs``.
    """
    import jax

    compiled, t_trace, t_compile = compile_jitted(fn, *args)
    t0 = time.perf_counter()
    out = jax.block_until_ready(compiled(*args))
    first = time.perf_counter() - t0
    stats = repeat(lambda: jax.block_until_ready(compiled(*args)), repeats)
    return out, {"trace_s": t_trace, "compile_s": t_compile, "first_call_s": first, **stats}


def write_json(name: str, payload: dict[str, Any], out_dir: Path | None = None) -> Path:
    out_dir = Path(out_dir or RESULTS_DIR)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=_jsonable) + "\n", encoding="utf-8")
    return path


def _jsonable(x):
    try:
        import numpy as np

        if isinstance(x, np.ndarray):
            return x.tolist()
        if isinstance(x, np.generic):
            return x.item()
    except ImportError:
        pass
    return str(x)


def ms(seconds: float | None) -> str:
    """Seconds as a short millisecond string for tables."""
    if seconds is None:
        return "-"
    if seconds >= 10:
        return f"{seconds * 1e3:,.0f}"
    return f"{seconds * 1e3:.1f}" if seconds < 1 else f"{seconds * 1e3:.0f}"


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.2f}"


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def amici_path_ok() -> bool:
    """AMICI's generated modules need the venv's own swig first on PATH."""
    first = os.environ.get("PATH", "").split(os.pathsep)[0]
    return Path(first).resolve() == Path(sys.executable).parent.resolve()


def with_venv_path() -> None:
    """Put the interpreter's bin directory first on PATH (for AMICI's swig)."""
    bindir = str(Path(sys.executable).parent)
    parts = os.environ.get("PATH", "").split(os.pathsep)
    if parts and parts[0] != bindir:
        os.environ["PATH"] = os.pathsep.join([bindir, *parts])
