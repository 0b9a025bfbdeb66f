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


def compilation_cache_dir() -> str | None:
    """Where compiled XLA programs are kept between runs: the folder named by
    ``$IL6RCC_JAX_CACHE`` (``default`` means ``~/.cache/il6rcc/jax``); None (no
    persistent cache, the default) when it is unset or ``off``.

    Off by default: while several processes shared the cache, reading a cached
    executable crashed the process (segfault / abort inside JAX's cache read) twice in
    our tests. Opt in for a single job at a time, ideally with a folder of its own.
    """
    value = os.environ.get("IL6RCC_JAX_CACHE", "").strip()
    if value.lower() in ("", "off", "0", "none", "false"):
        return None
    if value.lower() == "default":
        return os.path.join(os.path.expanduser("~"), ".cache", "il6rcc", "jax")
    return value


def setup(*, x64: bool = True, on_error: str = "nan") -> None:
    """Switch on float64, make solver errors non-fatal and, when ``IL6RCC_JAX_CACHE``
    names a folder, keep compiled programs there between runs (compiling the circuit's
    gradient takes minutes). Idempotent."""
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
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 2.0)


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


__all__ = ["compilation_cache_dir", "device_description", "require_x64", "setup"]
