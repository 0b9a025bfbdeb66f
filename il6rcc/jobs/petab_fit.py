"""``il6rcc petab fit PROBLEM.yaml --out DIR``: MAP multi-start and NUTS on a PEtab problem.

The posterior is the PEtab likelihood times the problem's objective priors, restricted to
the parameter bounds (parameters without a prior are flat within their bounds on their
estimation scale, the PEtab convention). The sampler works on an unconstrained
(logit-of-bounds) transform; the draws are reported on the PEtab scales.

The run folder follows the contract of ``il6rcc fit``: ``posterior.nc`` (posterior,
sample_stats, log_likelihood per measurement, observed_data, prior), ``summary.csv``,
``diagnostics.json``, ``manifest.json``, ``map.csv`` (every start) and ``figures/``.
Budgets come from the ``inference`` and ``diagnostics`` sections of a config (default: the
shipped ``petab.yaml``). Solver: tolerances 1e-8 (the settings the reference values were
computed with). A PEtab fit does not checkpoint: rerun it instead of resuming.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from .. import _io, runtime
from ..configs import load_config, shipped_config
from ..errors import Il6rccError
from ..inference import ChainRunner, map_multistart, run_chains
from ..inference._diagnostics import Gates, diagnose, summary_table
from ..inference._map import potential_and_unravel
from ..inference._nuts import chain_starts
from ._manifest import git_state, mark_complete, package_versions
from .fit import _say, nuts_settings


def petab_model(problem, solver):
    """The numpyro model of a PEtab problem: ``theta`` (PEtab scales) within the bounds,
    the objective priors as a factor, the measurements' log-likelihoods recorded per row."""
    import numpyro
    import numpyro.distributions as dist

    from ..petab_io import make_log_prior
    from ..petab_io._likelihood import _evaluate, measurement_log_likelihoods

    lower, upper = (jnp.asarray(b) for b in problem.parameters.bounds_theta)
    log_prior = make_log_prior(problem)

    def model(data):
        # z ~ Logistic(0, 1) makes lower + (upper - lower) * sigmoid(z) uniform within the
        # bounds: the flat PEtab prior on an unconstrained site, without a transform
        z = numpyro.sample("z", dist.Logistic(0.0, 1.0).expand([lower.shape[0]]).to_event(1))
        theta = numpyro.deterministic("theta", lower + (upper - lower) * jax.nn.sigmoid(z))
        simulated, sigma, ok, _ = _evaluate(problem, solver, theta)
        ll = measurement_log_likelihoods(
            problem, jnp.where(ok, simulated, 1.0), jnp.where(ok, sigma, 1.0)
        )
        ll = jnp.where(ok, ll, -jnp.inf)
        numpyro.deterministic("log_lik", ll)
        lp = log_prior(theta) + jnp.sum(ll)
        numpyro.factor("petab", jnp.where(jnp.isnan(lp), -jnp.inf, lp))

    return model


def _prior_draws(problem, key, n: int) -> np.ndarray:
    """Draws of the prior (bounded, with the objective priors): uniform proposals within
    the bounds resampled by importance weight. [n, n_estimated]."""
    from ..petab_io import make_log_prior

    lower, upper = problem.parameters.bounds_theta
    k1, k2 = jax.random.split(key)
    u = np.asarray(jax.random.uniform(k1, (20 * n, len(lower))))
    proposals = lower + (upper - lower) * u
    logw = np.asarray(
        jax.jit(lambda p: jax.lax.map(make_log_prior(problem), p))(jnp.asarray(proposals))
    )
    logw = np.where(np.isfinite(logw), logw, -np.inf)
    w = np.exp(logw - logw.max())
    pick = np.asarray(jax.random.choice(k2, len(w), (n,), p=jnp.asarray(w / w.sum())))
    return proposals[pick]


def _datatree(problem, draws: dict, stats: dict, prior: np.ndarray, attrs: dict):
    import arviz as az

    ids = list(problem.parameters.estimated_ids)
    meas = [f"m{i}" for i in range(problem.n_measurements)]
    table = problem.measurement_table.reset_index(drop=True)
    tree = az.from_dict(
        {
            "posterior": {"theta": draws["theta"]},
            "sample_stats": {
                "diverging": stats["diverging"],
                "energy": stats["energy"],
                "lp": -stats["potential_energy"],
                "n_steps": stats["num_steps"],
                "acceptance_rate": stats["accept_prob"],
                "step_size": stats["step_size"],
            },
            "log_likelihood": {"y": draws["log_lik"]},
            "observed_data": {"y": np.asarray(problem.measurements)},
            "prior": {"theta": prior[None]},
        },
        dims={"theta": ["parameter"], "y": ["measurement"]},
        coords={
            "parameter": ids,
            "measurement": meas,
            "observable": ("measurement", table["observableId"].astype(str).to_numpy()),
        },
    )
    tree.attrs.update({k: str(v) for k, v in attrs.items()})
    return tree


def run_petab_fit(problem_yaml, out, config=None, overrides=None) -> int:
    from ..petab_io import DEFAULT_SOLVER, load_problem
    from .figures import prior_vs_posterior, rank_and_trace

    started = time.perf_counter()
    say = _say(quiet=False)
    loaded = load_config(config or shipped_config("petab.yaml"), overrides or {})
    cfg = loaded.config
    problem_yaml = Path(problem_yaml)
    problem = load_problem(problem_yaml)
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise Il6rccError(f"{out}: the run folder exists and is not empty; choose a new --out")
    out.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in problem_yaml.resolve().parent.rglob("*") if p.is_file())
    man = {
        "il6rcc_manifest": 1,
        "name": f"petab:{problem.name}",
        "command": " ".join(Path(a).name if i == 0 else a for i, a in enumerate(sys.argv)),
        "problem": str(problem_yaml),
        "data": {
            "files": {
                p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                for p in files
                if p.suffix in (".yaml", ".yml", ".tsv", ".xml", ".sbml")
            },
            "n_measurements": problem.n_measurements,
            "n_estimated": len(problem.parameters.estimated_ids),
        },
        "config": {
            "file": str(loaded.path),
            "sha256": loaded.sha256,
            "overrides": dict(loaded.overrides),
        },
        "solver": {
            "rtol": DEFAULT_SOLVER.rtol,
            "atol": DEFAULT_SOLVER.atol,
            "solver": DEFAULT_SOLVER.solver,
        },
        "inference": cfg.inference.model_dump(mode="json"),
        "seeds": {"inference.seed": cfg.inference.seed},
        "git": git_state(),
        "packages": package_versions(),
        "device": runtime.device_description(),
        "status": "running",
        "started": dt.datetime.now(dt.UTC).isoformat(),
    }
    _io.write_json(out / "manifest.json", man)
    model = petab_model(problem, DEFAULT_SOLVER)
    data: dict = {}
    k_prior, k_map, k_init, k_sample = jax.random.split(jax.random.PRNGKey(cfg.inference.seed), 4)
    m = cfg.inference.map
    say(f"MAP: {m.n_starts} starts, up to {m.max_steps} L-BFGS steps each (compiling first)...")
    res = map_multistart(k_map, model, m.n_starts, m.max_steps, m.tol, data=data, progress=say)
    potential, unravel, _, post = potential_and_unravel(jax.random.PRNGKey(0), model, data)
    to_theta = jax.jit(lambda x: post(x, data)["theta"])
    starts_theta = [np.asarray(to_theta(jnp.asarray(x))) for x in res.xs]
    map_table = pd.DataFrame(np.array(starts_theta), columns=problem.parameters.estimated_ids)
    map_table.insert(0, "neg_log_posterior", res.potentials)
    map_table.insert(0, "start", np.arange(len(res.potentials)))
    _io.atomic_write(out / "map.csv", lambda p: map_table.to_csv(p, index=False))
    say(
        f"MAP: best -log posterior {res.potential:.4f}; Hessian condition number "
        f"{res.condition_number:.3g}; {res.seconds:.0f} s"
    )
    n = cfg.inference.nuts
    settings = nuts_settings(cfg)
    runner = ChainRunner(model, data, settings, res.inverse_mass_matrix)
    inits = chain_starts(
        lambda x: float(potential(jnp.asarray(x), data)),
        unravel,
        k_init,
        res.x,
        res.inverse_mass_matrix,
        n.num_chains,
        n.max_init_attempts,
    )
    state = runner.init(k_sample, inits)
    draws: dict = {}
    stats: dict = {}

    def on_chunk(st, n_done, chunk_stats, chunk_draws, seconds):
        nonlocal draws, stats
        if chunk_draws:
            for acc, new in ((draws, chunk_draws), (stats, chunk_stats)):
                for k, v in new.items():
                    v = np.asarray(v)
                    acc[k] = v if k not in acc else np.concatenate([acc[k], v], axis=1)

    say("NUTS: compiling the sampler (the first chunk includes compilation)...")
    t0 = time.perf_counter()
    run_chains(runner, state, 0, on_chunk, say)
    nuts_seconds = time.perf_counter() - t0
    prior = _prior_draws(problem, k_prior, cfg.inference.prior_draws)
    tree = _datatree(
        problem, draws, stats, prior, {"il6rcc_method": "nuts", "petab_problem": problem.name}
    )
    _io.atomic_write(out / "posterior.nc", lambda p: tree.to_netcdf(p, engine="h5netcdf"))
    table = summary_table(tree)
    _io.atomic_write(out / "summary.csv", lambda p: table.to_csv(p))
    d = cfg.diagnostics
    diag = diagnose(
        tree,
        Gates(d.max_rhat, d.min_ess_bulk, d.min_ess_tail, d.max_divergences, d.min_ebfmi),
        n.max_tree_depth,
    )
    wall = time.perf_counter() - started
    diag.update(
        method="nuts",
        wall_seconds=wall,
        nuts_seconds=nuts_seconds,
        map_potential=res.potential,
        map_seconds=res.seconds,
        map_condition_number=res.condition_number,
        device=man["device"],
    )
    _io.write_json(out / "diagnostics.json", diag)
    (out / "figures").mkdir(exist_ok=True)
    rank_and_trace(tree, out / "figures", log_scale=False)
    prior_vs_posterior(tree, out / "figures", log_scale=False)
    mark_complete(man, diag, wall)
    _io.write_json(out / "manifest.json", man)
    verdict = (
        "all diagnostic gates passed"
        if diag["passed"]
        else ("WARNING: diagnostic gates failed: " + ", ".join(diag["failed_gates"]))
    )
    say(f"done in {wall / 60:.1f} min; {verdict}. Outputs in {out}")
    return 0


__all__ = ["petab_model", "run_petab_fit"]
