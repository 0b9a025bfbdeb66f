"""The one run pipeline: ``il6rcc fit CONFIG --out DIR``, ``il6rcc fit --resume DIR``
and ``il6rcc petab fit PROBLEM.yaml --out DIR`` (a short form of ``il6rcc fit`` with
``model: {petab: PROBLEM.yaml}``).

Every problem (an ODE model fitted to evidence tables, or a PEtab problem) and every
method goes through the same stages, on the problem's
:class:`~il6rcc.inference.Posterior`:

1. prior draws (kept in the ``prior`` group) and how often their ODE solves fail;
2. MAP multi-start and the Laplace approximation at the best optimum (methods ``map``
   and ``nuts``; the Laplace matrix is NUTS's mass matrix);
3. the method: ``map`` draws from the Laplace approximation, ``svi`` fits a Gaussian;
   both are importance-checked against the true density (Pareto k-hat) and resampled;
   ``nuts`` samples chunk by chunk, checkpointing;
4. outputs: DataTree, summary, diagnostics with gates and a verdict, figures, manifest.

A run folder holds::

    config.yaml        the validated config (paths made absolute), what --resume reads
    manifest.json      hashes, versions, device, seeds, solver settings, times, status
    priors.csv         every prior with its source (models fitted to evidence)
    map.csv            every MAP start: end point, -log posterior, steps (written as
                       each start finishes: --resume continues after the last one)
    checkpoint.npz     stages done, sampler state and draws so far, replaced atomically
    posterior.nc       arviz DataTree (posterior, sample_stats, log_likelihood,
                       observed_data, prior, posterior_predictive)
    summary.csv        arviz summary (mean, sd, eti, ess_bulk, ess_tail, r_hat, mcse)
    diagnostics.json   gates (pass, fail or not applicable) and the one-line verdict
    figures/*.png      ranks, traces, energy (NUTS), importance weights (approximations),
                       prior vs posterior, predictive checks, findings

Every file is written to a temporary name and renamed, so a killed run never leaves a
half-written file; ``--resume`` continues from the last checkpoint and gives the same
draws as an uninterrupted run with the same seed.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import yaml

from .. import _io
from ..configs import LoadedConfig, load_config, shipped_config
from ..errors import Il6rccError
from ..inference import (
    ChainRunner,
    EvidencePosterior,
    MapSettings,
    Posterior,
    arrays_to_state,
    build_datatree,
    chain_starts,
    diagnose,
    hessian_directions,
    importance_check,
    laplace_approximation,
    map_multistart,
    nuts_sample_stats,
    prior_table,
    read_starts_table,
    run_chains,
    run_svi,
    sample_gaussian,
    starts_table,
    state_to_arrays,
    summary_table,
)
from ._build import build_posterior
from ._manifest import manifest as build_manifest
from ._manifest import mark_complete

CHECKPOINT = "checkpoint.npz"
#: Prior draws whose ODE solves are checked (each is one full model evaluation).
PRIOR_SOLVE_CHECKS = 20
#: Most iterations per compiled NUTS chunk (a checkpoint can only follow a chunk).
MAX_CHUNK = 25


def _say(quiet: bool):
    def say(message: str) -> None:
        if not quiet:
            print(message, file=sys.stderr, flush=True)

    return say


def _resolved_config(loaded: LoadedConfig) -> dict:
    """The config with every file path absolute, so the run folder is self-contained."""
    resolved = loaded.config.model_dump(mode="json", exclude_unset=False)
    if loaded.config.model.petab is not None:
        resolved["model"] = {"petab": str(loaded.resolve(loaded.config.model.petab).resolve())}
        # only the sections a PEtab job uses: the others are refused when it is loaded
        keep = ("name", "device", "cpu_devices", "model", "solver", "inference", "diagnostics")
        return {k: v for k, v in resolved.items() if k in keep and v is not None}
    for key in ("tables", "digitised"):
        resolved["data"][key] = [str(loaded.resolve(p)) for p in resolved["data"][key]]
    resolved["priors"]["tables"] = [
        t if t.startswith("builtin:") else str(loaded.resolve(t))
        for t in resolved["priors"]["tables"]
    ]
    name = resolved["model"]["name"]
    if ".py:" in name:
        file_part, _, cls = name.rpartition(":")
        resolved["model"]["name"] = f"{loaded.resolve(file_part)}:{cls}"
    resolved["model"].pop("petab", None)
    if resolved["solver"] is None:
        resolved.pop("solver")
    return resolved


def run_fit(
    config: str | Path, out: Path, overrides: dict | None = None, quiet: bool = False
) -> int:
    """Validate everything, then create ``out`` and run the fit."""
    loaded = load_config(config, overrides)
    return _start(loaded, Path(out), quiet)


def run_petab_fit(
    problem_yaml: str | Path,
    out: Path,
    config: str | Path | None = None,
    overrides: dict | None = None,
    quiet: bool = False,
) -> int:
    """``il6rcc petab fit PROBLEM.yaml``: ``il6rcc fit`` of the config ``config``
    (default: the shipped ``petab.yaml``, its inference and diagnostics budgets) with
    ``model: {petab: PROBLEM.yaml}``. The run folder is an ordinary one (``--resume``,
    ``report``, ``compare`` and ``predict`` read it)."""
    base = Path(config) if config is not None else shipped_config("petab.yaml")
    yaml_path = Path(problem_yaml).resolve()
    if not yaml_path.is_file():
        raise Il6rccError(f"{problem_yaml}: PEtab problem file not found")
    loaded = load_config(base, {**(overrides or {}), "model": {"petab": str(yaml_path)}})
    return _start(loaded, Path(out), quiet)


def _start(loaded: LoadedConfig, out: Path, quiet: bool) -> int:
    posterior, info = build_posterior(loaded)
    if out.exists() and any(out.iterdir()):
        raise Il6rccError(
            f"{out}: the run folder exists and is not empty; choose a new --out, or continue "
            f"a killed run with 'il6rcc fit --resume {out}'"
        )
    out.mkdir(parents=True, exist_ok=True)
    _io.write_text(out / "config.yaml", yaml.safe_dump(_resolved_config(loaded), sort_keys=True))
    run_loaded = load_config(out / "config.yaml")
    man = build_manifest(loaded, run_loaded, info, sys.argv)
    _io.write_json(out / "manifest.json", man)
    if isinstance(posterior, EvidencePosterior):
        problem = posterior.problem
        table = prior_table(problem.parameterisation, problem.model)
        _io.atomic_write(out / "priors.csv", lambda p: table.to_csv(p, index=False))
    return _execute(run_loaded, posterior, out, man, _say(quiet))


def resume_fit(run_dir: Path, quiet: bool = False) -> int:
    """Continue a killed run from its last checkpoint."""
    run_dir = Path(run_dir)
    man_path = run_dir / "manifest.json"
    if not man_path.is_file():
        raise Il6rccError(f"{run_dir}: not a run folder (no manifest.json)")
    man = json.loads(man_path.read_text())
    if man.get("status") == "complete":
        raise Il6rccError(f"{run_dir}: this run is already complete; nothing to resume")
    loaded = load_config(run_dir / "config.yaml")
    posterior, info = build_posterior(loaded)
    if loaded.sha256 != man["config"]["run_sha256"]:
        raise Il6rccError(f"{run_dir}/config.yaml was changed since the run started")
    if info["data_files"] != man["data"]["files"]:
        raise Il6rccError(
            f"{run_dir}: the input files changed since the run started "
            f"({man['data']['files']} -> {info['data_files']}); start a new run"
        )
    _io.clean_temporaries(run_dir)
    man["resumed"] = man.get("resumed", 0) + 1
    return _execute(loaded, posterior, run_dir, man, _say(quiet))


# ------------------------------------------------------------------ checkpoint
def _save_checkpoint(path: Path, state, done: int, draws: dict, stats: dict, extra: dict):
    """``state`` None: only the stages before sampling (MAP, prior checks) are saved."""
    arrays = {} if state is None else {f"state/{k}": v for k, v in state_to_arrays(state).items()}
    arrays.update({f"draws/{k}": np.asarray(v) for k, v in draws.items()})
    arrays.update({f"stats/{k}": np.asarray(v) for k, v in stats.items()})
    arrays.update({f"extra/{k}": np.asarray(v) for k, v in extra.items()})
    arrays["done"] = np.asarray(done)

    def write(p: Path) -> None:
        with p.open("wb") as fh:
            np.savez(fh, **arrays)

    _io.atomic_write(path, write)


def _load_checkpoint(path: Path):
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}

    def part(prefix):
        return {k[len(prefix) + 1 :]: v for k, v in arrays.items() if k.startswith(prefix + "/")}

    return int(arrays["done"]), part("state"), part("draws"), part("stats"), part("extra")


def _append(acc: dict, new: dict) -> dict:
    """Concatenate per-chain arrays [chain, n, ...] along the draw axis."""
    if not acc:
        return {k: np.asarray(v) for k, v in new.items()}
    return {k: np.concatenate([acc[k], np.asarray(new[k])], axis=1) for k in acc}


def _json_info(ckpt: dict, prefix: str) -> dict:
    """Stage results saved as JSON text (an unpicklable numpy string, any structure)."""
    return {k[len(prefix) :]: json.loads(str(v)) for k, v in ckpt.items() if k.startswith(prefix)}


# ------------------------------------------------------------------ stages
def _prior_stage(posterior: Posterior, data, cfg, key, ckpt: dict, say):
    """Prior draws (natural scale, for the ``prior`` group) and the share of them whose
    ODE solves fail (a prior that puts mass where solves fail shows up here)."""
    n = cfg.inference.prior_draws
    x = posterior.prior_sample(key, n, data)
    prior = {k: v[None] for k, v in posterior.compiled.natural(x, data).items()}
    if "prior_failures" in ckpt:
        return prior, _json_info(ckpt, "pf_")
    say(f"checking the ODE solves on {min(n, PRIOR_SOLVE_CHECKS)} prior draws...")
    checked = posterior.compiled.record(x[:PRIOR_SOLVE_CHECKS], data)["n_failed"]
    failures = {
        "prior_draws_checked": int(len(checked)),
        "prior_draws_with_failed_solves": int(np.sum(checked > 0)),
        "prior_failed_solves": int(np.sum(checked)),
    }
    if failures["prior_draws_with_failed_solves"]:
        say(
            f"note: {failures['prior_draws_with_failed_solves']} of "
            f"{failures['prior_draws_checked']} prior draws have failed ODE solves (those "
            "regions get zero posterior density; see diagnostics.json)"
        )
    ckpt.update({f"pf_{k}": np.asarray(json.dumps(v)) for k, v in failures.items()})
    ckpt["prior_failures"] = np.asarray(1)
    return prior, failures


def _map_stage(posterior: Posterior, data, settings: MapSettings, key, ckpt: dict, out, say):
    """MAP multi-start and the Laplace approximation at the best optimum (or the
    checkpointed result). Returns (x_map, covariance, info, computed now)."""
    if "map_x" in ckpt:
        return ckpt["map_x"], ckpt["map_covariance"], _json_info(ckpt, "info_"), False
    say(
        f"MAP: {settings.n_starts} starts, up to {settings.max_steps} BFGS steps each "
        f"(compiling the log density and its gradient first)..."
    )
    names = posterior.coordinate_names
    table_path = out / "map.csv"
    finished = None
    if table_path.is_file():  # a resumed run: map.csv holds the starts that finished
        finished = read_starts_table(table_path, names, settings.n_starts)
        say(
            f"MAP: resuming after start {len(finished.values)} of {settings.n_starts} "
            f"(the finished starts are read from {table_path.name})"
        )

    def checkpoint(partial):
        """Every finished start goes to map.csv at once: a killed run resumes after it."""
        table = starts_table(partial, names)
        _io.atomic_write(table_path, lambda p: table.to_csv(p, index=False))

    t0 = time.perf_counter()
    res = map_multistart(
        posterior, key, settings, data, progress=say, finished=finished, on_start=checkpoint
    )
    lap = laplace_approximation(posterior, res.x, data)
    seconds = time.perf_counter() - t0
    directions = hessian_directions(lap.hessian, names)
    shape = "a SADDLE (negative curvature: not a mode)" if lap.saddle else "a mode"
    say(
        f"MAP: best -log posterior {res.value:.6g}; {res.n_finite}/{len(res.values)} starts "
        f"finite; the point is {shape}, smallest Hessian eigenvalue "
        f"{lap.min_eigenvalue:.3g}; condition number after flooring "
        f"{lap.condition_number:.3g} ({lap.n_floored} directions floored); {seconds:.0f} s"
    )
    stiff = directions[0]
    say(
        f"MAP: stiffest direction (eigenvalue {stiff['eigenvalue']:.3g}, posterior SD "
        f"{stiff['sd']:.2g}): " + ", ".join(f"{k} {v:+.2f}" for k, v in stiff["loadings"].items())
    )
    info = {
        "map_hessian_directions": directions,
        "map_potential": res.value,
        "map_potentials": [float(v) for v in res.values],
        "map_steps": [int(v) for v in res.steps],
        "map_condition_number": lap.condition_number,
        "map_sloppy_directions": lap.n_floored,
        "map_min_eigenvalue": lap.min_eigenvalue,
        "map_saddle": lap.saddle,
        "map_max_abs_gradient": float(np.max(np.abs(lap.gradient))),
        "map_seconds": seconds,
    }
    ckpt.update(map_x=np.asarray(res.x), map_covariance=np.asarray(lap.covariance))
    ckpt.update({f"info_{k}": np.asarray(json.dumps(v)) for k, v in info.items()})
    return res.x, lap.covariance, info, True


def _approximation_stage(posterior: Posterior, data, xs, log_q, key, label, max_k, say):
    """Importance check of an approximation's draws ``xs`` (log density ``log_q``
    under it) against the true density; the draws resampled with the smoothed weights
    when k-hat is below ``max_k``, the raw draws (and a failed gate) otherwise."""
    say(f"{label}: {len(xs)} draws through the model (true log density and outputs)...")
    records = posterior.compiled.record(xs, data)
    check = importance_check(records["log_density"], log_q)
    usable = bool(check.pareto_k < max_k)
    say(
        f"{label}: importance check against the true density: Pareto k-hat "
        f"{check.pareto_k:.3g}, ESS {check.ess:.1f} of {check.n_draws} draws, "
        f"{check.n_failed} draws with failed solves; "
        + (
            "draws resampled with the smoothed weights"
            if usable
            else f"the approximation FAILED (k-hat not below {max_k}): its draws are "
            "reported but do not stand for the posterior"
        )
    )
    pick = check.resample(key) if usable else np.arange(len(xs))
    draws = {k: v[pick][None] for k, v in records.items()}
    stats = {
        "log_weight": check.log_weights[pick][None],
        "log_q": np.asarray(log_q)[pick][None],
    }
    return draws, stats, check


def _nuts_stage(posterior, data, cfg, keys, x_map, covariance, out, ckpt, progress, say):
    k_init, k_sample = keys
    n = cfg.inference.nuts
    done, state_arrays, draws, stats = progress
    runner = ChainRunner(posterior, data, n, covariance)
    starts = chain_starts(
        posterior, data, k_init, x_map, covariance, n.num_chains, n.max_init_attempts
    )
    state = runner.init(k_sample, starts)
    if state_arrays:
        state = arrays_to_state(state, state_arrays)
    divergences = {
        "warmup": int(ckpt.get("divergences_warmup", 0)),
        "sampling": int(ckpt.get("divergences_sampling", 0)),
    }
    say("NUTS: compiling the sampler (the first chunk includes compilation)...")
    every = cfg.inference.checkpoint_every
    acc = {"draws": draws, "stats": stats}

    def on_chunk(st, n_done, chunk_stats, chunk_draws, seconds):
        if chunk_draws:
            acc["draws"] = _append(acc["draws"], chunk_draws)
            acc["stats"] = _append(acc["stats"], chunk_stats)
        # the counts of this chunk are added by run_chains before it calls us
        ckpt["divergences_warmup"] = np.asarray(divergences["warmup"])
        ckpt["divergences_sampling"] = np.asarray(divergences["sampling"])
        if n_done % every == 0 or n_done in (n.num_warmup, n.num_warmup + n.num_samples):
            _save_checkpoint(out / CHECKPOINT, st, n_done, acc["draws"], acc["stats"], ckpt)

    t0 = time.perf_counter()
    run_chains(runner, state, done, min(every, MAX_CHUNK), on_chunk, say, divergences)
    info = {"nuts_seconds": time.perf_counter() - t0, "warmup_divergences": divergences["warmup"]}
    return acc["draws"], nuts_sample_stats(acc["stats"]), info


def _execute(loaded: LoadedConfig, posterior: Posterior, out: Path, man: dict, say) -> int:
    cfg = loaded.config
    method = cfg.inference.method
    started = time.perf_counter()
    key = jax.random.PRNGKey(cfg.inference.seed)
    k_prior, k_map, k_init, k_sample = jax.random.split(key, 4)
    man.update(status="running", started=dt.datetime.now(dt.UTC).isoformat())
    _io.write_json(out / "manifest.json", man)
    ckpt_path = out / CHECKPOINT
    ckpt: dict = {}
    done, state_arrays, draws, stats = 0, None, {}, {}
    if ckpt_path.is_file():
        done, state_arrays, draws, stats, ckpt = _load_checkpoint(ckpt_path)
        say(f"resuming from iteration {done} of {out}")
    data = jax.tree.map(jnp.asarray, posterior.data)
    timings: dict = {}
    prior, failures = _prior_stage(posterior, data, cfg, k_prior, ckpt, say)
    timings.update(failures)
    x_map = covariance = None
    if method in ("nuts", "map"):
        x_map, covariance, map_info, fresh = _map_stage(
            posterior, data, cfg.inference.map, k_map, ckpt, out, say
        )
        if fresh:  # the MAP takes minutes: keep it for --resume
            _save_checkpoint(ckpt_path, None, 0, {}, {}, ckpt)
        timings.update(map_info)
    importance = None
    if method == "nuts":
        draws, sample_stats, info = _nuts_stage(
            posterior,
            data,
            cfg,
            (k_init, k_sample),
            x_map,
            covariance,
            out,
            ckpt,
            (done, state_arrays, draws, stats),
            say,
        )
        timings.update(info)
    elif method == "map":
        n = cfg.inference.map.num_draws
        k_draw, k_resample = jax.random.split(k_sample)
        xs, log_q = sample_gaussian(k_draw, x_map, covariance, n)
        draws, sample_stats, importance = _approximation_stage(
            posterior, data, xs, log_q, k_resample, "Laplace", cfg.diagnostics.max_pareto_k, say
        )
    else:  # svi
        s = cfg.inference.svi
        say(f"SVI: {s.guide} guide, {s.steps} steps (compiling first)...")
        k_fit, k_resample = jax.random.split(k_sample)
        res = run_svi(k_fit, posterior, s, data)
        timings.update(svi_seconds=res.seconds, svi_final_loss=float(res.losses[-1]))
        draws, sample_stats, importance = _approximation_stage(
            posterior,
            data,
            res.draws,
            res.log_q,
            k_resample,
            "SVI",
            cfg.diagnostics.max_pareto_k,
            say,
        )
    return _finish(
        loaded, posterior, out, man, draws, sample_stats, prior, timings, importance, started, say
    )


def _finish(
    loaded, posterior, out, man, draws, sample_stats, prior, timings, importance, started, say
) -> int:
    from .figures import write_figures

    cfg = loaded.config
    method = cfg.inference.method
    layout = posterior.layout
    tree = build_datatree(
        layout,
        draws,
        sample_stats,
        prior_draws=prior,
        attrs={
            "il6rcc_method": method,
            "il6rcc_kind": man.get("kind", "evidence"),
            "model": man["model"].get("name", ""),
            "variant": man["model"].get("variant", ""),
            "config_sha256": loaded.sha256,
        },
    )
    _io.atomic_write(out / "posterior.nc", lambda p: tree.to_netcdf(p, engine="h5netcdf"))
    table = summary_table(tree, layout.posterior, mcmc=method == "nuts")
    _io.atomic_write(out / "summary.csv", lambda p: table.to_csv(p))
    diag = diagnose(
        tree,
        cfg.diagnostics,
        method,
        cfg.inference.nuts.max_tree_depth if method == "nuts" else None,
        importance=importance,
        map_min_eigenvalue=timings.get("map_min_eigenvalue") if method == "map" else None,
    )
    wall = time.perf_counter() - started
    diag.update(wall_seconds=wall, **{k: v for k, v in timings.items() if k not in diag})
    if method == "nuts" and np.isfinite(diag["min_ess_bulk"]):
        diag["ess_bulk_per_second"] = diag["min_ess_bulk"] / max(
            timings.get("nuts_seconds", wall), 1e-9
        )
    diag["device"] = man["device"]
    _io.write_json(out / "diagnostics.json", diag)
    write_figures(tree, posterior, out / "figures")
    mark_complete(man, diag, wall)
    _io.write_json(out / "manifest.json", man)
    (out / CHECKPOINT).unlink(missing_ok=True)
    if diag["draws_with_failed_solves"]:
        say(
            f"note: {diag['draws_with_failed_solves']} of {diag['n_chains'] * diag['n_draws']} "
            "draws have failed ODE solves (zero likelihood there)"
        )
    status = "" if diag["passed"] else "WARNING: treat the posterior with care. "
    say(f"done in {wall / 60:.1f} min. {diag['verdict']}. {status}Outputs in {out}")
    return 0


__all__ = ["resume_fit", "run_fit", "run_petab_fit"]
