"""Model comparison, intervention predictions and experiment design on simulated truth.

Data: five fold-change rows simulated (no noise; spread 5 % SD, n = 3) from
FeedbackGene (configs/sweeps/sbc/gene_models.py, a user model file) at its
defaults a = 2, k = 0.5, K = 1, kd = 0.8. Both variants are fitted with NUTS,
2 chains x (150 warmup + 150 draws), seed 3; about a minute each on 2 CPU cores.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from _synthetic_rows import COLUMNS, synthetic_value_row

from il6rcc.configs import load_config
from il6rcc.jobs import open_run
from il6rcc.jobs.compare import run_compare
from il6rcc.jobs.design import Candidate, rank_experiments
from il6rcc.jobs.fit import run_fit
from il6rcc.jobs.predict import predict_table
from il6rcc.jobs.report import write_report
from il6rcc.models import Condition, SolverSettings, load_model, simulate

FIX = Path(__file__).parent / "fixtures" / "compare_job"
#: the model file and reference tables: those of the shipped SBC sweep (one copy)
GENE = Path(__file__).parents[1] / "configs" / "sweeps" / "sbc"
# row id, condition, time (h)
DESIGN = [
    ("g-01", {"inducer": 1.0}, "inducer=1 fold", 24.0),
    ("g-02", {"inducer": 3.0}, "inducer=3 fold", 24.0),
    ("g-03", {"inducer": 10.0}, "inducer=10 fold", 24.0),
    ("g-04", {"inducer": 3.0}, "inducer=3 fold", 2.0),
    ("g-05", {"si_gene": 1.0}, "si_gene=on", 24.0),
]


def _synthetic_rows() -> pd.DataFrame:
    model = load_model(f"{GENE / 'gene_models.py'}:FeedbackGene")
    conds = [Condition("ctrl", "default")] + [Condition(r, "default", p) for r, p, _, _ in DESIGN]
    sim = simulate(model, None, conds, [2.0, 24.0], SolverSettings(rtol=1e-10, atol=1e-12))
    x = sim.observable("x")
    records = []
    for i, (row_id, _, text, t) in enumerate(DESIGN):
        j = [2.0, 24.0].index(t)
        fold = float(x[i + 1, j] / x[0, j])
        records.append(
            synthetic_value_row(
                row_id=row_id,
                condition=text,
                time_h=f"{t:g}",
                value=f"{fold:.6g}",
                value_unit="fold",
                spread=f"{0.05 * fold:.6g}",
                spread_type="SD",
                n="3",
                significance="significant",
                notes="SYNTHETIC: simulated from FeedbackGene at its defaults",
            )
        )
    return pd.DataFrame.from_records(records, columns=COLUMNS)


@pytest.fixture(scope="module")
def fits(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    for f in ("gene_models.py", "assays.tsv", "nuisance_priors.tsv", "statements.tsv"):
        shutil.copy(GENE / f, root / f)
    _synthetic_rows().to_csv(root / "evidence_synthetic.tsv", sep="\t", index=False)
    template = yaml.safe_load((FIX / "job.yaml").read_text())
    runs = {}
    for name, cls, estimate in (
        ("feedback", "FeedbackGene", ["a", "k", "K", "kd"]),
        ("plain", "PlainGene", ["a", "k", "kd"]),
    ):
        cfg = {
            **template,
            "name": name,
            "model": {"name": f"gene_models.py:{cls}"},
            "priors": {"estimate": estimate},
        }
        path = root / f"{name}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        runs[name] = root / "runs" / name
        assert run_fit(path, runs[name], quiet=True) == 0
    return root, runs


def test_compare_ranks_the_true_variant_first(fits, tmp_path):
    _, runs = fits
    assert run_compare([runs["plain"], runs["feedback"]], tmp_path, refit="none", quiet=True) == 0
    table = pd.read_csv(tmp_path / "compare.csv", index_col="variant")
    assert table.index[0] == "feedback"
    assert table.loc["feedback", "weight"] > 0.5
    assert table.loc["plain", "elpd"] < table.loc["feedback", "elpd"]
    assert (tmp_path / "compare.png").stat().st_size > 1000
    assert (tmp_path / "loo.json").is_file()


def test_knockdown_prediction_equals_posterior_predictive_of_its_row(fits):
    """Row g-05 (siRNA vs none at 24 h) is also the config's custom prediction."""
    _, runs = fits
    run = open_run(runs["feedback"])
    p = run.config.config.predict.model_copy(update={"draws": 100_000})  # all draws
    table, failed, _ = predict_table(run, p)
    assert failed == 0
    row = table[table["intervention"] == "siRNA vs none"].iloc[0]
    predicted = np.asarray(run.tree["posterior_predictive"]["predicted"])
    col = list(np.asarray(run.tree["posterior_predictive"]["row"])).index("g-05")
    fold = np.exp(predicted[..., col]).ravel()
    assert row["n_draws"] == fold.size
    assert row["mean"] == pytest.approx(fold.mean(), rel=1e-6)
    assert row["q05"] == pytest.approx(np.percentile(fold, 5), rel=1e-6)
    # and the fit recovered the knock-down: 1 - kd at steady state is near the data
    assert 0.1 < row["q50"] < 0.5


# simulates two circuit variants for every candidate (~2 min)
@pytest.mark.slow
def test_experiment_ranking_prefers_the_discriminating_experiment():
    """Circuit variants main (TKI -> NF-kB -> IL-6) and tki_akt_direct differ only in how
    a TKI acts. IFN alone (no TKI) gives the same pSTAT1 in both; sorafenib +
    tocilizumab vs sorafenib gives a different pAKT. 12 draws with 10 % jitter."""
    solver = SolverSettings(rtol=1e-6, atol=1e-8)
    hypotheses = {}
    jitter = None
    for variant in ("main", "tki_akt_direct"):
        model = load_model("rcc_circuit", variant)
        est = np.array([p.estimable for p in model.parameters])
        if jitter is None:  # the same draws for both variants: only the mechanism differs
            jitter = np.exp(0.1 * np.random.default_rng(5).standard_normal((12, est.sum())))
        rows = np.repeat(np.asarray(model.default_params("786-O"))[None], 12, axis=0)
        rows[:, est] *= jitter
        hypotheses[variant] = (model, solver, {"786-O": rows})
    same = Candidate("786-O", {"ifn_alpha": 1000.0}, {}, "pstat1", 24.0)
    differs = Candidate(
        "786-O", {"sorafenib": 5.0, "tocilizumab": 30.0}, {"sorafenib": 5.0}, "pakt", 24.0
    )
    table = rank_experiments(hypotheses, [same, differs])
    means = table.set_index("experiment").filter(like="mean log fold change")
    # the premise: identical outcome for one candidate, different for the other
    assert abs(means.loc[same.label].iloc[0] - means.loc[same.label].iloc[1]) < 1e-6
    assert abs(means.loc[differs.label].iloc[0] - means.loc[differs.label].iloc[1]) > 0.05
    assert table["experiment"].iloc[0] == differs.label
    info = table.set_index("experiment")["information_bits_fold_change"]
    assert info[same.label] < 0.01 < info[differs.label]


def test_custom_prediction_names_are_checked_at_load(tmp_path):
    cfg = yaml.safe_load((FIX / "job.yaml").read_text())
    cfg["data"]["tables"] = [str(GENE / "assays.tsv")]
    cfg["predict"]["custom"][0]["inputs"] = {"si_gen": 1}
    path = tmp_path / "bad.yaml"
    shutil.copy(GENE / "gene_models.py", tmp_path / "gene_models.py")
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(Exception, match="si_gen"):
        load_config(path)


@pytest.fixture(scope="module")
def map_run(fits):
    """PlainGene fitted by the default job's method: MAP, then 200 importance-checked
    Laplace draws (one chain of independent draws, no NUTS statistics)."""
    root, _ = fits
    out = root / "runs" / "plain-map"
    overrides = {"inference.method": "map", "inference.map.num_draws": 200}
    assert run_fit(root / "plain.yaml", out, overrides, quiet=True) == 0
    return out


def test_a_map_run_reports_the_gates_it_checked(map_run):
    diag = json.loads((map_run / "diagnostics.json").read_text())
    assert diag["method"] == "map" and diag["gates_checked"] == [
        "map_is_mode",
        "pareto_k",
        "importance_ess",
    ]
    assert diag["gates"]["max_rhat"]["status"] == "not applicable"
    assert diag["gates"]["max_rhat"]["passed"] is None
    assert np.isfinite(diag["pareto_k"]) and diag["importance_draws"] == 200
    assert (map_run / "figures" / "importance.png").is_file()
    assert not (map_run / "figures" / "ranks.png").exists()  # one set of draws: no chains
    text = write_report(map_run).read_text()
    assert "not applicable" in text and "pareto_k" in text


@pytest.mark.parametrize(
    "notebook, method",
    [
        ("diagnostics", "nuts"),
        ("diagnostics", "map"),
        # the comparison notebook predicts for both fits in a fresh kernel (minutes)
        pytest.param("mechanism_comparison", "nuts", marks=pytest.mark.slow),
        pytest.param("mechanism_comparison", "map", marks=pytest.mark.slow),
    ],
)
def test_notebooks_execute_top_to_bottom(notebook, method, fits, map_run, tmp_path, monkeypatch):
    """Both notebooks read the output of every method: NUTS chains, and the default
    job's MAP + Laplace draws (the comparison then mixes a MAP run with a NUTS run)."""
    import nbformat
    from nbclient import NotebookClient

    _, runs = fits
    first = runs["feedback"] if method == "nuts" else map_run
    monkeypatch.setenv("IL6RCC_RUN", str(first))
    monkeypatch.setenv(
        "IL6RCC_RUNS", f"{runs['feedback']} {runs['plain'] if method == 'nuts' else map_run}"
    )
    monkeypatch.setenv("MPLBACKEND", "Agg")
    path = Path(__file__).parents[1] / "notebooks" / f"{notebook}.ipynb"
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    errors = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors
    assert any(
        o.get("output_type") in ("display_data", "execute_result")
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
    )


def test_recovery_of_the_identifiable_parameters(fits):
    """The FeedbackGene fit to data simulated at a = 2, k = 0.5, K = 1, kd = 0.8.

    Identifiable: k (the 2 h row fixes the approach to steady state), kd (the siRNA row)
    and a / K. Not identifiable: a and K separately, because every row is a fold change
    and scaling x, a and K by the same factor leaves all fold changes unchanged; their
    posterior stays near the prior along that direction. Each identifiable quantity's
    truth must lie inside its central 90 % posterior interval."""
    _, runs = fits
    run = open_run(runs["feedback"])
    theta = run.draws()["theta"]
    names = list(run.problem.parameterisation.names)
    a, k, big_k, kd = (theta[:, names.index(n)] for n in ("a", "k", "K", "kd"))
    for label, draws, truth in (("k", k, 0.5), ("kd", kd, 0.8), ("a/K", a / big_k, 2.0)):
        lo, hi = np.percentile(draws, [5, 95])
        assert lo < truth < hi, (label, lo, hi)
    # the non-identifiable direction really is wide: a alone is barely constrained
    # compared with a / K. Not by a fixed factor of 3: the posterior also has a ridge
    # of strong feedback (k up to ~50 with K ~ 0.01, log density ~7 below the mode)
    # that widens a / K; with 2 x 150 draws a chain explores it or not depending on the
    # sampler's random stream (SD ratio 3.6 when neither chain does, 1.75 when one
    # does, with R-hat of k then 1.19 and the run's gates failing, as they should)
    assert np.std(np.log(a)) > 1.5 * np.std(np.log(a / big_k))
