"""The prior of an estimated noise SD keeps the log density bounded.

Two value rows without a published spread share one noise group; they are simulated
without noise from the model at the prior median, so the model fits them exactly there.
Then each row's likelihood grows as -log sigma when sigma -> 0: under the former
half-normal prior the log density had no maximum in log sigma (measured on the default
job: log sigma[suv] = -7.1 at an unconverged MAP, condition number 4e7). Under the
log-normal prior, log sigma ~ N(mu, s), the profile in u = log sigma is exactly
-n u + log N(u; mu, s) + const, maximal at u* = mu - n s^2 (closed form).
"""

import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import yaml
from _synthetic_rows import COLUMNS, synthetic_value_row

from il6rcc.configs import load_config
from il6rcc.inference import EvidencePosterior
from il6rcc.jobs import evidence_problem
from il6rcc.models import Condition, SolverSettings, load_model, simulate

GENE = Path(__file__).parents[1] / "configs" / "sweeps" / "sbc"
DOSES = (1.0, 3.0)


@pytest.fixture(scope="module")
def posterior(tmp_path_factory):
    root = tmp_path_factory.mktemp("noise")
    for f in ("gene_models.py", "assays.tsv", "nuisance_priors.tsv", "statements.tsv"):
        shutil.copy(GENE / f, root / f)
    model = load_model(f"{GENE / 'gene_models.py'}:FeedbackGene")
    conds = [Condition("ctrl", "default")] + [
        Condition(f"d{d:g}", "default", {"inducer": d}) for d in DOSES
    ]
    x = simulate(model, None, conds, [24.0], SolverSettings(rtol=1e-12, atol=1e-14))
    x = x.observable("x")[:, 0]
    rows = [
        synthetic_value_row(
            row_id=f"g-{i}",
            condition=f"inducer={d:g} fold",
            time_h="24",
            value=repr(float(x[i + 1] / x[0])),
            value_unit="fold",
            significance="not_stated",
            notes="SYNTHETIC: simulated without noise; no spread, so sigma is estimated",
        )
        for i, d in enumerate(DOSES)
    ]
    pd.DataFrame.from_records(rows, columns=COLUMNS).to_csv(
        root / "evidence_synthetic.tsv", sep="\t", index=False
    )
    cfg = {
        "name": "noise",
        "model": {"name": "gene_models.py:FeedbackGene"},
        "solver": {"rtol": 1e-10, "atol": 1e-12},
        "data": {
            "tables": [
                "evidence_synthetic.tsv",
                "assays.tsv",
                "nuisance_priors.tsv",
                "statements.tsv",
            ]
        },
        "priors": {"estimate": ["a", "k"]},
        "predict": {"standard": False, "cell_lines": ["default"]},
    }
    (root / "job.yaml").write_text(yaml.safe_dump(cfg))
    problem, _ = evidence_problem(load_config(root / "job.yaml"))
    return EvidencePosterior(problem)


def test_the_noise_sd_has_a_finite_mode_at_an_exact_fit(posterior):
    data = posterior.data
    names = posterior.coordinate_names
    i = [k for k, n in enumerate(names) if n.startswith("log sigma[")]
    assert len(i) == 1 and data.sd_groups.shape == (1,)
    x0 = np.asarray(posterior.initial_point(), dtype=np.float64)  # the defaults
    density = jax.jit(jax.vmap(lambda x: posterior.log_density(x, data)))
    u = np.linspace(-12.0, 1.0, 27)
    xs = np.repeat(x0[None], len(u), axis=0)
    xs[:, i[0]] = u
    f = np.asarray(density(jnp.asarray(xs)))
    settings = posterior.problem.likelihood
    mu, s, n = np.log(settings.noise_scale), settings.noise_log_sd, len(DOSES)
    expected = -n * u - 0.5 * ((u - mu) / s) ** 2  # the closed form up to a constant
    np.testing.assert_allclose(f - f[-1], expected - expected[-1], rtol=1e-6, atol=1e-6)
    assert u[np.argmax(f)] == pytest.approx(mu - n * s**2, abs=0.5)  # not at the edge
