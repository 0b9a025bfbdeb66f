"""``il6rcc fit CONFIG --out DIR`` and ``il6rcc fit --resume DIR``.

A run folder holds::

    config.yaml        the validated config (paths made absolute), what --resume reads
    manifest.json      hashes, versions, device, seeds, solver settings, times, status
    priors.csv         every prior with its source
    checkpoint.npz     sampler state + draws so far (NUTS), replaced atomically
    posterior.nc       arviz DataTree (posterior, sample_stats, log_likelihood,
                       observed_data, prior, posterior_predictive)
    summary.csv        arviz summary (mean, sd, eti, ess_bulk, ess_tail, r_hat, mcse)
    diagnostics.json   gates (R-hat, ESS, divergences, E-BFMI) with pass/fail
    figures/*.png      ranks, prior vs posterior, predictive checks, findings

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
from jax.flatten_util import ravel_pytree

from .. import _io
from ..configs import LoadedConfig, load_config
from ..errors import Il6rccError
from ..inference import (
    ChainRunner,
    NutsSettings,
    map_multistart,
    model_fn,
    prior_fn,
    prior_table,
    problem_data,
    run_chains,
)
from ..inference._diagnostics import Gates, diagnose, summary_table
from ..inference._idata import build_datatree
from ..inference._lbfgs import BIG, BatchedObjective
from ..inference._map import hessian_directions, potential_and_unravel
from ..inference._model import coordinate_names
from ..inference._nuts import arrays_to_state, chain_starts, state_to_arrays
from ._manifest import manifest as build_manifest
from ._manifest import mark_complete
from ._problem import build_problem

CHECKPOINT = "checkpoint.npz"


def _say(quiet: bool):
    def say(message: str) -> None:
        if not quiet:
            print(message, file=sys.stderr, flush=True)

    return say


def _resolved_config(loaded: LoadedConfig) -> dict:
    """The config with every file path absolute, so the run folder is self-contained."""
    data = loaded.config.model_dump(mode="json")
    for key in ("tables", "digitised"):
        data["data"][key] = [str(loaded.resolve(p)) for p in data["data"][key]]
    data["priors"]["tables"] = [
        t if t.startswith("builtin:") else str(loaded.resolve(t)) for t in data["priors"]["tables"]
    ]
    name = data["model"]["name"]
    if ".py:" in name:
        file_part, _, cls = name.rpartition(":")
        data["model"]["name"] = f"{loaded.resolve(file_part)}:{cls}"
    return data


def run_fit(
    config: str | Path, out: Path, overrides: dict | None = None, quiet: bool = False
) -> int:
    """Validate everything, then create ``out`` and run the fit."""
    loaded = load_config(config, overrides)
    problem, info = build_problem(loaded)
    out = Path(out)
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
    _io.atomic_write(
        out / "priors.csv",
        lambda p: prior_table(problem.priors, problem.model).to_csv(p, index=False),
    )
    return _execute(run_loaded, problem, out, man, quiet)


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
    problem, info = build_problem(loaded)
    if loaded.sha256 != man["config"]["run_sha256"]:
        raise Il6rccError(f"{run_dir}/config.yaml was changed since the run started")
    if info["data_files"] != man["data"]["files"]:
        raise Il6rccError(
            f"{run_dir}: the evidence tables changed since the run started "
            f"({man['data']['files']} -> {info['data_files']}); start a new run"
        )
    _io.clean_temporaries(run_dir)
    man["resumed"] = man.get("resumed", 0) + 1
    return _execute(loaded, problem, run_dir, man, quiet)


def _prior_draws(problem, data, key, n: int) -> dict:
    from numpyro.infer import Predictive

    draws = Predictive(prior_fn(problem), num_samples=n)(key, data)
    return {k: np.asarray(v)[None] for k, v in draws.items()}


def _prior_solve_failures(problem, data, key, n: int) -> dict:
    """How often the ODE solves fail under the prior: ``n`` prior draws pushed through
    the model (fault report; a prior that puts mass where solves fail shows up here)."""
    from numpyro.infer import Predictive

    failed = Predictive(model_fn(problem), num_samples=n, return_sites=["n_failed"])(key, data)
    per_draw = np.asarray(failed["n_failed"]).reshape(n, -1).sum(axis=1)
    return {
        "prior_draws_checked": int(n),
        "prior_draws_with_failed_solves": int(np.sum(per_draw > 0)),
        "prior_failed_solves": int(per_draw.sum()),
    }


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
        data = {k: f[k] for k in f.files}

    def part(prefix):
        return {k[len(prefix) + 1 :]: v for k, v in data.items() if k.startswith(prefix + "/")}

    return int(data["done"]), part("state"), part("draws"), part("stats"), part("extra")


def _append(acc: dict, new: dict) -> dict:
    """Concatenate per-chain arrays [chain, n, ...] along the draw axis."""
    if not acc:
        return {k: np.asarray(v) for k, v in new.items()}
    return {k: np.concatenate([acc[k], np.asarray(new[k])], axis=1) for k in acc}


def _map_stage(problem, data, cfg, key, ckpt: dict, say):
    """MAP multistart + Laplace (or the checkpointed result)."""
    if "map_x" in ckpt:
        return ckpt["map_x"], ckpt["map_inverse_mass"], {}, None
    m = cfg.inference.map
    say(
        f"MAP: {m.n_starts} starts, up to {m.max_steps} L-BFGS steps each (compiling the "
        f"log density and its gradient first)..."
    )
    res = map_multistart(
        key, model_fn(problem), m.n_starts, m.max_steps, m.tol, data=data, progress=say
    )
    n_ok = int(np.isfinite(res.potentials).sum())
    say(
        f"MAP: best -log posterior {res.potential:.3f}; {n_ok}/{m.n_starts} starts finite; "
        f"Hessian condition number {res.condition_number:.3g} ({res.n_floored} sloppy "
        f"directions floored); {res.seconds:.0f} s"
    )
    _, unravel = ravel_pytree(res.params)  # the MAP's own site layout, no model re-run
    directions = hessian_directions(res.hessian, coordinate_names(problem, unravel, len(res.x)))
    stiff = directions[0]
    say(
        f"MAP: stiffest direction (eigenvalue {stiff['eigenvalue']:.3g}, posterior SD "
        f"{stiff['sd']:.2g}): " + ", ".join(f"{k} {v:+.2f}" for k, v in stiff["loadings"].items())
    )
    info = {
        "map_hessian_directions": directions,
        "map_potential": res.potential,
        "map_potentials": [float(v) for v in res.potentials],
        "map_condition_number": res.condition_number,
        "map_sloppy_directions": res.n_floored,
        "map_seconds": res.seconds,
    }
    return res.x, res.inverse_mass_matrix, info, res.objective


def _init_params(
    problem, data, key, x_map, inverse_mass, n_chains: int, max_attempts: int, objective=None
):
    """Chain starting points around the MAP (Laplace jitter), each checked to have a
    finite log density; at most ``max_attempts`` tries per chain, then a clear error."""
    potential, unravel, _, _ = potential_and_unravel(jax.random.PRNGKey(0), model_fn(problem), data)
    objective = objective or BatchedObjective(potential, data, batch=1)

    def value(x):
        v = float(objective(x[None, :])[0][0])
        return v if v < BIG else float("inf")

    return chain_starts(value, unravel, key, x_map, inverse_mass, n_chains, max_attempts)


def _execute(loaded: LoadedConfig, problem, out: Path, man: dict, quiet: bool) -> int:
    cfg = loaded.config
    say = _say(quiet)
    started = time.perf_counter()
    seed = cfg.inference.seed
    key = jax.random.PRNGKey(seed)
    k_prior, k_map, k_init, k_sample = jax.random.split(key, 4)
    man.update(status="running", started=dt.datetime.now(dt.UTC).isoformat())
    _io.write_json(out / "manifest.json", man)
    ckpt_path = out / CHECKPOINT
    ckpt = {}
    done = 0
    draws: dict = {}
    stats: dict = {}
    state_arrays = None
    if ckpt_path.is_file():
        done, state_arrays, draws, stats, ckpt = _load_checkpoint(ckpt_path)
        say(f"resuming from iteration {done} of {out}")
    timings: dict = {}
    method = cfg.inference.method
    data = jax.tree.map(jnp.asarray, problem_data(problem))
    prior = _prior_draws(problem, data, k_prior, cfg.inference.prior_draws)
    if "prior_failures" in ckpt:
        failures = {k[len("pf_") :]: int(v) for k, v in ckpt.items() if k.startswith("pf_")}
    else:
        say("checking the ODE solves on prior draws...")
        failures = _prior_solve_failures(
            problem, data, jax.random.fold_in(k_prior, 1), min(cfg.inference.prior_draws, 20)
        )
        ckpt.update({f"pf_{k}": np.asarray(v) for k, v in failures.items()})
        ckpt["prior_failures"] = np.asarray(1)
    if failures["prior_draws_with_failed_solves"]:
        say(
            f"note: {failures['prior_draws_with_failed_solves']} of "
            f"{failures['prior_draws_checked']} prior draws have failed ODE solves (those "
            "regions get zero posterior density; see diagnostics.json)"
        )
    timings.update(failures)
    if method in ("nuts", "map"):
        x_map, inverse_mass, map_info, objective = _map_stage(problem, data, cfg, k_map, ckpt, say)
        if "map_x" not in ckpt:  # the MAP takes minutes: keep it for --resume
            ckpt.update(map_x=np.asarray(x_map), map_inverse_mass=np.asarray(inverse_mass))
            # as JSON text: an unpicklable numpy string, whatever the value's structure
            ckpt.update({f"info_{k}": np.asarray(json.dumps(v)) for k, v in map_info.items()})
            _save_checkpoint(ckpt_path, None, 0, {}, {}, ckpt)
        map_info = map_info or {
            k[len("info_") :]: json.loads(str(v)) for k, v in ckpt.items() if k.startswith("info_")
        }
        timings.update(map_info)
    if method == "nuts":
        n = cfg.inference.nuts
        settings = nuts_settings(cfg)
        runner = ChainRunner(model_fn(problem), data, settings, inverse_mass)
        init = _init_params(
            problem, data, k_init, x_map, inverse_mass, n.num_chains, n.max_init_attempts, objective
        )
        state = runner.init(k_sample, init)
        if state_arrays:
            state = arrays_to_state(state, state_arrays)
        say("NUTS: compiling the sampler (the first chunk includes compilation)...")
        every = cfg.inference.checkpoint_every

        def on_chunk(st, n_done, chunk_stats, chunk_draws, seconds):
            nonlocal draws, stats
            if chunk_draws:
                draws = _append(draws, chunk_draws)
                stats = _append(stats, chunk_stats)
            if n_done % every == 0 or n_done in (
                settings.num_warmup,
                settings.num_warmup + settings.num_samples,
            ):
                _save_checkpoint(ckpt_path, st, n_done, draws, stats, ckpt)

        t0 = time.perf_counter()
        run_chains(runner, state, done, on_chunk, say)
        timings["nuts_seconds"] = time.perf_counter() - t0
    elif method == "svi":
        from ..inference._svi import run_svi

        s = cfg.inference.svi
        say(f"SVI: {s.guide} guide, {s.steps} steps (compiling first)...")
        res = run_svi(
            k_sample, model_fn(problem), data, s.guide, s.steps, s.learning_rate, s.num_samples
        )
        draws = {k: v[None] for k, v in res.draws.items()}
        stats = _pseudo_stats(draws)
        timings.update(svi_seconds=res.seconds, svi_final_loss=float(res.losses[-1]))
    elif method == "map":
        say(f"Laplace: {cfg.inference.map.num_draws} draws through the model...")
        draws = _laplace_draws(
            problem, data, k_sample, x_map, inverse_mass, cfg.inference.map.num_draws
        )
        stats = _pseudo_stats(draws)
    return _finish(loaded, problem, out, man, draws, stats, prior, timings, started, say)


def nuts_settings(cfg) -> NutsSettings:
    """The sampler settings of a config (chunks of at most 25 iterations)."""
    n = cfg.inference.nuts
    return NutsSettings(
        num_warmup=n.num_warmup,
        num_samples=n.num_samples,
        num_chains=n.num_chains,
        chain_method=n.chain_method,
        target_accept=n.target_accept,
        max_tree_depth=n.max_tree_depth,
        mass_matrix=n.mass_matrix,
        chunk=min(cfg.inference.checkpoint_every, 25),
    )


def _pseudo_stats(draws: dict) -> dict:
    """Sampler statistics for non-MCMC methods (no divergences, no energy)."""
    shape = np.asarray(draws["log_lik"]).shape[:2]
    zeros = np.zeros(shape)
    return {
        "diverging": zeros.astype(bool),
        "energy": zeros,
        "potential_energy": zeros,
        "num_steps": zeros.astype(int),
        "accept_prob": zeros + 1.0,
        "step_size": zeros,
    }


def _laplace_draws(problem, data, key, x_map, inverse_mass, n: int) -> dict:
    """Draws from the Laplace approximation, pushed through the model."""
    _, _, _, post = potential_and_unravel(jax.random.PRNGKey(0), model_fn(problem), data)
    chol = np.linalg.cholesky(inverse_mass)
    z = np.asarray(jax.random.normal(key, (n, len(x_map))))
    xs = jnp.asarray(x_map[None, :] + z @ chol.T)
    fn = jax.jit(lambda xs, d: jax.lax.map(lambda x: post(x, d), xs))
    samples = [fn(xs[i : i + 50], data) for i in range(0, n, 50)]
    return {k: np.concatenate([np.asarray(s[k]) for s in samples])[None] for k in samples[0]}


def _finish(loaded, problem, out, man, draws, stats, prior, timings, started, say) -> int:
    from .figures import write_figures

    cfg = loaded.config
    ppc = {k: draws[k] for k in ("reproduced", "predicted") if k in draws}
    tree = build_datatree(
        problem,
        draws,
        stats,
        prior_draws=prior,
        posterior_predictive=ppc,
        attrs={
            "il6rcc_method": cfg.inference.method,
            "model": problem.model.name,
            "variant": problem.model.variant_name,
            "config_sha256": loaded.sha256,
        },
    )
    _io.atomic_write(out / "posterior.nc", lambda p: tree.to_netcdf(p, engine="h5netcdf"))
    table = summary_table(tree)
    _io.atomic_write(out / "summary.csv", lambda p: table.to_csv(p))
    d = cfg.diagnostics
    gates = Gates(d.max_rhat, d.min_ess_bulk, d.min_ess_tail, d.max_divergences, d.min_ebfmi)
    is_mcmc = cfg.inference.method == "nuts"
    diag = diagnose(
        tree, gates, cfg.inference.nuts.max_tree_depth if is_mcmc else None, mcmc=is_mcmc
    )
    wall = time.perf_counter() - started
    diag.update(method=cfg.inference.method, wall_seconds=wall, **timings)
    if cfg.inference.method == "nuts" and diag["min_ess_bulk"] == diag["min_ess_bulk"]:
        diag["ess_bulk_per_second"] = diag["min_ess_bulk"] / max(
            timings.get("nuts_seconds", wall), 1e-9
        )
    diag["device"] = man["device"]
    _io.write_json(out / "diagnostics.json", diag)
    write_figures(tree, problem, out / "figures")
    mark_complete(man, diag, wall)
    _io.write_json(out / "manifest.json", man)
    (out / CHECKPOINT).unlink(missing_ok=True)
    if diag["draws_with_failed_solves"]:
        say(
            f"note: {diag['draws_with_failed_solves']} of {diag['n_chains'] * diag['n_draws']} "
            "draws have failed ODE solves (zero likelihood there; for Laplace or SVI draws "
            "this means the approximation reaches outside the region where the model solves)"
        )
    if diag["passed"]:
        say(f"done in {wall / 60:.1f} min; all diagnostic gates passed. Outputs in {out}")
    else:
        failed = ", ".join(
            f"{g} ({diag['gates'][g]['value']:.4g}, needs {diag['gates'][g]['rule']})"
            for g in diag["failed_gates"]
        )
        say(
            f"done in {wall / 60:.1f} min. WARNING: diagnostic gates failed: {failed}. "
            f"The outputs are written; treat the posterior with care. Outputs in {out}"
        )
    return 0


def run_petab_fit(problem_yaml, out, config=None, overrides=None) -> int:
    """``il6rcc petab fit``: see :mod:`il6rcc.jobs.petab_fit`."""
    from .petab_fit import run_petab_fit as run

    return run(problem_yaml, out, config, overrides or {})


__all__ = ["resume_fit", "run_fit", "run_petab_fit"]
