"""Process-wide numerical settings, applied by entry points (CLI, tests, notebooks).

Nothing here runs at import time. :func:`setup` must be called before JAX, equinox
or diffrax are first used:

* float64: stiff ODE solves and their gradients are not reliable in float32;
* ``EQX_ON_ERROR=nan``: a NaN inside an implicit solver's Newton linear solve then
  becomes a NaN result (a failed solve, a divergence for the sampler) instead of an
  exception that ends a whole run. equinox reads it once, when it is imported.
"""

from __future__ import annotations

import os
import sys
import warnings

#: Largest size of the persistent compilation cache (bytes); least recently used
#: programs are evicted beyond it. Setting a size also makes JAX hold a file lock
#: while it reads or writes an entry (see :func:`enable_compilation_cache`).
CACHE_MAX_BYTES = 4 * 1024**3
#: Programs that compile faster than this are not worth a cache entry (seconds).
CACHE_MIN_COMPILE_SECS = 0.2


def compilation_cache_dir() -> str | None:
    """Where compiled XLA programs are kept between runs: the folder named by
    ``$IL6RCC_JAX_CACHE``; by default ``$XDG_CACHE_HOME/il6rcc/jax`` (usually
    ``~/.cache/il6rcc/jax``); None (no persistent cache) when it is ``off``.
    """
    value = os.environ.get("IL6RCC_JAX_CACHE", "").strip()
    if value.lower() in ("off", "0", "none", "false"):
        return None
    if value.lower() in ("", "default", "on"):
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        return os.path.join(base, "il6rcc", "jax")
    return value


def enable_compilation_cache(path: str) -> bool:
    """Keep compiled programs in ``path`` between runs, safely for several processes
    at once. Returns False (and warns) when that cannot be done safely.

    JAX writes a cache entry with a plain ``write_bytes``; without a size limit it
    takes no lock, so a process that reads an entry while another one is still
    writing it gets a truncated program (we saw crashes when several test processes
    shared the cache). With a size limit JAX evicts old entries and holds a
    ``filelock`` around every read and write of the cache folder, so a reader never
    sees a half-written entry. A corrupt entry (a process killed while writing) fails
    its checksum when read and is recompiled, with a warning.
    """
    import jax

    try:
        import filelock  # noqa: F401  (JAX needs it for the locked, size-limited cache)
    except ImportError:
        warnings.warn(
            "the persistent compilation cache needs the 'filelock' package to be safe "
            "with several processes; it stays off (pip install filelock)",
            RuntimeWarning,
            stacklevel=2,
        )
        return False
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as err:
        warnings.warn(
            f"cannot create the compilation cache folder {path!r} ({err}); it stays off. "
            f"Set IL6RCC_JAX_CACHE to a writable folder, or to 'off'.",
            RuntimeWarning,
            stacklevel=2,
        )
        return False
    max_bytes = int(os.environ.get("IL6RCC_JAX_CACHE_MAX_BYTES", CACHE_MAX_BYTES))
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_compilation_cache_max_size", max_bytes)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", CACHE_MIN_COMPILE_SECS)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return True


def setup(*, x64: bool = True, on_error: str = "nan") -> None:
    """Switch on float64, make solver errors non-fatal and keep compiled programs
    between runs (see :func:`compilation_cache_dir`; compiling a gradient takes up to
    minutes, reading it back a fraction of a second). Idempotent."""
    if "equinox" in sys.modules:
        current = sys.modules["equinox"]._config.EQX_ON_ERROR  # type: ignore[attr-defined]
        if current != on_error:
            warnings.warn(
                f"equinox was imported before il6rcc.runtime.setup() with "
                f"EQX_ON_ERROR={current!r}; a NaN inside an implicit solver's linear solve "
                f"will raise instead of failing one solve. Call setup() first, or set the "
                f"environment variable EQX_ON_ERROR={on_error} before starting Python.",
                RuntimeWarning,
                stacklevel=2,
            )
    else:
        os.environ.setdefault("EQX_ON_ERROR", on_error)
    import jax

    jax.config.update("jax_enable_x64", x64)
    cache = compilation_cache_dir()
    if cache is not None:
        enable_compilation_cache(cache)


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, which Slurm, taskset and
    containers set; the machine's count where the platform has no affinity)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def cpu_device_count(value: int | str | None) -> int | None:
    """The number of XLA CPU devices a config's ``cpu_devices`` asks for: ``auto``:
    :func:`available_cores`; an integer: itself; None: none asked for (JAX's default:
    one device, or ``--xla_force_host_platform_device_count`` in ``XLA_FLAGS``)."""
    if value is None:
        return None
    if value == "auto":
        return available_cores()
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise ValueError(
        f"cpu_devices: expected 'auto' or an integer >= 1, got {value!r} ({type(value).__name__})"
    )


def use_cpu_devices(n: int) -> bool:
    """Split the host CPU into ``n`` XLA devices, over which ``solver.batching: shard``
    spreads a batch of conditions (each device runs its own thread).

    JAX fixes its device count when its backend starts (at the first computation), so
    entry points call this after reading a config and before computing anything.
    Returns False, with a warning naming the count in effect, when the backend already
    runs with another count (a notebook or a library caller that computed before):
    results are the same, only the layout differs.
    """
    import jax

    try:
        jax.config.update("jax_num_cpu_devices", int(n))
    except RuntimeError:  # JAX has started: fine if it has that many CPU devices anyway
        if len(jax.devices("cpu")) == n:
            return True
        warnings.warn(
            f"cpu_devices asks for {n} CPU device(s), but JAX already runs with "
            f"{len(jax.devices('cpu'))}: the count is fixed once JAX has computed "
            f"anything. Start a new process to change it.",
            RuntimeWarning,
            stacklevel=2,
        )
        return False
    return True


def require_x64() -> None:
    """Raise a clear error when float64 is off (ODE solves need it)."""
    import jax

    if not jax.config.jax_enable_x64:
        raise RuntimeError(
            "il6rcc solves ODEs in float64, but JAX is in float32 mode. Call "
            "il6rcc.runtime.setup() before using il6rcc (the il6rcc command and the test "
            "suite do this), or set JAX_ENABLE_X64=1."
        )


def device_description() -> dict[str, str]:
    """The JAX backend and devices in use, for manifests and reports."""
    import jax

    devices = jax.devices()
    return {
        "backend": jax.default_backend(),
        "devices": ", ".join(f"{d.platform}:{d.device_kind}" for d in devices),
        "n_devices": str(len(devices)),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "jax_platforms": os.environ.get("JAX_PLATFORMS", ""),
        "x64": str(bool(jax.config.jax_enable_x64)),
    }


__all__ = [
    "CACHE_MAX_BYTES",
    "CACHE_MIN_COMPILE_SECS",
    "available_cores",
    "compilation_cache_dir",
    "cpu_device_count",
    "device_description",
    "enable_compilation_cache",
    "require_x64",
    "setup",
    "use_cpu_devices",
]
