"""Simulation-based calibration (Talts et al. 2018) of the inference on a reduced model.

Model: FeedbackGene (configs/sweeps/sbc/gene_models.py) with the five fold-change rows of the
comparison test; estimated k and kd (a and K fixed at their defaults, so every
parameter is identifiable). 60 replicates: parameters drawn from the prior, data drawn
from the likelihood, NUTS 300 warmup + 300 draws (one chain, thinned by 3 to 100
draws), rank of the true value among the draws. Ranks must be uniform on 0..100:
chi-square over 10 bins, p > 0.01 per parameter. About 10 minutes on 2 CPU cores.
"""

import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import yaml
from scipy.stats import chisquare

from il6rcc.configs import load_config
from il6rcc.inference import ChainRunner, EvidencePosterior, NutsSettings, run_chains
from il6rcc.jobs import evidence_problem

FIX = Path(__file__).parent / "fixtures" / "compare_job"
#: the model file and reference tables: those of the shipped SBC sweep (one copy)
GENE = Path(__file__).parents[1] / "configs" / "sweeps" / "sbc"
REPLICATES, WARMUP, DRAWS, THIN = 60, 300, 300, 3


@pytest.mark.slow
def test_simulation_based_calibration(tmp_path):
    from test_compare_predict import _synthetic_rows

    for f in ("gene_models.py", "assays.tsv", "nuisance_priors.tsv", "statements.tsv"):
        shutil.copy(GENE / f, tmp_path / f)
    _synthetic_rows().to_csv(tmp_path / "evidence_synthetic.tsv", sep="\t", index=False)
    cfg = yaml.safe_load((FIX / "job.yaml").read_text())
    cfg["priors"] = {"estimate": ["k", "kd"]}
    (tmp_path / "sbc.yaml").write_text(yaml.safe_dump(cfg))
    problem, _ = evidence_problem(load_config(tmp_path / "sbc.yaml"))
    posterior = EvidencePosterior(problem)
    data = jax.tree.map(jnp.asarray, posterior.data)
    key = jax.random.PRNGKey(2018)
    k_prior, k_noise, k_mcmc = jax.random.split(key, 3)
    latent = posterior.prior_sample(k_prior, REPLICATES, data)  # z and log sigma
    sim = posterior.compiled.record(latent, data)
    assert int(np.sum(sim["n_failed"])) == 0
    row_sd = np.asarray(data.ev["row_sd"])
    noise = np.asarray(jax.random.normal(k_noise, (REPLICATES, row_sd.size))) * row_sd
    values = sim["predicted"] + noise
    # the fit job's own sampler (chunked NUTS, data as an argument: compiled once)
    settings = NutsSettings(
        num_warmup=WARMUP,
        num_samples=DRAWS,
        num_chains=1,
        max_tree_depth=6,
        mass_matrix="diag",
    )
    runner = ChainRunner(posterior, data, settings)
    init = posterior.initial_point()[None, :]
    ranks = []
    for r in range(REPLICATES):
        runner.data = data._replace(ev=dict(data.ev, row_value=jnp.asarray(values[r])))
        collected = []
        run_chains(
            runner,
            runner.init(jax.random.fold_in(k_mcmc, r), init),
            0,
            100,
            lambda st, n, stats, draws, sec, acc=collected: acc.append(draws.get("theta")),
        )
        draws = np.concatenate([np.asarray(d)[0] for d in collected if d is not None])
        draws = draws[::THIN]
        truth = sim["theta"][r]
        ranks.append(np.sum(draws < truth[None, :], axis=0))
    ranks = np.array(ranks)  # [replicates, n_params], each in 0..DRAWS // THIN
    for j, name in enumerate(problem.parameterisation.names):
        counts = np.histogram(ranks[:, j], bins=10, range=(0, DRAWS // THIN + 1))[0]
        p = chisquare(counts).pvalue
        assert p > 0.01, (name, counts, p)
