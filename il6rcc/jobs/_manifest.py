"""What makes a run traceable: hashes, versions, device, seeds, solver settings."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
from pathlib import Path

from .. import runtime

PACKAGES = (
    "il6rcc",
    "jax",
    "jaxlib",
    "diffrax",
    "equinox",
    "optimistix",
    "lineax",
    "numpyro",
    "arviz",
    "arviz-base",
    "arviz-stats",
    "arviz-plots",
    "xarray",
    "numpy",
    "scipy",
    "pandas",
    "pydantic",
    "h5netcdf",
    "petab",
    "python-libsbml",
)


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_state() -> dict[str, str | bool]:
    """Commit and dirty flag of the il6rcc source tree, when it is a git checkout."""
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = (
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=root,
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout.strip()
            != ""
        )
        return {"sha": sha, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"sha": "unknown (not a git checkout)", "dirty": False}


def manifest(loaded, run_loaded, info: dict, argv) -> dict:
    """The manifest of a new run (status, times and diagnostics are added later).

    ``info``: from :func:`il6rcc.jobs.build_posterior` (kind, input hashes, sizes, the
    solver settings the run uses)."""
    cfg = loaded.config
    if info["kind"] == "petab":
        problem_yaml = info["problem_yaml"]
        model = {"petab": problem_yaml, "name": f"petab:{Path(problem_yaml).stem}"}
    else:
        model = {"name": cfg.model.name, "variant": str(cfg.model.variant)}
    return {
        "il6rcc_manifest": 1,
        "name": cfg.name,
        "kind": info["kind"],
        "command": " ".join(Path(a).name if i == 0 else a for i, a in enumerate(argv)),
        "config": {
            "file": str(loaded.path),
            "sha256": loaded.sha256,
            "run_sha256": run_loaded.sha256,
            "files_read": [str(p) for p in loaded.files],
            "overrides": dict(loaded.overrides),
        },
        "data": {
            "files": info["data_files"],
            "prior_tables": info["prior_tables"],
            **{k: v for k, v in info.items() if k.startswith("n_")},
        },
        "model": model,
        "solver": info["solver"],
        "inference": cfg.inference.model_dump(mode="json"),
        "seeds": {"inference.seed": cfg.inference.seed},
        "git": git_state(),
        "packages": package_versions(),
        "device": {
            **runtime.device_description(),
            # asked for by the config's cpu_devices ("" when none: JAX's default)
            "cpu_devices": "" if info.get("cpu_devices") is None else str(info["cpu_devices"]),
        },
        "environment": {
            k: os.environ.get(k, "")
            for k in ("XLA_FLAGS", "JAX_PLATFORMS", "EQX_ON_ERROR", "JAX_ENABLE_X64")
        },
        "status": "created",
    }


def mark_complete(man: dict, diag: dict, wall: float) -> dict:
    """The manifest of a finished run (exit status, gates, end time)."""
    import datetime as dt

    man.update(
        status="complete",
        exit_status=0,
        diagnostics_passed=diag["passed"],
        finished=dt.datetime.now(dt.UTC).isoformat(),
        wall_seconds=wall,
    )
    return man


__all__ = ["git_state", "manifest", "mark_complete", "package_versions"]
