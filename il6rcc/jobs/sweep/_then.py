"""Steps run over a sweep's finished elements (``then`` in the sweep file).

* ``compare``: ``il6rcc compare`` over every complete element -> ``DIR/compare/``
  (rewritten on every run of the sweep, so it always covers the complete elements);
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


def _compare(plan, out: Path, complete: list[str], say) -> bool:
    if len(complete) < 2:
        say(f"compare: needs at least two complete elements, have {len(complete)}; skipped")
        return False
    target = out / "compare"
    staging = out / META / "compare.partial"
    shutil.rmtree(staging, ignore_errors=True)
    log = out / META / "logs" / "compare.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "il6rcc.cli", "compare", *(str(out / n) for n in complete)]
    cmd += ["--out", str(staging)]
    say(f"compare: il6rcc compare over {len(complete)} elements...")
    with log.open("a") as fh:
        code = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, check=False).returncode
    if code != 0:
        say(f"compare: failed (exit status {code}); see {log}")
        return False
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    say(f"compare: {target / 'compare.csv'}")
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
    return ok


__all__ = ["run_then"]
