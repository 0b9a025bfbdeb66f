"""The SBC axis of ``il6rcc sweep`` on the shipped calibration job (configs/sweeps/sbc/).

Default suite: the replicates' data (prior draw -> simulated fold changes + the rows'
noise) are written as evidence tables that reproduce the simulated values exactly, the
same seed gives the same data, different replicates differ. Slow: a small SBC sweep
end to end (fits, then the rank statistics).
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from il6rcc.configs import load_config
from il6rcc.jobs import evidence_problem
from il6rcc.jobs.sweep import plan_sweep, run_sweep
from il6rcc.jobs.sweep._sbc import prepare_sbc

SBC = Path(__file__).resolve().parents[1] / "configs" / "sweeps" / "sbc"


def _sweep(tmp_path: Path, replicates: int, **extra) -> Path:
    cfg = {
        "name": "sbc-test",
        "base": str(SBC / "job.yaml"),
        "axes": [{"sbc": {"replicates": replicates, "seed": 11}}],
        **extra,
    }
    path = tmp_path / "sbc.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_replicate_data_are_simulated_into_tables_that_reproduce_them(tmp_path):
    plan = plan_sweep(_sweep(tmp_path, 3))
    out = tmp_path / "out"
    extra = prepare_sbc(plan, out)
    assert [e.name for e in plan.elements] == ["replicate=0", "replicate=1", "replicate=2"]
    original = pd.read_csv(SBC / "evidence_synthetic.tsv", sep="\t")
    values = []
    for el in plan.elements:
        tables = extra[el.name]["data.tables"]
        assert extra[el.name]["inference.seed"] == el.sbc_replicate
        evidence = pd.read_csv(tables[0], sep="\t")
        assert list(evidence["row_id"]) == list(original["row_id"])
        # the relative spread (hence the rows' log SD) is kept
        np.testing.assert_allclose(
            evidence["spread"] / evidence["value"],
            original["spread"] / original["value"],
            rtol=1e-9,
        )
        truth = json.loads((out / "_sweep" / "sbc" / el.name / "truth.json").read_text())
        assert set(truth["theta"]) == {"k", "kd"}
        problem, _ = evidence_problem(load_config(SBC / "job.yaml", {"data.tables": tables}))
        values.append(np.asarray(problem.arrays.row_value))
    assert not np.allclose(values[0], values[1])
    # the same seed gives the same data: a second sweep folder, the same tables
    again = prepare_sbc(plan, tmp_path / "again")
    for el in plan.elements:
        a = Path(extra[el.name]["data.tables"][0]).read_text()
        b = Path(again[el.name]["data.tables"][0]).read_text()
        assert a == b


@pytest.mark.slow
def test_small_sbc_sweep_end_to_end(tmp_path):
    """Eight replicates with MAP + Laplace draws: every replicate fitted, every truth
    ranked among 100 draws, a summary per parameter."""
    path = _sweep(
        tmp_path,
        8,
        set={"inference.method": "map", "inference.map.num_draws": 100},
        then=["sbc"],
    )
    out = tmp_path / "out"
    assert run_sweep(path, out, jobs=2, quiet=True) == 0
    ranks = pd.read_csv(out / "sbc" / "ranks.csv")
    assert len(ranks) == 16 and set(ranks["parameter"]) == {"k", "kd"}
    assert ranks["rank"].between(0, 100).all() and (ranks["n_draws"] == 100).all()
    summary = pd.read_csv(out / "sbc" / "summary.csv")
    assert list(summary["replicates"]) == [8, 8]
    assert (out / "sbc" / "ranks.png").stat().st_size > 1000
