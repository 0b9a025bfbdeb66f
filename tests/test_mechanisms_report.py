"""The mechanism report (``il6rcc report-mechanisms``; the ``report`` step of a sweep).

Slow: a tiny sweep (FeedbackGene and PlainGene of configs/sweeps/sbc/gene_models.py x
row and statement weighting, MAP + 100 Laplace draws each) on the five synthetic
fold-change rows of test_compare_predict plus three sign rows, run through
``il6rcc sweep`` with ``then: [compare, report]``; the report's numbers must equal
``compare.csv`` and ``il6rcc predict``'s ``predictions.csv`` of the same runs.
Fast: the table assembly on small synthetic tables, no fits.
"""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from il6rcc.configs import load_sweep_config
from il6rcc.errors import ConfigError, Il6rccError
from il6rcc.jobs import open_run, reproduction_rates
from il6rcc.jobs.mechanisms import (
    Member,
    change_text,
    conclusion,
    findings_table,
    loo_caveat,
    statement_matrix,
    unreproduced,
    write_mechanisms_report,
)

FIX = Path(__file__).parent / "fixtures" / "compare_job"
GENE = Path(__file__).parents[1] / "configs" / "sweeps" / "sbc"
STATEMENTS = {
    "S-1": "x rises with the inducer (dose series)",
    "S-2": "x rises within 2 h of the inducer",
    "S-3": "knocking the gene down lowers x",
    "S-4": "the inducer lowers x (a finding no variant can reproduce)",
}
ROW_STATEMENT = {"g-01": "S-1", "g-02": "S-1", "g-03": "S-1", "g-04": "S-2", "g-05": "S-3"}
SIGN_ROWS = [  # row id, statement, condition, direction
    ("g-06", "S-1", "inducer=10 fold", "up"),
    ("g-07", "S-3", "si_gene=on", "down"),
    ("g-08", "S-4", "inducer=3 fold", "down"),
]


def _evidence() -> pd.DataFrame:
    from test_compare_predict import _synthetic_rows

    rows = _synthetic_rows()
    rows["statement_ids"] = rows["row_id"].map(ROW_STATEMENT)
    for row_id, sid, cond, direction in SIGN_ROWS:
        sign = {c: "" for c in rows.columns}
        sign.update(
            row_id=row_id,
            study_id="gene",
            statement_ids=sid,
            source="doi:10.0000/synthetic test",
            kind="sign",
            observable_id="x",
            assay="generic",
            cell_line="default",
            background="none",
            condition=cond,
            control="none",
            time_h="24",
            direction=direction,
            significance="significant",
            quote="synthetic test row",
            notes="SYNTHETIC: a direction for the report test",
        )
        rows = pd.concat([rows, pd.DataFrame([sign])], ignore_index=True)
    return rows


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    from il6rcc.jobs.sweep import run_sweep

    root = tmp_path_factory.mktemp("mechanisms")
    for f in ("gene_models.py", "assays.tsv", "nuisance_priors.tsv"):
        shutil.copy(GENE / f, root / f)
    _evidence().to_csv(root / "evidence_synthetic.tsv", sep="\t", index=False)
    pd.DataFrame(
        [
            {"statement_id": k, "study_id": "gene", "source": "doi:10.0000/synthetic", "summary": v}
            for k, v in STATEMENTS.items()
        ]
    ).to_csv(root / "statements.tsv", sep="\t", index=False)
    job = yaml.safe_load((FIX / "job.yaml").read_text())
    job["priors"] = {"estimate": ["a", "k", "kd"]}
    job["inference"] = {
        "method": "map",
        "seed": 3,
        "map": {"n_starts": 2, "max_steps": 100, "num_draws": 100},
        "prior_draws": 20,
    }
    job["predict"]["draws"] = 100
    (root / "job.yaml").write_text(yaml.safe_dump(job))
    sweep_file = root / "tiny.yaml"
    sweep_file.write_text(
        yaml.safe_dump(
            {
                "name": "tiny-mechanisms",
                "base": "job.yaml",
                "axes": [
                    {
                        "key": "model.name",
                        "label": "variant",
                        "values": ["gene_models.py:FeedbackGene", "gene_models.py:PlainGene"],
                        "names": ["feedback", "plain"],
                    },
                    {"key": "likelihood.weighting", "values": ["row", "statement"]},
                ],
                "compare_by": ["weighting"],
                "compare_refit": "none",  # PSIS-LOO alone: no refits of high Pareto k rows
                "then": ["compare", "report"],
                "report_out": "results",
            }
        )
    )
    out = root / "runs"
    code = run_sweep(sweep_file, out, jobs=1, quiet=True)
    assert code == 0, (out / "_sweep" / "logs" / "report.log").read_text()
    return out, root / "results"


@pytest.mark.slow
def test_the_report_regenerates_and_its_numbers_are_compares_and_predicts(sweep, tmp_path):
    out, results = sweep
    text = (results / "mechanisms.md").read_text()
    for needle in ("il6rcc sweep", "commit", "feedback", "plain", "statement weighting"):
        assert needle in text
    # compare.csv: compare's numbers, per weighting, unchanged
    ours = pd.read_csv(results / "compare.csv")
    for w in ("row", "statement"):
        theirs = pd.read_csv(out / "compare" / f"weighting={w}" / "compare.csv")
        mine = ours[ours["weighting"] == w].set_index("run").loc[theirs["variant"]]
        for col in ("elpd", "se", "elpd_diff", "dse", "weight", "p"):
            np.testing.assert_array_equal(mine[col].to_numpy(), theirs[col].to_numpy())
        assert set(mine["variant"]) == {"feedback", "plain"}
    # findings.csv: the runs' own reproduction rates, labelled by statement
    findings = pd.read_csv(results / "findings.csv")
    assert set(findings["row_id"]) == {"g-06", "g-07", "g-08"}
    assert len(findings) == 3 * 4
    element = "variant=feedback__weighting=statement"
    run = open_run(out / element)
    rows = [str(r) for r in np.asarray(run.tree["posterior_predictive"]["row"])]
    p = dict(zip(rows, reproduction_rates(run.tree), strict=True))
    sub = findings[(findings["variant"] == "feedback") & (findings["weighting"] == "statement")]
    for r in sub.itertuples():
        assert r.p_reproduced == pytest.approx(p[r.row_id], abs=1e-12)
        assert r.statement == STATEMENTS[r.statement_id]
    assert "S-4" in text and STATEMENTS["S-4"][:30] in text  # reproduced by no variant
    # predictions.csv: il6rcc predict's table of the same run
    from il6rcc.jobs.predict import run_predict

    assert run_predict(out / element, tmp_path, quiet=True) == 0
    theirs = pd.read_csv(tmp_path / "predictions.csv")
    preds = pd.read_csv(results / "predictions.csv")
    mine = preds[preds["element"] == element]
    for col in ("mean", "sd", "q05", "q50", "q95", "n_draws"):
        np.testing.assert_allclose(mine[col].to_numpy(), theirs[col].to_numpy(), rtol=1e-12)
    for fig in ("weights.png", "findings.png", "predictions.png"):
        assert (results / "figures" / fig).stat().st_size > 1000
    gates = pd.read_csv(results / "elements.csv")
    assert gates["gates"].str.match(r"^(passed|FAILED)").all()


@pytest.mark.slow
def test_failed_elements_are_listed_and_a_stale_compare_is_refused(sweep, tmp_path):
    out, _ = sweep
    copy = tmp_path / "runs"
    shutil.copytree(out, copy)
    index = pd.read_csv(copy / "sweep.csv", dtype=str, keep_default_na=False)
    failed = "variant=plain__weighting=statement"
    index.loc[index["element"] == failed, ["status", "error"]] = ["failed", "exit status 1: boom"]
    index.to_csv(copy / "sweep.csv", index=False)
    # the statement comparison still names the element that failed: stale, refused
    with pytest.raises(Il6rccError, match="not a complete element of this sweep now"):
        write_mechanisms_report(copy, tmp_path / "r1", quiet=True)
    shutil.rmtree(copy / "compare" / "weighting=statement")
    report = write_mechanisms_report(copy, tmp_path / "r2", quiet=True)
    text = (report / "mechanisms.md").read_text()
    assert f"Not in the comparison (failed or unfinished): {failed}" in text
    assert "boom" in text
    assert not list(tmp_path.glob(".r2.*"))  # the staging folder was renamed
    # a complete pair that no comparison covers: named
    shutil.rmtree(copy / "compare" / "weighting=row")
    with pytest.raises(Il6rccError, match=r"no comparison covers the complete elements \["):
        write_mechanisms_report(copy, tmp_path / "r3", quiet=True)
    assert not (tmp_path / "r3").exists()


# ----------------------------------------------------------------------------- fast
def _frame(ps: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "row_id": list(ps),
            "statement_id": ["A", "A", "B", "C"][: len(ps)],
            "p_reproduced": list(ps.values()),
            "statement": ["alpha", "alpha", "beta", "gamma"][: len(ps)],
        }
    )


def test_findings_unreproduced_and_the_statement_matrix():
    per_run = [
        ("m1", "row", _frame({"r1": 0.9, "r2": 0.2, "r3": 0.1, "r4": np.nan})),
        ("m2", "row", _frame({"r1": 0.4, "r2": 0.6, "r3": 0.3, "r4": np.nan})),
        ("m1", "statement", _frame({"r1": 0.8, "r2": 0.1, "r3": 0.7, "r4": np.nan})),
    ]
    table = findings_table(per_run)
    assert list(table.columns[:5]) == [
        "row_id",
        "statement_id",
        "variant",
        "weighting",
        "p_reproduced",
    ]
    assert len(table) == 9 and "r4" not in set(table["row_id"])  # value rows left out
    missing = unreproduced(table)
    # r3: 0.1 and 0.3 under row weighting (neither > 0.5); r2: 0.1 under statement
    assert list(zip(missing["weighting"], missing["row_id"], strict=True)) == [
        ("row", "r3"),
        ("statement", "r2"),
    ]
    assert missing.loc[0, "best_p"] == 0.3 and missing.loc[0, "best_variant"] == "m2"
    mat = statement_matrix(table, "row")
    assert mat.loc["A: alpha (2 rows)", "m1"] == pytest.approx(0.55)
    assert mat.loc["B: beta", "m2"] == pytest.approx(0.3)


def _compare(w, weights, elpd, dse):
    return pd.DataFrame(
        {
            "weighting": w,
            "variant": ["v1", "v2", "v3"],
            "weight": weights,
            "elpd": elpd,
            "elpd_diff": [e - max(elpd) for e in elpd],  # arviz 1.x: <= 0
            "dse": dse,
        }
    )


def test_the_conclusion_and_how_it_changes_with_the_weighting():
    same = pd.concat(
        [
            _compare("row", [0.7, 0.2, 0.1], [-10.0, -12.0, -20.0], [0.0, 1.5, 3.0]),
            _compare("statement", [0.6, 0.3, 0.1], [-5.0, -6.0, -9.0], [0.0, 0.5, 1.0]),
        ]
    )
    concl = conclusion(same)
    assert concl["row"]["best"] == "v1" and concl["row"]["runner_up"] == "v2"
    assert concl["row"]["elpd_diff"] == -2.0 and concl["row"]["dse"] == 1.5
    assert change_text(concl).startswith("The conclusion holds")
    flipped = pd.concat(
        [
            _compare("row", [0.7, 0.2, 0.1], [-10.0, -12.0, -20.0], [0.0, 1.5, 3.0]),
            _compare("statement", [0.1, 0.2, 0.7], [-9.0, -6.0, -5.0], [1.0, 0.5, 0.0]),
        ]
    )
    text = change_text(conclusion(flipped))
    assert text.startswith("The conclusion changes") and "to v3 (0.70)" in text
    assert "moves by two or more places: v1, v3" in text
    assert change_text(conclusion(same[same["weighting"] == "row"])).startswith("Not assessed")


def test_an_answer_from_unreliable_loo_or_failed_gates_says_it_is_indicative():
    class Run:  # what loo_caveat reads of a run folder: its gates' verdict
        def __init__(self, passed):
            self.diagnostics = {"passed": passed}

    table = _compare("row", [0.7, 0.2, 0.1], [-10.0, -12.0, -20.0], [0.0, 1.5, 3.0])
    table["element"] = [f"row__{v}" for v in table["variant"]]
    table["method"] = "psis-loo"
    table["n_high_k"] = [0, 0, 0]
    table["p"] = [3.0, 2.5, 4.0]
    members = [Member(f"row__{v}", v, "row", "complete", "", Run(True)) for v in table["variant"]]
    assert loo_caveat(table, members) == ""
    # refitted rows (method 'psis-loo + refit') are no caveat; unrefitted ones are
    table["n_high_k"] = [0, 158, 3]
    table["method"] = ["psis-loo", "psis-loo of an approximation", "psis-loo + 3 refits"]
    table.loc[1, "p"] = -2.4
    members[0] = Member("row__v1", "v1", "row", "complete", "", Run(False))
    text = loo_caveat(table, members)
    assert text.startswith("indicative only: ")
    assert "PSIS-LOO unreliable for 1 of 3 variants, up to 158 rows" in text
    assert "p_loo < 0 for v2" in text and "posterior gates failed for v1" in text


def test_the_sweep_file_checks_compare_by_and_the_report_step(tmp_path):
    base = tmp_path / "job.yaml"
    base.write_text("name: x\n")
    sweep = {
        "base": "job.yaml",
        "axes": [{"key": "likelihood.weighting", "values": ["row", "statement"]}],
        "compare_by": ["weighting"],
        "then": ["compare", "report"],
    }
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(sweep))
    assert load_sweep_config(path).compare_by == ["weighting"]
    path.write_text(yaml.safe_dump({**sweep, "compare_by": ["weightings"], "then": ["report"]}))
    with pytest.raises(ConfigError) as err:
        load_sweep_config(path)
    assert "compare_by: got ['weightings']" in str(err.value)
    assert "put 'compare' before it" in str(err.value)


def test_the_shipped_sweep_covers_both_weightings_and_writes_the_report():
    from il6rcc.jobs.sweep import plan_sweep
    from il6rcc.jobs.sweep._then import report_folder

    path = Path(__file__).parents[1] / "configs" / "sweeps" / "mechanisms.yaml"
    plan = plan_sweep(path)
    weightings = {dict(el.values)["weighting"] for el in plan.elements}
    assert weightings == {"row", "statement"} and len(plan.elements) == 26
    assert plan.config.then == ["compare", "report"]
    assert report_folder(plan, Path("runs")) == (path.parents[2] / "docs" / "results").resolve()
