"""``il6rcc profile RUN_DIR --parameters NAME ... --out DIR``: profile likelihoods and
profile posteriors of chosen parameters of a finished run (:func:`il6rcc.inference.profile`).

The run's posterior is rebuilt from its config (an ODE model fitted to evidence, or a
PEtab problem); every profile starts from the run's best MAP optimum (``map.csv``; a
run without one, e.g. SVI, gets a MAP multi-start with its config's settings first).
Outputs, all written to a temporary folder that becomes ``DIR`` only when complete::

    profiles.csv          one row per profile point (see :func:`profile_table`)
    profiles.md           the summary: 95 % intervals, practically non-identifiable
                          parameters (also printed)
    profiles.json         the summary as data (see :func:`profile_record`)
    figures/profile_<parameter>.png

By default the profiles run one after the other in this process: a profile is a few
hundred small optimisations of one compiled posterior, whose compilation can cost more
than the profile itself, and one process shares it across every profile. With
``--jobs N`` (N > 1) or ``--executor slurm`` (:func:`run_profile_sweep`) each
parameter's profile is an element of a profile sweep (:mod:`il6rcc.jobs.sweep`): its
own process, on a local pool or as a Slurm array task, writing its own folder
``DIR/parameter=NAME/``; the elements are then merged into ``DIR`` (the same files and
numbers as the one-process run, which is deterministic).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .. import _io
from ..errors import Il6rccError
from ..inference import (
    PROFILE_THRESHOLD,
    MapSettings,
    Posterior,
    Profile,
    ProfileSettings,
    check_profile_names,
    map_multistart,
    prior_range,
    profile,
)
from ._profile_summary import (
    CSV,
    MARKDOWN,
    RECORDS,
    open_at_range,
    profile_record,
    summary_markdown,
)
from ._run_folder import open_run


# ------------------------------------------------------------------ natural scale
def natural_coordinates(posterior: Posterior, x: np.ndarray, data):
    """For every coordinate, the recorded (natural-scale) variable that depends on it
    alone (its label and a function of points [k, n] -> [k] values), or None where no
    variable does (e.g. a non-centred cell-line offset): read off the Jacobian of
    :meth:`Posterior.natural` at ``x`` (no ODE solve)."""
    layout = posterior.layout
    sample = posterior.natural(jnp.asarray(x), data)
    keys = [k for k in layout.posterior if k in sample]
    labels = []
    for k in keys:
        shape = np.shape(sample[k])
        dims = layout.dims.get(k, ())
        for idx in np.ndindex(*shape):
            names = [str(layout.coords[d][i]) for d, i in zip(dims, idx, strict=False)]
            labels.append(f"{k}[{', '.join(names)}]" if names else k)

    def flat(x):
        nat = posterior.natural(x, data)
        return jnp.concatenate([jnp.ravel(nat[k]) for k in keys])

    jac = np.asarray(jax.jacfwd(flat)(jnp.asarray(x, dtype=jnp.float64)))
    flat_many = jax.jit(jax.vmap(flat))
    out = []
    for j in range(posterior.dim):
        rows = [
            r
            for r in np.flatnonzero(jac[:, j] != 0)
            if np.count_nonzero(jac[r]) == 1  # depends on coordinate j alone
        ]
        if not rows:
            out.append(None)
            continue
        r = int(rows[0])
        out.append((labels[r], lambda xs, r=r: np.asarray(flat_many(jnp.asarray(xs)))[:, r]))
    return out


# ------------------------------------------------------------------ outputs
def profile_table(profiles: Sequence[Profile], naturals):
    """One row per profile point: parameter, profile (likelihood or posterior), its
    value on the unconstrained scale and on the natural scale (with the natural
    variable's name; empty where no variable depends on the coordinate alone), both
    negative log densities there, ``delta`` (the profiled objective minus its minimum),
    the optimiser's status, convergence and steps."""
    import pandas as pd

    frames = []
    for p in profiles:
        nat = naturals[p.index]
        frames.append(
            pd.DataFrame(
                {
                    "parameter": p.name,
                    "profile": p.kind,
                    "unconstrained": p.values,
                    "natural_name": nat[0] if nat else "",
                    "natural": nat[1](p.xs) if nat else np.nan,
                    "neg_log_likelihood": p.neg_log_likelihood,
                    "neg_log_posterior": p.neg_log_posterior,
                    "delta": p.objective - p.minimum,
                    "status": p.status,
                    "converged": p.converged,
                    "steps": p.steps,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _natural_of(p: Profile, value: float, naturals) -> float:
    """The natural-scale value of the coordinate at unconstrained ``value``."""
    nat = naturals[p.index]
    if nat is None or not np.isfinite(value):
        return value
    x = np.array(p.xs[np.argmin(p.objective)], dtype=np.float64)
    x[p.index] = value
    return float(nat[1](x[None])[0])


def summary_records(profiles: Sequence[Profile], naturals) -> list[dict]:
    """Each profile's summary as plain data (``profiles.json``; see
    :func:`profile_record`)."""
    return [
        profile_record(
            p,
            naturals[p.index][0] if naturals[p.index] else None,
            lambda v, p=p: _natural_of(p, v, naturals),
        )
        for p in profiles
    ]


def summary_text(profiles: Sequence[Profile], naturals, run_dir: Path | None = None) -> str:
    """The Markdown summary: each profile's 95 % interval (natural scale where one
    variable depends on the coordinate alone) and the practically non-identifiable
    parameters (judged on the likelihood profiles)."""
    records = summary_records(profiles, naturals)
    return summary_markdown(records, PROFILE_THRESHOLD, None if run_dir is None else str(run_dir))


def _figure(p_lik: Profile, p_post: Profile, naturals, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nat = naturals[p_lik.index]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    shown = []
    for p, style in ((p_lik, "o-"), (p_post, "s--")):
        xs = nat[1](p.xs) if nat else p.values
        ok = np.isfinite(p.objective)
        ax.plot(xs[ok], (p.objective - p.minimum)[ok], style, ms=3, label=f"profile {p.kind}")
        shown += list(xs[ok])
    ax.axhline(PROFILE_THRESHOLD, color="k", lw=0.8, ls=":", label="95 % threshold")
    title = p_lik.name + (" (practically non-identifiable)" if open_at_range(p_lik) else "")
    if not shown:  # every point failed: an empty figure says so
        shown = [_natural_of(p_lik, v, naturals) for v in p_lik.prior_range]
        title = f"{p_lik.name}: every optimisation failed"
    left, right = min(shown), max(shown)
    pad = 0.05 * (right - left) or 0.5
    ax.set_xlim(left - pad, right + pad)
    for e in (_natural_of(p_lik, v, naturals) for v in p_lik.prior_range):
        if left - pad <= e <= right + pad:  # the prior range's edge, where it is in view
            ax.axvline(e, color="grey", lw=0.8, ls="--")
    ax.set_xlabel(nat[0] if nat else f"{p_lik.name} (unconstrained)")
    ax.set_ylabel("rise above minimum (-log)")
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    _io.save_figure(fig, path, dpi=120)
    plt.close(fig)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "parameter"


def write_profiles(
    posterior: Posterior,
    start: np.ndarray,
    parameters: Sequence[str],
    out: Path,
    settings: ProfileSettings | None = None,
    source: Path | None = None,
    quiet: bool = False,
) -> list[Profile]:
    """Profile ``parameters`` (coordinate names) of ``posterior`` from ``start`` [n] and
    write the outputs (see the module docstring) to ``out``, atomically (a temporary
    folder renamed onto ``out`` when complete). Returns the profiles (likelihood and
    posterior of each parameter, in that order)."""
    settings = settings or ProfileSettings()
    out = Path(out)
    check_profile_names(posterior, list(parameters))
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise Il6rccError(f"{out}: the output folder exists and is not empty; give a new --out")
    say = (lambda line: None) if quiet else print
    data = jax.tree.map(jnp.asarray, posterior.data)
    ranges = prior_range(posterior, settings, data)
    profiles = []
    for name in parameters:
        for kind in ("likelihood", "posterior"):
            say(f"profile {kind} of {name}")
            profiles.append(profile(posterior, name, kind, start, settings, data, ranges, say))
    naturals = natural_coordinates(posterior, np.asarray(start), data)
    table = profile_table(profiles, naturals)
    records = summary_records(profiles, naturals)
    run = None if source is None else str(source)
    summary = summary_markdown(records, PROFILE_THRESHOLD, run)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        table.to_csv(tmp / CSV, index=False)
        (tmp / MARKDOWN).write_text(summary)
        doc = {"run": run, "threshold": PROFILE_THRESHOLD, "profiles": records}
        (tmp / RECORDS).write_text(json.dumps(doc, indent=2) + "\n")
        for i in range(0, len(profiles), 2):
            name = profiles[i].name
            _figure(
                profiles[i],
                profiles[i + 1],
                naturals,
                tmp / "figures" / f"profile_{_safe(name)}.png",
            )
        if out.exists():
            out.rmdir()  # empty (checked above)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    say(summary)
    return profiles


def run_start(folder, posterior: Posterior, data) -> np.ndarray:
    """The run's best MAP optimum (``map.csv``), or a fresh MAP multi-start with the
    run's settings when the run has none."""
    path = folder.path / "map.csv"
    if path.is_file():
        import pandas as pd

        table = pd.read_csv(path)
        names = list(posterior.coordinate_names)
        missing = [n for n in names if n not in table.columns]
        if missing:
            raise Il6rccError(
                f"{path}: columns {missing} missing; the run's config no longer builds the "
                f"posterior it fitted (expected the coordinates {names})"
            )
        best = table.loc[table["neg_log_posterior"].idxmin()]
        return best[names].to_numpy(dtype=np.float64)
    cfg = folder.config.config.inference
    settings: MapSettings = cfg.map
    return map_multistart(posterior, jax.random.PRNGKey(cfg.seed), settings, data).x


def run_profile(
    run_dir: str | Path,
    parameters: Sequence[str],
    out: str | Path,
    settings: ProfileSettings | None = None,
    quiet: bool = False,
) -> int:
    """``il6rcc profile``: see the module docstring. Every user error (no run folder,
    unknown parameter, existing output) is raised before any profile is computed."""
    if not Path(run_dir).is_dir():
        raise Il6rccError(
            f"profile: run folder {run_dir} does not exist; expected the --out folder of "
            f"'il6rcc fit' or 'il6rcc petab fit' (with manifest.json and config.yaml)"
        )
    folder = open_run(run_dir, need=("config.yaml",))
    posterior = folder.posterior
    check_profile_names(posterior, list(parameters), where=f"profile {folder.path}")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise Il6rccError(f"{out}: the output folder exists and is not empty; give a new --out")
    data = jax.tree.map(jnp.asarray, posterior.data)
    start = run_start(folder, posterior, data)
    write_profiles(posterior, start, parameters, out, settings, folder.path, quiet)
    return 0


def run_profile_sweep(
    run_dir: str | Path,
    parameters: Sequence[str],
    out: str | Path,
    settings: ProfileSettings | None = None,
    executor: str = "local",
    jobs: int = 1,
    quiet: bool = False,
) -> int:
    """``il6rcc profile --jobs N`` / ``--executor slurm``: each parameter's profile as
    an element of a profile sweep in ``out`` (``out/parameter=NAME/``, ``out/sweep.csv``,
    the sweep file ``out/_sweep/profile.yaml``), merged into ``out/profiles.csv``,
    ``profiles.md``, ``profiles.json`` and ``figures/``. Rerunning the same command
    skips the finished parameters. Exit status 1 when a profile failed (recorded in
    sweep.csv and named in profiles.md). The run folder and the names are checked
    first, as by :func:`run_profile`."""
    import yaml

    from .sweep import run_sweep

    settings = settings or ProfileSettings()
    forwarded = ProfileSettings(max_points=settings.max_points, grid=settings.grid)
    if settings != forwarded:
        raise Il6rccError(
            "profile: a profile sweep forwards only max_points and grid to its elements; "
            f"got {settings}"
        )
    if not Path(run_dir).is_dir():
        raise Il6rccError(
            f"profile: run folder {run_dir} does not exist; expected the --out folder of "
            f"'il6rcc fit' or 'il6rcc petab fit' (with manifest.json and config.yaml)"
        )
    folder = open_run(run_dir, need=("config.yaml",))
    check_profile_names(folder.posterior, list(parameters), where=f"profile {folder.path}")
    out = Path(out).resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not (out / "_sweep").is_dir():
        raise Il6rccError(
            f"{out}: the output folder exists, is not empty and holds no profile sweep to "
            "continue; give a new --out"
        )
    sweep = {
        "name": f"profile-{folder.path.resolve().name}",
        "kind": "profile",
        "run": str(folder.path.resolve()),
        "profile": {"grid": settings.grid, "max_points": settings.max_points},
        "axes": [{"parameter": list(parameters)}],
        "executor": {"kind": executor, "jobs": jobs},
    }
    sweep_file = out / "_sweep" / "profile.yaml"
    _io.write_text(sweep_file, yaml.safe_dump(sweep, sort_keys=False))
    code = run_sweep(sweep_file, out, quiet=quiet)
    if not quiet and (out / MARKDOWN).is_file():
        print((out / MARKDOWN).read_text())
    return code


__all__ = [
    "natural_coordinates",
    "open_at_range",
    "profile_table",
    "run_profile",
    "run_profile_sweep",
    "run_start",
    "summary_records",
    "summary_text",
    "write_profiles",
]
