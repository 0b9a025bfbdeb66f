"""``il6rcc sweep`` on a real single-node Slurm cluster, through submitit.

The cluster is Debian's slurmctld, slurmd and munge, installed by
scripts/slurm/install.sh (``.ci/run`` runs it) and started by scripts/slurm/start.sh
for this module, stopped at its end. Where Slurm is not installed or cannot start, the
test is skipped with the reason (set IL6RCC_REQUIRE_SLURM=1 to make that a failure, as
CI does). Two tiny NUTS fits run as one job array; one is sent USR2 mid-sampling, the
signal Slurm sends before a time limit or on preemption: submitit requeues it, and the
requeued task continues the run with ``il6rcc fit --resume``. Its draws must equal the
uninterrupted element's, bit for bit. Slurm holds a requeued task about 2 minutes
before it starts again, so the test takes that plus three tiny fits.
"""

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts" / "slurm"
FIX = Path(__file__).parent / "fixtures" / "sweep_job"
WARMUP = 60  # tiny.yaml


def _unavailable(reason: str):
    if os.environ.get("IL6RCC_REQUIRE_SLURM") == "1":
        pytest.fail(f"Slurm is required here (IL6RCC_REQUIRE_SLURM=1) but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def slurm():
    """A running single-node cluster; stopped afterwards if this fixture started it."""
    if not sys.platform.startswith("linux"):
        _unavailable("Slurm runs on Linux only")
    if os.geteuid() != 0:
        _unavailable("starting the Slurm daemons needs root")
    missing = [b for b in ("slurmctld", "slurmd", "munged", "sbatch") if not shutil.which(b)]
    if missing:
        _unavailable(
            f"Slurm is not installed ({', '.join(missing)} missing); run scripts/slurm/install.sh"
        )
    was_up = subprocess.run(["scontrol", "ping"], capture_output=True, text=True)
    started = subprocess.run(
        ["bash", str(SCRIPTS / "start.sh")], capture_output=True, text=True, timeout=120
    )
    if started.returncode != 0:
        _unavailable(f"Slurm could not start here: {started.stderr.strip()[-800:]}")
    try:
        yield
    finally:
        if "UP" not in was_up.stdout:
            subprocess.run(["bash", str(SCRIPTS / "stop.sh")], capture_output=True, timeout=120)


def _done(checkpoint: Path) -> int:
    try:
        with np.load(checkpoint) as f:
            return int(f["done"])
    except (OSError, KeyError, ValueError):
        return 0  # not there yet, or replaced while reading


def _posterior(run: Path) -> dict[str, np.ndarray]:
    tree = xr.open_datatree(run / "posterior.nc", engine="h5netcdf")
    out = {f"posterior/{k}": np.asarray(v) for k, v in tree["posterior"].data_vars.items()}
    out.update({f"stats/{k}": np.asarray(v) for k, v in tree["sample_stats"].data_vars.items()})
    tree.close()
    return out


def test_killed_element_is_requeued_and_resumes_to_the_same_draws(slurm, tmp_path):
    out = tmp_path / "sweep"
    t0 = time.monotonic()
    driver = subprocess.Popen(
        [sys.executable, "-m", "il6rcc.cli", "sweep", str(FIX / "slurm.yaml"), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, JAX_PLATFORMS="cpu"),
    )
    jobs_file = out / "_sweep" / "slurm" / "jobs.json"
    checkpoint = out / "run=killed" / "checkpoint.npz"
    signalled = requeued = None
    try:
        deadline = time.monotonic() + 1800
        while driver.poll() is None and time.monotonic() < deadline:
            if jobs_file.is_file() and _done(checkpoint) >= WARMUP + 100:
                job_id = json.loads(jobs_file.read_text())["run=killed"]
                subprocess.run(["scancel", "--signal=USR2", job_id], check=True)
                signalled = time.monotonic() - t0
                break
            time.sleep(0.1)
        # the task back in the queue, requeued: Slurm holds it about 2 minutes (until
        # the credential of its killed run expires; starting it earlier fails), then
        # starts it again
        while signalled and driver.poll() is None and time.monotonic() < deadline:
            state = subprocess.run(
                ["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True
            ).stdout.strip()
            if state == "PENDING":
                requeued = time.monotonic() - t0
                break
            time.sleep(0.2)
        output, _ = driver.communicate(timeout=max(deadline - time.monotonic(), 1))
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
            if jobs_file.is_file():
                ids = list(json.loads(jobs_file.read_text()).values())
                subprocess.run(["scancel", *ids], check=False)
    assert signalled is not None, f"the element was not seen sampling:\n{output}"
    assert driver.returncode == 0, output
    with (out / "sweep.csv").open() as fh:
        rows = {r["element"]: r for r in csv.DictReader(fh)}
    assert [r["status"] for r in rows.values()] == ["complete", "complete"], rows
    killed = rows["run=killed"]
    assert killed["attempts"] == "2" and rows["run=reference"]["attempts"] == "1", rows
    state = json.loads((out / "_sweep" / "state" / "run=killed.json").read_text())
    first, second = state["attempts"]
    assert first["action"] == "started" and first["error"].startswith("stopped"), first
    assert second["action"] == "resumed" and second["error"] == "", second
    # the same array task, requeued (not a new submission)
    assert first["slurm_job_id"] == second["slurm_job_id"] != ""
    man = json.loads((out / "run=killed" / "manifest.json").read_text())
    assert man["resumed"] == 1 and man["status"] == "complete"
    log = (out / "_sweep" / "logs" / "run=killed.log").read_text()
    assert "resumed on" in log and "--resume" in log
    reference, resumed = _posterior(out / "run=reference"), _posterior(out / "run=killed")
    assert reference.keys() == resumed.keys()
    for k in reference:
        np.testing.assert_array_equal(reference[k], resumed[k], err_msg=k)
    assert requeued is not None, "the task was never seen back in the queue"
    print(
        f"USR2 at {signalled:.0f} s, requeued (pending) at {requeued:.0f} s, sweep done at "
        f"{time.monotonic() - t0:.0f} s"
    )
