"""Steps run over a sweep's finished elements (``then`` in the sweep file).

* ``compare``: ``il6rcc compare`` over every complete element -> ``DIR/compare/``
  (rewritten on every run of the sweep, so it always covers the complete elements);
  with ``compare_by``, once per combination of those axes' values ->
  ``DIR/compare/<label>=<value>/``;
* ``report``: the mechanism report (:mod:`il6rcc.jobs.mechanisms`) -> ``report_out``
  (default ``DIR/report/``);
* ``sbc``: rank statistics of simulation-based calibration -> ``DIR/sbc/``;
* a ``kind: profile`` sweep always merges its complete elements (one parameter's
  profile each) into ``DIR/profiles.csv``, ``profiles.md``, ``profiles.json`` and
  ``DIR/figures/``; failed elements are named in ``profiles.md``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from ._element import META, element_paths, read_state


def compare_groups(plan, complete: list[str]) -> dict[str, list[str]]:
    """The complete elements compared together, by the folder (relative to
    ``DIR/compare``) their comparison goes to: one group (``""``) without
    ``compare_by``, else one per combination of those axes' values."""
    groups: dict[str, list[str]] = {}
    for el in plan.elements:
        values = dict(el.values)
        key = "__".join(f"{label}={values[label]}" for label in plan.config.compare_by)
        groups.setdefault(key, [])
        if el.name in complete:
            groups[key].append(el.name)
    return groups


def _compare(plan, out: Path, complete: list[str], say) -> bool:
    ok = True
    for group, names in compare_groups(plan, complete).items():
        ok = _compare_one(out, group, names, plan.config.compare_refit, say) and ok
    return ok


def _compare_one(out: Path, group: str, complete: list[str], refit: str, say) -> bool:
    what = f"compare {group}".rstrip()
    if len(complete) < 2:
        say(f"{what}: needs at least two complete elements, have {len(complete)}; skipped")
        return False
    target = out / "compare" / group if group else out / "compare"
    staging = out / META / f"compare.{group or 'all'}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    log = out / META / "logs" / f"compare{'.' + group if group else ''}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "il6rcc.cli", "compare", *(str(out / n) for n in complete)]
    cmd += ["--out", str(staging), "--refit", refit]
    say(f"{what}: il6rcc compare over {len(complete)} elements...")
    if not _run_step(cmd, log, what, say):
        return False
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(target)
    say(f"{what}: {target / 'compare.csv'}")
    return True


def _run_step(cmd: list[str], log: Path, what: str, say) -> bool:
    """Run one step's command with its output appended to ``log``; a failure is said
    and returned, never raised."""
    with log.open("a") as fh:
        code = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, check=False).returncode
    if code != 0:
        say(f"{what}: failed (exit status {code}); see {log}")
    return code == 0


def report_folder(plan, out: Path) -> Path:
    """Where the ``report`` step writes: ``report_out`` relative to the sweep file, or
    ``DIR/report``."""
    if plan.config.report_out is None:
        return out / "report"
    return (plan.path.resolve().parent / plan.config.report_out).resolve()


def _report(plan, out: Path, say) -> bool:
    """The mechanism report, in its own process (like compare): a failure is logged
    and reported, never a crash of the sweep."""
    target = report_folder(plan, out)
    log = out / META / "logs" / "report.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "il6rcc.cli", "report-mechanisms", str(out), "--out", str(target)]
    say(f"report: il6rcc report-mechanisms -> {target}...")
    if not _run_step(cmd, log, "report", say):
        return False
    say(f"report: {target}")
    return True


def _merge_profiles(plan, out: Path, complete: list[str], say) -> bool:
    from .._profile_summary import MARKDOWN, merge_profiles

    done = [el for el in plan.elements if el.name in complete]
    if not done:
        say("profiles: no complete element; nothing merged")
        return False
    failed = {}
    for el in plan.elements:
        if el.name not in complete:
            attempts = read_state(element_paths(out, el.name)["state"]).get("attempts", [])
            failed[el.parameter] = (attempts[-1].get("error") if attempts else "") or "not run"
    merge_profiles(out, [out / el.name for el in done], failed)
    say(f"profiles: {len(done)} merged into {out / MARKDOWN}")
    return True


def run_then(plan, out: Path, complete: list[str], say) -> bool:
    ok = True
    if plan.config.kind == "profile":
        ok = _merge_profiles(plan, out, complete, say)
    for step in plan.config.then:
        if step == "compare":
            ok = _compare(plan, out, complete, say) and ok
        elif step == "sbc":
            from ._sbc import summarise_sbc

            ok = summarise_sbc(plan, out, complete, say) and ok
        elif step == "report":
            ok = _report(plan, out, say) and ok
    return ok


__all__ = ["compare_groups", "report_folder", "run_then"]
