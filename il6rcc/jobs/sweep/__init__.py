"""``il6rcc sweep SWEEP.yaml --out DIR``: many fits (or profiles) from one sweep file.

Each element (one combination of axis values) is an ordinary ``il6rcc fit`` run folder
``DIR/<element>/``; ``DIR/sweep.csv`` indexes them (status, wall time, gates, error).
Rerunning the same command skips complete elements, resumes unfinished ones from their
checkpoints and retries failed ones; a failed element never stops the others. The
sweep's own files (element configs, logs, attempt records, Slurm files) live in
``DIR/_sweep/``; ``then`` steps write ``DIR/compare/`` and ``DIR/sbc/``.

Modules: ``_plan`` (axes -> elements -> validated, self-contained configs), ``_element``
(one attempt of one element, in its own process; state read off the run folder),
``_local`` and ``_slurm`` (executors), ``_index`` (sweep.csv), ``_then`` (steps after),
``_sbc`` (the SBC axis). A second kind of element, the profile likelihood of one
parameter of a finished run (``kind: profile``, axis ``{parameter: [...]}``), is an
``il6rcc profile`` process writing ``DIR/parameter=NAME/`` (see
``ElementRunner.command``); ``_then`` merges those into ``DIR/profiles.csv`` and
``profiles.md``. The executors, the index, skip/resume/retry and requeueing are shared.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ._element import run_status
from ._index import INDEX, write_index
from ._plan import Element, SweepPlan, plan_sweep, prepare, validate


def _say(quiet: bool):
    def say(message: str) -> None:
        if not quiet:
            print(message, file=sys.stderr, flush=True)

    return say


def run_sweep(
    sweep_file: str | Path,
    out: str | Path,
    executor: str | None = None,
    jobs: int | None = None,
    dry_run: bool = False,
    quiet: bool = False,
) -> int:
    """Run (or continue) a sweep; exit status 0 when every element and ``then`` step
    succeeded, 1 when any failed (all are recorded in sweep.csv)."""
    from ...errors import Il6rccError

    say = _say(quiet)
    plan = plan_sweep(sweep_file)
    out = Path(out).resolve()
    kind = executor or plan.config.executor.kind
    n_jobs = jobs or plan.config.executor.jobs
    if n_jobs < 1:
        raise Il6rccError(f"--jobs: got {n_jobs}; expected a number of processes >= 1")
    if out.exists() and not out.is_dir():
        raise Il6rccError(f"{out}: --out must be a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "_sweep").is_dir():
        raise Il6rccError(
            f"{out}: the folder exists, is not empty and holds no sweep; choose a new --out"
        )
    extra = {}
    if any(el.sbc_replicate is not None for el in plan.elements):
        from ._sbc import prepare_sbc

        extra = prepare_sbc(plan, out, dry_run=dry_run)
    if dry_run:
        validate(plan, extra)
        for el in plan.elements:
            print(el.name, flush=True)
        say(f"{len(plan.elements)} elements; nothing was run (--dry-run)")
        return 0
    prepare(plan, out, extra)
    todo = [el.name for el in plan.elements if run_status(out / el.name) != "complete"]
    done = len(plan.elements) - len(todo)
    say(
        f"sweep {plan.config.name}: {len(plan.elements)} elements, {done} complete, "
        f"{len(todo)} to run ({kind} executor) -> {out}"
    )
    actions = {el.name: "skipped" for el in plan.elements if el.name not in todo}

    def on_change(new_actions: dict[str, str], running: set[str]) -> None:
        write_index(plan, out, {**actions, **new_actions}, running)

    t0 = time.perf_counter()
    results: dict[str, dict] = {}
    try:
        if todo and kind == "local":
            from ._local import run_local

            results = run_local(out, todo, n_jobs, on_change, say)
        elif todo and kind == "slurm":
            from ._slurm import run_slurm

            results = run_slurm(out, todo, plan.config.executor.slurm, on_change, say)
        elif todo:
            raise Il6rccError(f"--executor: got {kind!r}; expected 'local' or 'slurm'")
    except KeyboardInterrupt:
        write_index(plan, out, actions)
        say(f"interrupted; rerun the same command to continue ({out / INDEX})")
        raise
    actions.update({n: r.get("action", "") for n, r in results.items()})
    rows = write_index(plan, out, actions)
    complete = [r for r in rows if r["status"] == "complete"]
    failed = [r for r in rows if r["status"] != "complete"]
    say(
        f"{len(complete)}/{len(rows)} elements complete ({len(failed)} not) in "
        f"{(time.perf_counter() - t0) / 60:.1f} min; index: {out / INDEX}"
    )
    ok = not failed
    from ._then import run_then

    ok = run_then(plan, out, [r["element"] for r in complete], say) and ok
    return 0 if ok else 1


__all__ = ["Element", "SweepPlan", "plan_sweep", "run_sweep"]
