"""The GPU readiness check (benchmarks/gpu_check.sh, bench_gpu.py) runs on the CPU at
tiny sizes, so that its code paths are known to work before a GPU is at hand. It has
not run on a GPU yet (benchmarks/RESULTS.md)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import bench_gpu  # noqa: E402


def test_batched_throughput_of_a_petab_problem(tmp_path):
    """One batch of two parameter sets of Boehm's llh, value and gradient; the report
    and the merge of AMICI's separately measured throughput."""
    fn, x0, _ = bench_gpu.petab_density("Boehm_JProteomeRes2014", "bdf")
    rows = bench_gpu.batched_throughput(fn, x0, [2], spread=0.05, repeats=1, budget_s=1e9)
    (row,) = rows
    assert row["n"] == 2 and row["value_failed"] == 0 and row["value_and_grad_failed"] == 0
    assert row["value_per_s"] > 0 and row["value_and_grad_per_s"] > 0
    res = {
        "device": "cpu",
        "problems": {"Boehm_JProteomeRes2014": {"description": "test", "batches": rows}},
    }
    (tmp_path / "gpu.json").write_text(json.dumps(res))
    amici = {"value_per_s": 500.0, "value_and_grad_per_s": 50.0, "gradient_call": "x"}
    (tmp_path / "amici").mkdir()
    (tmp_path / "amici" / "gpu.json").write_text(
        json.dumps({"problems": {"Boehm_JProteomeRes2014": {"amici": amici}}})
    )
    text = bench_gpu.combine(tmp_path).read_text()
    expected = row["value_and_grad_per_s"] / 50.0
    assert f"{expected:.1f}" in text and "AMICI, one core" in text


def test_batch_members_are_independent():
    """vmap over parameter sets gives each set's own value (a perturbed set differs
    from the reference, the reference equals the single evaluation)."""
    fn, x0, _ = bench_gpu.petab_density("Boehm_JProteomeRes2014", "bdf")
    import jax
    import jax.numpy as jnp

    xs = jnp.stack([x0, x0 + 0.05])
    batched = np.asarray(jax.jit(jax.vmap(fn))(xs))
    np.testing.assert_allclose(batched[0], float(jax.jit(fn)(x0)), rtol=1e-6)
    assert abs(batched[1] - batched[0]) > 1e-3


@pytest.mark.slow
def test_gpu_check_script_runs_on_cpu_at_tiny_sizes(tmp_path):
    """The whole script (both problems, the many-chains fit) with GPU_CHECK_TINY=1."""
    env = dict(os.environ, GPU_CHECK_TINY="1", OUT=str(tmp_path), JAX_PLATFORMS="cpu")
    env["PY"] = sys.executable
    done = subprocess.run(
        ["bash", str(BENCHMARKS / "gpu_check.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    res = json.loads((tmp_path / "gpu.json").read_text())
    assert set(res["problems"]) == {"circuit", "Boehm_JProteomeRes2014"}
    for r in res["problems"].values():
        assert [b["n"] for b in r["batches"]] == [2, 3]
        assert all(b["value_failed"] == 0 for b in r["batches"])
    assert (tmp_path / "fit").is_dir(), (tmp_path / "fit.log").read_text()[-3000:]
