"""The ``slurm`` executor: every element is one task of a Slurm job array, submitted
through submitit.

A task runs the element's ``il6rcc fit`` (or ``il6rcc fit --resume``) in a child
process. When Slurm signals the task before its time limit or on preemption
(``--signal=USR2@signal_delay_s``), submitit calls :meth:`SlurmElement.checkpoint`: the
child is stopped (the fit keeps its last checkpoint), the task requeues itself with
``scontrol requeue``, and the next attempt finds an unfinished run folder and continues
it with ``il6rcc fit --resume``: the same draws as an uninterrupted run.

The driver (``il6rcc sweep``) waits for the tasks by watching the queue (``squeue``)
and submitit's result files, so it needs no accounting database (``sacct``). The job ids
are kept in ``DIR/_sweep/slurm/jobs.json``: a rerun waits for tasks still queued or
running instead of submitting them twice.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ... import _io
from ...errors import Il6rccError
from ._element import META, ElementRunner, element_paths, record_attempt, run_status

#: squeue states of a task that is not finished
ALIVE = {
    "PENDING",
    "RUNNING",
    "REQUEUED",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
    "CONFIGURING",
    "COMPLETING",
    "SUSPENDED",
    "RESIZING",
    "STAGE_OUT",
    "SIGNALING",
    "PREEMPTED",
}


class SlurmElement:
    """The callable submitit runs on the node: one element, one attempt per call.
    Checkpointable in submitit's sense (it has ``checkpoint``)."""

    def __init__(self, sweep_dir: str, name: str, python: str | None = None):
        self.sweep_dir = str(sweep_dir)
        self.name = name
        self.python = python
        self._runner: ElementRunner | None = None

    def __getstate__(self):
        return {"sweep_dir": self.sweep_dir, "name": self.name, "python": self.python}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._runner = None

    def __call__(self) -> dict:
        self._runner = ElementRunner(Path(self.sweep_dir), self.name, self.python)
        return self._runner.run()

    def checkpoint(self):
        """Called by submitit on time-out or preemption: stop the fit, requeue."""
        from submitit.helpers import DelayedSubmission

        if self._runner is not None:
            self._runner.stop("Slurm time limit or preemption; the task is requeued")
        return DelayedSubmission(SlurmElement(self.sweep_dir, self.name, self.python))


def _executor(out: Path, slurm, n_tasks: int):
    import submitit

    if shutil.which("sbatch") is None or shutil.which("squeue") is None:
        raise Il6rccError(
            "executor 'slurm': sbatch/squeue not found on this machine; run il6rcc sweep "
            "on a Slurm login node, or use --executor local"
        )
    folder = out / META / "slurm" / "%j"
    ex = submitit.SlurmExecutor(
        folder=folder, max_num_timeout=slurm.max_requeues, python=slurm.python
    )
    params = {
        "job_name": f"il6rcc-{out.name}",
        "time": slurm.time_min,
        "cpus_per_task": slurm.cpus_per_task,
        "mem": f"{slurm.mem_gb}GB",
        "array_parallelism": min(slurm.array_parallelism, max(n_tasks, 1)),
        "signal_delay_s": slurm.signal_delay_s,
        "setup": list(slurm.setup),
        "additional_parameters": {"requeue": True, **dict(slurm.additional)},
    }
    if slurm.partition:
        params["partition"] = slurm.partition
    if slurm.gpus_per_node:
        params["gpus_per_node"] = slurm.gpus_per_node
    ex.update_parameters(**params)
    return ex


def queue_states(job_ids: list[str]) -> dict[str, str]:
    """State of each listed task still in the queue (finished tasks are absent)."""
    if not job_ids:
        return {}
    mains = sorted({j.split("_")[0] for j in job_ids})
    proc = subprocess.run(
        ["squeue", "-h", "-r", "-o", "%i %T", "-j", ",".join(mains)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if proc.returncode != 0:
        if "Invalid job id" in proc.stderr:  # all of them left the queue
            return {}
        raise Il6rccError(f"squeue failed: {proc.stderr.strip()}")
    states = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] in ALIVE:
            states[parts[0]] = parts[1]
    return states


def _jobs_file(out: Path) -> Path:
    return out / META / "slurm" / "jobs.json"


def run_slurm(
    out: Path,
    names: list[str],
    slurm,
    on_change: Callable[[dict[str, str], set[str]], None],
    say: Callable[[str], None],
) -> dict[str, dict]:
    """Submit ``names`` as one job array (tasks of an earlier invocation still in the
    queue are waited for, not submitted again) and wait for all of them."""
    import submitit

    out = Path(out)
    known = json.loads(_jobs_file(out).read_text()) if _jobs_file(out).is_file() else {}
    alive = queue_states([known[n] for n in names if n in known])
    waiting = {n: known[n] for n in names if known.get(n) in alive}
    to_submit = [n for n in names if n not in waiting]
    folder = out / META / "slurm" / "%j"
    jobs: dict[str, object] = {
        n: submitit.SlurmJob(folder=folder, job_id=jid) for n, jid in waiting.items()
    }
    if waiting:
        say(f"waiting for {len(waiting)} element(s) still queued or running in Slurm")
    if to_submit:
        ex = _executor(out, slurm, len(to_submit))
        python = slurm.python or sys.executable
        with ex.batch():
            submitted = [ex.submit(SlurmElement(str(out), n, python)) for n in to_submit]
        for n, job in zip(to_submit, submitted, strict=True):
            jobs[n] = job
        known.update({n: jobs[n].job_id for n in to_submit})
        _io.write_json(_jobs_file(out), known)
        first = submitted[0].job_id.split("_")[0]
        say(f"submitted {len(to_submit)} element(s) as Slurm job array {first}")
    return _wait(out, jobs, slurm.poll_seconds, on_change, say)


def _wait(out, jobs: dict, poll: float, on_change, say) -> dict[str, dict]:
    results: dict[str, dict] = {}
    actions: dict[str, str] = {}
    absent: dict[str, int] = {}
    live = dict(jobs)
    on_change(actions, set(live))
    while live:
        states = queue_states([j.job_id for j in live.values()])
        changed = False
        for name, job in list(live.items()):
            res = None
            if job.paths.result_pickle.exists():
                res = _result(out, name, job)
            elif job.job_id not in states:
                absent[name] = absent.get(name, 0) + 1
                if absent[name] >= 2:  # gone from the queue without a result
                    res = _vanished(out, name, job)
            else:
                absent.pop(name, None)
            if res is not None:
                live.pop(name)
                results[name] = res
                actions[name] = res.get("action", "")
                say(f"{name}: {res['status']}" + (f": {res['error']}" if res.get("error") else ""))
                changed = True
        if changed:
            on_change(actions, set(live))
        if live:
            time.sleep(poll)
    return results


def _result(out: Path, name: str, job) -> dict:
    try:
        res = job.result()
    except Exception as err:  # the task raised: recorded, the others go on
        text = str(err).strip().splitlines()
        error = f"the Slurm task failed: {text[-1] if text else err}"
        record_attempt(out, name, {"action": "", "slurm_job_id": job.job_id, "error": error})
        return {"element": name, "status": "failed", "action": "", "error": error}
    return dict(res)


def _vanished(out: Path, name: str, job) -> dict:
    if run_status(element_paths(out, name)["run"]) == "complete":
        return {"element": name, "status": "complete", "action": ""}
    error = (
        f"Slurm task {job.job_id} left the queue without a result (cancelled, out of "
        f"memory, node failure or too many time-outs); see {job.paths.stderr}"
    )
    record_attempt(out, name, {"action": "", "slurm_job_id": job.job_id, "error": error})
    return {"element": name, "status": "failed", "action": "", "error": error}


__all__ = ["SlurmElement", "queue_states", "run_slurm"]
