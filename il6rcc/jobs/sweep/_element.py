"""One sweep element: an ordinary run folder made by ``il6rcc fit``, or (in a
``kind: profile`` sweep) the profile of one parameter made by ``il6rcc profile``.

The element's state is read off its folder alone (the ``il6rcc fit`` contract):

* ``complete``: ``manifest.json`` says so, or the folder holds ``profiles.json`` (a
  profile folder appears only when complete): nothing to do;
* ``unfinished``: a manifest that is not complete (killed, timed out, preempted or
  failed): continue with ``il6rcc fit --resume RUN_DIR``, from its checkpoint;
* ``pending``: neither: start ``il6rcc fit CONFIG --out RUN_DIR`` (or ``il6rcc profile
  RUN --parameters NAME --out DIR``: a profile has no checkpoint; a stopped one starts
  again).

Each attempt runs its command in its own process (a crash, an out-of-memory kill or a
signal ends that element's attempt, never the sweep), appends its output to the
element's log and records itself in the element's state file. Runs on whatever machine
executes the element (a local worker or a Slurm node): only files in the sweep folder
are read and written.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

from ... import _io

#: the sweep's own files inside the sweep folder (element names always contain '=')
META = "_sweep"


def element_paths(sweep_dir: Path, name: str) -> dict[str, Path]:
    meta = Path(sweep_dir) / META
    return {
        "run": Path(sweep_dir) / name,
        "config": meta / "configs" / f"{name}.yaml",
        "log": meta / "logs" / f"{name}.log",
        "state": meta / "state" / f"{name}.json",
    }


#: the file a complete profile element's folder holds (written with the folder)
PROFILE_DONE = "profiles.json"


def run_status(run_dir: Path) -> str:
    """``complete``, ``unfinished`` or ``pending`` (see the module docstring)."""
    man = Path(run_dir) / "manifest.json"
    if not man.is_file():
        return "complete" if (Path(run_dir) / PROFILE_DONE).is_file() else "pending"
    try:
        status = json.loads(man.read_text()).get("status")
    except (OSError, ValueError):
        return "unfinished"
    return "complete" if status == "complete" else "unfinished"


def read_state(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {"attempts": []}


def record_attempt(sweep_dir: Path, name: str, attempt: dict) -> None:
    """Append one attempt to the element's state file (atomically)."""
    path = element_paths(sweep_dir, name)["state"]
    state = read_state(path)
    state.setdefault("attempts", []).append(attempt)
    _io.write_json(path, state)


#: the last line of a Python traceback: ``SomeError: message``
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b(: .*)?$")


def _error_of(output: str, returncode: int) -> str:
    """The one-line reason an attempt failed, from its output and exit status."""
    lines = [ln.rstrip() for ln in output.splitlines() if ln.strip()]
    for i, line in enumerate(lines):
        if line.startswith("il6rcc: error:"):
            text = " | ".join([line.removeprefix("il6rcc: error:").strip(), *lines[i + 1 :]])
            return text[:500]
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}"
    # a traceback: its exception line (the last one; JAX may append a note after it)
    raised = [ln for ln in lines if _EXCEPTION.match(ln)]
    tail = raised[-1] if raised else (lines[-1] if lines else "no output")
    return f"exit status {returncode}: {tail}"[:500]


class ElementRunner:
    """Runs one element to the end of one attempt; ``stop()`` (from another thread or a
    signal handler) ends the running ``il6rcc fit`` process, which leaves its checkpoint
    for the next attempt."""

    def __init__(self, sweep_dir: Path, name: str, python: str | None = None):
        self.sweep_dir = Path(sweep_dir)
        self.name = name
        self.python = python or sys.executable
        self._proc: subprocess.Popen | None = None
        self._stopped = ""

    def spec(self) -> dict:
        """The element's config file: a job config, or a profile spec (``kind:
        profile``; job configs have no top-level ``kind``)."""
        text = element_paths(self.sweep_dir, self.name)["config"].read_text()
        spec = yaml.safe_load(text)
        return spec if isinstance(spec, dict) else {}

    def command(self, status: str) -> list[str]:
        p = element_paths(self.sweep_dir, self.name)
        spec = self.spec()
        if spec.get("kind") == "profile":
            cmd = [self.python, "-m", "il6rcc.cli", "profile", spec["run"]]
            cmd += ["--parameters", spec["parameter"], "--out", str(p["run"])]
            cmd += ["--max-points", str(spec["max_points"])]
            return cmd + (["--grid", str(spec["grid"])] if spec.get("grid") else [])
        base = [self.python, "-m", "il6rcc.cli", "fit", "--quiet"]
        if status == "unfinished":
            return [*base, "--resume", str(p["run"])]
        return [*base, str(p["config"]), "--out", str(p["run"])]

    def run(self) -> dict:
        p = element_paths(self.sweep_dir, self.name)
        status = run_status(p["run"])
        if status == "complete":
            return {"element": self.name, "action": "skipped", "status": "complete"}
        if status == "pending" and p["run"].exists():
            # created but never started (stopped before its manifest was written)
            shutil.rmtree(p["run"])
        for tmp in self.sweep_dir.glob(f".{self.name}.*.tmp"):
            # a profile folder being written when its process was killed
            shutil.rmtree(tmp, ignore_errors=True)
        action = "resumed" if status == "unfinished" else "started"
        cmd = self.command(status)
        p["log"].parent.mkdir(parents=True, exist_ok=True)
        started = dt.datetime.now(dt.UTC).isoformat()
        t0 = time.perf_counter()
        self._stopped = ""
        returncode: int | None = None
        with p["log"].open("a") as log:
            offset = log.tell()
            log.write(f"--- {started} {action} on {socket.gethostname()}: {' '.join(cmd)}\n")
            log.flush()
            env = dict(os.environ, PYTHONUNBUFFERED="1")
            try:
                self._proc = subprocess.Popen(
                    cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
                )
                # poll instead of a blocking wait: a signal handler (Slurm time-out or
                # preemption) may stop the process while this frame waits
                while (returncode := self._proc.poll()) is None:
                    time.sleep(0.2)
            finally:
                # also when a signal handler ends this process mid-wait (Slurm
                # preemption or time-out): the attempt is recorded either way
                if returncode is None and self._proc is not None:
                    returncode = self._proc.poll()
                self._proc = None
                log.flush()
                with p["log"].open() as reader:
                    reader.seek(offset)
                    output = reader.read()
                final = run_status(p["run"])
                ok = returncode == 0 and final == "complete"
                if ok:
                    error = ""
                elif self._stopped:
                    again = "continues from its checkpoint"
                    if final == "pending":  # a profile: no checkpoint
                        again = "starts again"
                    error = f"stopped ({self._stopped}); {again}"
                else:
                    error = _error_of(output, -9 if returncode is None else returncode)
                attempt = {
                    "action": action,
                    "started": started,
                    "seconds": round(time.perf_counter() - t0, 3),
                    "exit_code": returncode,
                    "host": socket.gethostname(),
                    "slurm_job_id": _slurm_job_id(),
                    "error": error,
                }
                self.record(attempt)
        return {
            "element": self.name,
            "action": action,
            "status": "complete" if ok else "failed",
            **attempt,
        }

    def record(self, attempt: dict) -> None:
        record_attempt(self.sweep_dir, self.name, attempt)

    def stop(self, reason: str) -> None:
        """End the running attempt (SIGTERM, then SIGKILL after 10 s); the attempt is
        recorded as stopped. Never blocks on the process lock, so it is safe from a
        signal handler."""
        self._stopped = reason
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        if not _ended(proc, 10.0):
            proc.kill()
            _ended(proc, 5.0)


def _ended(proc: subprocess.Popen, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while proc.poll() is None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _slurm_job_id() -> str:
    array = os.environ.get("SLURM_ARRAY_JOB_ID")
    task = os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return os.environ.get("SLURM_JOB_ID", "")


__all__ = [
    "META",
    "PROFILE_DONE",
    "ElementRunner",
    "element_paths",
    "read_state",
    "record_attempt",
    "run_status",
]
